#nullable enable
using System.Diagnostics.CodeAnalysis;

namespace Equinas.MLNet.Groups;

/// <summary>
/// One of the ten subgroups of D4 (see <see cref="D4Element"/> for the conventions). Instances are unique, so
/// reference equality is group equality; obtain them from the static members, <see cref="All"/> or <see cref="Parse"/>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>Name</term><description>Elements and meaning</description></listheader>
/// <item><term>C1</term><description>{e}: no symmetry (an ordinary CNN).</description></item>
/// <item><term>C2</term><description>{e, r^2}: rotation by 180 degrees.</description></item>
/// <item><term>C4</term><description>{e, r, r^2, r^3}: all four rotations.</description></item>
/// <item><term>D1V</term><description>{e, f}: reflection about the vertical axis (left-right mirror).</description></item>
/// <item><term>D1D</term><description>{e, rf}: reflection about the main diagonal (transpose).</description></item>
/// <item><term>D1H</term><description>{e, r^2 f}: reflection about the horizontal axis (up-down mirror).</description></item>
/// <item><term>D1A</term><description>{e, r^3 f}: reflection about the anti-diagonal.</description></item>
/// <item><term>D2VH</term><description>{e, r^2, f, r^2 f}: both axis-parallel reflections and the half turn.</description></item>
/// <item><term>D2DA</term><description>{e, r^2, rf, r^3 f}: both diagonal reflections and the half turn.</description></item>
/// <item><term>D4</term><description>All eight symmetries of the square grid.</description></item>
/// </list>
/// <para><see cref="Parse"/> also accepts "D1" for D1V and "D2" for D2VH (the single reflection axis of the
/// EquiNAS authors' code) and ignores case.</para>
/// </remarks>
internal sealed class SymmetryGroup
{
    private readonly int[] _positionOf; // D4 index -> position in this group's element order, or -1.

    private SymmetryGroup(string name, int mask, string description)
    {
        Name = name;
        Mask = mask;
        Description = description;
        Elements = D4Element.All.Where(g => (mask & (1 << g.Index)) != 0).ToArray();
        _positionOf = new int[8];
        Array.Fill(_positionOf, -1);
        for (int i = 0; i < Elements.Count; i++)
        {
            _positionOf[Elements[i].Index] = i;
        }
    }

    /// <summary>The canonical name, e.g. "C4" or "D1V".</summary>
    public string Name { get; }

    /// <summary>A one-line description of the symmetries the group contains.</summary>
    public string Description { get; }

    /// <summary>Bit <c>i</c> is set when the element with index <c>i</c> belongs to the group.</summary>
    public int Mask { get; }

    /// <summary>The elements in increasing <see cref="D4Element.Index"/> order: the order of every group axis.</summary>
    public IReadOnlyList<D4Element> Elements { get; }

    /// <summary>The number of elements.</summary>
    public int Order => Elements.Count;

    /// <summary>Whether the group contains at least one reflection.</summary>
    public bool HasReflections => Elements.Any(g => g.Flip);

    /// <summary>The trivial group {e}.</summary>
    public static SymmetryGroup C1 { get; } = new("C1", 0b0000_0001, "no symmetry");

    /// <summary>The half-turn group {e, r^2}.</summary>
    public static SymmetryGroup C2 { get; } = new("C2", 0b0000_0101, "rotation by 180 degrees");

    /// <summary>The rotation group {e, r, r^2, r^3}.</summary>
    public static SymmetryGroup C4 { get; } = new("C4", 0b0000_1111, "rotations by multiples of 90 degrees");

    /// <summary>{e, f}: reflection about the vertical axis.</summary>
    public static SymmetryGroup D1V { get; } = new("D1V", 0b0001_0001, "reflection about the vertical axis (left-right mirror)");

    /// <summary>{e, rf}: reflection about the main diagonal.</summary>
    public static SymmetryGroup D1D { get; } = new("D1D", 0b0010_0001, "reflection about the main diagonal (transpose)");

    /// <summary>{e, r^2 f}: reflection about the horizontal axis.</summary>
    public static SymmetryGroup D1H { get; } = new("D1H", 0b0100_0001, "reflection about the horizontal axis (up-down mirror)");

    /// <summary>{e, r^3 f}: reflection about the anti-diagonal.</summary>
    public static SymmetryGroup D1A { get; } = new("D1A", 0b1000_0001, "reflection about the anti-diagonal");

    /// <summary>{e, r^2, f, r^2 f}: the Klein group of the two axis-parallel reflections.</summary>
    public static SymmetryGroup D2VH { get; } = new("D2VH", 0b0101_0101, "reflections about the vertical and horizontal axes, rotation by 180 degrees");

    /// <summary>{e, r^2, rf, r^3 f}: the Klein group of the two diagonal reflections.</summary>
    public static SymmetryGroup D2DA { get; } = new("D2DA", 0b1010_0101, "reflections about both diagonals, rotation by 180 degrees");

    /// <summary>The whole dihedral group of the square.</summary>
    public static SymmetryGroup D4 { get; } = new("D4", 0b1111_1111, "all rotations by multiples of 90 degrees and all four reflections");

    /// <summary>The ten subgroups of D4, ordered by order, then by name as listed in the remarks.</summary>
    public static IReadOnlyList<SymmetryGroup> All { get; } = [C1, C2, D1V, D1D, D1H, D1A, C4, D2VH, D2DA, D4];

    /// <summary>Parses a group name (case-insensitive; "D1" means D1V and "D2" means D2VH).</summary>
    /// <exception cref="ArgumentException">The name is not a subgroup of D4; the message lists the valid names.</exception>
    public static SymmetryGroup Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(name, out var group)
            ? group
            : throw new ArgumentException(
                $"Unknown symmetry group '{name}'. Expected one of {string.Join(", ", All.Select(g => g.Name))} (or the aliases D1 = D1V, D2 = D2VH).",
                nameof(name));
    }

    /// <summary>Parses a group name; returns false instead of throwing.</summary>
    public static bool TryParse(string? name, [NotNullWhen(true)] out SymmetryGroup? group)
    {
        string key = (name ?? string.Empty).Trim().ToUpperInvariant();
        key = key switch { "D1" => "D1V", "D2" => "D2VH", _ => key };
        group = All.FirstOrDefault(g => g.Name == key);
        return group is not null;
    }

    /// <summary>The subgroup whose element set is the given mask.</summary>
    /// <exception cref="ArgumentException">The mask is not the element set of a subgroup.</exception>
    public static SymmetryGroup FromMask(int mask) =>
        All.FirstOrDefault(g => g.Mask == mask)
        ?? throw new ArgumentException($"The element set 0x{mask:x2} is not a subgroup of D4.", nameof(mask));

    /// <summary>Whether the element belongs to this group.</summary>
    public bool Contains(D4Element element) => (Mask & (1 << element.Index)) != 0;

    /// <summary>The position of an element on this group's axis (its rank in <see cref="Elements"/>).</summary>
    /// <exception cref="ArgumentException">The element is not in this group.</exception>
    public int PositionOf(D4Element element) =>
        _positionOf[element.Index] is var p and >= 0
            ? p
            : throw new ArgumentException($"Element {element} is not in group {Name}.", nameof(element));

    /// <summary>Whether this group is a subgroup of <paramref name="other"/> (every group is a subgroup of itself).</summary>
    public bool IsSubgroupOf(SymmetryGroup other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return (Mask & other.Mask) == Mask;
    }

    /// <summary>The intersection of two subgroups (always a subgroup).</summary>
    public SymmetryGroup Intersect(SymmetryGroup other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return FromMask(Mask & other.Mask);
    }

    /// <summary>The smallest subgroup containing both groups.</summary>
    public SymmetryGroup Join(SymmetryGroup other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return All.First(g => IsSubgroupOf(g) && other.IsSubgroupOf(g));
    }

    /// <summary>The intersection of several subgroups (D4 for an empty sequence).</summary>
    public static SymmetryGroup IntersectAll(IEnumerable<SymmetryGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        return groups.Aggregate(D4, (a, b) => a.Intersect(b));
    }

    /// <summary>The proper subgroups of this group that are maximal (no proper subgroup lies strictly between).</summary>
    public IReadOnlyList<SymmetryGroup> MaximalSubgroups() =>
        All.Where(h => h != this && h.IsSubgroupOf(this)
                       && !All.Any(k => k != h && k != this && h.IsSubgroupOf(k) && k.IsSubgroupOf(this)))
           .ToArray();

    /// <summary>All subgroups of this group, itself included, in the order of <see cref="All"/>.</summary>
    public IReadOnlyList<SymmetryGroup> Subgroups() => All.Where(h => h.IsSubgroupOf(this)).ToArray();

    /// <summary>
    /// A system of representatives of the right cosets H\G = { H t } of a subgroup H in this group G: for each coset,
    /// its element of smallest index, in increasing index order (so the identity comes first). Every g in G is
    /// uniquely h t with h in H and t a representative; this is the R of the relaxation morphism (paper eq. 3-4).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="subgroup"/> is not a subgroup of this group.</exception>
    public IReadOnlyList<D4Element> CosetRepresentatives(SymmetryGroup subgroup)
    {
        ArgumentNullException.ThrowIfNull(subgroup);
        if (!subgroup.IsSubgroupOf(this))
        {
            throw new ArgumentException($"{subgroup.Name} is not a subgroup of {Name}.", nameof(subgroup));
        }

        var representatives = new List<D4Element>();
        int covered = 0;
        foreach (var g in Elements)
        {
            if ((covered & (1 << g.Index)) != 0)
            {
                continue;
            }

            representatives.Add(g);
            foreach (var h in subgroup.Elements)
            {
                covered |= 1 << (h * g).Index;
            }
        }

        return representatives;
    }

    /// <summary>The index [G : H] = |G| / |H| of a subgroup.</summary>
    public int IndexOf(SymmetryGroup subgroup) => CosetRepresentatives(subgroup).Count;

    /// <summary>The Cayley table over this group's axis: entry [i, j] is the position of Elements[i] * Elements[j].</summary>
    public int[,] CayleyTable()
    {
        var table = new int[Order, Order];
        for (int i = 0; i < Order; i++)
        {
            for (int j = 0; j < Order; j++)
            {
                table[i, j] = PositionOf(Elements[i] * Elements[j]);
            }
        }

        return table;
    }

    /// <summary>The canonical name.</summary>
    public override string ToString() => Name;
}
