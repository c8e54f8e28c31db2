using SkiaSharp;

namespace Equinas.Reports.Tests;

/// <summary>A decoded PNG and the pixel measures the tests use: ink (non-white), dark grey text-like ink, colours.</summary>
internal sealed class Picture
{
    private readonly SKColor[] _pixels;

    private Picture(int width, int height, SKColor[] pixels)
    {
        Width = width;
        Height = height;
        _pixels = pixels;
    }

    public int Width { get; }

    public int Height { get; }

    public static Picture Decode(byte[] png)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException("The bytes are not a decodable image.");
        return new Picture(bitmap.Width, bitmap.Height, bitmap.Pixels);
    }

    public SKColor this[int x, int y] => _pixels[(y * Width) + x];

    /// <summary>The whole picture.</summary>
    public SKRectI All => new(0, 0, Width, Height);

    /// <summary>Pixels that are not (nearly) white.</summary>
    public int Ink(SKRectI region) => Count(region, c => c.Red < 235 || c.Green < 235 || c.Blue < 235);

    /// <summary>Pixels close to a colour (each channel within <paramref name="tolerance"/>).</summary>
    public int Near(SKColor color, SKRectI region, int tolerance = 12) =>
        Count(region, c => Math.Abs(c.Red - color.Red) <= tolerance && Math.Abs(c.Green - color.Green) <= tolerance && Math.Abs(c.Blue - color.Blue) <= tolerance);

    /// <summary>Pixels that differ between two pictures of the same size.</summary>
    public int Difference(Picture other, SKRectI region)
    {
        int count = 0;
        for (int y = region.Top; y < region.Bottom; y++)
        {
            for (int x = region.Left; x < region.Right; x++)
            {
                var (a, b) = (this[x, y], other[x, y]);
                if (Math.Abs(a.Red - b.Red) + Math.Abs(a.Green - b.Green) + Math.Abs(a.Blue - b.Blue) > 60)
                {
                    count++;
                }
            }
        }

        return count;
    }

    /// <summary>
    /// Whether a region holds text: dark grey ink (the plots' text colour) spread over at least 7 rows and 25
    /// columns, with many light-to-dark transitions along rows and columns (glyph strokes), unlike lines or dots.
    /// </summary>
    public bool HasText(SKRectI region, out string measured)
    {
        int rows = 0, transitions = 0, dark = 0, minX = int.MaxValue, maxX = -1;
        for (int y = region.Top; y < region.Bottom; y++)
        {
            bool any = false, previous = false;
            for (int x = region.Left; x < region.Right; x++)
            {
                bool d = IsDark(this[x, y]);
                if (d)
                {
                    dark++;
                    any = true;
                    minX = Math.Min(minX, x);
                    maxX = Math.Max(maxX, x);
                    if (!previous)
                    {
                        transitions++;
                    }
                }

                previous = d;
            }

            rows += any ? 1 : 0;
        }

        for (int x = region.Left; x < region.Right; x++)
        {
            bool previous = false;
            for (int y = region.Top; y < region.Bottom; y++)
            {
                bool d = IsDark(this[x, y]);
                transitions += d && !previous ? 1 : 0;
                previous = d;
            }
        }

        int columns = maxX < 0 ? 0 : maxX - minX + 1;
        measured = $"{dark} dark pixels over {rows} rows and {columns} columns, {transitions} transitions";
        return rows >= 7 && columns >= 25 && dark >= 60 && transitions >= 60;
    }

    /// <summary>Dark and nearly grey: the text colour (30, 30, 30) and its anti-aliased edges, not coloured series.</summary>
    private static bool IsDark(SKColor c) =>
        c.Red < 120 && c.Green < 120 && c.Blue < 120 && Math.Abs(c.Red - c.Green) < 30 && Math.Abs(c.Green - c.Blue) < 30;

    private int Count(SKRectI region, Func<SKColor, bool> test)
    {
        int count = 0;
        for (int y = region.Top; y < region.Bottom; y++)
        {
            for (int x = region.Left; x < region.Right; x++)
            {
                count += test(this[x, y]) ? 1 : 0;
            }
        }

        return count;
    }
}
