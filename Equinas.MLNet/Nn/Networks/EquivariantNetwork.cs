#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Networks;

/// <summary>The two kinds of network the searches produce.</summary>
internal enum NetworkKind
{
    /// <summary>One symmetry group per layer (<see cref="GroupCnn"/>).</summary>
    Fixed,

    /// <summary>[G]-mixed layers with learned weights z (the differentiable search's network).</summary>
    Mixed,
}

/// <summary>
/// The contract every network of the engine keeps, whatever its kind: images <c>B x C x H x W</c> to logits
/// <c>B x classes</c>, exactly invariant to <see cref="InvariantGroup"/>, with its per-layer groups, its weight count, its
/// parameter groups for training, and a way to prepare for inference. The searches, the saved-model format and the
/// ML.NET model use networks only through it.
/// </summary>
internal abstract class EquivariantNetwork : EquivariantModule
{
    protected EquivariantNetwork(string name) : base(name)
    {
    }

    /// <summary>Which kind of network this is.</summary>
    public abstract NetworkKind Kind { get; }

    /// <summary>Widths (scalar channels), kernel, pooling, head and classes; for fixed networks also the groups.</summary>
    public abstract NetworkSpec Architecture { get; }

    /// <summary>The group of each conv layer (for mixed layers: the member with the largest z).</summary>
    public abstract IReadOnlyList<SymmetryGroup> LayerGroups { get; }

    /// <summary>The group the logits are exactly invariant to (in training and evaluation mode).</summary>
    public abstract SymmetryGroup InvariantGroup { get; }

    /// <summary>
    /// The device the network's parameters are on (the CPU for a network without parameters). Inputs are moved here per
    /// batch; every tensor a forward pass makes is made on the device of the tensors it reads.
    /// </summary>
    public Device Device => parameters().FirstOrDefault()?.device ?? TorchSharp.torch.CPU;

    /// <summary>Trainable scalars, architecture weights excluded.</summary>
    public long ParameterCount => WeightParameters().Sum(p => p.numel());

    /// <summary>The weights that the ordinary optimiser trains.</summary>
    public abstract IEnumerable<Parameter> WeightParameters();

    /// <summary>The architecture weights (the mixture logits of mixed layers); empty for fixed networks.</summary>
    public virtual IEnumerable<Parameter> ArchitectureParameters() => [];

    /// <summary>
    /// Switches to evaluation mode and builds whatever inference caches the network keeps, so that later forwards in
    /// evaluation mode (from any number of threads) only read them. Training mode drops the caches.
    /// </summary>
    public abstract void PrepareForInference();

    /// <inheritdoc/>
    public override SymmetryGroup? InputGroup => null;

    /// <inheritdoc/>
    public override SymmetryGroup? OutputGroup => null;

    /// <summary>For each element of <see cref="InvariantGroup"/>, the relative change of the logits when it moves the images.</summary>
    public IReadOnlyDictionary<D4Element, double> CheckInvariance(Tensor images) => CheckEquivariance(images, InvariantGroup);

    /// <summary>Throws unless <paramref name="input"/> is a batch of images with the architecture's channel count.</summary>
    protected void CheckImages(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != Architecture.InputChannels)
        {
            throw new ArgumentException(
                $"The network expects images of shape B x {Architecture.InputChannels} x H x W, but found [{string.Join(", ", input.shape)}].",
                nameof(input));
        }
    }
}
