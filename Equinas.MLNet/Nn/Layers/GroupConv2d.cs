#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// Group convolution (paper eq. 1): a feature map <c>B x I x |G| x H x W</c> to <c>B x O x |G| x H x W</c>, with
/// kernel <c>O x I x |G| x k x k</c> expanded into one conv2d filter <c>(O |G|) x (I |G|) x k x k</c> whose block
/// (g, h) is <c>psi(g^-1 h, g^-1 u)</c>. Bias shared over the group axis. Stride 1, "same" padding, odd k.
/// </summary>
internal sealed class GroupConv2d : ExpandedConvolution
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly Parameter weight;
    private readonly Parameter? bias;
#pragma warning restore IDE1006

    public GroupConv2d(int inFields, int outFields, SymmetryGroup group, int kernelSize, bool hasBias = true)
        : base(nameof(GroupConv2d))
    {
        ConvArguments.Check(inFields, outFields, kernelSize);
        Group = group ?? throw new ArgumentNullException(nameof(group));
        InFields = inFields;
        OutFields = outFields;
        KernelSize = kernelSize;
        weight = new Parameter(torch.empty([outFields, inFields, group.Order, kernelSize, kernelSize]));
        // Fan-in of the expanded filter is I |G| k k, the scalar fan-in of an ordinary conv of the same width.
        nn.init.kaiming_normal_(weight, nonlinearity: nn.init.NonlinearityType.ReLU);
        bias = hasBias ? new Parameter(torch.zeros(outFields)) : null;
        RegisterComponents();
    }

    public SymmetryGroup Group { get; }

    public int InFields { get; }

    public int OutFields { get; }

    public int KernelSize { get; }

    public Parameter Weight => weight;

    public Parameter? Bias => bias;

    public override SymmetryGroup? InputGroup => Group;

    public override SymmetryGroup? OutputGroup => Group;

    public override Tensor forward(Tensor input)
    {
        CheckFeatureMap(input, Group, InFields, nameof(GroupConv2d));
        return Apply(input);
    }

    protected override (Tensor Filter, Tensor? Bias) Expand() =>
        (ExpandFilter(weight, Group), bias is null ? null : ConvArguments.ExpandBias(bias, Group.Order));

    protected override Tensor Convolve(Tensor input, Tensor filter, Tensor? expandedBias) =>
        Convolve(input, filter, expandedBias, OutFields, Group.Order, KernelSize);

    /// <summary>
    /// Expands a kernel <c>O x I x |G| x k x k</c> into a conv2d filter <c>(O |G|) x (I |G|) x k x k</c>; with a
    /// <paramref name="layout"/> subgroup H, each field's rows and columns come in the order of the restriction to H,
    /// so the filter maps feature maps over H (restricted from G) to feature maps over H.
    /// </summary>
    public static Tensor ExpandFilter(Tensor weight, SymmetryGroup group, SymmetryGroup? layout = null)
    {
        long o = weight.shape[0], i = weight.shape[1], n = group.Order, k = weight.shape[3];
        var index = FilterIndex.Get(group, (int)k, lifting: false, weight.device, layout);
        // A gather along dimension 1 of a 2-D view is several times faster in libtorch than along the last
        // dimension of a 3-D one (measured 1.3 vs 7.6 ms for a 256x256 5x5 C1 filter on 2 threads).
        return DeviceOps.IndexSelect(weight.reshape(o * i, n * k * k), 1, index)
            .view(o, i, n, n, k, k)
            .transpose(1, 2)
            .reshape(o * n, i * n, k, k);
    }

    /// <summary>The functional form: <c>B x I x |G| x H x W</c> to <c>B x O x |G| x H x W</c>.</summary>
    public static Tensor Functional(Tensor input, Tensor weight, Tensor? bias, SymmetryGroup group)
    {
        using var scope = NewDisposeScope();
        long o = weight.shape[0], k = weight.shape[3], n = group.Order;
        var filter = ExpandFilter(weight, group);
        var expandedBias = bias is null ? null : ConvArguments.ExpandBias(bias, group.Order);
        return Convolve(input, filter, expandedBias, o, n, k).MoveToOuterDisposeScope();
    }

    /// <summary>The convolution with an already expanded filter and bias.</summary>
    private static Tensor Convolve(Tensor input, Tensor filter, Tensor? expandedBias, long o, long n, long k)
    {
        var flat = input.reshape(input.shape[0], input.shape[1] * n, input.shape[3], input.shape[4]);
        var output = DeviceOps.Conv2d(flat, filter, expandedBias, k / 2);
        return output.view(output.shape[0], o, n, output.shape[2], output.shape[3]);
    }
}
