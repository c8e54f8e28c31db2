using System.Globalization;
using SkiaSharp;

namespace Equinas.Cli;

// The plots are drawn with SkiaSharp 2.88 directly rather than with a plotting library: ScottPlot, the plotting
// library served here, exists only as 5.1.59, which needs SkiaSharp 3.119, and Microsoft.ML.ImageAnalytics 5.0.1
// breaks with SkiaSharp 3 (SKBitmap.GetPixelSpan is gone). These few charts need only axes, lines, points, areas and a
// legend.

/// <summary>A PNG figure of one or more panels.</summary>
internal sealed class Figure : IDisposable
{
    private readonly SKSurface _surface;

    public Figure(int width, int height)
    {
        Width = width;
        Height = height;
        _surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        Canvas.Clear(SKColors.White);
    }

    public int Width { get; }

    public int Height { get; }

    public SKCanvas Canvas => _surface.Canvas;

    /// <summary>Writes the figure as a PNG file.</summary>
    public void Save(string path)
    {
        using var image = _surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
    }

    public void Dispose() => _surface.Dispose();
}

/// <summary>One panel: a frame with ticks, grid, labels and data coordinates.</summary>
internal sealed class Axes
{
    private static readonly Lazy<SKTypeface> Face = new(() => LoadTypeface("DejaVuSans.ttf"));
    private static readonly Lazy<SKTypeface> BoldFace = new(() => LoadTypeface("DejaVuSans-Bold.ttf"));
    private readonly SKCanvas _canvas;
    private readonly SKRect _plot;

    public Axes(SKCanvas canvas, SKRect area, (double Min, double Max) x, (double Min, double Max) y)
    {
        _canvas = canvas;
        _plot = new SKRect(area.Left + 70, area.Top + 34, area.Right - 16, area.Bottom - 52);
        XRange = x.Max > x.Min ? x : (x.Min - 0.5, x.Max + 0.5);
        YRange = y.Max > y.Min ? y : (y.Min - 0.5, y.Max + 0.5);
    }

    public (double Min, double Max) XRange { get; }

    public (double Min, double Max) YRange { get; }

    public SKRect Plot => _plot;

    public static SKColor[] Palette { get; } =
    [
        new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189),
        new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207),
    ];

    public float X(double value) => (float)(_plot.Left + ((value - XRange.Min) / (XRange.Max - XRange.Min) * _plot.Width));

    public float Y(double value) => (float)(_plot.Bottom - ((value - YRange.Min) / (YRange.Max - YRange.Min) * _plot.Height));

    /// <summary>Title, axis labels, grid lines and tick labels.</summary>
    public void Frame(string title, string xLabel, string yLabel, Func<double, string>? xFormat = null, Func<double, string>? yFormat = null, bool integerX = false)
    {
        using var grid = new SKPaint { Color = new SKColor(225, 225, 225), StrokeWidth = 1, IsAntialias = true };
        using var frame = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.2f, Style = SKPaintStyle.Stroke, IsAntialias = true };
        using var text = TextPaint(13, SKTextAlign.Center);
        using var tickRight = TextPaint(13, SKTextAlign.Right);
        foreach (var t in Ticks(XRange.Min, XRange.Max, 7, integerX))
        {
            float px = X(t);
            _canvas.DrawLine(px, _plot.Top, px, _plot.Bottom, grid);
            _canvas.DrawText((xFormat ?? Default)(t), px, _plot.Bottom + 18, text);
        }

        foreach (var t in Ticks(YRange.Min, YRange.Max, 6, integer: false))
        {
            float py = Y(t);
            _canvas.DrawLine(_plot.Left, py, _plot.Right, py, grid);
            _canvas.DrawText((yFormat ?? Default)(t), _plot.Left - 6, py + 4, tickRight);
        }

        _canvas.DrawRect(_plot, frame);
        using var titlePaint = TextPaint(16, SKTextAlign.Center, bold: true);
        _canvas.DrawText(title, _plot.MidX, _plot.Top - 12, titlePaint);
        using var label = TextPaint(14, SKTextAlign.Center);
        _canvas.DrawText(xLabel, _plot.MidX, _plot.Bottom + 40, label);
        _canvas.Save();
        _canvas.RotateDegrees(-90, _plot.Left - 54, _plot.MidY);
        _canvas.DrawText(yLabel, _plot.Left - 54, _plot.MidY, label);
        _canvas.Restore();
    }

    public void Line(IReadOnlyList<double> xs, IReadOnlyList<double> ys, SKColor color, float width = 2.5f, bool markers = true, bool dashed = false)
    {
        using var paint = new SKPaint { Color = color, StrokeWidth = width, Style = SKPaintStyle.Stroke, IsAntialias = true };
        if (dashed)
        {
            paint.PathEffect = SKPathEffect.CreateDash([8, 5], 0);
        }

        using var path = new SKPath();
        for (int i = 0; i < xs.Count; i++)
        {
            if (i == 0)
            {
                path.MoveTo(X(xs[i]), Y(ys[i]));
            }
            else
            {
                path.LineTo(X(xs[i]), Y(ys[i]));
            }
        }

        _canvas.DrawPath(path, paint);
        if (markers)
        {
            Points(xs, ys, color, 4.5f);
        }
    }

    public void Points(IReadOnlyList<double> xs, IReadOnlyList<double> ys, SKColor color, float radius, bool ring = false)
    {
        using var paint = new SKPaint { Color = color, IsAntialias = true, Style = ring ? SKPaintStyle.Stroke : SKPaintStyle.Fill, StrokeWidth = 2 };
        for (int i = 0; i < xs.Count; i++)
        {
            _canvas.DrawCircle(X(xs[i]), Y(ys[i]), radius, paint);
        }
    }

    /// <summary>The area between two curves.</summary>
    public void Band(IReadOnlyList<double> xs, IReadOnlyList<double> lower, IReadOnlyList<double> upper, SKColor color)
    {
        using var paint = new SKPaint { Color = color, IsAntialias = true, Style = SKPaintStyle.Fill };
        using var path = new SKPath();
        path.MoveTo(X(xs[0]), Y(upper[0]));
        for (int i = 1; i < xs.Count; i++)
        {
            path.LineTo(X(xs[i]), Y(upper[i]));
        }

        for (int i = xs.Count - 1; i >= 0; i--)
        {
            path.LineTo(X(xs[i]), Y(lower[i]));
        }

        path.Close();
        _canvas.DrawPath(path, paint);
    }

    public void Rectangle(double x0, double y0, double x1, double y1, SKColor color)
    {
        using var paint = new SKPaint { Color = color, IsAntialias = true, Style = SKPaintStyle.Fill };
        _canvas.DrawRect(SKRect.Create(Math.Min(X(x0), X(x1)), Math.Min(Y(y0), Y(y1)), Math.Abs(X(x1) - X(x0)), Math.Abs(Y(y1) - Y(y0))), paint);
    }

    public void VerticalMarker(double x, string label, SKColor color)
    {
        using var paint = new SKPaint { Color = color, StrokeWidth = 1.5f, IsAntialias = true, PathEffect = SKPathEffect.CreateDash([4, 4], 0) };
        _canvas.DrawLine(X(x), _plot.Top, X(x), _plot.Bottom, paint);
        using var text = TextPaint(12, SKTextAlign.Left);
        text.Color = color;
        _canvas.DrawText(label, X(x) + 4, _plot.Top + 14, text);
    }

    public void Text(string value, double x, double y, float size = 12, SKTextAlign align = SKTextAlign.Left, float dx = 0, float dy = 0)
    {
        using var paint = TextPaint(size, align);
        _canvas.DrawText(value, X(x) + dx, Y(y) + dy, paint);
    }

    /// <summary>A legend box in a corner of the plot ("tl", "tr", "bl", "br"), or right of it ("out").</summary>
    public void Legend(IReadOnlyList<(string Label, SKColor Color, LegendMark Mark)> entries, string corner = "br")
    {
        if (entries.Count == 0)
        {
            return;
        }

        using var text = TextPaint(13, SKTextAlign.Left);
        float width = entries.Max(e => text.MeasureText(e.Label)) + 44, height = (entries.Count * 20) + 10;
        float left = corner switch
        {
            "tl" or "bl" => _plot.Left + 8,
            "out" => _plot.Right + 10,
            _ => _plot.Right - width - 8,
        };
        float top = corner switch
        {
            "tl" or "tr" or "out" => _plot.Top + 8,
            _ => _plot.Bottom - height - 8,
        };
        using var box = new SKPaint { Color = new SKColor(255, 255, 255, 230), Style = SKPaintStyle.Fill };
        using var border = new SKPaint { Color = new SKColor(160, 160, 160), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        var rect = SKRect.Create(left, top, width, height);
        _canvas.DrawRect(rect, box);
        _canvas.DrawRect(rect, border);
        for (int i = 0; i < entries.Count; i++)
        {
            var (label, color, mark) = entries[i];
            float cy = top + 15 + (i * 20);
            using var paint = new SKPaint { Color = color, IsAntialias = true, StrokeWidth = mark == LegendMark.Ring ? 2 : 3, Style = mark == LegendMark.Ring ? SKPaintStyle.Stroke : SKPaintStyle.Fill };
            switch (mark)
            {
                case LegendMark.Line:
                    _canvas.DrawLine(left + 8, cy, left + 32, cy, paint);
                    break;
                case LegendMark.Box:
                    _canvas.DrawRect(SKRect.Create(left + 10, cy - 7, 18, 14), paint);
                    break;
                default:
                    _canvas.DrawCircle(left + 20, cy, 5, paint);
                    break;
            }

            _canvas.DrawText(label, left + 38, cy + 5, text);
        }
    }

    public static SKPaint TextPaint(float size, SKTextAlign align, bool bold = false) => new()
    {
        Color = new SKColor(30, 30, 30),
        TextSize = size,
        IsAntialias = true,
        TextAlign = align,
        Typeface = bold ? BoldFace.Value : Face.Value,
    };

    /// <summary>Round tick values covering [min, max].</summary>
    public static IEnumerable<double> Ticks(double min, double max, int target, bool integer)
    {
        double raw = (max - min) / Math.Max(1, target);
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * magnitude).First(s => s >= raw);
        if (integer)
        {
            step = Math.Max(1, Math.Round(step));
        }

        for (double t = Math.Ceiling(min / step) * step; t <= max + (step * 1e-9); t += step)
        {
            yield return Math.Abs(t) < step * 1e-9 ? 0 : t;
        }
    }

    private static string Default(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    private static SKTypeface LoadTypeface(string name)
    {
        // The Linux Skia build bundled with ImageAnalytics may find no fonts by family name: prefer a font file.
        foreach (var file in new[] { "/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/dejavu/", "/usr/share/fonts/TTF/" }.Select(d => d + name))
        {
            if (File.Exists(file) && SKTypeface.FromFile(file) is { } face)
            {
                return face;
            }
        }

        return SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;
    }
}

/// <summary>How a legend entry is drawn.</summary>
internal enum LegendMark
{
    Line,
    Dot,
    Ring,
    Box,
}
