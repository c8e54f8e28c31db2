#nullable enable
using System.Collections.Concurrent;
using Equinas.MLNet.Groups;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// Re-reads a feature map over G as a feature map over a subgroup H (paper eq. 3):
/// <c>f~_(c,s)(h) = f_c(h s)</c> for coset representatives s of H\G. The scalar channels are the same values in a new
/// order: <c>B x C x |G| x H x W</c> becomes <c>B x (C |R|) x |H| x H x W</c>, field-major then representative.
/// Used between layers whose groups shrink, and by the relaxation morphism.
/// </summary>
internal sealed class GroupRestriction : EquivariantModule
{
    private static readonly ConcurrentDictionary<(int From, int To), long[]> IndexCache = new();

    public GroupRestriction(SymmetryGroup from, SymmetryGroup to, int fields) : base(nameof(GroupRestriction))
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fields);
        if (!to.IsSubgroupOf(from))
        {
            throw new ArgumentException($"Cannot restrict a feature map over {from.Name} to {to.Name}: {to.Name} is not a subgroup of {from.Name}.", nameof(to));
        }

        From = from;
        To = to;
        Fields = fields;
    }

    public SymmetryGroup From { get; }

    public SymmetryGroup To { get; }

    public int Fields { get; }

    /// <summary>Fields of the output: <c>Fields x [G : H]</c>.</summary>
    public int OutputFields => Fields * From.IndexOf(To);

    public override SymmetryGroup? InputGroup => From;

    public override SymmetryGroup? OutputGroup => To;

    /// <summary>Entry <c>s |H| + i</c> is the position in G of <c>H.Elements[i] * R[s]</c>.</summary>
    public static long[] Index(SymmetryGroup from, SymmetryGroup to) =>
        IndexCache.GetOrAdd((from.Mask, to.Mask), _ =>
            from.CosetRepresentatives(to)
                .SelectMany(s => to.Elements.Select(h => (long)from.PositionOf(h * s)))
                .ToArray());

    public override Tensor forward(Tensor input)
    {
        CheckFeatureMap(input, From, Fields, nameof(GroupRestriction));
        return Functional(input, From, To);
    }

    /// <summary>The functional form of the restriction.</summary>
    public static Tensor Functional(Tensor input, SymmetryGroup from, SymmetryGroup to)
    {
        if (from == to)
        {
            return input.alias();
        }

        using var scope = NewDisposeScope();
        var index = torch.tensor(Index(from, to), device: input.device);
        long b = input.shape[0], c = input.shape[1], h = input.shape[3], w = input.shape[4];
        return DeviceOps.IndexSelect(input, 2, index)
            .view(b, c * from.IndexOf(to), to.Order, h, w)
            .MoveToOuterDisposeScope();
    }
}
