using OxyPlot;

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
        var exporter = new OxyPlot.SkiaSharp.PngExporter { Width = Width, Height = Height, UseTextShaping = false };
        using var stream = new MemoryStream();
        exporter.Export(Model, stream);
        return stream.ToArray();
    }

    /// <summary>Renders the figure as an SVG document (text kept as text elements).</summary>
    /// <returns>The SVG bytes (UTF-8).</returns>
    public byte[] ToSvg()
    {
        // The SkiaSharp SVG exporter measures text with the same fonts as the PNG, so both lay out alike.
        var exporter = new OxyPlot.SkiaSharp.SvgExporter { Width = Width, Height = Height };
        using var stream = new MemoryStream();
        exporter.Export(Model, stream);
        return stream.ToArray();
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
