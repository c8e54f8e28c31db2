#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;

namespace Equinas.MLNet.Nn.Networks;

/// <summary>One convolution layer of a G-CNN: its group and its width in fields (each field is |G| scalar channels).</summary>
/// <param name="Group">The layer's symmetry group.</param>
/// <param name="Fields">Output fields; the layer has <c>Fields x |Group|</c> scalar channels.</param>
internal sealed record LayerSpec(SymmetryGroup Group, int Fields)
{
    /// <summary>Scalar channels: fields times the group order.</summary>
    public int Channels => Fields * Group.Order;
}

/// <summary>
/// The architecture of a G-CNN: conv layers (the first lifts the image), each followed by group-shared batch norm and
/// ReLU, exact stride-2 pooling after the listed layers, and an invariant head. Each layer's group must be a subgroup of
/// the previous layer's; between layers whose groups differ the feature map is restricted (paper eq. 3), which keeps
/// the scalar channel count.
/// </summary>
internal sealed record NetworkSpec
{
    public NetworkSpec(int inputChannels, IReadOnlyList<LayerSpec> layers, int kernelSize, IReadOnlyList<int> poolAfter, int classes, int headHidden)
    {
        InputChannels = inputChannels;
        Layers = layers ?? throw new ArgumentNullException(nameof(layers));
        KernelSize = kernelSize;
        PoolAfter = poolAfter ?? throw new ArgumentNullException(nameof(poolAfter));
        Classes = classes;
        HeadHidden = headHidden;
        Validate();
    }

    /// <summary>Channels of the input image (1 for grey, 3 for RGB).</summary>
    public int InputChannels { get; }

    /// <summary>The conv layers in order.</summary>
    public IReadOnlyList<LayerSpec> Layers { get; }

    /// <summary>Odd kernel side of every conv layer.</summary>
    public int KernelSize { get; }

    /// <summary>0-based indices of the layers after which a stride-2 pool halves the resolution.</summary>
    public IReadOnlyList<int> PoolAfter { get; }

    /// <summary>Number of classes of the head.</summary>
    public int Classes { get; }

    /// <summary>Hidden width of the head (0: a single linear layer).</summary>
    public int HeadHidden { get; }

    /// <summary>The invariant features the head reads from each field of the last layer (default: the mean, as the paper).</summary>
    public HeadPooling HeadPooling { get; init; } = HeadPooling.Mean;

    /// <summary>The per-layer groups.</summary>
    public IReadOnlyList<SymmetryGroup> Groups => Layers.Select(l => l.Group).ToArray();

    /// <summary>A short description such as "D4-D4-C4-C2 [128,128,256,256]".</summary>
    public string Describe() =>
        $"{string.Join("-", Layers.Select(l => l.Group.Name))} [{string.Join(",", Layers.Select(l => l.Channels))}]";

    /// <summary>
    /// Builds a spec with a fixed number of scalar channels per layer (the paper's baselines: the same width whatever
    /// the group). Each width must be divisible by its layer's group order.
    /// </summary>
    public static NetworkSpec FromChannels(
        int inputChannels, IReadOnlyList<SymmetryGroup> groups, IReadOnlyList<int> channels, int kernelSize,
        IReadOnlyList<int> poolAfter, int classes, int headHidden)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(channels);
        if (groups.Count != channels.Count)
        {
            throw new ArgumentException($"Expected one group per layer: {channels.Count} channel widths but {groups.Count} groups.", nameof(groups));
        }

        var layers = new LayerSpec[groups.Count];
        for (int i = 0; i < layers.Length; i++)
        {
            if (channels[i] <= 0 || channels[i] % groups[i].Order != 0)
            {
                throw new ArgumentException(
                    $"Layer {i}: {channels[i]} scalar channels cannot be split into fields over {groups[i].Name} (order {groups[i].Order}); use a positive multiple of {groups[i].Order}.",
                    nameof(channels));
            }

            layers[i] = new LayerSpec(groups[i], channels[i] / groups[i].Order);
        }

        return new NetworkSpec(inputChannels, layers, kernelSize, poolAfter, classes, headHidden);
    }

    /// <summary>
    /// Multiply-accumulates of the conv layers for one image of the given size (the head is negligible): for each
    /// layer, input scalar channels x output scalar channels x k^2 x output pixels. Group layers of the same scalar width
    /// cost the same whatever the group, because the expanded filter is an ordinary dense conv2d filter.
    /// </summary>
    public long MultiplyAccumulates(int height, int width)
    {
        long total = 0;
        long inChannels = InputChannels;
        long h = height, w = width;
        for (int i = 0; i < Layers.Count; i++)
        {
            total += inChannels * Layers[i].Channels * KernelSize * KernelSize * h * w;
            inChannels = Layers[i].Channels;
            if (PoolAfter.Contains(i))
            {
                h = (h + 1) / 2;
                w = (w + 1) / 2;
            }
        }

        return total;
    }

    /// <summary>The same widths in scalar channels with other per-layer groups.</summary>
    public NetworkSpec WithGroups(IReadOnlyList<SymmetryGroup> groups) =>
        FromChannels(InputChannels, groups, Layers.Select(l => l.Channels).ToArray(), KernelSize, PoolAfter, Classes, HeadHidden) with { HeadPooling = HeadPooling };

    /// <summary>The same architecture with other layers (validated like every spec: there is no unchecked copy).</summary>
    public NetworkSpec WithLayers(IReadOnlyList<LayerSpec> layers) =>
        new(InputChannels, layers, KernelSize, PoolAfter, Classes, HeadHidden) { HeadPooling = HeadPooling };

    private void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(InputChannels, nameof(InputChannels));
        ArgumentOutOfRangeException.ThrowIfLessThan(Classes, 2, nameof(Classes));
        ArgumentOutOfRangeException.ThrowIfNegative(HeadHidden, nameof(HeadHidden));
        if (Layers.Count == 0)
        {
            throw new ArgumentException("A network needs at least one conv layer.", nameof(Layers));
        }

        if (KernelSize <= 0 || KernelSize % 2 == 0)
        {
            throw new ArgumentException($"Kernel size must be a positive odd number for exact equivariance; found {KernelSize}.", nameof(KernelSize));
        }

        for (int i = 0; i < Layers.Count; i++)
        {
            if (Layers[i].Fields <= 0)
            {
                throw new ArgumentException($"Layer {i} must have at least one field; found {Layers[i].Fields}.", nameof(Layers));
            }

            if (i > 0 && !Layers[i].Group.IsSubgroupOf(Layers[i - 1].Group))
            {
                throw new ArgumentException(
                    $"Layer {i} has group {Layers[i].Group.Name}, which is not a subgroup of layer {i - 1}'s group {Layers[i - 1].Group.Name}; groups may only shrink with depth.",
                    nameof(Layers));
            }
        }

        foreach (int p in PoolAfter)
        {
            if (p < 0 || p >= Layers.Count)
            {
                throw new ArgumentException($"Pooling after layer {p} is outside the {Layers.Count} layers (0-based).", nameof(PoolAfter));
            }
        }

        if (PoolAfter.Distinct().Count() != PoolAfter.Count)
        {
            throw new ArgumentException("Each layer can be followed by at most one pooling.", nameof(PoolAfter));
        }
    }
}
