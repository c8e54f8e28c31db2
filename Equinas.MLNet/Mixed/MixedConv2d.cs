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
/// The [G]-mixed equivariant convolution (paper eqs. 10-11): one kernel per member group H, each expanded into an
/// ordinary conv2d filter on ONE common channel layout, summed with weights <c>z = softmax(alpha / temperature)</c>,
/// then ONE convolution.
/// </summary>
/// <remarks>
/// <para>
/// Layout (<see cref="MixedLayout"/>): input and output are feature maps over the top group T (the smallest group
/// containing every member), <c>B x (I / |T|) x |T| x H x W</c> and <c>B x (O / |T|) x |T| x H x W</c> (images
/// <c>B x I x H x W</c> for the lifting variant); widths are in scalar channels and must be multiples of |T|. Member H
/// reads and writes these channels as the restriction T -> H does (its fields are the right cosets of H in each
/// T-field), so every element of T acts on every member by the same permutation and any chain of members is
/// equivariant to the intersection of its groups. With a one-hot z on H the layer is exactly the fixed H layer (no
/// bias) whose kernel is <see cref="MemberKernel"/>, read through the restriction on both sides.
/// </para>
/// <para>
/// Reparameterisation, so that z is the only per-member scale (method note section 4): member H's kernel is used as
/// <c>psi_H = w_H / |w_H| * n0_H</c> (Frobenius norm over the whole kernel), with the fixed
/// <c>n0_H = sqrt(2 O / |H|)</c>, the expected norm of its He initialisation. Each kernel entry appears |H| times in the
/// expanded filter, so every member's filter has norm exactly <c>sqrt(2 O)</c>, that of a He-initialised ordinary
/// convolution of the same width: members enter the sum at equal strength whatever their order, scaling a raw kernel
/// changes nothing, and only z weighs them. The layer has no bias: it is always followed by the mixed network's
/// shared batch norm, whose shift (one per T-field) subsumes any bias that keeps the layer T-equivariant, and a bias
/// per member would carry a second, z-like scale.
/// </para>
/// <para>
/// In evaluation mode (and with the layer's own z) the summed filter is built once, under a lock, and reused; concurrent
/// evaluation-mode forwards are safe. Training mode, <see cref="FrozenZ"/> and <see cref="InvalidateCache"/> drop it.
/// </para>
/// </remarks>
internal sealed class MixedConv2d : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly ParameterList weights;
    private readonly Parameter alpha;
#pragma warning restore IDE1006
    private readonly double[] _norms;
    private readonly object _cacheGate = new();
    private Tensor? _cachedFilter;
    private Tensor? _frozenZ;
    private int? _sampledMember;
    private bool _argmaxInEvaluation;

    public MixedConv2d(
        IReadOnlyList<SymmetryGroup> members, int inChannels, int outChannels, int kernelSize, bool lifting,
        AlphaInitialization initialization = AlphaInitialization.Uniform, double temperature = 1.0)
        : base(nameof(MixedConv2d))
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0 || members.Any(m => m is null) || members.Distinct().Count() != members.Count)
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
        Top = MixedLayout.TopOf(members);
        IsLifting = lifting;
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Temperature = temperature;
        CheckDivisible(outChannels, Top, "output");
        if (!lifting)
        {
            CheckDivisible(inChannels, Top, "input");
        }

        weights = new ParameterList();
        _norms = new double[Members.Count];
        for (int m = 0; m < Members.Count; m++)
        {
            var g = Members[m];
            long fields = outChannels / g.Order;
            var w = lifting
                ? torch.empty(fields, inChannels, kernelSize, kernelSize)
                : torch.empty([fields, inChannels / g.Order, g.Order, kernelSize, kernelSize]);
            var parameter = new Parameter(w);
            // Fan-in I k k (the scalar fan-in of the expanded filter), as for the fixed layers.
            nn.init.kaiming_normal_(parameter, nonlinearity: nn.init.NonlinearityType.ReLU);
            weights.Add(parameter);
            _norms[m] = Math.Sqrt(2.0 * outChannels / g.Order);
        }

        var logits = Members.Select(g => initialization == AlphaInitialization.PreferLargest && g.Order < Members.Max(m => m.Order) ? -2f : 0f).ToArray();
        alpha = new Parameter(torch.tensor(logits));
        RegisterComponents();
    }

    /// <summary>The groups mixed, in the order of <see cref="Alpha"/>.</summary>
    public IReadOnlyList<SymmetryGroup> Members { get; }

    /// <summary>G0: the intersection of the members, the symmetry every z keeps.</summary>
    public SymmetryGroup Base { get; }

    /// <summary>T: the smallest group containing every member, over whose elements the channels are laid out.</summary>
    public SymmetryGroup Top { get; }

    public bool IsLifting { get; }

    public int InChannels { get; }

    public int OutChannels { get; }

    /// <summary>Output T-fields: <c>OutChannels / |T|</c>.</summary>
    public int OutFields => OutChannels / Top.Order;

    public int KernelSize { get; }

    public double Temperature { get; }

    /// <summary>The architecture logits (one per member).</summary>
    public Parameter Alpha => alpha;

    /// <summary>The raw member kernels (their norm is irrelevant, see <see cref="MemberKernel"/>), in member order.</summary>
    public IReadOnlyList<Parameter> Weights => weights.ToArray();

    /// <summary>
    /// When set, z is this vector instead of softmax(alpha / temperature) (a discretised or frozen architecture). The
    /// layer keeps its own copy (the caller still owns and disposes the tensor it passes). Setting it drops the
    /// inference cache.
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

            Tensor? copy = null;
            if (value is not null)
            {
                using var scope = NewDisposeScope();
                using var noGrad = torch.no_grad();
                copy = value.to(ScalarType.Float32, alpha.device).clone().DetachFromDisposeScope();
            }

            _frozenZ?.Dispose();
            _frozenZ = copy;
            InvalidateCache();
        }
    }

    /// <summary>The fixed norm n0 of member <paramref name="member"/>'s kernel: <c>sqrt(2 O / |H|)</c>.</summary>
    public double KernelNorm(int member) => _norms[member];

    /// <summary>
    /// For searches that sample architectures (straight-through Gumbel, as GDAS): in training mode the layer uses this
    /// member alone (z one-hot in value), while gradients reach alpha as through softmax(alpha / temperature). Null
    /// (the default) mixes all members by z.
    /// </summary>
    public int? SampledMember
    {
        get => _sampledMember;
        set
        {
            if (value is { } m && (m < 0 || m >= Members.Count))
            {
                throw new ArgumentOutOfRangeException(nameof(value), m, $"Must be a member index in [0, {Members.Count}).");
            }

            _sampledMember = value;
        }
    }

    /// <summary>
    /// When true, evaluation mode uses the member with the largest z alone (one-hot), as a network trained on sampled
    /// architectures is meant to be used; when false (the default) it mixes by z. Setting it drops the inference cache.
    /// </summary>
    public bool ArgmaxInEvaluation
    {
        get => _argmaxInEvaluation;
        set
        {
            _argmaxInEvaluation = value;
            InvalidateCache();
        }
    }

    /// <summary>The mixing weights z: softmax(alpha / temperature), or <see cref="FrozenZ"/>.</summary>
    public Tensor Z()
    {
        if (_frozenZ is not null)
        {
            return _frozenZ.device == alpha.device ? _frozenZ.alias() : _frozenZ.to(alpha.device);
        }

        using var scope = NewDisposeScope();
        return nn.functional.softmax(Logits(), 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// alpha / temperature. The divisor is a Scalar held for the whole call: an implicit one (<c>alpha / 2.0</c>) is
    /// garbage the moment its handle is read, and its finaliser can free the native scalar while libtorch still reads
    /// it (seen once as "Unknown scalar type" in a long search).
    /// </summary>
    internal Tensor Logits()
    {
        if (Temperature == 1.0)
        {
            return alpha.alias();
        }

        using var temperature = Temperature.ToScalar();
        return alpha.div(temperature);
    }

    /// <summary>
    /// The weights a forward pass uses: <see cref="Z"/>, made one-hot on <see cref="SampledMember"/> (training, with the
    /// straight-through gradient of the softmax) or on its largest entry (evaluation with
    /// <see cref="ArgmaxInEvaluation"/>).
    /// </summary>
    private Tensor ForwardZ()
    {
        if (_frozenZ is not null)
        {
            return Z();
        }

        using var scope = NewDisposeScope();
        var soft = nn.functional.softmax(Logits(), 0);
        int? hot = training ? _sampledMember : _argmaxInEvaluation ? (int)soft.argmax().item<long>() : null;
        if (hot is not { } index)
        {
            return soft.MoveToOuterDisposeScope();
        }

        var oneHot = torch.zeros_like(soft);
        using (torch.no_grad())
        {
            using var one = 1f.ToScalar();
            oneHot[index].fill_(one);
        }

        // The value of the one-hot vector, the gradient of the softmax.
        return (oneHot - soft.detach() + soft).MoveToOuterDisposeScope();
    }

    /// <summary>Drops the cached inference filter (needed only after changing weights by hand in evaluation mode).</summary>
    public void InvalidateCache()
    {
        lock (_cacheGate)
        {
            _cachedFilter?.Dispose();
            _cachedFilter = null;
        }
    }

    /// <summary>Whether the summed inference filter is currently cached.</summary>
    public bool IsCached => Volatile.Read(ref _cachedFilter) is not null;

    /// <summary>Member H's kernel as used: <c>w_H / |w_H| * n0_H</c>, shaped like <see cref="Weights"/>[member].</summary>
    public Tensor MemberKernel(int member)
    {
        using var scope = NewDisposeScope();
        return (weights[member] * Coefficient(member, null)).MoveToOuterDisposeScope();
    }

    /// <summary>Member H's kernel (<see cref="MemberKernel"/>) expanded into a conv2d filter on the common layout.</summary>
    public Tensor MemberFilter(int member)
    {
        using var scope = NewDisposeScope();
        return Expand(member, MemberKernel(member)).MoveToOuterDisposeScope();
    }

    /// <summary>The summed filter <c>sum_H z_H expand(psi_H)</c> for the given z (eq. 11).</summary>
    public Tensor MixedFilter(Tensor z)
    {
        ArgumentNullException.ThrowIfNull(z);
        using var scope = NewDisposeScope();
        Tensor? filter = null;
        for (int m = 0; m < Members.Count; m++)
        {
            // Scale the kernel (up to |T| times smaller than its filter) before expanding it; the expansion is linear.
            var f = Expand(m, weights[m] * Coefficient(m, z));
            filter = filter is null ? f : filter.add_(f);
        }

        return filter!.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The summed filter an evaluation-mode forward convolves with (the cached one, built now if needed), as a new
    /// tensor handle owned by the caller's dispose scope: what an exporter writes out.
    /// </summary>
    /// <exception cref="InvalidOperationException">The layer is in training mode (its forward then mixes afresh every call).</exception>
    public Tensor EvaluationFilter()
    {
        if (training)
        {
            throw new InvalidOperationException("MixedConv2d is in training mode; its evaluation filter exists only in evaluation mode (call eval() first).");
        }

        return CachedFilter().clone();
    }

    public override Tensor forward(Tensor input) => Forward(input, null);

    /// <summary>
    /// The mixed convolution with the given z, or with the layer's own (served from the cache in evaluation mode)
    /// when null.
    /// </summary>
    public Tensor Forward(Tensor input, Tensor? z)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input);
        using var scope = NewDisposeScope();
        Tensor filter;
        if (training)
        {
            InvalidateCache();
            filter = MixedFilter(z ?? ForwardZ());
        }
        else
        {
            filter = z is null ? CachedFilter() : MixedFilter(z);
        }

        long k = KernelSize;
        var flat = IsLifting ? input : input.reshape(input.shape[0], InChannels, input.shape[3], input.shape[4]);
        var output = DeviceOps.Conv2d(flat, filter, null, k / 2);
        return output.view(output.shape[0], OutFields, Top.Order, output.shape[2], output.shape[3]).MoveToOuterDisposeScope();
    }

    /// <summary>Sets training or evaluation mode; training mode drops the inference cache.</summary>
    public override void train(bool on = true)
    {
        if (on)
        {
            InvalidateCache();
        }

        base.train(on);
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

    /// <summary>The scale of member m's raw kernel: <c>z_m n0_m / |w_m|</c> (z_m left out when z is null).</summary>
    private Tensor Coefficient(int m, Tensor? z)
    {
        var inverseNorm = DeviceOps.ClampMin(weights[m].norm(), 1e-12).reciprocal() * _norms[m];
        return z is null ? inverseNorm : inverseNorm * z[m];
    }

    private Tensor Expand(int member, Tensor kernel) =>
        MixedLayout.Expand(kernel, Members[member], Top, IsLifting, IsLifting ? InChannels : InChannels / Top.Order);

    /// <summary>The summed filter of the layer's own z, built once (under the lock) and kept out of any dispose scope.</summary>
    private Tensor CachedFilter()
    {
        var cached = Volatile.Read(ref _cachedFilter);
        if (cached is not null)
        {
            return cached;
        }

        lock (_cacheGate)
        {
            cached = _cachedFilter;
            if (cached is null)
            {
                using var noGrad = torch.no_grad();
                using var scope = NewDisposeScope();
                cached = MixedFilter(ForwardZ()).contiguous();
                cached.DetachFromDisposeScope();
                Volatile.Write(ref _cachedFilter, cached);
            }

            return cached;
        }
    }

    private void CheckInput(Tensor input)
    {
        bool ok = IsLifting
            ? input.dim() == 4 && input.shape[1] == InChannels
            : input.dim() == 5 && input.shape[1] * input.shape[2] == InChannels && input.shape[2] == Top.Order;
        if (!ok)
        {
            string expected = IsLifting ? $"B x {InChannels} x H x W" : $"B x {InChannels / Top.Order} x {Top.Order} x H x W (a feature map over {Top.Name})";
            throw new ArgumentException($"MixedConv2d expects input of shape {expected}, but found [{string.Join(", ", input.shape)}].", nameof(input));
        }
    }

    private static void CheckDivisible(int channels, SymmetryGroup group, string side)
    {
        if (channels % group.Order != 0)
        {
            throw new ArgumentException($"The {side} width of {channels} scalar channels cannot be split into fields over {group.Name} (order {group.Order}), the group that contains every member; use a multiple of {group.Order}.");
        }
    }
}
