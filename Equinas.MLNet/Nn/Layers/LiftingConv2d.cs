#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// Lifting convolution (paper eq. 2): an image <c>B x C x H x W</c> to a feature map <c>B x F x |G| x H x W</c> over G.
/// The kernel <c>F x C x k x k</c> is expanded into one conv2d filter holding a transformed copy per element of G;
/// the bias is shared over the group axis. Stride 1, "same" padding, odd k: exactly equivariant for every size.
/// </summary>
internal sealed class LiftingConv2d : ExpandedConvolution
{
#pragma warning disable IDE1006, SA1300 // Field names are state_dict keys (a saved-format contract).
    private readonly Parameter weight;
    private readonly Parameter? bias;
#pragma warning restore IDE1006, SA1300

    public LiftingConv2d(int inChannels, int outFields, SymmetryGroup group, int kernelSize, bool hasBias = true)
        : base(nameof(LiftingConv2d))
    {
        ConvArguments.Check(inChannels, outFields, kernelSize);
        Group = group ?? throw new ArgumentNullException(nameof(group));
        InChannels = inChannels;
        OutFields = outFields;
        KernelSize = kernelSize;
        weight = new Parameter(torch.empty(outFields, inChannels, kernelSize, kernelSize));
        // He initialisation over the expanded filter's fan-in (C k k), as for an ordinary conv of the same width.
        nn.init.kaiming_normal_(weight, nonlinearity: nn.init.NonlinearityType.ReLU);
        bias = hasBias ? new Parameter(torch.zeros(outFields)) : null;
        RegisterComponents();
    }

    public SymmetryGroup Group { get; }

    public int InChannels { get; }

    public int OutFields { get; }

    public int KernelSize { get; }

    public Parameter Weight => weight;

    public Parameter? Bias => bias;

    public override SymmetryGroup? InputGroup => null;

    public override SymmetryGroup? OutputGroup => Group;

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != InChannels)
        {
            throw new ArgumentException(
                $"LiftingConv2d expects images of shape B x {InChannels} x H x W, but found [{string.Join(", ", input.shape)}].",
                nameof(input));
        }

        return Apply(input);
    }

    protected override (Tensor Filter, Tensor? Bias) Expand() =>
        (ExpandFilter(weight, Group), bias is null ? null : ConvArguments.ExpandBias(bias, Group.Order));

    protected override Tensor Convolve(Tensor input, Tensor filter, Tensor? expandedBias) =>
        Convolve(input, filter, expandedBias, OutFields, Group.Order, KernelSize);

    /// <summary>
    /// Expands a lifting kernel <c>F x C x k x k</c> into a conv2d filter <c>(F |G|) x C x k x k</c>; with a
    /// <paramref name="layout"/> subgroup H, each field's rows come in the order of the restriction to H.
    /// </summary>
    public static Tensor ExpandFilter(Tensor weight, SymmetryGroup group, SymmetryGroup? layout = null)
    {
        long f = weight.shape[0], c = weight.shape[1], k = weight.shape[2];
        var index = FilterIndex.Get(group, (int)k, lifting: true, weight.device, layout);
        return DeviceOps.IndexSelect(weight.reshape(f * c, k * k), 1, index)
            .view(f, c, group.Order, k, k)
            .transpose(1, 2)
            .reshape(f * group.Order, c, k, k);
    }

    /// <summary>The functional form: <c>B x C x H x W</c> to <c>B x F x |G| x H x W</c>.</summary>
    public static Tensor Functional(Tensor input, Tensor weight, Tensor? bias, SymmetryGroup group)
    {
        using var scope = NewDisposeScope();
        long f = weight.shape[0];
        long k = weight.shape[2];
        var filter = ExpandFilter(weight, group);
        var expandedBias = bias is null ? null : ConvArguments.ExpandBias(bias, group.Order);
        return Convolve(input, filter, expandedBias, f, group.Order, k).MoveToOuterDisposeScope();
    }

    /// <summary>The convolution with an already expanded filter and bias.</summary>
    private static Tensor Convolve(Tensor input, Tensor filter, Tensor? expandedBias, long f, long n, long k)
    {
        var output = DeviceOps.Conv2d(input, filter, expandedBias, k / 2);
        return output.view(output.shape[0], f, n, output.shape[2], output.shape[3]);
    }
}

/// <summary>Argument checks and helpers shared by the convolution layers.</summary>
internal static class ConvArguments
{
    public static void Check(int inChannels, int outChannels, int kernelSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kernelSize);
        if (kernelSize % 2 == 0)
        {
            throw new ArgumentException(
                $"Kernel size must be odd for an exactly equivariant 'same' convolution (an even kernel has no centre pixel); found {kernelSize}.",
                nameof(kernelSize));
        }
    }

    /// <summary>A per-field bias <c>F</c> repeated over the group axis: <c>F |G|</c>, field-major.</summary>
    public static Tensor ExpandBias(Tensor bias, int order) => bias.repeat_interleave(order, dim: 0);
}
