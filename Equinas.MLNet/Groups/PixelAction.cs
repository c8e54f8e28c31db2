#nullable enable
namespace Equinas.MLNet.Groups;

/// <summary>
/// How D4 acts on a pixel grid, as index permutations computed from the element's matrix: the definition that every
/// tensor operation in the library is tested against. <c>(g . x)(u) = x(g^-1 u)</c> for centred coordinates u
/// (x to the right, y up, the origin at the grid centre, which is a pixel centre for odd sizes and a pixel corner for
/// even sizes). Rotations by an odd number of quarter turns swap height and width.
/// </summary>
internal static class PixelAction
{
    /// <summary>The (height, width) of a height x width grid after acting with <paramref name="element"/>.</summary>
    public static (int Height, int Width) OutputShape(D4Element element, int height, int width) =>
        element.Rotation % 2 == 1 ? (width, height) : (height, width);

    /// <summary>
    /// For each pixel of the transformed grid (row-major), the row-major index of the input pixel it comes from, so
    /// that <c>transformed[p] = input[SourceIndices(...)[p]]</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public static int[] SourceIndices(D4Element element, int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        var (outH, outW) = OutputShape(element, height, width);
        var (a, b, c, d) = element.Inverse().Matrix;
        var source = new int[outH * outW];
        for (int i = 0; i < outH; i++)
        {
            for (int j = 0; j < outW; j++)
            {
                // Doubled centred coordinates keep half-pixel centres integral.
                int x = (2 * j) - (outW - 1);
                int y = (outH - 1) - (2 * i);
                int xs = (a * x) + (b * y);
                int ys = (c * x) + (d * y);
                int js = (xs + (width - 1)) / 2;
                int is_ = ((height - 1) - ys) / 2;
                source[(i * outW) + j] = (is_ * width) + js;
            }
        }

        return source;
    }

    /// <summary>
    /// For a feature map over <paramref name="group"/>, the position on the group axis that each output position reads:
    /// <c>(g . f)(h) = f(g^-1 h)</c>, so entry <c>i</c> is the position of <c>g^-1 * Elements[i]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The element is not in the group.</exception>
    public static int[] GroupAxisSource(D4Element element, SymmetryGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (!group.Contains(element))
        {
            throw new ArgumentException(
                $"Element {element} is not in group {group.Name}; a feature map over {group.Name} can only be acted on by its elements.",
                nameof(element));
        }

        var inverse = element.Inverse();
        return group.Elements.Select(h => group.PositionOf(inverse * h)).ToArray();
    }
}
