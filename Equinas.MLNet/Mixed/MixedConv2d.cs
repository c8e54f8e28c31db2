#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Mixed;

/// <summary>How the architecture logits of a mixed layer start.</summary>
internal enum AlphaInitialization
{
    /// <summary>All logits 0: every group weighs the same.</summary>
    Uniform,

    /// <summary>The largest group's logit 0, the others -2 (a prior favouring full equivariance).</summary>
    PreferLargest,
}

/// <summary>
/// The [G]-mixed equivariant convolution (paper eqs. 10-11): one kernel per member group G of [G], each expanded into
/// an ordinary conv2d filter laid out over the members' common subgroup G0 (eq. 4), summed with weights
/// <c>z = softmax(alpha / temperature)</c>, then ONE convolution. Input and output are feature maps over G0
/// (<c>B x I0 x |G0| x H x W</c>, or images for the lifting variant); widths are in scalar channels, which must be
/// divisible by every member's order. With a one-hot z on G the layer is exactly the fixed G layer read through the
/// restriction to G0. In evaluation mode the summed filter and bias are computed once and cached.
/// </summary>
internal sealed class MixedConv2d : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly ParameterList weights;
    private readonly ParameterList biases;
    private readonly Parameter alpha;
#pragma warning restore IDE1006
    private Tensor? _cachedFilter;
    private Tensor? _cachedBias;
    private Tensor? _frozenZ;

    public MixedConv2d(
        IReadOnlyList<SymmetryGroup> members, int inChannels, int outChannels, int kernelSize, bool lifting,
        AlphaInitialization initialization = AlphaInitialization.Uniform, double temperature = 1.0)
        : base(nameof(MixedConv2d))
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0 || members.Distinct().Count() != members.Count)
        {
            throw new ArgumentException("A mixed layer needs at least one group, each listed once.", nameof(members));
        }

        ConvArguments.Check(inChannels, outChannels, kernelSize);
        if (!(temperature > 0) || double.IsInfinity(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Must be positive.");
        }

        Members = members.ToArray();
        Base = SymmetryGroup.IntersectAll(members);
        IsLifting = lifting;
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Temperature = temperature;
        foreach (var g in Members)
        {
            CheckDivisible(outChannels, g, "output");
            if (!lifting)
            {
                CheckDivisible(inChannels, g, "input");
            }
        }

        if (!lifting)
        {
            CheckDivisible(inChannels, Base, "input");
        }

        weights = new ParameterList();
        biases = new ParameterList();
        foreach (var g in Members)
        {
            long fields = outChannels / g.Order;
            var w = lifting
                ? torch.empty(fields, inChannels, kernelSize, kernelSize)
                : torch.empty([fields, inChannels / g.Order, g.Order, kernelSize, kernelSize]);
            var parameter = new Parameter(w);
            nn.init.kaiming_normal_(parameter, nonlinearity: nn.init.NonlinearityType.ReLU);
            weights.Add(parameter);
            biases.Add(new Parameter(torch.zeros(fields)));
        }

        var logits = Members.Select(g => initialization == AlphaInitialization.PreferLargest && g.Order < Members.Max(m => m.Order) ? -2f : 0f).ToArray();
        alpha = new Parameter(torch.tensor(logits));
        RegisterComponents();
    }

    /// <summary>The groups mixed, in the order of <see cref="Alpha"/>.</summary>
    public IReadOnlyList<SymmetryGroup> Members { get; }

    /// <summary>G0: the intersection of the members, over which the input and output feature maps live.</summary>
    public SymmetryGroup Base { get; }

    public bool IsLifting { get; }

    public int InChannels { get; }

    public int OutChannels { get; }

    public int KernelSize { get; }

    public double Temperature { get; }

    /// <summary>The architecture logits (one per member).</summary>
    public Parameter Alpha => alpha;

    /// <summary>Member kernels, in the order of <see cref="Members"/>.</summary>
    public IReadOnlyList<Parameter> Weights => weights.ToArray();

    /// <summary>Member biases (one per member field), in the order of <see cref="Members"/>.</summary>
    public IReadOnlyList<Parameter> Biases => biases.ToArray();

    /// <summary>
    /// When set, z is this vector instead of softmax(alpha / temperature) (a discretised or frozen architecture).
    /// Setting it clears the inference cache.
    /// </summary>
    public Tensor? FrozenZ
    {
        get => _frozenZ;
        set
        {
            if (value is not null && (value.dim() != 1 || value.shape[0] != Members.Count))
            {
                throw new ArgumentException($"z must be a vector of {Members.Count} weights; found [{string.Join(", ", value.shape)}].", nameof(value));
            }

            _frozenZ?.Dispose();
            _frozenZ = value?.detach().clone().DetachFromDisposeScope();
            InvalidateCache();
        }
    }

    /// <summary>The mixing weights z: softmax(alpha / temperature), or <see cref="FrozenZ"/>.</summary>
    public Tensor Z() => _frozenZ is not null ? _frozenZ.alias() : nn.functional.softmax(alpha / Temperature, 0);

    /// <summary>Drops the cached inference filter (needed only after changing weights by hand in evaluation mode).</summary>
    public void InvalidateCache()
    {
        _cachedFilter?.Dispose();
        _cachedBias?.Dispose();
        _cachedFilter = null;
        _cachedBias = null;
    }

    /// <summary>Member G's kernel expanded into a conv2d filter laid out over G0 (rows and, for group layers, columns).</summary>
    public Tensor MemberFilter(int member) => Expand(member, weights[member]);

    /// <summary>Expands a kernel shaped like member G's (the expansion is a gather, so it is linear in the kernel).</summary>
    private Tensor Expand(int member, Tensor kernel) =>
        IsLifting
            ? LiftingConv2d.ExpandFilter(kernel, Members[member], Base)
            : GroupConv2d.ExpandFilter(kernel, Members[member], Base);

    /// <summary>Member G's bias per output scalar channel.</summary>
    public Tensor MemberBias(int member) => ConvArguments.ExpandBias(biases[member], Members[member].Order);

    /// <summary>The summed filter and bias for the given z (eq. 11).</summary>
    public (Tensor Filter, Tensor Bias) MixedFilter(Tensor z)
    {
        ArgumentNullException.ThrowIfNull(z);
        using var scope = NewDisposeScope();
        Tensor? filter = null, bias = null;
        for (int m = 0; m < Members.Count; m++)
        {
            // Scale the member's kernel before expanding it: the kernel is up to |G| times smaller than its filter.
            var f = Expand(m, weights[m] * z[m]);
            var b = ConvArguments.ExpandBias(biases[m] * z[m], Members[m].Order);
            filter = filter is null ? f : filter.add_(f);
            bias = bias is null ? b : bias.add_(b);
        }

        return (filter!.MoveToOuterDisposeScope(), bias!.MoveToOuterDisposeScope());
    }

    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <summary>The mixed convolution with the given z (or the layer's own when null).</summary>
    public Tensor Forward(Tensor input, Tensor? z)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input);
        using var scope = NewDisposeScope();
        Tensor filter, bias;
        if (!training && z is null)
        {
            if (_cachedFilter is null)
            {
                using (torch.no_grad())
                {
                    using var zz = Z();
                    var (f, b) = MixedFilter(zz);
                    _cachedFilter = f.DetachFromDisposeScope();
                    _cachedBias = b.DetachFromDisposeScope();
                }
            }

            filter = _cachedFilter;
            bias = _cachedBias!;
        }
        else
        {
            InvalidateCache();
            (filter, bias) = MixedFilter(z ?? Z());
        }

        long k = KernelSize;
        var flat = IsLifting ? input : input.reshape(input.shape[0], InChannels, input.shape[3], input.shape[4]);
        var output = nn.functional.conv2d(flat, filter, bias, padding: [k / 2, k / 2]);
        return output.view(output.shape[0], OutChannels / Base.Order, Base.Order, output.shape[2], output.shape[3]).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            InvalidateCache();
            _frozenZ?.Dispose();
            _frozenZ = null;
        }

        base.Dispose(disposing);
    }

    private void CheckInput(Tensor input)
    {
        bool ok = IsLifting
            ? input.dim() == 4 && input.shape[1] == InChannels
            : input.dim() == 5 && input.shape[1] * input.shape[2] == InChannels && input.shape[2] == Base.Order;
        if (!ok)
        {
            string expected = IsLifting ? $"B x {InChannels} x H x W" : $"B x {InChannels / Base.Order} x {Base.Order} x H x W";
            throw new ArgumentException($"MixedConv2d expects input of shape {expected}, but found [{string.Join(", ", input.shape)}].", nameof(input));
        }
    }

    private static void CheckDivisible(int channels, SymmetryGroup group, string side)
    {
        if (channels % group.Order != 0)
        {
            throw new ArgumentException($"The {side} width of {channels} scalar channels cannot be split into fields over {group.Name} (order {group.Order}); use a multiple of {group.Order}.");
        }
    }
}
