#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Mixed;

/// <summary>The architecture of a network of [G]-mixed layers.</summary>
/// <param name="Template">Widths (scalar channels), kernel, pooling, head and classes; its groups are ignored.</param>
/// <param name="Members">The groups every layer mixes (default in the searches: every subgroup of the top group).</param>
/// <param name="Initialization">How the architecture logits start.</param>
/// <param name="Temperature">z = softmax(alpha / temperature).</param>
internal sealed record MixedNetworkSpec(NetworkSpec Template, IReadOnlyList<SymmetryGroup> Members, AlphaInitialization Initialization = AlphaInitialization.Uniform, double Temperature = 1.0)
{
    /// <summary>The members' common subgroup, over which every feature map lives.</summary>
    public SymmetryGroup Base => SymmetryGroup.IntersectAll(Members);
}

/// <summary>One layer of a <see cref="MixedGroupCnn"/>: mixed convolution, mixed group-shared norm, ReLU, optional pooling.</summary>
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
        _pool = pool ? new EquivariantPool2d(spec.Base) : null;
        RegisterComponents();
    }

    public MixedConv2d Conv => conv;

    public MixedBatchNorm Norm => norm;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var z = conv.Z();
        var x = nn.functional.relu(norm.Forward(conv.Forward(input, training ? z : null), z));
        if (_pool is not null)
        {
            x = _pool.call(x);
        }

        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A network whose every layer is a [G]-mixed layer (EquiNAS_D's super-network), with the same layout as
/// <see cref="GroupCnn"/>: images to logits. The head pools each member group's fields (mean over the field's |G|
/// channels and space) and mixes the pooled features with the last layer's z, so that a one-hot z on G everywhere
/// gives a network exactly invariant to G.
/// </summary>
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
        if (template.HeadHidden > 0)
        {
            hidden = nn.Linear(inChannels, template.HeadHidden);
            headNorm = nn.BatchNorm1d(template.HeadHidden);
        }

        output = nn.Linear(template.HeadHidden > 0 ? template.HeadHidden : inChannels, template.Classes);
        RegisterComponents();
        foreach (var (_, tensor) in state_dict())
        {
            tensor.DetachFromDisposeScope();
        }
    }

    public MixedNetworkSpec Spec { get; }

    public IReadOnlyList<MixedBlock> Blocks => blocks.ToArray();

    /// <summary>Scalar channels of the last layer (the head's input width).</summary>
    public int LastChannels { get; }

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

    /// <summary>z per layer, as numbers.</summary>
    public double[][] Z()
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        return blocks.Select(b => b.Conv.Z().data<float>().Select(v => (double)v).ToArray()).ToArray();
    }

    /// <summary>The member with the largest z in each layer.</summary>
    public IReadOnlyList<SymmetryGroup> ArgmaxGroups() =>
        Z().Select(z => Spec.Members[Array.IndexOf(z, z.Max())]).ToArray();

    /// <summary>Freezes every layer's z (null: back to softmax(alpha)).</summary>
    public void FreezeZ(IReadOnlyList<double[]>? z)
    {
        for (int i = 0; i < blocks.Count; i++)
        {
            blocks[i].Conv.FrozenZ = z is null ? null : torch.tensor(z[i].Select(v => (float)v).ToArray());
        }
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

        // Spatial mean per scalar channel, then each member's field means mixed with the last layer's z.
        var pooled = x.mean([3, 4]).reshape(x.shape[0], LastChannels);
        var z = blocks[blocks.Count - 1].Conv.Z();
        Tensor? features = null;
        for (int m = 0; m < Spec.Members.Count; m++)
        {
            int order = Spec.Members[m].Order;
            var member = pooled.view(pooled.shape[0], -1, order).mean([2], keepdim: true).expand(-1, -1, order).reshape(pooled.shape[0], LastChannels) * z[m];
            features = features is null ? member : features + member;
        }

        if (hidden is not null)
        {
            features = nn.functional.elu(headNorm!.call(hidden.call(features!)), alpha: 1.0);
        }

        return output.call(features!).MoveToOuterDisposeScope();
    }
}
