using Equinas.MLNet.Groups;
using Xunit;

namespace Equinas.MLNet.Tests.Groups;

public class PixelActionTests
{
    public static TheoryData<int, int> Sizes() => new() { { 1, 1 }, { 3, 3 }, { 4, 4 }, { 3, 5 }, { 4, 6 }, { 5, 2 } };

    private static int[] Apply(D4Element g, int[] grid, int height, int width) =>
        PixelAction.SourceIndices(g, height, width).Select(i => grid[i]).ToArray();

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Grid_action_is_a_group_action(int height, int width)
    {
        var grid = Enumerable.Range(0, height * width).ToArray();
        foreach (var a in D4Element.All)
        {
            foreach (var b in D4Element.All)
            {
                // (a b) . x = a . (b . x)
                var (hb, wb) = PixelAction.OutputShape(b, height, width);
                var composed = Apply(a, Apply(b, grid, height, width), hb, wb);
                Assert.Equal(Apply(a * b, grid, height, width), composed);
            }

            var permuted = Apply(a, grid, height, width);
            Assert.Equal(grid, permuted.Order().ToArray());
        }
    }

    [Fact]
    public void Generators_move_pixels_as_documented()
    {
        // 2 x 3 grid:  0 1 2
        //              3 4 5
        var grid = Enumerable.Range(0, 6).ToArray();
        // Counter-clockwise quarter turn: the right column becomes the top row.
        Assert.Equal([2, 5, 1, 4, 0, 3], Apply(new D4Element(1, false), grid, 2, 3));
        // f mirrors left and right.
        Assert.Equal([2, 1, 0, 5, 4, 3], Apply(new D4Element(0, true), grid, 2, 3));
        // r f is the transpose.
        Assert.Equal([0, 3, 1, 4, 2, 5], Apply(new D4Element(1, true), grid, 2, 3));
        // r^2 f mirrors top and bottom.
        Assert.Equal([3, 4, 5, 0, 1, 2], Apply(new D4Element(2, true), grid, 2, 3));
    }

    [Fact]
    public void Group_axis_action_is_a_group_action_on_every_subgroup()
    {
        foreach (var group in SymmetryGroup.All)
        {
            var axis = Enumerable.Range(0, group.Order).ToArray();
            foreach (var a in group.Elements)
            {
                foreach (var b in group.Elements)
                {
                    var bx = PixelAction.GroupAxisSource(b, group).Select(i => axis[i]).ToArray();
                    var abx = PixelAction.GroupAxisSource(a, group).Select(i => bx[i]).ToArray();
                    Assert.Equal(PixelAction.GroupAxisSource(a * b, group).Select(i => axis[i]).ToArray(), abx);
                }
            }
        }

        Assert.Throws<ArgumentException>(() => PixelAction.GroupAxisSource(new D4Element(1, false), SymmetryGroup.D1V));
    }
}
