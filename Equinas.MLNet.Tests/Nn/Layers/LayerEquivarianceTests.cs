using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Nn.Layers;

/// <summary>layer(g . x) = g . layer(x) for every subgroup, every element, odd, even and non-square sizes.</summary>
public class LayerEquivarianceTests : TorchTestBase
{
    private const double Tolerance = 1e-5;

    public static TheoryData<string, int, int> GroupsAndSizes()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var g in SymmetryGroup.All)
        {
            data.Add(g.Name, 7, 7);
            data.Add(g.Name, 8, 8);
            data.Add(g.Name, 6, 9);
        }

        return data;
    }

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

    private static void AssertEquivariant(EquivariantModule module, Tensor input, SymmetryGroup group)
    {
        var errors = module.CheckEquivariance(input, group);
        Assert.Equal(group.Order, errors.Count);
        foreach (var (g, error) in errors)
        {
            Assert.True(error < Tolerance, $"{module.GetName()} over {group.Name}: element {g} has relative error {error:E2}");
        }
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Lifting_convolution_is_equivariant(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        using var layer = new LiftingConv2d(3, 4, group, kernelSize: 5);
        using (torch.no_grad())
        {
            layer.Bias!.normal_();
        }

        AssertEquivariant(layer, torch.randn(2, 3, height, width), group);
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Group_convolution_is_equivariant(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        using var layer = new GroupConv2d(3, 2, group, kernelSize: 3);
        using (torch.no_grad())
        {
            layer.Bias!.normal_();
        }

        AssertEquivariant(layer, torch.randn([2, 3, group.Order, height, width]), group);
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Group_batch_norm_is_equivariant_in_training_and_evaluation(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        using var layer = new GroupBatchNorm(3, group);
        var input = (torch.randn([4, 3, group.Order, height, width]) * 3) + 1;
        layer.train();
        AssertEquivariant(layer, input, group);
        using (torch.no_grad())
        {
            layer.call(input); // move the running statistics away from their initial values
            layer.Inner.weight!.normal_();
            layer.Inner.bias!.normal_();
        }

        layer.eval();
        AssertEquivariant(layer, input, group);
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Adaptive_pooling_is_equivariant_on_odd_and_even_sizes(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        using var pool = new EquivariantPool2d(group);
        var input = torch.randn([2, 3, group.Order, height, width]);
        AssertEquivariant(pool, input, group);
        var output = pool.call(input);
        Assert.Equal((height + 1) / 2, output.shape[3]);
        Assert.Equal((width + 1) / 2, output.shape[4]);
    }

    [Theory]
    [MemberData(nameof(SubgroupPairs))]
    public void Restriction_is_a_subgroup_equivariant_permutation_of_the_channels(string groupName, string subgroupName)
    {
        using var scope = NewDisposeScope();
        var g = SymmetryGroup.Parse(groupName);
        var h = SymmetryGroup.Parse(subgroupName);
        using var restriction = new GroupRestriction(g, h, fields: 3);
        var input = torch.randn([2, 3, g.Order, 5, 6]);
        var output = restriction.call(input);
        Assert.Equal(new long[] { 2, 3 * g.IndexOf(h), h.Order, 5, 6 }, output.shape);
        Assert.True(BitEqual(output.flatten().sort().Values, input.flatten().sort().Values));
        AssertEquivariant(restriction, input, h);
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Group_pooling_turns_a_feature_map_into_an_image_that_moves_with_the_input(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        foreach (var mode in new[] { GroupPoolMode.Mean, GroupPoolMode.Max })
        {
            using var pool = new GroupPool(group, mode);
            AssertEquivariant(pool, torch.randn([2, 3, group.Order, height, width]), group);
        }
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Invariant_head_is_invariant(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        using var head = new InvariantHead(3, group, hiddenWidth: 8, classes: 4);
        head.eval();
        AssertEquivariant(head, torch.randn([5, 3, group.Order, height, width]), group);
    }

    [Theory]
    [MemberData(nameof(GroupsAndSizes))]
    public void Mean_and_max_head_is_invariant_and_reads_the_group_means_of_both_statistics(string groupName, int height, int width)
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.Parse(groupName);
        using var head = new InvariantHead(3, group, hiddenWidth: 8, classes: 4, HeadPooling.MeanAndMax);
        Assert.Equal(6, head.Features);
        Assert.Equal([8L, 6L], head.FirstLinear.weight!.shape);
        head.eval();
        var x = torch.randn([5, 3, group.Order, height, width]);
        AssertEquivariant(head, x, group);

        // The features: per field the mean over the group and the plane, then per field the group mean of each channel's
        // maximum over the plane, computed here element by element.
        var features = InvariantHead.Pool(x, HeadPooling.MeanAndMax);
        Assert.Equal([5L, 6L], features.shape);
        for (int f = 0; f < 3; f++)
        {
            var field = x[.., f];
            Assert.True(features[.., f].allclose(field.mean([1, 2, 3]), rtol: 1e-6, atol: 1e-6));
            var maxima = Enumerable.Range(0, group.Order).Select(c => field[.., c].amax([1, 2])).Aggregate((a, b) => a + b) / group.Order;
            Assert.True(features[.., 3 + f].allclose(maxima, rtol: 1e-6, atol: 1e-6));
        }
    }

    [Fact]
    public void Trivial_group_layers_are_ordinary_convolutions()
    {
        using var scope = NewDisposeScope();
        using var lifting = new LiftingConv2d(2, 3, SymmetryGroup.C1, 3);
        var x = torch.randn(1, 2, 6, 6);
        var plain = nn.functional.conv2d(x, lifting.Weight, lifting.Bias, padding: [1, 1]);
        Assert.True(lifting.call(x).squeeze(2).allclose(plain, rtol: 0, atol: 0));
    }

    [Fact]
    public void Expanded_group_filter_holds_transformed_copies_of_the_kernel()
    {
        using var scope = NewDisposeScope();
        var group = SymmetryGroup.D4;
        var weight = torch.randn([2, 3, group.Order, 5, 5]);
        var filter = GroupConv2d.ExpandFilter(weight, group).view(2, 8, 3, 8, 5, 5);
        foreach (var g in group.Elements)
        {
            int gi = group.PositionOf(g);
            // Block (g, .) = g acting on the kernel as a feature map over G: psi(g^-1 h, g^-1 u).
            var expected = TensorAction.ActOnFeatureMap(weight, g, group);
            Assert.True(BitEqual(filter.select(1, gi), expected), $"block of element {g}");
        }
    }

    [Fact]
    public void Inexact_settings_are_rejected_with_a_clear_error()
    {
        using var scope = NewDisposeScope();
        var even = Assert.Throws<ArgumentException>(() => new GroupConv2d(2, 2, SymmetryGroup.D4, kernelSize: 4));
        Assert.Contains("must be odd", even.Message, StringComparison.Ordinal);
        Assert.Contains("found 4", even.Message, StringComparison.Ordinal);

        using var fixedPool = new EquivariantPool2d(SymmetryGroup.C4, new PoolWindow(3, 2, 1));
        Assert.Equal(4, fixedPool.call(torch.randn([1, 1, 4, 7, 7])).shape[3]); // exact on 7
        var inexact = Assert.Throws<ArgumentException>(() => fixedPool.call(torch.randn([1, 1, 4, 8, 8])));
        Assert.Contains("not exactly equivariant on a height of 8 pixels", inexact.Message, StringComparison.Ordinal);

        using var conv = new GroupConv2d(2, 2, SymmetryGroup.C4, 3);
        var wrong = Assert.Throws<ArgumentException>(() => conv.call(torch.randn([1, 2, 8, 5, 5])));
        Assert.Contains("B x 2 x 4 x H x W", wrong.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 2, 8, 5, 5]", wrong.Message, StringComparison.Ordinal);
    }
}
