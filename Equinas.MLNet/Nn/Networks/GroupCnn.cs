#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Networks;

/// <summary>
/// One conv layer of a <see cref="GroupCnn"/>: an optional restriction from the previous layer's group, the (lifting or
/// group) convolution, group-shared batch norm, ReLU and optional exact pooling.
/// </summary>
internal sealed class GroupCnnBlock : EquivariantModule
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly EquivariantModule conv;
    private readonly GroupBatchNorm norm;
#pragma warning restore IDE1006
    private readonly GroupRestriction? _restriction;
    private readonly EquivariantPool2d? _pool;

    public GroupCnnBlock(SymmetryGroup? previousGroup, int inFields, LayerSpec layer, int kernelSize, bool pool)
        : base(nameof(GroupCnnBlock))
    {
        ArgumentNullException.ThrowIfNull(layer);
        PreviousGroup = previousGroup;
        Layer = layer;
        if (previousGroup is null)
        {
            conv = new LiftingConv2d(inFields, layer.Fields, layer.Group, kernelSize);
        }
        else
        {
            int convIn = inFields;
            if (previousGroup != layer.Group)
            {
                _restriction = new GroupRestriction(previousGroup, layer.Group, inFields);
                convIn = _restriction.OutputFields;
            }

            conv = new GroupConv2d(convIn, layer.Fields, layer.Group, kernelSize);
        }

        norm = new GroupBatchNorm(layer.Fields, layer.Group);
        _pool = pool ? new EquivariantPool2d(layer.Group) : null;
        RegisterComponents();
    }

    public SymmetryGroup? PreviousGroup { get; }

    public LayerSpec Layer { get; }

    public EquivariantModule Conv => conv;

    public GroupBatchNorm Norm => norm;

    public bool Pools => _pool is not null;

    /// <summary>The pooling after the block, or null.</summary>
    public EquivariantPool2d? Pool => _pool;

    public override SymmetryGroup? InputGroup => PreviousGroup;

    public override SymmetryGroup? OutputGroup => Layer.Group;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = _restriction is null ? input : _restriction.call(input);
        x = DeviceOps.Relu(norm.call(conv.call(x)));
        if (_pool is not null)
        {
            x = _pool.call(x);
        }

        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A group-equivariant CNN built from a <see cref="NetworkSpec"/>: images <c>B x C x H x W</c> to logits
/// <c>B x classes</c>, invariant to the last layer's group (exactly, in training and evaluation mode, for every input
/// size: convolutions use odd kernels with "same" padding and pooling picks exact windows).
/// </summary>
internal sealed class GroupCnn : EquivariantNetwork
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly ModuleList<GroupCnnBlock> blocks;
    private readonly InvariantHead head;
#pragma warning restore IDE1006

    public GroupCnn(NetworkSpec spec) : base(nameof(GroupCnn))
    {
        Spec = spec ?? throw new ArgumentNullException(nameof(spec));

        // Build inside a dispose scope so that the temporaries of weight initialisation are freed now rather than by
        // the finalizer; the weights and buffers themselves are detached from it, and from any scope the caller has
        // open: the network owns them.
        using var scope = NewDisposeScope();
        blocks = new ModuleList<GroupCnnBlock>();
        SymmetryGroup? previous = null;
        int fields = spec.InputChannels;
        for (int i = 0; i < spec.Layers.Count; i++)
        {
            var layer = spec.Layers[i];
            blocks.Add(new GroupCnnBlock(previous, fields, layer, spec.KernelSize, spec.PoolAfter.Contains(i)));
            previous = layer.Group;
            fields = layer.Fields;
        }

        head = new InvariantHead(fields, previous!, spec.HeadHidden, spec.Classes, spec.HeadPooling);
        RegisterComponents();
        foreach (var (_, tensor) in state_dict())
        {
            tensor.DetachFromDisposeScope();
        }

        Interlocked.Increment(ref s_liveInstances);
    }

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Interlocked.Decrement(ref s_liveInstances);
        }

        base.Dispose(disposing);
    }

    private static long s_liveInstances;
    private int _disposed;

    /// <summary>
    /// Networks constructed and not yet disposed in this process: a diagnostic for leak tests (TorchSharp's own tensor
    /// counter also counts wrappers whose native tensor has moved into a parameter, so it cannot serve).
    /// </summary>
    public static long LiveInstances => Interlocked.Read(ref s_liveInstances);

    public NetworkSpec Spec { get; }

    public IReadOnlyList<GroupCnnBlock> Blocks => blocks.ToArray();

    public InvariantHead Head => head;

    /// <inheritdoc/>
    public override NetworkKind Kind => NetworkKind.Fixed;

    /// <inheritdoc/>
    public override NetworkSpec Architecture => Spec;

    /// <inheritdoc/>
    public override IReadOnlyList<SymmetryGroup> LayerGroups => Spec.Groups;

    /// <inheritdoc/>
    public override SymmetryGroup InvariantGroup => Spec.Layers[^1].Group;

    /// <inheritdoc/>
    public override IEnumerable<Parameter> WeightParameters() => parameters();

    /// <summary>A deep copy: the same architecture, weights, buffers and training/evaluation mode.</summary>
    public GroupCnn Clone()
    {
        var copy = SeededInit.Overwritten(() => new GroupCnn(Spec), Device);
        using (torch.no_grad())
        {
            var source = state_dict();
            foreach (var (name, tensor) in copy.state_dict())
            {
                tensor.copy_(source[name]);
            }
        }

        if (training)
        {
            copy.train();
        }
        else
        {
            copy.eval();
        }

        return copy;
    }

    /// <summary>
    /// Switches to evaluation mode and makes every convolution keep its expanded filter (see
    /// <see cref="ExpandedConvolution.FreezeForInference"/>), for models that only predict. Training mode drops the filters.
    /// </summary>
    public override void PrepareForInference()
    {
        eval();
        foreach (var conv in modules().OfType<ExpandedConvolution>())
        {
            conv.FreezeForInference();
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

        return head.call(x).MoveToOuterDisposeScope();
    }
}
