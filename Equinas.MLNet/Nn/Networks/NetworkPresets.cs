#nullable enable
using Equinas.MLNet.Groups;

namespace Equinas.MLNet.Nn.Networks;

/// <summary>Ready-made architectures. Widths are in scalar channels, the same for every group.</summary>
internal static class NetworkPresets
{
    /// <summary>
    /// The paper's network (method note section 7): 8 conv layers with 5x5 kernels, 128 scalar channels in layers
    /// 1-4 and 256 in layers 5-8 (16 then 32 D4 fields), pooling after layers 3, 5 and 7, head 64 hidden units.
    /// About 1.07 GMAC per 28x28 image whatever the groups.
    /// </summary>
    public static NetworkSpec Paper(IReadOnlyList<SymmetryGroup>? groups = null, int classes = 10, int inputChannels = 1) =>
        NetworkSpec.FromChannels(
            inputChannels,
            groups ?? Enumerable.Repeat(SymmetryGroup.D4, 8).ToArray(),
            [128, 128, 128, 128, 256, 256, 256, 256],
            kernelSize: 5,
            poolAfter: [2, 4, 6],
            classes,
            headHidden: 64);

    /// <summary>
    /// A network sized for 2 CPU cores: 5 conv layers with 5x5 kernels, 16-32-32-64-64 scalar channels, pooling after
    /// layers 2 and 4, head 32 hidden units. About 30 MMAC per 28x28 image.
    /// </summary>
    public static NetworkSpec Small(IReadOnlyList<SymmetryGroup>? groups = null, int classes = 10, int inputChannels = 1) =>
        NetworkSpec.FromChannels(
            inputChannels,
            groups ?? Enumerable.Repeat(SymmetryGroup.D4, SmallChannels.Count).ToArray(),
            SmallChannels,
            SmallKernelSize,
            SmallPoolAfter,
            classes,
            SmallHeadHidden);

    /// <summary>The small preset's widths in scalar channels (the trainer's default).</summary>
    public static IReadOnlyList<int> SmallChannels { get; } = [16, 32, 32, 64, 64];

    /// <summary>The small preset's pooling: after layers 1 and 3.</summary>
    public static IReadOnlyList<int> SmallPoolAfter { get; } = [1, 3];

    /// <summary>The small preset's kernel size.</summary>
    public const int SmallKernelSize = 5;

    /// <summary>The small preset's head hidden units.</summary>
    public const int SmallHeadHidden = 32;

    /// <summary>The same group for every layer of a preset of <paramref name="layers"/> layers.</summary>
    public static IReadOnlyList<SymmetryGroup> Uniform(SymmetryGroup group, int layers) => Enumerable.Repeat(group, layers).ToArray();
}
