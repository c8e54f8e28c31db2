using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Groups.Actions;

public class TensorActionTests : TorchTestBase
{
    public static TheoryData<int, int> Sizes() => new() { { 5, 5 }, { 6, 6 }, { 4, 7 } };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Image_action_matches_the_pixel_permutation(int height, int width)
    {
        using var scope = NewDisposeScope();
        var x = torch.randn(2, 3, height, width);
        foreach (var g in D4Element.All)
        {
            var (h, w) = PixelAction.OutputShape(g, height, width);
            var index = torch.tensor(PixelAction.SourceIndices(g, height, width).Select(i => (long)i).ToArray());
            var expected = x.reshape(2, 3, -1).index_select(2, index).reshape(2, 3, h, w);
            Assert.True(BitEqual(TensorAction.ActOnImage(x, g), expected), $"element {g}");
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Feature_map_action_is_a_group_action_for_every_subgroup(int height, int width)
    {
        using var scope = NewDisposeScope();
        foreach (var group in SymmetryGroup.All)
        {
            var f = torch.randn([2, 3, group.Order, height, width]);
            foreach (var a in group.Elements)
            {
                foreach (var b in group.Elements)
                {
                    var twice = TensorAction.ActOnFeatureMap(TensorAction.ActOnFeatureMap(f, b, group), a, group);
                    Assert.True(BitEqual(TensorAction.ActOnFeatureMap(f, a * b, group), twice), $"{group}: {a} * {b}");
                }
            }
        }
    }

    [Fact]
    public void Feature_map_action_rejects_foreign_elements_and_wrong_shapes()
    {
        using var scope = NewDisposeScope();
        var f = torch.randn([1, 2, 4, 5, 5]);
        var foreign = Assert.Throws<ArgumentException>(() => TensorAction.ActOnFeatureMap(f, new D4Element(0, true), SymmetryGroup.C4));
        Assert.Contains("not in group C4", foreign.Message, StringComparison.Ordinal);
        var shape = Assert.Throws<ArgumentException>(() => TensorAction.ActOnFeatureMap(f, D4Element.Identity, SymmetryGroup.D4));
        Assert.Contains("B x C x 8 x H x W", shape.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 2, 4, 5, 5]", shape.Message, StringComparison.Ordinal);
    }
}
