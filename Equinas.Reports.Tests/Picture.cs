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
    /// Whether a region holds text: at least <paramref name="glyphs"/> letter- or word-sized blobs of dark grey ink
    /// (the plots' text colour): 4-connected groups of at least 8 pixels whose bounding box is 5 to 150 pixels long
    /// one way and at least 4 the other, horizontal or rotated. Lines (thin however long), dots, ticks and coloured
    /// series do not count.
    /// </summary>
    public bool HasText(SKRectI region, out string measured, int glyphs = 3)
    {
        int width = region.Width, height = region.Height;
        var seen = new bool[width * height];
        int found = 0, blobs = 0;
        var stack = new Stack<(int X, int Y)>();
        for (int y0 = 0; y0 < height; y0++)
        {
            for (int x0 = 0; x0 < width; x0++)
            {
                if (seen[(y0 * width) + x0] || !IsDark(this[region.Left + x0, region.Top + y0]))
                {
                    continue;
                }

                blobs++;
                int pixels = 0, minX = x0, maxX = x0, minY = y0, maxY = y0;
                seen[(y0 * width) + x0] = true;
                stack.Push((x0, y0));
                while (stack.Count > 0)
                {
                    var (x, y) = stack.Pop();
                    pixels++;
                    (minX, maxX, minY, maxY) = (Math.Min(minX, x), Math.Max(maxX, x), Math.Min(minY, y), Math.Max(maxY, y));
                    foreach (var (nx, ny) in new[] { (x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1) })
                    {
                        if (nx >= 0 && ny >= 0 && nx < width && ny < height && !seen[(ny * width) + nx] && IsDark(this[region.Left + nx, region.Top + ny]))
                        {
                            seen[(ny * width) + nx] = true;
                            stack.Push((nx, ny));
                        }
                    }
                }

                int longSide = Math.Max(maxX - minX, maxY - minY) + 1, shortSide = Math.Min(maxX - minX, maxY - minY) + 1;
                if (pixels >= 8 && longSide is >= 5 and <= 150 && shortSide >= 4)
                {
                    found++;
                }
            }
        }

        measured = $"{found} text-sized blobs of dark ink among {blobs} blobs in {region}";
        return found >= glyphs;
    }

    /// <summary>
    /// Text ink: grey (channels within 30 of each other) and darker than 165 on average, so the text colour (30, 30,
    /// 30) and most of its anti-aliased edge (which joins a glyph's strokes) count, coloured series and light grey
    /// markers and grid lines do not.
    /// </summary>
    private static bool IsDark(SKColor c) =>
        c.Red + c.Green + c.Blue < 3 * 165 && Math.Abs(c.Red - c.Green) < 30 && Math.Abs(c.Green - c.Blue) < 30;

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
