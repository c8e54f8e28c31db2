using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Nn.Networks;

public class NetworkTests : TorchTestBase
{
    private const double Tolerance = 1e-5;

    private static NetworkSpec SmallSpec(params SymmetryGroup[] groups) =>
        NetworkPresets.Small(groups.Length == 0 ? null : groups, classes: 5);

    private static double[] InvarianceErrors(GroupCnn net, Tensor images, IEnumerable<D4Element> elements)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var reference = net.call(images);
        return elements.Select(g => RelativeError(net.call(TensorAction.ActOnImage(images, g)), reference)).ToArray();
    }

    [Theory]
    [InlineData(28)]
    [InlineData(29)]
    [InlineData(17)]
    public void All_D4_network_is_invariant_in_evaluation_and_training_mode(int size)
    {
        using var scope = NewDisposeScope();
        using var net = new GroupCnn(SmallSpec());
        var images = torch.rand(6, 1, size, size);
        net.train();
        for (int i = 0; i < 3; i++)
        {
            // Move the running statistics away from their initial values.
            using var step = NewDisposeScope();
            using var noGrad = torch.no_grad();
            net.call(torch.rand(6, 1, size, size));
        }

        var trainErrors = InvarianceErrors(net, images, D4Element.All);
        net.eval();
        var evalErrors = InvarianceErrors(net, images, D4Element.All);
        Assert.All(trainErrors, e => Assert.True(e < Tolerance, $"training mode error {e:E2}"));
        Assert.All(evalErrors, e => Assert.True(e < Tolerance, $"evaluation mode error {e:E2}"));
    }

    [Fact]
    public void Network_relaxed_with_depth_keeps_exactly_the_last_group()
    {
        using var scope = NewDisposeScope();
        var d4 = SymmetryGroup.D4;
        var c4 = SymmetryGroup.C4;
        var c2 = SymmetryGroup.C2;
        using var net = new GroupCnn(SmallSpec(d4, d4, c4, c4, c2));
        net.eval();
        var images = torch.rand(4, 1, 28, 28);

        var c2Errors = InvarianceErrors(net, images, c2.Elements);
        Assert.All(c2Errors, e => Assert.True(e < Tolerance, $"C2 error {e:E2}"));

        // Reflections and quarter turns are no longer symmetries of the whole network: measurably not invariant.
        var broken = InvarianceErrors(net, images, [new D4Element(0, true), new D4Element(1, true), new D4Element(1, false)]);
        Assert.All(broken, e => Assert.True(e > 1e-3, $"expected a visible change, found relative error {e:E2}"));
    }

    [Fact]
    public void Every_lattice_chain_network_is_invariant_to_its_last_group()
    {
        using var scope = NewDisposeScope();
        var images = torch.rand(3, 1, 12, 12);
        foreach (var last in SymmetryGroup.All)
        {
            // D4 at the input, the last group at the output: restriction between every layer pair in between.
            var middle = SymmetryGroup.All.First(g => last.IsSubgroupOf(g) && g.Order == Math.Min(8, last.Order * 2));
            using var net = new GroupCnn(SmallSpec(SymmetryGroup.D4, middle, middle, last, last));
            net.eval();
            var errors = InvarianceErrors(net, images, last.Elements);
            Assert.All(errors, e => Assert.True(e < Tolerance, $"D4-{middle}-{last}: error {e:E2}"));
        }
    }

    [Theory]
    [InlineData(12)]
    [InlineData(13)]
    public void Every_lattice_chain_network_with_a_mean_and_max_head_is_invariant_exactly_to_its_last_group(int size)
    {
        using var scope = NewDisposeScope();
        var images = torch.rand(3, 1, size, size);
        foreach (var last in SymmetryGroup.All)
        {
            var middle = SymmetryGroup.All.First(g => last.IsSubgroupOf(g) && g.Order == Math.Min(8, last.Order * 2));
            var spec = SmallSpec(SymmetryGroup.D4, middle, middle, last, last) with { HeadPooling = HeadPooling.MeanAndMax };
            using var net = new GroupCnn(spec);
            Assert.Equal(2 * spec.Layers[^1].Fields, net.Head.Features);
            net.eval();
            var errors = InvarianceErrors(net, images, D4Element.All);
            foreach (var g in D4Element.All)
            {
                double error = errors[Array.IndexOf(D4Element.All.ToArray(), g)];
                Assert.True(last.Contains(g) ? error < Tolerance : error > 1e-4, $"D4-{middle}-{last}, element {g}: error {error:E2}");
            }
        }
    }

    [Fact]
    public void The_head_pooling_survives_every_change_of_groups_or_layers()
    {
        var spec = SmallSpec() with { HeadPooling = HeadPooling.MeanAndMax };
        Assert.Equal(HeadPooling.MeanAndMax, spec.WithGroups(NetworkPresets.Uniform(SymmetryGroup.C4, 5)).HeadPooling);
        Assert.Equal(HeadPooling.MeanAndMax, spec.WithLayers(spec.Layers.Select(l => l with { Fields = l.Fields * 2 }).ToArray()).HeadPooling);
        Assert.Equal(HeadPooling.MeanAndMax, Equinas.MLNet.Morphism.RelaxationMorphism.RelaxedSpec(spec, 4, SymmetryGroup.C4).HeadPooling);
        Assert.NotEqual(spec, SmallSpec());
        Assert.Equal(HeadPooling.Mean, SmallSpec().HeadPooling);
    }

    [Fact]
    public void Paper_preset_matches_the_paper_architecture()
    {
        var d4 = NetworkPresets.Paper();
        Assert.Equal([16, 16, 16, 16, 32, 32, 32, 32], d4.Layers.Select(l => l.Fields).ToArray());
        Assert.Equal([2, 4, 6], d4.PoolAfter);
        using var d4Net = new GroupCnn(d4);
        // Conv weights 400 + 3*51,200 + 102,400 + 3*204,800; conv biases 192; shared norms 384;
        // head Linear(32, 64) 2,112 + norm 128 + Linear(64, 10) 650.
        Assert.Equal(874_266, d4Net.ParameterCount);

        // Width is fixed in scalar channels: the C1 network has 128/256 channels. Its count equals the authors'
        // 6,986,698 plus the 1,536 conv biases they leave out.
        var c1 = NetworkPresets.Paper(NetworkPresets.Uniform(SymmetryGroup.C1, 8));
        using var c1Net = new GroupCnn(c1);
        Assert.Equal(6_986_698 + 1_536, c1Net.ParameterCount);
        Assert.Equal([32, 32, 32, 32, 64, 64, 64, 64], NetworkPresets.Paper(NetworkPresets.Uniform(SymmetryGroup.C4, 8)).Layers.Select(l => l.Fields).ToArray());
    }

    [Fact]
    public void Invalid_architectures_are_rejected_with_clear_errors()
    {
        var growing = Assert.Throws<ArgumentException>(() => SmallSpec(SymmetryGroup.C4, SymmetryGroup.D4, SymmetryGroup.D4, SymmetryGroup.D4, SymmetryGroup.D4));
        Assert.Contains("Layer 1 has group D4, which is not a subgroup of layer 0's group C4", growing.Message, StringComparison.Ordinal);

        var indivisible = Assert.Throws<ArgumentException>(() => NetworkSpec.FromChannels(1, [SymmetryGroup.D4], [12], 3, [], 10, 0));
        Assert.Contains("12 scalar channels cannot be split into fields over D4", indivisible.Message, StringComparison.Ordinal);

        var evenKernel = Assert.Throws<ArgumentException>(() => NetworkSpec.FromChannels(1, [SymmetryGroup.C4], [8], 4, [], 10, 0));
        Assert.Contains("odd", evenKernel.Message, StringComparison.Ordinal);

        var badPool = Assert.Throws<ArgumentException>(() => NetworkSpec.FromChannels(1, [SymmetryGroup.C4], [8], 3, [1], 10, 0));
        Assert.Contains("Pooling after layer 1", badPool.Message, StringComparison.Ordinal);

        using var scope = NewDisposeScope();
        using var net = new GroupCnn(SmallSpec());
        var wrongInput = Assert.Throws<ArgumentException>(() => net.call(torch.rand(2, 3, 28, 28)));
        Assert.Contains("B x 1 x H x W", wrongInput.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 3, 28, 28]", wrongInput.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_training_step_reduces_the_loss_and_keeps_invariance()
    {
        using var scope = NewDisposeScope();
        using var net = new GroupCnn(SmallSpec());
        using var optimizer = optim.SGD(net.parameters(), 0.05, momentum: 0.9);
        var images = torch.rand(16, 1, 16, 16);
        var labels = torch.randint(0, 5, [16], dtype: ScalarType.Int64);
        double first = 0, last = 0;
        net.train();
        for (int step = 0; step < 15; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(net.call(images), labels);
            loss.backward();
            optimizer.step();
            if (step == 0)
            {
                first = loss.item<float>();
            }

            last = loss.item<float>();
        }

        Assert.True(last < first * 0.8, $"loss went from {first} to {last}");
        net.eval();
        Assert.All(InvarianceErrors(net, images, D4Element.All), e => Assert.True(e < Tolerance, $"error {e:E2}"));
    }

    [Fact]
    public void A_network_built_inside_a_dispose_scope_outlives_it()
    {
        GroupCnn net;
        using (NewDisposeScope())
        {
            net = new GroupCnn(SmallSpec());
        }

        using var scope = NewDisposeScope();
        using (net)
        {
            Assert.Equal(5, net.call(torch.rand(2, 1, 12, 12)).shape[1]);
        }
    }
}
