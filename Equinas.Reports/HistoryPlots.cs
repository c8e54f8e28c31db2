using System.Globalization;
using System.Text;
using Equinas.MLNet;

namespace Equinas.Reports;

/// <summary>Which files <see cref="HistoryPlots.Write"/> writes, and what it adds to the plots.</summary>
public sealed record HistoryPlotOptions
{
    /// <summary>Gets fixed networks to compare the search with (drawn in the accuracy and error plots); empty by default.</summary>
    public IReadOnlyList<Baseline> Baselines { get; init; } = [];

    /// <summary>Gets the line under the error plot's title (e.g. the final model's test error), or null for the default.</summary>
    public string? ErrorNote { get; init; }

    /// <summary>Gets whether PNG files are written (default true).</summary>
    public bool Png { get; init; } = true;

    /// <summary>Gets whether SVG files are written too (default false).</summary>
    public bool Svg { get; init; }

    /// <summary>Gets a prefix for the file names, e.g. "search-" (default none).</summary>
    public string FilePrefix { get; init; } = "";
}

/// <summary>One plot file written by <see cref="HistoryPlots.Write"/>.</summary>
/// <param name="Path">The full path of the file.</param>
/// <param name="Caption">What the plot shows, one sentence.</param>
public sealed record WrittenPlot(string Path, string Caption);

/// <summary>The standard plots of a model's search history, for reports.</summary>
public static class HistoryPlots
{
    /// <summary>The accuracy plot's file name without extension: per generation (evolution) or per epoch (the other modes).</summary>
    public const string AccuracyName = "validation-accuracy";

    /// <summary>The error-against-parameters plot's file name without extension (evolution).</summary>
    public const string ErrorName = "error-vs-parameters";

    /// <summary>The z plot's file name without extension (differentiable search).</summary>
    public const string ZName = "z-per-layer";

    /// <summary>The element-mass plot's file name without extension (differentiable search).</summary>
    public const string MassName = "element-mass-per-layer";

    /// <summary>
    /// The plots the history has data for: for an evolutionary search, validation accuracy per generation and error
    /// against parameters; for the other modes, accuracy per epoch; for a differentiable search also z per layer and
    /// the element mass per layer. An empty history gives none.
    /// </summary>
    /// <param name="history">The model's history (<see cref="EquinasModelParameters.History"/>).</param>
    /// <param name="options">Baselines and notes, or null.</param>
    /// <returns>Each plot's file name (without extension), caption and figure.</returns>
    public static IReadOnlyList<(string Name, string Caption, Figure Figure)> Figures(EquinasHistory history, HistoryPlotOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(history);
        options ??= new HistoryPlotOptions();
        var figures = new List<(string, string, Figure)>();
        if (history.Candidates.Count > 0)
        {
            figures.Add((AccuracyName, "Validation accuracy of every candidate per generation; the line joins the best of each generation.", SearchPlots.SearchAccuracy(history.Candidates, options.Baselines)));
            figures.Add((ErrorName, "Validation error of every candidate against its parameter count (log scale).", SearchPlots.ErrorVsParameters(history.Candidates, options.Baselines, options.ErrorNote)));
        }
        else if (history.Epochs.Count > 0)
        {
            string what = history.Mode == SearchMode.Differentiable ? "Differentiable search" : "Fixed groups";
            figures.Add((AccuracyName, "Validation and training accuracy per epoch.", SearchPlots.EpochAccuracy([("", history.Epochs)], $"{what}: accuracy per epoch")));
        }

        if (history.Epochs.Any(e => e.Z is { Count: > 0 }))
        {
            figures.Add((ZName, "Mixture weights z per layer over training, stacked (conjugate member groups summed).", SearchPlots.ZPerLayer(history.Epochs)));
        }

        if (history.Epochs.Any(e => e.ElementMass is { Count: > 0 }))
        {
            figures.Add((MassName, "Mass of z on each element of D4 per layer over training.", SearchPlots.ElementMassPerLayer(history.Epochs)));
        }

        return figures;
    }

    /// <summary>Writes the plots of <see cref="Figures"/> into a folder (each file atomically).</summary>
    /// <param name="history">The model's history.</param>
    /// <param name="folder">The folder; created if missing.</param>
    /// <param name="options">Formats, baselines and notes, or null.</param>
    /// <returns>The files written, PNG before SVG for each plot.</returns>
    public static IReadOnlyList<WrittenPlot> Write(EquinasHistory history, string folder, HistoryPlotOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        options ??= new HistoryPlotOptions();
        var written = new List<WrittenPlot>();
        foreach (var (name, caption, figure) in Figures(history, options))
        {
            written.AddRange(Save(figure, Path.Combine(folder, options.FilePrefix + name), caption, options.Png, options.Svg));
        }

        return written;
    }

    /// <summary>Writes one figure as PNG and/or SVG next to <paramref name="pathWithoutExtension"/>.</summary>
    /// <param name="figure">The figure.</param>
    /// <param name="pathWithoutExtension">The file path without .png or .svg.</param>
    /// <param name="caption">The caption recorded with each file.</param>
    /// <param name="png">Whether to write a PNG.</param>
    /// <param name="svg">Whether to write an SVG.</param>
    /// <returns>The files written.</returns>
    public static IReadOnlyList<WrittenPlot> Save(Figure figure, string pathWithoutExtension, string caption, bool png = true, bool svg = false)
    {
        ArgumentNullException.ThrowIfNull(figure);
        ArgumentNullException.ThrowIfNull(pathWithoutExtension);
        var written = new List<WrittenPlot>();
        if (png)
        {
            figure.SavePng(pathWithoutExtension + ".png");
            written.Add(new WrittenPlot(Path.GetFullPath(pathWithoutExtension + ".png"), caption));
        }

        if (svg)
        {
            figure.SaveSvg(pathWithoutExtension + ".svg");
            written.Add(new WrittenPlot(Path.GetFullPath(pathWithoutExtension + ".svg"), caption));
        }

        return written;
    }

    /// <summary>
    /// Markdown that shows the plots: one image per plot with its caption, linked relative to the folder the Markdown
    /// file is in (PNG preferred where a plot has both); "no plots" when there are none.
    /// </summary>
    /// <param name="plots">The files written.</param>
    /// <param name="markdownFolder">The folder of the Markdown file.</param>
    /// <returns>The Markdown text, ending with a blank line.</returns>
    public static string Markdown(IEnumerable<WrittenPlot> plots, string markdownFolder)
    {
        ArgumentNullException.ThrowIfNull(plots);
        var md = new StringBuilder();
        var shown = plots.GroupBy(p => Path.ChangeExtension(p.Path, null), StringComparer.Ordinal)
            .Select(g => g.OrderBy(p => Path.GetExtension(p.Path).Equals(".png", StringComparison.OrdinalIgnoreCase) ? 0 : 1).First())
            .ToList();
        if (shown.Count == 0)
        {
            md.Append("No plots: the history has no candidates or epochs.\n\n");
        }

        foreach (var plot in shown)
        {
            string link = Path.GetRelativePath(markdownFolder, plot.Path).Replace('\\', '/');
            md.Append(CultureInfo.InvariantCulture, $"![{plot.Caption}]({Uri.EscapeDataString(link).Replace("%2F", "/", StringComparison.Ordinal)})\n\n{plot.Caption}\n\n");
        }

        return md.ToString();
    }

    /// <summary>Writes a text file atomically (a temporary file in the same folder renamed over the target), as UTF-8.</summary>
    /// <param name="path">The file.</param>
    /// <param name="text">Its content.</param>
    public static void WriteText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        AtomicFile.Write(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));
    }
}
