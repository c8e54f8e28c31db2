#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Mixed;

/// <summary>The architecture of a network of [G]-mixed layers.</summary>
/// <param name="Template">Widths (scalar channels, multiples of |<see cref="Top"/>|), kernel, pooling, head and classes; its groups are ignored.</param>
/// <param name="Members">The groups every layer mixes (default in the searches: every subgroup of the top group).</param>
/// <param name="Initialization">How the architecture logits start.</param>
/// <param name="Temperature">z = softmax(alpha / temperature).</param>
internal sealed record MixedNetworkSpec(NetworkSpec Template, IReadOnlyList<SymmetryGroup> Members, AlphaInitialization Initialization = AlphaInitialization.Uniform, double Temperature = 1.0)
{
    /// <summary>The members' common subgroup G0: every z keeps at least this symmetry.</summary>
    public SymmetryGroup Base => SymmetryGroup.IntersectAll(Members);

    /// <summary>The smallest group containing every member: every feature map is laid out over its elements.</summary>
    public SymmetryGroup Top => MixedLayout.TopOf(Members);
}

/// <summary>
/// One layer of a <see cref="MixedGroupCnn"/>: mixed convolution, the shared group norm, ReLU, optional exact pooling.
/// Feature maps in and out are over the top group T (<c>B x F x |T| x H x W</c>, see <see cref="MixedLayout"/>).
/// </summary>
internal sealed class MixedBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly MixedConv2d conv;
    private readonly MixedBatchNorm norm;
#pragma warning restore IDE1006
    private readonly EquivariantPool2d? _pool;

    public MixedBlock(MixedNetworkSpec spec, int inChannels, int outChannels, bool lifting, bool pool) : base(nameof(MixedBlock))
    {
        conv = new MixedConv2d(spec.Members, inChannels, outChannels, spec.Template.KernelSize, lifting, spec.Initialization, spec.Temperature);
        norm = new MixedBatchNorm(spec.Members, outChannels);
        _pool = pool ? new EquivariantPool2d(conv.Top) : null;
        RegisterComponents();
    }

    public MixedConv2d Conv => conv;

    public MixedBatchNorm Norm => norm;

    /// <summary>The pooling after the block, or null.</summary>
    public EquivariantPool2d? Pool => _pool;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = DeviceOps.Relu(norm.call(conv.call(input)));
        if (_pool is not null)
        {
            x = _pool.call(x);
        }

        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A network whose every layer is a [G]-mixed layer (EquiNAS_D's super-network), with the same layout as
/// <see cref="GroupCnn"/>: images to logits.
/// </summary>
/// <remarks>
/// <para>
/// Every feature map is laid out over the top group T (<see cref="MixedLayout"/>), so any chain of members (z one-hot
/// per layer) is exactly equivariant to the intersection of its groups, and any z to the intersection G0 of all members.
/// Each layer: <see cref="MixedConv2d"/> (member kernels of fixed norm, no bias: z is the only per-member scale), one
/// <see cref="MixedBatchNorm"/> shared by all members over T's fields, ReLU.
/// </para>
/// <para>
/// Head: the mean over each T-field's |T| channels and over space gives <c>C / |T|</c> features for every z, the same
/// number whichever members the last layer weighs (no group hands the head more or fewer features by its order), then
/// Linear -> BatchNorm -> ELU -> Linear as in <see cref="GroupCnn"/>. The pooling is T-invariant and does not depend on
/// z, so the network's symmetry is decided by its layers alone: a one-hot chain H1, ..., HL is invariant exactly to
/// H1 ∩ ... ∩ HL (all-H networks to H), and generically to nothing more. Capacity note (method note section 9): the head
/// sees <c>C / |T|</c> features for every member, so keep the last width well above |T| times the class count.
/// </para>
/// </remarks>
internal sealed class MixedGroupCnn : EquivariantNetwork
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly ModuleList<MixedBlock> blocks;
    private readonly Linear? hidden;
    private readonly BatchNorm1d? headNorm;
    private readonly Linear output;
#pragma warning restore IDE1006

    public MixedGroupCnn(MixedNetworkSpec spec) : base(nameof(MixedGroupCnn))
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));
        var template = spec.Template;
        using var scope = NewDisposeScope();
        blocks = new ModuleList<MixedBlock>();
        int inChannels = template.InputChannels;
        for (int i = 0; i < template.Layers.Count; i++)
        {
            int outChannels = template.Layers[i].Channels;
            blocks.Add(new MixedBlock(spec, inChannels, outChannels, lifting: i == 0, pool: template.PoolAfter.Contains(i)));
            inChannels = outChannels;
        }

        LastChannels = inChannels;
        HeadFeatures = inChannels / spec.Top.Order * InvariantHead.FeaturesPerField(template.HeadPooling);
        if (template.HeadHidden > 0)
        {
            hidden = nn.Linear(HeadFeatures, template.HeadHidden);
            headNorm = nn.BatchNorm1d(template.HeadHidden);
        }

        output = nn.Linear(template.HeadHidden > 0 ? template.HeadHidden : HeadFeatures, template.Classes);
        RegisterComponents();
        foreach (var (_, tensor) in state_dict())
        {
            tensor.DetachFromDisposeScope();
        }
    }

    /// <summary>The eight elements of D4 in index order (e, r, r2, r3, f, rf, r2f, r3f): the columns of <see cref="ElementMass()"/>.</summary>
    public static IReadOnlyList<D4Element> MassElements => D4Element.All;

    public MixedNetworkSpec Spec { get; }

    public IReadOnlyList<MixedBlock> Blocks => blocks.ToArray();

    /// <summary>Scalar channels of the last layer.</summary>
    public int LastChannels { get; }

    /// <summary>Invariant features the head reads: one (two with <see cref="HeadPooling.MeanAndMax"/>) per T-field of the last layer, <c>LastChannels / |T|</c>, for every z.</summary>
    public int HeadFeatures { get; }

    /// <summary>The head's hidden linear layer, or null when the head is a single linear layer.</summary>
    public Linear? Hidden => hidden;

    /// <summary>The batch norm after the hidden layer, or null.</summary>
    public BatchNorm1d? HeadNorm => headNorm;

    /// <summary>The last linear layer (the logits).</summary>
    public Linear Output => output;

    /// <inheritdoc/>
    public override NetworkKind Kind => NetworkKind.Mixed;

    /// <inheritdoc/>
    public override NetworkSpec Architecture => Spec.Template;

    /// <inheritdoc/>
    public override IReadOnlyList<SymmetryGroup> LayerGroups => ArgmaxGroups();

    /// <summary>The intersection of all members: the group the logits are invariant to whatever z is.</summary>
    public override SymmetryGroup InvariantGroup => Spec.Base;

    /// <summary>The architecture logits, one vector per layer.</summary>
    public override IEnumerable<Parameter> ArchitectureParameters() => blocks.Select(b => b.Conv.Alpha);

    /// <summary>Every trainable parameter except the architecture logits.</summary>
    public override IEnumerable<Parameter> WeightParameters()
    {
        var alphas = ArchitectureParameters().ToHashSet(ReferenceEqualityComparer.Instance);
        return parameters().Where(p => !alphas.Contains(p));
    }

    /// <inheritdoc/>
    public override void PrepareForInference() => eval();

    /// <summary>z per layer, as numbers (in member order).</summary>
    public double[][] Z()
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        return blocks.Select(b => b.Conv.Z().cpu().data<float>().Select(v => (double)v).ToArray()).ToArray();
    }

    /// <summary>The member with the largest z in each layer.</summary>
    public IReadOnlyList<SymmetryGroup> ArgmaxGroups() =>
        Z().Select(z => Spec.Members[Array.IndexOf(z, z.Max())]).ToArray();

    /// <summary>
    /// Draws one member per layer from its z (softmax(alpha / temperature)) with <paramref name="random"/>, for the next
    /// training-mode forwards (<see cref="MixedConv2d.SampledMember"/>); null clears the samples (mix by z again).
    /// </summary>
    public void Sample(Random? random)
    {
        var z = random is null ? null : Z();
        for (int i = 0; i < blocks.Count; i++)
        {
            if (random is null)
            {
                blocks[i].Conv.SampledMember = null;
                continue;
            }

            double u = random.NextDouble(), sum = 0;
            int pick = z![i].Length - 1;
            for (int m = 0; m < z[i].Length; m++)
            {
                sum += z[i][m];
                if (u < sum)
                {
                    pick = m;
                    break;
                }
            }

            blocks[i].Conv.SampledMember = pick;
        }
    }

    /// <summary>
    /// Makes training-mode forwards compute what evaluation mode computes, for a norm re-estimation: the largest-z chain
    /// when the network is evaluated by it (<see cref="UseArgmaxInEvaluation"/>), the mixture otherwise (any drawn
    /// chain cleared). Returns the samples to put back afterwards (<see cref="RestoreSamples"/>).
    /// </summary>
    public int?[] PinEvaluationSamples()
    {
        var previous = blocks.Select(b => b.Conv.SampledMember).ToArray();
        // z is read (a device read-back) only when some layer is evaluated by its largest-z member.
        var z = blocks.Any(b => b.Conv.ArgmaxInEvaluation) ? Z() : null;
        for (int i = 0; i < blocks.Count; i++)
        {
            blocks[i].Conv.SampledMember = blocks[i].Conv.ArgmaxInEvaluation ? Array.IndexOf(z![i], z[i].Max()) : null;
        }

        return previous;
    }

    /// <summary>Puts back the samples <see cref="PinEvaluationSamples"/> replaced.</summary>
    public void RestoreSamples(int?[] samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        for (int i = 0; i < blocks.Count; i++)
        {
            blocks[i].Conv.SampledMember = samples[i];
        }
    }

    /// <summary>Makes every layer use its largest-z member alone in evaluation mode (see <see cref="MixedConv2d.ArgmaxInEvaluation"/>).</summary>
    public void UseArgmaxInEvaluation(bool on)
    {
        foreach (var block in blocks)
        {
            block.Conv.ArgmaxInEvaluation = on;
        }
    }

    /// <summary>Freezes every layer's z (null: back to softmax(alpha)).</summary>
    /// <exception cref="ArgumentException">Not one vector of member weights per layer.</exception>
    public void FreezeZ(IReadOnlyList<double[]>? z)
    {
        if (z is not null && (z.Count != blocks.Count || z.Any(v => v is null || v.Length != Spec.Members.Count)))
        {
            throw new ArgumentException($"Expected {blocks.Count} vectors of {Spec.Members.Count} weights.", nameof(z));
        }

        for (int i = 0; i < blocks.Count; i++)
        {
            if (z is null)
            {
                blocks[i].Conv.FrozenZ = null;
                continue;
            }

            // The layer copies the vector; this one is disposed here.
            using var vector = torch.tensor(z[i].Select(v => (float)v).ToArray());
            blocks[i].Conv.FrozenZ = vector;
        }
    }

    /// <summary>
    /// Per layer, the z mass on each element g of D4: <c>m(g) = sum of z_H over the members H that contain g</c>, eight
    /// numbers in the order e, r, r2, r3, f, rf, r2f, r3f (<see cref="MassElements"/>). m(e) is 1; m(g) is 1 exactly
    /// when every member with weight contains g.
    /// </summary>
    public double[][] ElementMass() => ElementMass(Spec.Members, Z());

    /// <summary>The element mass (see <see cref="ElementMass()"/>) of z per layer over the given members.</summary>
    /// <exception cref="ArgumentException">A z vector does not have one weight per member.</exception>
    public static double[][] ElementMass(IReadOnlyList<SymmetryGroup> members, IReadOnlyList<double[]> z)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(z);
        return z.Select(layer =>
        {
            CheckLength(members, layer);
            var mass = new double[8];
            for (int m = 0; m < members.Count; m++)
            {
                foreach (var g in members[m].Elements)
                {
                    mass[g.Index] += layer[m];
                }
            }

            return mass;
        }).ToArray();
    }

    /// <summary>
    /// The invariance group of a chain drawn from z: each layer's member drawn independently with probability z, the
    /// chain is exactly invariant to the intersection of its members (and to nothing more, for generic weights). Returns,
    /// for every group that can come out, the probability that the intersection is that group; a one-hot z gives its
    /// chain's intersection with probability 1. This is what z says about the symmetry of the whole network: a
    /// single layer's z does not, because one small group anywhere breaks the symmetry of every layer.
    /// </summary>
    /// <exception cref="ArgumentException">A z vector does not have one weight per member.</exception>
    public static IReadOnlyDictionary<SymmetryGroup, double> InvarianceDistribution(IReadOnlyList<SymmetryGroup> members, IReadOnlyList<double[]> z)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(z);
        // The running intersection takes at most the ten subgroups of D4 as values, so this is exact and cheap.
        var states = new Dictionary<SymmetryGroup, double> { [MixedLayout.TopOf(members)] = 1.0 };
        foreach (var layer in z)
        {
            CheckLength(members, layer);
            var next = new Dictionary<SymmetryGroup, double>();
            foreach (var (group, p) in states)
            {
                for (int m = 0; m < members.Count; m++)
                {
                    var meet = group.Intersect(members[m]);
                    next[meet] = next.GetValueOrDefault(meet) + (p * layer[m]);
                }
            }

            states = next;
        }

        return states;
    }

    /// <summary>
    /// z per layer with the members of one kind taken together: the four reflection groups D1V, D1D, D1H, D1A as
    /// "D1*" and the two Klein groups D2VH, D2DA as "D2*" (each summing their z); C1, C2, C4 and D4 keep their names.
    /// Classes come in the order of their first member.
    /// </summary>
    public (string Class, double Z)[][] ZByClass() => ZByClass(Spec.Members, Z());

    /// <summary>
    /// Sums z per kind of member (see <see cref="ZByClass()"/>). The groups taken together are isomorphic and are
    /// exchanged by a rotation through 45 degrees (an automorphism of D4); inside D4 itself only D1V with D1H and D1D
    /// with D1A are conjugate, while D2VH and D2DA are each normal. The helper answers "how much weight on a single
    /// reflection / on a Klein group", whichever axis.
    /// </summary>
    public static (string Class, double Z)[][] ZByClass(IReadOnlyList<SymmetryGroup> members, IReadOnlyList<double[]> z)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(z);
        var classes = members.Select(ClassOf).Distinct().ToArray();
        return z.Select(layer =>
        {
            CheckLength(members, layer);
            var sums = new double[classes.Length];
            for (int m = 0; m < members.Count; m++)
            {
                sums[Array.IndexOf(classes, ClassOf(members[m]))] += layer[m];
            }

            return classes.Select((c, i) => (c, sums[i])).ToArray();
        }).ToArray();
    }

    /// <summary>The kind of a member: "D1*" for the reflection groups, "D2*" for the Klein groups, else its name.</summary>
    public static string ClassOf(SymmetryGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return group.Order == 2 && group.HasReflections ? "D1*"
            : group.Order == 4 && group.HasReflections ? "D2*"
            : group.Name;
    }

    public override Tensor forward(Tensor input)
    {
        CheckImages(input);

        using var scope = NewDisposeScope();
        var x = input;
        foreach (var block in blocks)
        {
            x = block.call(x);
        }

        // B x F x |T| x H x W -> B x F: mean over each T-field's channels and space (T-invariant, z-free); with
        // MeanAndMax also the mean over each T-field's channels of their spatial maxima (B x 2F).
        // The mean head keeps its one reduction over [2, 3, 4] (InvariantHead.Pool reduces the group first, which
        // rounds otherwise), so mixed networks compute what they computed before the option existed, bit for bit.
        var features = Spec.Template.HeadPooling == HeadPooling.Mean ? x.mean([2, 3, 4]) : InvariantHead.Pool(x, Spec.Template.HeadPooling);
        if (hidden is not null)
        {
            features = nn.functional.elu(DeviceOps.BatchNorm(headNorm!, hidden.call(features)), alpha: 1.0);
        }

        return output.call(features).MoveToOuterDisposeScope();
    }

    private static void CheckLength(IReadOnlyList<SymmetryGroup> members, double[] layer)
    {
        if (layer is null || layer.Length != members.Count)
        {
            throw new ArgumentException($"Each z vector must have one weight per member ({members.Count}).", nameof(layer));
        }
    }
}
