using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Morphism;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Morphism;

public class RelaxationMorphismTests : TorchTestBase
{
    private const int Layers = 4;

    /// <summary>Every proper subgroup pair G > H of the lattice with every layer position of a 4-layer network.</summary>
    public static TheoryData<string, string, int> PairsAndPositions()
    {
        var data = new TheoryData<string, string, int>();
        foreach (var g in SymmetryGroup.All)
        {
            foreach (var h in g.Subgroups().Where(h => h != g))
            {
                for (int layer = 0; layer < Layers; layer++)
                {
                    data.Add(g.Name, h.Name, layer);
                }
            }
        }

        return data;
    }

    /// <summary>
    /// A network where the relaxation is allowed: D4 before the layer (then G), G at the layer, H after it; widths
    /// are multiples of 8 so every group divides them. Pooling after layers 1 and 2 exercises both pool windows.
    /// </summary>
    private static GroupCnn TrainedNetwork(SymmetryGroup g, SymmetryGroup h, int layer, int inputSize, HeadPooling pooling = HeadPooling.Mean)
    {
        var groups = Enumerable.Range(0, Layers)
            .Select(i => i < layer ? (i == layer - 1 ? g : SymmetryGroup.D4) : i == layer ? g : h)
            .ToArray();
        if (groups.Skip(1).Zip(groups).Any(p => !p.First.IsSubgroupOf(p.Second)))
        {
            groups = Enumerable.Range(0, Layers).Select(i => i <= layer ? g : h).ToArray();
        }

        var spec = NetworkSpec.FromChannels(2, groups, [8, 16, 16, 16], kernelSize: 3, poolAfter: [1, 2], classes: 3, headHidden: 6) with { HeadPooling = pooling };
        var net = new GroupCnn(spec);
        // Non-trivial biases, norm statistics and affine parameters: a few training-mode passes and random affine.
        using (torch.no_grad())
        {
            foreach (var p in net.parameters())
            {
                if (p.dim() == 1)
                {
                    p.normal_(0, 0.5);
                }
            }

            net.train();
            for (int i = 0; i < 3; i++)
            {
                using var scope = NewDisposeScope();
                net.call(torch.randn([4, 2, inputSize, inputSize]) + 0.3);
            }
        }

        net.eval();
        return net;
    }

    [Theory]
    [MemberData(nameof(PairsAndPositions))]
    public void Relaxing_any_layer_to_any_subgroup_preserves_the_logits(string groupName, string subgroupName, int layer) =>
        AssertRelaxationPreservesTheLogits(groupName, subgroupName, layer, HeadPooling.Mean);

    [Theory]
    [MemberData(nameof(PairsAndPositions))]
    public void Relaxing_any_layer_to_any_subgroup_preserves_the_logits_of_a_mean_and_max_head(string groupName, string subgroupName, int layer) =>
        AssertRelaxationPreservesTheLogits(groupName, subgroupName, layer, HeadPooling.MeanAndMax);

    private static void AssertRelaxationPreservesTheLogits(string groupName, string subgroupName, int layer, HeadPooling pooling)
    {
        using var scope = NewDisposeScope();
        var g = SymmetryGroup.Parse(groupName);
        var h = SymmetryGroup.Parse(subgroupName);
        foreach (int size in new[] { 9, 10 })
        {
            using var net = TrainedNetwork(g, h, layer, size, pooling);
            using var relaxed = RelaxationMorphism.Relax(net, layer, h);
            Assert.Same(h, relaxed.Spec.Layers[layer].Group);
            Assert.Equal(pooling, relaxed.Spec.HeadPooling);
            Assert.Equal(net.Spec.Layers[layer].Fields * g.IndexOf(h), relaxed.Spec.Layers[layer].Fields);
            Assert.False(relaxed.training);

            using var noGrad = torch.no_grad();
            var x = torch.randn([5, 2, size, size]);
            double error = RelativeError(relaxed.call(x), net.call(x));
            Assert.True(error < 1e-5, $"{g}->{h} at layer {layer}, size {size}: relative error {error:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(PairsAndPositions))]
    public void Parameter_count_after_relaxation_matches_the_formula(string groupName, string subgroupName, int layer)
    {
        using var scope = NewDisposeScope();
        var g = SymmetryGroup.Parse(groupName);
        var h = SymmetryGroup.Parse(subgroupName);
        using var net = TrainedNetwork(g, h, layer, 9);
        using var relaxed = RelaxationMorphism.Relax(net, layer, h);
        var spec = net.Spec;
        int r = g.IndexOf(h);
        long fields = spec.Layers[layer].Fields;
        long k2 = spec.KernelSize * spec.KernelSize;
        long inScalar = layer == 0 ? spec.InputChannels : spec.Layers[layer - 1].Channels;
        // Kernel: (F r) x (in / |H|) x |H| k^2 = r F in k^2 for a group layer, r times F x (in / |G|) x |G| k^2, or
        // (F r) x C x k^2 (lifting). Bias and the two affine norm parameters: 3 F (r - 1). The next layer keeps its
        // size; when the layer is the last, the head's first linear layer gains (r - 1) F columns.
        long kernelGrowth = (r - 1) * fields * inScalar * k2;
        long expected = net.ParameterCount + kernelGrowth + (3 * fields * (r - 1))
            + (layer == Layers - 1 ? (r - 1) * fields * spec.HeadHidden : 0);
        Assert.Equal(expected, relaxed.ParameterCount);
    }

    [Theory]
    [InlineData("D4", "C4")]
    [InlineData("D4", "D2DA")]
    [InlineData("C4", "C2")]
    [InlineData("D2VH", "D1H")]
    public void Relaxed_layer_keeps_the_subgroup_and_training_breaks_the_group(string groupName, string subgroupName)
    {
        using var scope = NewDisposeScope();
        var g = SymmetryGroup.Parse(groupName);
        var h = SymmetryGroup.Parse(subgroupName);
        using var net = TrainedNetwork(g, g, Layers - 1, 9);
        using var relaxed = RelaxationMorphism.Relax(net, Layers - 1, h);
        var x = torch.randn([6, 2, 9, 9]);
        var broken = g.Elements.Where(e => !h.Contains(e)).ToArray();

        Assert.All(InvarianceErrors(relaxed, x, g.Elements), e => Assert.True(e < 1e-5, $"before training: {e:E2}"));

        relaxed.train();
        using var optimizer = optim.SGD(relaxed.parameters(), 0.5);
        var batch = torch.randn([8, 2, 9, 9]);
        var labels = torch.randint(0, 3, [8], dtype: ScalarType.Int64);
        for (int step = 0; step < 10; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.cross_entropy(relaxed.call(batch), labels).backward();
            optimizer.step();
        }

        relaxed.eval();
        Assert.All(InvarianceErrors(relaxed, x, h.Elements), e => Assert.True(e < 1e-5, $"{h} after training: {e:E2}"));
        Assert.All(InvarianceErrors(relaxed, x, broken), e => Assert.True(e > 1e-4, $"{g} after training: expected a visible change, found {e:E2}"));
    }

    [Fact]
    public void Invalid_relaxations_are_rejected()
    {
        using var scope = NewDisposeScope();
        var d4 = SymmetryGroup.D4;
        using var net = new GroupCnn(NetworkPresets.Small(NetworkPresets.Uniform(d4, 5)));
        var notSub = Assert.Throws<ArgumentException>(() => RelaxationMorphism.Relax(net, 4, d4));
        Assert.Contains("proper subgroup of its group D4", notSub.Message, StringComparison.Ordinal);
        var monotone = Assert.Throws<ArgumentException>(() => RelaxationMorphism.Relax(net, 2, SymmetryGroup.C4));
        Assert.Contains("below layer 3's group D4", monotone.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => RelaxationMorphism.Relax(net, 5, SymmetryGroup.C4));
    }

    private static double[] InvarianceErrors(GroupCnn net, Tensor x, IEnumerable<D4Element> elements)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var reference = net.call(x);
        return elements.Select(e => RelativeError(net.call(TensorAction.ActOnImage(x, e)), reference)).ToArray();
    }
}
