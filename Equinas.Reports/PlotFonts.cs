using SkiaSharp;

namespace Equinas.Reports;

/// <summary>
/// The font the plots use. The Skia build bundled with SkiaSharp 2.88 finds fonts under /usr/share/fonts on Linux;
/// OxyPlot's default font (Segoe UI) is not there, so the plots name an installed family. Without any font the plots
/// draw no text at all: <see cref="Warning"/> says so, and how to fix it.
/// </summary>
public static class PlotFonts
{
    private static readonly string[] Preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica", "Segoe UI"];
    private static readonly Lazy<string?> Resolved = new(Resolve);

    /// <summary>Gets the font family the plots use: the first installed of DejaVu Sans, Liberation Sans, Noto Sans, Arial, Helvetica, Segoe UI, else any installed family.</summary>
    public static string Family => Resolved.Value ?? Preferred[0];

    /// <summary>Gets a warning when no font is installed (the plots then have no text), or null when a font was found.</summary>
    public static string? Warning => Resolved.Value is null
        ? "No fonts were found, so the plots have no text (titles, axes, legends). Install a font package, e.g. `sudo apt-get install fonts-dejavu-core` on Debian or Ubuntu."
        : null;

    private static string? Resolve()
    {
        var manager = SKFontManager.Default;
        var installed = manager.GetFontFamilies();
        if (installed.Length == 0)
        {
            return null;
        }

        foreach (var name in Preferred)
        {
            if (installed.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                return name;
            }
        }

        return installed[0];
    }
}
