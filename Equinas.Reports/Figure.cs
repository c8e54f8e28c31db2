using OxyPlot;
using OxyPlot.SkiaSharp;
using SkiaSharp;

namespace Equinas.Reports;

/// <summary>A plot and the size it is drawn at, written as PNG or SVG.</summary>
public sealed class Figure
{
    /// <summary>Initializes a new instance of the <see cref="Figure"/> class.</summary>
    /// <param name="model">The OxyPlot model.</param>
    /// <param name="width">Width in pixels (PNG) or user units (SVG).</param>
    /// <param name="height">Height in pixels (PNG) or user units (SVG).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public Figure(PlotModel model, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        Model = model;
        Width = width;
        Height = height;
    }

    /// <summary>Gets the OxyPlot model (change it before writing, e.g. its title).</summary>
    public PlotModel Model { get; }

    /// <summary>Gets the width.</summary>
    public int Width { get; }

    /// <summary>Gets the height.</summary>
    public int Height { get; }

    /// <summary>Renders the figure as PNG bytes.</summary>
    /// <returns>The encoded PNG.</returns>
    public byte[] ToPng()
    {
        // Text shaping would need the HarfBuzz native library, which is not installed; plain glyph runs suffice here.
        var exporter = new PngExporter { Width = Width, Height = Height, UseTextShaping = false };
        using var stream = new MemoryStream();
        exporter.Export(Model, stream);
        return stream.ToArray();
    }

    /// <summary>Renders the figure as an SVG document, every label a text element.</summary>
    /// <returns>The SVG bytes (UTF-8).</returns>
    public byte[] ToSvg()
    {
        // OxyPlot's own SVG writer keeps every label as a text element (Skia's SVG canvas turns bold and non-ASCII
        // text into outlines); it measures text with the Skia context, so the layout matches the PNG's.
        using var bitmap = new SKBitmap(1, 1);
        using var canvas = new SKCanvas(bitmap);
        using var measurer = new SkiaRenderContext { RenderTarget = RenderTarget.PixelGraphic, SkCanvas = canvas, UseTextShaping = false };
        var exporter = new OxyPlot.SvgExporter { Width = Width, Height = Height, TextMeasurer = measurer, UseVerticalTextAlignmentWorkaround = true };
        using var stream = new MemoryStream();
        exporter.Export(Model, stream);
        var svg = stream.ToArray();
        // Without the byte order mark the writer puts first: UTF-8 needs none, and some XML readers reject it.
        return svg is [0xEF, 0xBB, 0xBF, ..] ? svg[3..] : svg;
    }

    /// <summary>Writes the figure as a PNG file, atomically (a temporary file renamed over the target).</summary>
    /// <param name="path">The file to write; its folder is created.</param>
    public void SavePng(string path) => AtomicFile.Write(path, ToPng());

    /// <summary>Writes the figure as an SVG file, atomically (a temporary file renamed over the target).</summary>
    /// <param name="path">The file to write; its folder is created.</param>
    public void SaveSvg(string path) => AtomicFile.Write(path, ToSvg());

    /// <summary>Writes the figure as PNG or SVG, chosen by the extension of <paramref name="path"/>.</summary>
    /// <param name="path">A .png or .svg file.</param>
    /// <exception cref="ArgumentException">The extension is neither .png nor .svg.</exception>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        switch (Path.GetExtension(path).ToUpperInvariant())
        {
            case ".PNG":
                SavePng(path);
                break;
            case ".SVG":
                SaveSvg(path);
                break;
            default:
                throw new ArgumentException($"A plot file must end in .png or .svg; found '{path}'.", nameof(path));
        }
    }
}

/// <summary>Writes a file so that the target is either the complete new content or untouched.</summary>
internal static class AtomicFile
{
    public static void Write(string path, byte[] content)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temp, content);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}
