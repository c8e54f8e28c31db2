using Equinas.MLNet.Groups;
using Xunit;

namespace Equinas.MLNet.Tests.Groups;

public class SymmetryGroupTests
{
    public static TheoryData<string> GroupNames() => [.. SymmetryGroup.All.Select(g => g.Name)];

    public static TheoryData<string, string> SubgroupPairs()
    {
        var data = new TheoryData<string, string>();
        foreach (var g in SymmetryGroup.All)
        {
            foreach (var h in g.Subgroups())
            {
                data.Add(g.Name, h.Name);
            }
        }

        return data;
    }

    private static bool IsClosedSubset(int mask)
    {
        if ((mask & 1) == 0)
        {
            return false;
        }

        var elements = D4Element.All.Where(g => (mask & (1 << g.Index)) != 0).ToArray();
        return elements.All(a => elements.All(b => (mask & (1 << (a * b).Index)) != 0));
    }

    [Fact]
    public void The_ten_groups_are_exactly_the_subgroups_of_D4()
    {
        var subgroupMasks = Enumerable.Range(1, 255).Where(IsClosedSubset).ToHashSet();
        Assert.Equal(10, subgroupMasks.Count);
        Assert.Equal(subgroupMasks, SymmetryGroup.All.Select(g => g.Mask).ToHashSet());
        Assert.Equal(10, SymmetryGroup.All.Select(g => g.Name).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(GroupNames))]
    public void Every_group_is_closed_under_products_and_inverses(string name)
    {
        var group = SymmetryGroup.Parse(name);
        Assert.Contains(D4Element.Identity, group.Elements);
        foreach (var a in group.Elements)
        {
            Assert.True(group.Contains(a.Inverse()));
            foreach (var b in group.Elements)
            {
                Assert.True(group.Contains(a * b));
            }
        }

        // The Cayley table is a Latin square over the group's axis.
        var table = group.CayleyTable();
        for (int i = 0; i < group.Order; i++)
        {
            Assert.Equal(group.Order, Enumerable.Range(0, group.Order).Select(j => table[i, j]).Distinct().Count());
            Assert.Equal(group.Order, Enumerable.Range(0, group.Order).Select(j => table[j, i]).Distinct().Count());
        }
    }

    [Fact]
    public void Names_say_which_reflections_each_group_contains()
    {
        Assert.Equal([D4Element.Identity, new D4Element(0, true)], SymmetryGroup.D1V.Elements);
        Assert.Equal([D4Element.Identity, new D4Element(1, true)], SymmetryGroup.D1D.Elements);
        Assert.Equal([D4Element.Identity, new D4Element(2, true)], SymmetryGroup.D1H.Elements);
        Assert.Equal([D4Element.Identity, new D4Element(3, true)], SymmetryGroup.D1A.Elements);
        Assert.False(SymmetryGroup.C4.HasReflections);
        Assert.True(SymmetryGroup.D2DA.HasReflections);
        Assert.Equal(
            new[] { 1, 2, 2, 2, 2, 2, 4, 4, 4, 8 },
            SymmetryGroup.All.Select(g => g.Order).ToArray());
    }

    [Fact]
    public void Maximal_subgroups_form_the_D4_lattice()
    {
        static string[] Max(SymmetryGroup g) => g.MaximalSubgroups().Select(h => h.Name).Order().ToArray();
        Assert.Equal(["C4", "D2DA", "D2VH"], Max(SymmetryGroup.D4));
        Assert.Equal(["C2"], Max(SymmetryGroup.C4));
        Assert.Equal(["C2", "D1H", "D1V"], Max(SymmetryGroup.D2VH));
        Assert.Equal(["C2", "D1A", "D1D"], Max(SymmetryGroup.D2DA));
        foreach (var g in new[] { SymmetryGroup.C2, SymmetryGroup.D1V, SymmetryGroup.D1D, SymmetryGroup.D1H, SymmetryGroup.D1A })
        {
            Assert.Equal(["C1"], Max(g));
        }

        Assert.Empty(SymmetryGroup.C1.MaximalSubgroups());
    }

    [Fact]
    public void Intersection_is_the_meet_and_join_the_least_upper_bound()
    {
        foreach (var a in SymmetryGroup.All)
        {
            foreach (var b in SymmetryGroup.All)
            {
                var meet = a.Intersect(b);
                Assert.Equal(a.Mask & b.Mask, meet.Mask);
                Assert.True(meet.IsSubgroupOf(a) && meet.IsSubgroupOf(b));
                var join = a.Join(b);
                Assert.True(a.IsSubgroupOf(join) && b.IsSubgroupOf(join));
                Assert.All(SymmetryGroup.All.Where(k => a.IsSubgroupOf(k) && b.IsSubgroupOf(k)), k => Assert.True(join.IsSubgroupOf(k)));
            }
        }

        Assert.Same(SymmetryGroup.C1, SymmetryGroup.C4.Intersect(SymmetryGroup.D1V));
        Assert.Same(SymmetryGroup.D4, SymmetryGroup.D1V.Join(SymmetryGroup.D1D));
        Assert.Same(SymmetryGroup.C2, SymmetryGroup.IntersectAll([SymmetryGroup.C4, SymmetryGroup.D2VH, SymmetryGroup.D2DA]));
    }

    [Theory]
    [MemberData(nameof(SubgroupPairs))]
    public void Coset_representatives_split_every_element_uniquely(string groupName, string subgroupName)
    {
        var g = SymmetryGroup.Parse(groupName);
        var h = SymmetryGroup.Parse(subgroupName);
        var r = g.CosetRepresentatives(h);
        Assert.Equal(g.Order / h.Order, r.Count);
        Assert.Equal(D4Element.Identity, r[0]);
        Assert.Equal(r.Count, g.IndexOf(h));
        foreach (var element in g.Elements)
        {
            // Exactly one (h, t) with element = h t.
            int ways = h.Elements.Sum(x => r.Count(t => x * t == element));
            Assert.Equal(1, ways);
        }
    }

    [Fact]
    public void Cosets_of_a_non_subgroup_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => SymmetryGroup.C4.CosetRepresentatives(SymmetryGroup.D1V));
        Assert.Contains("D1V is not a subgroup of C4", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_accepts_names_aliases_and_any_case_and_explains_failures()
    {
        foreach (var g in SymmetryGroup.All)
        {
            Assert.Same(g, SymmetryGroup.Parse(g.Name));
            Assert.Same(g, SymmetryGroup.Parse(g.Name.ToLowerInvariant()));
        }

        Assert.Same(SymmetryGroup.D1V, SymmetryGroup.Parse("D1"));
        Assert.Same(SymmetryGroup.D2VH, SymmetryGroup.Parse(" d2 "));
        var error = Assert.Throws<ArgumentException>(() => SymmetryGroup.Parse("C8"));
        Assert.Contains("'C8'", error.Message, StringComparison.Ordinal);
        Assert.Contains("D2DA", error.Message, StringComparison.Ordinal);
        Assert.False(SymmetryGroup.TryParse(null, out _));
    }
}
