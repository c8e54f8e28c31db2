#nullable enable
namespace Equinas.MLNet.Groups;

/// <summary>
/// An element r<sup>k</sup> f<sup>m</sup> of the dihedral group D4, the point symmetries of the square pixel grid.
/// </summary>
/// <remarks>
/// <para>
/// Convention, fixed for the whole library: <c>r</c> is the rotation by 90 degrees counter-clockwise as the image is
/// displayed (row 0 at the top), and <c>f</c> is the reflection about the vertical axis (it swaps left and right).
/// An element <c>r^k f^m</c> first applies <c>f^m</c>, then <c>r^k</c>. The four reflections are
/// <c>f</c> (vertical axis), <c>r f</c> (main diagonal, top-left to bottom-right: a transpose),
/// <c>r^2 f</c> (horizontal axis) and <c>r^3 f</c> (anti-diagonal).
/// </para>
/// <para>
/// <see cref="Index"/> numbers the elements <c>k + 4m</c>: e, r, r^2, r^3, f, rf, r^2f, r^3f. Every group axis of a
/// feature map lists its group's elements in increasing index order.
/// </para>
/// </remarks>
internal readonly record struct D4Element
{
    /// <summary>Creates r<sup>rotation</sup> f<sup>(flip ? 1 : 0)</sup>; the rotation is taken modulo 4.</summary>
    /// <param name="rotation">Number of quarter turns counter-clockwise (any integer, taken modulo 4).</param>
    /// <param name="flip">Whether the reflection f about the vertical axis is applied first.</param>
    public D4Element(int rotation, bool flip)
    {
        Rotation = ((rotation % 4) + 4) % 4;
        Flip = flip;
    }

    /// <summary>Quarter turns counter-clockwise, 0 to 3.</summary>
    public int Rotation { get; }

    /// <summary>Whether the element contains the reflection f (then it is a reflection itself).</summary>
    public bool Flip { get; }

    /// <summary>The element's number, <c>Rotation + 4 * Flip</c>, from 0 to 7.</summary>
    public int Index => Rotation + (Flip ? 4 : 0);

    /// <summary>The identity e.</summary>
    public static D4Element Identity => new(0, false);

    /// <summary>The element with the given <see cref="Index"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is not in 0..7.</exception>
    public static D4Element FromIndex(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(index, 7);
        return new D4Element(index % 4, index >= 4);
    }

    /// <summary>All eight elements in index order.</summary>
    public static IReadOnlyList<D4Element> All { get; } = Enumerable.Range(0, 8).Select(FromIndex).ToArray();

    /// <summary>The group product: <c>(a * b)</c> acts as b first, then a.</summary>
    public static D4Element operator *(D4Element a, D4Element b) =>
        // (r^a f^m)(r^b f^n) = r^(a + (-1)^m b) f^(m+n), because f r^b = r^-b f.
        new(a.Rotation + (a.Flip ? -b.Rotation : b.Rotation), a.Flip ^ b.Flip);

    /// <summary>The group product, for languages without operator overloading.</summary>
    public static D4Element Multiply(D4Element left, D4Element right) => left * right;

    /// <summary>The inverse element: rotations turn back, reflections are their own inverses.</summary>
    public D4Element Inverse() => Flip ? this : new D4Element(-Rotation, false);

    /// <summary>
    /// The integer 2x2 matrix of the element acting on centred coordinates (x to the right, y up), row-major
    /// <c>(m00, m01, m10, m11)</c>: a point u goes to <c>M u</c>.
    /// </summary>
    public (int M00, int M01, int M10, int M11) Matrix
    {
        get
        {
            // f = [[-1, 0], [0, 1]]; r = [[0, -1], [1, 0]]; element = r^k f^m.
            (int a, int b, int c, int d) m = Flip ? (-1, 0, 0, 1) : (1, 0, 0, 1);
            for (int i = 0; i < Rotation; i++)
            {
                m = (-m.c, -m.d, m.a, m.b);
            }

            return m;
        }
    }

    /// <summary>A readable name: e, r, r2, r3, f, rf, r2f, r3f.</summary>
    public override string ToString() => (Rotation, Flip) switch
    {
        (0, false) => "e",
        (1, false) => "r",
        (_, false) => $"r{Rotation}",
        (0, true) => "f",
        (1, true) => "rf",
        _ => $"r{Rotation}f",
    };
}
