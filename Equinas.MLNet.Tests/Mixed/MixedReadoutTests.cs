using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Mixed;

public class MixedReadoutTests : TorchTestBase
{
    [Fact]
    public void Element_mass_sums_z_over_the_members_containing_each_element()
    {
        var members = SymmetryGroup.All;
        var uniform = Enumerable.Repeat(0.1, 10).ToArray();
        var klein = members.Select(m => m == SymmetryGroup.D2VH ? 1.0 : 0.0).ToArray();
        var mass = MixedGroupCnn.ElementMass(members, [uniform, klein]);
        Assert.Equal(["e", "r", "r2", "r3", "f", "rf", "r2f", "r3f"], MixedGroupCnn.MassElements.Select(e => e.ToString()));
        // e: all ten; r, r3: C4, D4; r2: C2, C4, D2VH, D2DA, D4; each reflection: its D1, its D2, D4.
        double[] expected = [1.0, 0.2, 0.5, 0.2, 0.3, 0.3, 0.3, 0.3];
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(expected[i], mass[0][i], 12);
        }

        Assert.Equal([1.0, 0, 1.0, 0, 1.0, 0, 1.0, 0], mass[1]);
        Assert.Throws<ArgumentException>(() => MixedGroupCnn.ElementMass(members, [[0.5, 0.5]]));

        // From a network: one-hot C4 in the first layer, D1A in the second.
        using var scope = NewDisposeScope();
        using var net = MixedChainTests.Network([16, 32], [0]);
        net.FreezeZ([Onehot(SymmetryGroup.C4), Onehot(SymmetryGroup.D1A)]);
        var fromNet = net.ElementMass();
        Assert.Equal([1.0, 1, 1, 1, 0, 0, 0, 0], fromNet[0]);
        Assert.Equal([1.0, 0, 0, 0, 0, 0, 0, 1], fromNet[1]);
    }

    [Fact]
    public void The_invariance_distribution_of_a_one_hot_z_is_its_chains_intersection_for_every_chain_of_three()
    {
        var members = SymmetryGroup.All;
        foreach (var a in members)
        {
            foreach (var b in members)
            {
                foreach (var c in members)
                {
                    var odds = MixedGroupCnn.InvarianceDistribution(members, [Onehot(a), Onehot(b), Onehot(c)]);
                    var meet = a.Intersect(b).Intersect(c);
                    Assert.Equal(1.0, odds[meet]);
                    Assert.Equal(1.0, odds.Values.Sum());
                }
            }
        }
    }

    [Fact]
    public void The_invariance_distribution_of_any_z_is_the_chance_of_each_intersection_over_every_drawn_chain()
    {
        var members = SymmetryGroup.All;
        var random = new Random(5);
        for (int trial = 0; trial < 5; trial++)
        {
            var z = Enumerable.Range(0, 3).Select(_ =>
            {
                var w = members.Select(_ => random.NextDouble() + 0.01).ToArray();
                double sum = w.Sum();
                return w.Select(v => v / sum).ToArray();
            }).ToArray();

            // Brute force: every one of the 1,000 chains, with its probability.
            var expected = new Dictionary<SymmetryGroup, double>();
            for (int i = 0; i < 10; i++)
            {
                for (int j = 0; j < 10; j++)
                {
                    for (int k = 0; k < 10; k++)
                    {
                        var meet = members[i].Intersect(members[j]).Intersect(members[k]);
                        expected[meet] = expected.GetValueOrDefault(meet) + (z[0][i] * z[1][j] * z[2][k]);
                    }
                }
            }

            var odds = MixedGroupCnn.InvarianceDistribution(members, z);
            Assert.Equal(1.0, odds.Values.Sum(), 12);
            Assert.Equal(expected.Keys.OrderBy(g => g.Mask), odds.Keys.OrderBy(g => g.Mask));
            foreach (var (group, p) in expected)
            {
                Assert.Equal(p, odds[group], 12);
            }
        }

        // Over a smaller member set the chain starts from the members' top group, not D4.
        var c4 = new[] { SymmetryGroup.C1, SymmetryGroup.C2, SymmetryGroup.C4 };
        var none = MixedGroupCnn.InvarianceDistribution(c4, []);
        Assert.Equal(1.0, none[SymmetryGroup.C4]);
        var half = MixedGroupCnn.InvarianceDistribution(c4, [[0, 0.5, 0.5], [0, 0.5, 0.5]]);
        Assert.Equal(0.25, half[SymmetryGroup.C4], 12);
        Assert.Equal(0.75, half[SymmetryGroup.C2], 12);
        Assert.Throws<ArgumentException>(() => MixedGroupCnn.InvarianceDistribution(c4, [[1.0]]));
    }

    [Fact]
    public void Members_of_one_kind_are_summed_together()
    {
        var members = SymmetryGroup.All; // C1, C2, D1V, D1D, D1H, D1A, C4, D2VH, D2DA, D4
        double[] z = [0.05, 0.1, 0.1, 0.2, 0.05, 0.05, 0.1, 0.15, 0.1, 0.1];
        var classes = MixedGroupCnn.ZByClass(members, [z])[0];
        Assert.Equal(["C1", "C2", "D1*", "C4", "D2*", "D4"], classes.Select(c => c.Class));
        double[] expected = [0.05, 0.1, 0.4, 0.1, 0.25, 0.1];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], classes[i].Z, 12);
        }

        var subset = MixedGroupCnn.ZByClass([SymmetryGroup.D1H, SymmetryGroup.D2DA, SymmetryGroup.D1V], [[0.2, 0.5, 0.3]])[0];
        Assert.Equal([("D1*", 0.5), ("D2*", 0.5)], subset);
    }

    private static double[] Onehot(SymmetryGroup g) => SymmetryGroup.All.Select(m => m == g ? 1.0 : 0.0).ToArray();
}
