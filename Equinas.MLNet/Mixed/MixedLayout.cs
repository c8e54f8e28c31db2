#nullable enable
using System.Collections.Concurrent;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Mixed;

/// <summary>
/// The one channel layout that every member of a mixed layer reads and writes (the paper's "reordering of the output
/// and input channels of the expanded filter", end of section 3.1), and the gather indices that expand a member's
/// kernel directly into it.
/// </summary>
/// <remarks>
/// <para>
/// A mixed feature map is a feature map over the TOP group T (the smallest subgroup of D4 containing every member):
/// <c>B x F x |T| x H x W</c>, scalar channel <c>j = c |T| + i</c> holding T-field c at the element
/// <c>T.Elements[i]</c>. A member H &lt;= T sees the same channels as <c>F [T : H]</c> fields over H, exactly as the
/// restriction T -> H (<see cref="GroupRestriction"/>, paper eq. 3) reads them: its field <c>c [T : H] + s</c> is the
/// right coset <c>H t_s</c> of T-field c (t_s the s-th coset representative), its element h sitting at T-element
/// <c>h t_s</c>. These channels are not consecutive (H's fields interleave inside a T-block); the permutation is folded
/// into the gather index, so it costs nothing at run time.
/// </para>
/// <para>
/// Consequence: every element g of T acts on every member's channels by ONE permutation, the T-action
/// <c>(g . f)_c(t, u) = f_c(g^-1 t, g^-1 u)</c>, and for g in H it is H's own action on H's fields. A member layer that
/// is H-equivariant as an H-layer is therefore H-equivariant on the common layout, and a chain of members
/// H1, H2, ... is equivariant to their intersection, as the fixed network (which restricts between layers) is.
/// </para>
/// </remarks>
internal static class MixedLayout
{
    // Lazy: a race between two first uses builds the tensor once (a discarded duplicate would leak native memory).
    private static readonly ConcurrentDictionary<(int Member, int Top, int Kernel, bool Lifting, int Inputs, DeviceType Type, int DeviceIndex), Lazy<Tensor>> Cache = new();

    /// <summary>The top group of a member set: the smallest subgroup of D4 containing every member.</summary>
    public static SymmetryGroup TopOf(IEnumerable<SymmetryGroup> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        return members.Aggregate(SymmetryGroup.C1, (a, b) => a.Join(b));
    }

    /// <summary>
    /// For each position i of T's axis, the decomposition <c>T.Elements[i] = h t_s</c> with h in H and t_s the s-th
    /// representative of H\T (<see cref="SymmetryGroup.CosetRepresentatives"/>): (s, position of h in H).
    /// </summary>
    public static (int Coset, int Position)[] Decompose(SymmetryGroup member, SymmetryGroup top)
    {
        ArgumentNullException.ThrowIfNull(member);
        ArgumentNullException.ThrowIfNull(top);
        var representatives = top.CosetRepresentatives(member);
        var result = new (int, int)[top.Order];
        for (int s = 0; s < representatives.Count; s++)
        {
            foreach (var h in member.Elements)
            {
                result[top.PositionOf(h * representatives[s])] = (s, member.PositionOf(h));
            }
        }

        return result;
    }

    /// <summary>
    /// For a member H with <paramref name="fields"/> T-fields, the common-layout scalar channel of each of H's scalar
    /// channels: entry <c>(c [T:H] + s) |H| + i</c> is the channel of H-field <c>c [T:H] + s</c> at H's i-th element.
    /// Reading a common-layout map at these channels gives the restriction T -> H.
    /// </summary>
    public static long[] MemberChannels(SymmetryGroup member, SymmetryGroup top, int fields)
    {
        ArgumentNullException.ThrowIfNull(member);
        ArgumentNullException.ThrowIfNull(top);
        var within = GroupRestriction.Index(top, member); // s |H| + i -> position in T of h_i t_s
        var channels = new long[fields * top.Order];
        for (int c = 0; c < fields; c++)
        {
            for (int j = 0; j < within.Length; j++)
            {
                channels[(c * top.Order) + j] = (c * top.Order) + within[j];
            }
        }

        return channels;
    }

    /// <summary>
    /// Group convolution of member H on the common layout. The kernel <c>(F_out [T:H]) x (F_in [T:H]) x |H| x k x k</c>
    /// (H-fields numbered <c>c [T:H] + s</c>), viewed as <c>F_out x L</c> (each row the kernels of one output T-field),
    /// is gathered along its second dimension into <c>F_out x (|T| F_in |T| k k)</c>, which is the conv2d filter
    /// <c>(F_out |T|) x (F_in |T|) x k x k</c> with no further copy. Entry <c>((t F_in + c) |T| + t') k k + p</c> reads
    /// <c>psi_(s, (c, s'))(g^-1 h, g^-1 u_p)</c> for <c>t = g t_s</c> and <c>t' = h t_s'</c>: the fixed H layer's
    /// block (g, h) (paper eq. 1) at the channels where the layout puts H's fields.
    /// </summary>
    public static long[] GroupIndex(SymmetryGroup member, SymmetryGroup top, int kernelSize, int inFields)
    {
        int kk = kernelSize * kernelSize, n = member.Order, nt = top.Order, r = nt / n;
        var parts = Decompose(member, top);
        long rowStride = (long)inFields * r * n * kk; // one output H-field of the row: F_in [T:H] |H| k k
        var index = new long[(long)nt * inFields * nt * kk];
        for (int t = 0; t < nt; t++)
        {
            var (s, gi) = parts[t];
            var g = member.Elements[gi];
            var spatial = PixelAction.SourceIndices(g, kernelSize, kernelSize);
            var gInverse = g.Inverse();
            for (int c = 0; c < inFields; c++)
            {
                for (int t2 = 0; t2 < nt; t2++)
                {
                    var (s2, hi) = parts[t2];
                    int source = member.PositionOf(gInverse * member.Elements[hi]);
                    long offset = (s * rowStride) + ((((long)c * r) + s2) * n * kk) + ((long)source * kk);
                    long at = ((((long)t * inFields) + c) * nt + t2) * kk;
                    for (int p = 0; p < kk; p++)
                    {
                        index[at + p] = offset + spatial[p];
                    }
                }
            }
        }

        return index;
    }

    /// <summary>
    /// Lifting convolution of member H on the common layout: the kernel <c>(F_out [T:H]) x C x k x k</c> viewed as
    /// <c>F_out x ([T:H] C k k)</c> is gathered into <c>F_out x (|T| C k k)</c>, the filter <c>(F_out |T|) x C x k x k</c>;
    /// entry <c>(t C + c) k k + p</c> reads <c>psi_(s, c)(g^-1 u_p)</c> for <c>t = g t_s</c> (paper eq. 2).
    /// </summary>
    public static long[] LiftingIndex(SymmetryGroup member, SymmetryGroup top, int kernelSize, int inChannels)
    {
        int kk = kernelSize * kernelSize, nt = top.Order;
        var parts = Decompose(member, top);
        long rowStride = (long)inChannels * kk;
        var index = new long[(long)nt * inChannels * kk];
        for (int t = 0; t < nt; t++)
        {
            var (s, gi) = parts[t];
            var spatial = PixelAction.SourceIndices(member.Elements[gi], kernelSize, kernelSize);
            for (int c = 0; c < inChannels; c++)
            {
                long at = (((long)t * inChannels) + c) * kk;
                for (int p = 0; p < kk; p++)
                {
                    index[at + p] = (s * rowStride) + ((long)c * kk) + spatial[p];
                }
            }
        }

        return index;
    }

    /// <summary>
    /// The gather index as a tensor on <paramref name="device"/>, cached (it depends only on the groups, the kernel
    /// size, the input width and the device) and owned by no dispose scope. <paramref name="inputs"/> is the number of
    /// input T-fields of a group layer, or of image channels of a lifting layer.
    /// </summary>
    public static Tensor Get(SymmetryGroup member, SymmetryGroup top, int kernelSize, bool lifting, int inputs, Device device) =>
        Cache.GetOrAdd(
            (member.Mask, top.Mask, kernelSize, lifting, inputs, device.type, device.index),
            key => new Lazy<Tensor>(() =>
            {
                var values = key.Lifting
                    ? LiftingIndex(member, top, key.Kernel, key.Inputs)
                    : GroupIndex(member, top, key.Kernel, key.Inputs);
                var tensor = torch.tensor(values, device: device);
                tensor.DetachFromDisposeScope();
                return tensor;
            })).Value;

    /// <summary>
    /// Expands member H's kernel into a conv2d filter on the common layout: <c>(F_out |T|) x (F_in |T|) x k x k</c> for a
    /// group layer, <c>(F_out |T|) x C x k x k</c> for a lifting layer. One gather, linear in the kernel.
    /// </summary>
    public static Tensor Expand(Tensor kernel, SymmetryGroup member, SymmetryGroup top, bool lifting, int inputs)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        int r = top.Order / member.Order;
        long outFields = kernel.shape[0] / r;
        long k = kernel.shape[^1];
        var index = Get(member, top, (int)k, lifting, inputs, kernel.device);
        long inWidth = lifting ? inputs : (long)inputs * top.Order;
        return DeviceOps.IndexSelect(kernel.reshape(outFields, -1), 1, index)
            .view(outFields * top.Order, inWidth, k, k);
    }
}
