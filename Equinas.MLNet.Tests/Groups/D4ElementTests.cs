using Equinas.MLNet.Groups;
using Xunit;

namespace Equinas.MLNet.Tests.Groups;

public class D4ElementTests
{
    public static TheoryData<int> Indices() => [.. Enumerable.Range(0, 8)];

    [Fact]
    public void Product_is_associative_with_identity_and_inverses()
    {
        var all = D4Element.All;
        foreach (var a in all)
        {
            Assert.Equal(a, a * D4Element.Identity);
            Assert.Equal(a, D4Element.Identity * a);
            Assert.Equal(D4Element.Identity, a * a.Inverse());
            Assert.Equal(D4Element.Identity, a.Inverse() * a);
            foreach (var b in all)
            {
                foreach (var c in all)
                {
                    Assert.Equal((a * b) * c, a * (b * c));
                }
            }
        }
    }

    [Fact]
    public void Matrix_is_a_homomorphism_and_faithful()
    {
        foreach (var a in D4Element.All)
        {
            foreach (var b in D4Element.All)
            {
                var (a00, a01, a10, a11) = a.Matrix;
                var (b00, b01, b10, b11) = b.Matrix;
                var product = ((a00 * b00) + (a01 * b10), (a00 * b01) + (a01 * b11), (a10 * b00) + (a11 * b10), (a10 * b01) + (a11 * b11));
                Assert.Equal(product, (a * b).Matrix);
            }
        }

        Assert.Equal(8, D4Element.All.Select(g => g.Matrix).Distinct().Count());
    }

    [Fact]
    public void Generators_have_the_documented_geometry()
    {
        Assert.Equal((0, -1, 1, 0), new D4Element(1, false).Matrix); // counter-clockwise quarter turn
        Assert.Equal((-1, 0, 0, 1), new D4Element(0, true).Matrix); // mirror about the vertical axis: x -> -x
        Assert.Equal((0, -1, -1, 0), new D4Element(1, true).Matrix); // main diagonal (y = -x with y up)
        Assert.Equal((1, 0, 0, -1), new D4Element(2, true).Matrix); // mirror about the horizontal axis: y -> -y
        Assert.Equal((0, 1, 1, 0), new D4Element(3, true).Matrix); // anti-diagonal (y = x)
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void Index_round_trips_and_names_are_distinct(int index)
    {
        Assert.Equal(index, D4Element.FromIndex(index).Index);
        Assert.Equal(8, D4Element.All.Select(g => g.ToString()).Distinct().Count());
    }

    [Fact]
    public void Rotation_is_taken_modulo_four_and_bad_indices_are_rejected()
    {
        Assert.Equal(new D4Element(3, false), new D4Element(-1, false));
        Assert.Equal(new D4Element(1, true), new D4Element(5, true));
        Assert.Throws<ArgumentOutOfRangeException>(() => D4Element.FromIndex(8));
        Assert.Throws<ArgumentOutOfRangeException>(() => D4Element.FromIndex(-1));
    }
}
