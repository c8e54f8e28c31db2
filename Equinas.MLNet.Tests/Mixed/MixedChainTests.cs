using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Mixed;

/// <summary>
/// Mixed networks over all ten subgroups with z frozen one-hot per layer: every chain of member groups gives logits
/// invariant to the intersection of its groups, and to nothing outside it (the head is invariant to the top group, so
/// the layers alone decide), in training mode (batch statistics) and in evaluation mode (running statistics that
/// moved away from their initial values, and random affine parameters).
/// </summary>
public class MixedChainTests : TorchTestBase
{
    private static readonly SymmetryGroup[] Members = [.. SymmetryGroup.All];

    public static TheoryData<string> Pairs()
    {
        var data = new TheoryData<string>();
        foreach (var a in SymmetryGroup.All)
        {
            foreach (var b in SymmetryGroup.All)
            {
                data.Add($"{a.Name}-{b.Name}");
            }
        }

        return data;
    }

    public static TheoryData<string> Triples()
    {
        // The three, the one that worked before, two more by hand, then a dozen drawn with a fixed seed.
        var chains = new List<string> { "D4-C4-C2", "C4-C2-C2", "D4-D2VH-D1H", "D4-D4-C4", "C1-D4-D4", "D1D-D2DA-D4" };
        var random = new Random(20240613);
        while (chains.Count < 6 + 12)
        {
            string chain = string.Join("-", Enumerable.Range(0, 3).Select(_ => SymmetryGroup.All[random.Next(SymmetryGroup.All.Count)].Name));
            if (!chains.Contains(chain))
            {
                chains.Add(chain);
            }
        }

        var data = new TheoryData<string>();
        foreach (var chain in chains)
        {
            data.Add(chain);
        }

        return data;
    }

    /// <summary>A mixed network of the given widths with every subgroup as member, its norms and head randomised.</summary>
    internal static MixedGroupCnn Network(int[] widths, int[] poolAfter, IReadOnlyList<SymmetryGroup>? members = null, HeadPooling pooling = HeadPooling.Mean)
    {
        var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, widths.Length), widths, 3, poolAfter, classes: 5, headHidden: 8) with { HeadPooling = pooling };
        var net = new MixedGroupCnn(new MixedNetworkSpec(template, members ?? Members));
        using var noGrad = torch.no_grad();
        foreach (var block in net.Blocks)
        {
            block.Norm.Inner.weight!.uniform_(0.5, 1.5);
            block.Norm.Inner.bias!.normal_(0, 0.5);
        }

        return net;
    }

    /// <summary>Moves every running statistic away from its initial value with a few training-mode batches.</summary>
    internal static void Calibrate(MixedGroupCnn net, int size)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        net.train();
        for (int i = 0; i < 3; i++)
        {
            net.call(Images(6, size));
        }
    }

    /// <summary>
    /// Test images: a letter F (no symmetry at all) at a different place in each sample, over a smooth random pattern
    /// and pixel noise, each sample scaled differently. Random textures alone have statistically symmetric content whose
    /// asymmetric part averages out in the pooled features (a network breaking a symmetry then looks nearly invariant),
    /// and pooled features that barely vary over a batch would let the head's batch norm amplify rounding.
    /// </summary>
    internal static Tensor Images(int batch, int size)
    {
        using var scope = NewDisposeScope();
        var coarse = torch.rand(batch, 1, 3, 3);
        var images = nn.functional.interpolate(coarse, size: [size, size], mode: InterpolationMode.Bilinear, align_corners: true)
            + (torch.rand(batch, 1, size, size) * 0.5);
        var glyph = new float[batch * size * size];
        for (int b = 0; b < batch; b++)
        {
            int top = b % Math.Max(1, size - 6), left = (2 * b) % Math.Max(1, size - 4);
            foreach (var (i, j) in new[] { (0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (2, 1), (2, 2), (3, 0), (4, 0) })
            {
                glyph[(b * size * size) + ((top + i) * size) + left + j] = 2;
            }
        }

        var scale = (torch.arange(batch, dtype: ScalarType.Float32) * 0.5f + 0.5f).view(-1, 1, 1, 1);
        return ((images + torch.tensor(glyph).view(batch, 1, size, size)) * scale).MoveToOuterDisposeScope();
    }

    /// <summary>The relative logit error under each element of D4, in the network's current mode.</summary>
    internal static double[] Errors(MixedGroupCnn net, Tensor x)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var reference = net.call(x);
        return D4Element.All.Select(e => RelativeError(net.call(TensorAction.ActOnImage(x, e)), reference)).ToArray();
    }

    /// <summary>Asserts invariance to every element of <paramref name="kept"/> and non-invariance to every other.</summary>
    internal static void AssertInvariantExactlyTo(MixedGroupCnn net, SymmetryGroup kept, int size, string what)
    {
        using var scope = NewDisposeScope();
        Calibrate(net, size);
        var x = Images(6, size);
        foreach (bool training in new[] { true, false })
        {
            if (training)
            {
                net.train();
            }
            else
            {
                net.eval();
            }

            var errors = Errors(net, x);
            foreach (var e in D4Element.All)
            {
                double error = errors[e.Index];
                if (kept.Contains(e))
                {
                    Assert.True(error < 1e-5, $"{what}, size {size}, training={training}: element {e} of {kept} gives {error:E2}");
                }
                else
                {
                    Assert.True(error > 1e-3, $"{what}, size {size}, training={training}: invariant ({error:E2}) to {e}, outside {kept}");
                }
            }
        }
    }

    private static void FreezeChain(MixedGroupCnn net, SymmetryGroup[] chain) =>
        net.FreezeZ(chain.Select(g => Members.Select(m => m == g ? 1.0 : 0.0).ToArray()).ToArray());

    private static SymmetryGroup[] ParseChain(string chain) => chain.Split('-').Select(SymmetryGroup.Parse).ToArray();

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Every_one_hot_pair_is_invariant_exactly_to_the_intersection(string chain)
    {
        using var scope = NewDisposeScope();
        var groups = ParseChain(chain);
        var kept = SymmetryGroup.IntersectAll(groups);
        using var net = Network([16, 32], [0]);
        FreezeChain(net, groups);
        foreach (int size in new[] { 9, 10 })
        {
            AssertInvariantExactlyTo(net, kept, size, $"one-hot {chain}");
        }
    }

    [Theory]
    [MemberData(nameof(Triples))]
    public void One_hot_triples_are_invariant_exactly_to_the_intersection(string chain)
    {
        using var scope = NewDisposeScope();
        var groups = ParseChain(chain);
        var kept = SymmetryGroup.IntersectAll(groups);
        using var net = Network([16, 16, 32], [0, 1]);
        FreezeChain(net, groups);
        foreach (int size in new[] { 9, 11, 10 })
        {
            AssertInvariantExactlyTo(net, kept, size, $"one-hot {chain}");
        }
    }

    [Fact]
    public void A_one_hot_chain_stays_exactly_invariant_after_training()
    {
        // Training moves every kernel, affine parameter and running statistic; the symmetry must not depend on them.
        using var scope = NewDisposeScope();
        var groups = ParseChain("D4-C4-C2");
        using var net = Network([16, 16, 32], [0, 1]);
        FreezeChain(net, groups);
        net.train();
        using (var optimizer = optim.Adam(net.WeightParameters(), 0.05))
        {
            for (int step = 0; step < 5; step++)
            {
                using var stepScope = NewDisposeScope();
                optimizer.zero_grad();
                var images = torch.rand(8, 1, 9, 9);
                var labels = torch.randint(0, 5, [8], dtype: ScalarType.Int64);
                nn.functional.cross_entropy(net.call(images), labels).backward();
                optimizer.step();
            }
        }

        AssertInvariantExactlyTo(net, SymmetryGroup.C2, 9, "trained one-hot D4-C4-C2");
    }
}
