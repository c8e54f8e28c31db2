#nullable enable
using System.Collections.Concurrent;
using Equinas.MLNet.Groups;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// Gather indices that expand a learnable kernel into an ordinary conv2d filter (method note section 2). They depend
/// only on the group, the kernel size and the device, so they are computed once and shared.
/// </summary>
internal static class FilterIndex
{
    private static readonly ConcurrentDictionary<(int Mask, int Kernel, bool Lifting, int LayoutMask, DeviceType Type, int DeviceIndex), Tensor> Cache = new();

    /// <summary>
    /// Lifting: entry <c>[g, p]</c> (flattened) is the kernel position that position p of the copy for element g
    /// reads: <c>(g . psi)(u) = psi(g^-1 u)</c>. Length |G| k k, indexing a kernel flattened to k k.
    /// </summary>
    public static long[] Lifting(SymmetryGroup group, int kernelSize, SymmetryGroup? layout = null)
    {
        int kk = kernelSize * kernelSize;
        var order = Layout(group, layout);
        var index = new long[group.Order * kk];
        for (int a = 0; a < group.Order; a++)
        {
            var spatial = PixelAction.SourceIndices(group.Elements[(int)order[a]], kernelSize, kernelSize);
            for (int p = 0; p < kk; p++)
            {
                index[(a * kk) + p] = spatial[p];
            }
        }

        return index;
    }

    /// <summary>
    /// The order in which a field's |G| channels are laid out: G's own element order, or, for a subgroup H given as
    /// <paramref name="layout"/>, the order of the restriction to H (eq. 3: position <c>s |H| + i</c> holds the element
    /// <c>h_i s</c>), so that the expanded filter acts directly on feature maps over H.
    /// </summary>
    public static long[] Layout(SymmetryGroup group, SymmetryGroup? layout) =>
        layout is null || layout == group
            ? Enumerable.Range(0, group.Order).Select(i => (long)i).ToArray()
            : GroupRestriction.Index(group, layout);

    /// <summary>
    /// Group convolution: entry <c>[g, h, p]</c> (flattened) reads <c>psi(g^-1 h, g^-1 u)</c>, indexing a kernel
    /// flattened over its trailing <c>|G| x k x k</c> dimensions. Length |G|^2 k k.
    /// </summary>
    public static long[] Group(SymmetryGroup group, int kernelSize, SymmetryGroup? layout = null)
    {
        int kk = kernelSize * kernelSize;
        int n = group.Order;
        var order = Layout(group, layout);
        var index = new long[n * n * kk];
        for (int gi = 0; gi < n; gi++)
        {
            var g = group.Elements[(int)order[gi]];
            var spatial = PixelAction.SourceIndices(g, kernelSize, kernelSize);
            var gInverse = g.Inverse();
            for (int hi = 0; hi < n; hi++)
            {
                int source = group.PositionOf(gInverse * group.Elements[(int)order[hi]]);
                for (int p = 0; p < kk; p++)
                {
                    index[(((gi * n) + hi) * kk) + p] = (source * kk) + spatial[p];
                }
            }
        }

        return index;
    }

    /// <summary>
    /// The index as a tensor on <paramref name="device"/>, cached and owned by no dispose scope. With a
    /// <paramref name="layout"/> subgroup, each field's channels come out in the order of the restriction to it.
    /// </summary>
    public static Tensor Get(SymmetryGroup group, int kernelSize, bool lifting, Device device, SymmetryGroup? layout = null) =>
        Cache.GetOrAdd((group.Mask, kernelSize, lifting, (layout ?? group).Mask, device.type, device.index), key =>
        {
            var values = key.Lifting ? Lifting(group, key.Kernel, layout) : Group(group, key.Kernel, layout);
            var tensor = torch.tensor(values, device: device);
            tensor.DetachFromDisposeScope();
            return tensor;
        });
}
