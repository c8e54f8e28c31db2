using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Morphism;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Mixed;

public class MixedLayerTests : TorchTestBase
{
    public static TheoryData<string> MemberSets() =>
    [
        "C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4", // every subgroup of D4; G0 = C1
        "C1,C2,C4,D1V,D2VH,D4", // the authors' six groups
        "C2,C4", // G0 = C2
        "D1V,D2VH", // G0 = D1V
        "C4,D2DA,D4", // G0 = C2
        "D4", // a single member
    ];

    private static SymmetryGroup[] Parse(string members) => members.Split(',').Select(SymmetryGroup.Parse).ToArray();

    /// <summary>A feature map over G0 read as one over G (the inverse of the restriction G -> G0).</summary>
    private static Tensor ToGroupLayout(Tensor x0, SymmetryGroup g, SymmetryGroup g0)
    {
        long b = x0.shape[0], channels = x0.shape[1] * x0.shape[2], h = x0.shape[3], w = x0.shape[4];
        var forward = RelaxationMorphism.RestrictionScalarIndex(g, g0, (int)(channels / g.Order));
        var inverse = new long[forward.Length];
        for (int i = 0; i < forward.Length; i++)
        {
            inverse[forward[i]] = i;
        }

        return x0.reshape(b, channels, h, w).index_select(1, torch.tensor(inverse)).view(b, channels / g.Order, g.Order, h, w);
    }

    /// <summary>Member m as a separate fixed layer: G-layout in, G conv, restricted to G0 out.</summary>
    private static Tensor SeparateMember(MixedConv2d layer, int m, Tensor input)
    {
        var g = layer.Members[m];
        var output = layer.IsLifting
            ? LiftingConv2d.Functional(input, layer.Weights[m], layer.Biases[m], g)
            : GroupConv2d.Functional(ToGroupLayout(input, g, layer.Base), layer.Weights[m], layer.Biases[m], g);
        return GroupRestriction.Functional(output, g, layer.Base);
    }

    private static Tensor Input(MixedConv2d layer, int size) =>
        layer.IsLifting
            ? torch.randn([3, layer.InChannels, size, size])
            : torch.randn([3, layer.InChannels / layer.Base.Order, layer.Base.Order, size, size]);

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void Mixed_layer_equals_the_weighted_sum_of_separate_group_layers(string members)
    {
        using var scope = NewDisposeScope();
        var groups = Parse(members);
        foreach (bool lifting in new[] { true, false })
        {
            using var layer = new MixedConv2d(groups, lifting ? 2 : 16, 16, kernelSize: 3, lifting);
            using (torch.no_grad())
            {
                layer.Alpha.normal_();
                foreach (var b in layer.Biases)
                {
                    b.normal_();
                }
            }

            var x = Input(layer, 7);
            var z = layer.Z();
            Tensor expected = torch.zeros(1);
            for (int m = 0; m < groups.Length; m++)
            {
                expected = expected + (SeparateMember(layer, m, x) * z[m]);
            }

            double error = RelativeError(layer.Forward(x, z), expected);
            Assert.True(error < 1e-5, $"[{members}] lifting={lifting}: relative error {error:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void One_hot_z_gives_an_exactly_equivariant_layer(string members)
    {
        using var scope = NewDisposeScope();
        var groups = Parse(members);
        foreach (bool lifting in new[] { true, false })
        {
            using var layer = new MixedConv2d(groups, lifting ? 2 : 16, 16, kernelSize: 3, lifting);
            for (int m = 0; m < groups.Length; m++)
            {
                var g = groups[m];
                var z = torch.zeros(groups.Length);
                z[m] = 1;
                foreach (int size in new[] { 7, 8 })
                {
                    // Read in and out through the restriction, the mixed layer is a map of G-feature maps.
                    Tensor Map(Tensor xG) => ToGroupLayout(layer.Forward(lifting ? xG : GroupRestriction.Functional(xG, g, layer.Base), z), g, layer.Base);
                    var xG = lifting ? torch.randn([2, 2, size, size]) : torch.randn([2, 16 / g.Order, g.Order, size, size]);
                    var reference = Map(xG);
                    foreach (var e in g.Elements)
                    {
                        var moved = lifting ? TensorAction.ActOnImage(xG, e) : TensorAction.ActOnFeatureMap(xG, e, g);
                        double error = RelativeError(Map(moved), TensorAction.ActOnFeatureMap(reference, e, g));
                        Assert.True(error < 1e-5, $"[{members}] one-hot {g}, lifting={lifting}, size {size}, element {e}: {error:E2}");
                    }
                }
            }
        }
    }

    [Fact]
    public void Gradients_reach_every_architecture_logit()
    {
        using var scope = NewDisposeScope();
        var groups = Parse("C1,C2,C4,D1V,D2VH,D4");
        using var layer = new MixedConv2d(groups, 8, 16, 3, lifting: false);
        var loss = layer.call(torch.randn([2, 8, 1, 6, 6])).pow(2).mean();
        loss.backward();
        var grad = layer.Alpha.grad!;
        Assert.Equal(groups.Length, grad.shape[0]);
        Assert.All(grad.data<float>().ToArray(), v => Assert.True(v != 0 && float.IsFinite(v), $"alpha gradient {v}"));
    }

    [Fact]
    public void Cached_inference_equals_the_training_path_and_is_refreshed_after_training()
    {
        using var scope = NewDisposeScope();
        var groups = Parse("C1,C2,C4,D1V,D2VH,D4");
        using var layer = new MixedConv2d(groups, 8, 16, 3, lifting: false);
        var x = torch.randn([2, 8, 1, 6, 6]);
        layer.eval();
        using (torch.no_grad())
        {
            var cached = layer.call(x);
            var direct = layer.Forward(x, layer.Z());
            Assert.True(BitEqual(cached, direct));
            Assert.True(BitEqual(layer.call(x), cached)); // served from the cache
        }

        layer.train();
        using (var optimizer = optim.SGD(layer.parameters(), 0.5))
        {
            layer.call(x).pow(2).mean().backward();
            optimizer.step();
        }

        layer.eval();
        using (torch.no_grad())
        {
            Assert.True(BitEqual(layer.call(x), layer.Forward(x, layer.Z())), "the cache must not outlive a training step");
        }
    }

    [Theory]
    [InlineData("D4")]
    [InlineData("C4")]
    [InlineData("D1H")]
    [InlineData("C1")]
    public void One_hot_mixed_norm_equals_the_group_norm_in_both_modes(string groupName)
    {
        using var scope = NewDisposeScope();
        var members = Parse("C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4");
        var g = SymmetryGroup.Parse(groupName);
        int m = Array.IndexOf(members, g);
        using var mixed = new MixedBatchNorm(members, 16);
        using var fixedNorm = new GroupBatchNorm(16 / g.Order, g);
        var z = torch.zeros(members.Length);
        z[m] = 1;
        var yG = (torch.randn([4, 16 / g.Order, g.Order, 5, 5]) * 2) + 1;
        var y0 = GroupRestriction.Functional(yG, g, SymmetryGroup.C1);
        for (int step = 0; step < 3; step++)
        {
            var expected = GroupRestriction.Functional(fixedNorm.call(yG), g, SymmetryGroup.C1);
            Assert.True(RelativeError(mixed.Forward(y0, z), expected) < 1e-5, "training mode");
        }

        mixed.eval();
        fixedNorm.eval();
        var evalExpected = GroupRestriction.Functional(fixedNorm.call(yG), g, SymmetryGroup.C1);
        Assert.True(RelativeError(mixed.Forward(y0, z), evalExpected) < 1e-5, "evaluation mode");
    }

    [Theory]
    [InlineData("D4")]
    [InlineData("C4")]
    [InlineData("D2DA")]
    public void Mixed_network_with_one_hot_z_is_invariant_to_that_group(string groupName)
    {
        using var scope = NewDisposeScope();
        var members = Parse("C1,C2,C4,D1V,D2VH,D2DA,D4");
        var g = SymmetryGroup.Parse(groupName);
        var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 3), [16, 16, 32], 3, [0], classes: 4, headHidden: 8);
        using var net = new MixedGroupCnn(new MixedNetworkSpec(template, members));
        var oneHot = members.Select(x => x == g ? 1.0 : 0.0).ToArray();
        net.FreezeZ([oneHot, oneHot, oneHot]);
        var x = torch.rand(4, 1, 9, 9);
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

            using var noGrad = torch.no_grad();
            var reference = net.call(x);
            foreach (var e in g.Elements)
            {
                double error = RelativeError(net.call(TensorAction.ActOnImage(x, e)), reference);
                Assert.True(error < 1e-5, $"one-hot {g}, training={training}, element {e}: {error:E2}");
            }
        }

        // Not invariant to what the group lacks.
        using (torch.no_grad())
        {
            foreach (var outside in D4Element.All.Where(e => !g.Contains(e)))
            {
                Assert.True(RelativeError(net.call(TensorAction.ActOnImage(x, outside)), net.call(x)) > 1e-4, $"element {outside}");
            }
        }
    }

    [Fact]
    public void Widths_that_a_member_cannot_split_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new MixedConv2d(Parse("C1,D4"), 8, 12, 3, lifting: false));
        Assert.Contains("12 scalar channels cannot be split into fields over D4", error.Message, StringComparison.Ordinal);
    }
}
