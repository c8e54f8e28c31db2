using System.Globalization;
using System.Text;
using Equinas.Reports;

namespace RotatedDigits;

/// <summary>The results table (console and Markdown), the plots and the Markdown report.</summary>
internal static class Report
{
    /// <summary>The accuracy plot of the fixed baselines' epochs, without extension.</summary>
    public const string BaselinesName = "fixed-baselines-accuracy";

    /// <summary>
    /// Writes the search's plots (accuracy per generation and error against parameters, the fixed baselines drawn in)
    /// and the baselines' accuracy per epoch into <paramref name="folder"/>, as PNG.
    /// </summary>
    public static IReadOnlyList<WrittenPlot> WritePlots(IReadOnlyList<ModelRun> runs, string folder)
    {
        var search = runs[0];
        var fixedRuns = runs.Skip(1).ToArray();
        var options = new HistoryPlotOptions
        {
            Baselines = fixedRuns.Select(r => new Baseline(r.Name, r.Parameters.ParameterCount, r.ValidationAccuracy)).ToArray(),
            ErrorNote = Invariant($"validation error; test error of the searched model {(1 - search.Metrics.MicroAccuracy) * 100:0.##}%, {string.Join(", ", fixedRuns.Select(r => Invariant($"{r.Name} {(1 - r.Metrics.MicroAccuracy) * 100:0.##}%")))}"),
        };
        var plots = HistoryPlots.Write(search.Parameters.History, folder, options).ToList();
        var baselines = SearchPlots.EpochAccuracy(fixedRuns.Select(r => (r.Name, r.Parameters.History.Epochs)).ToArray(), "Fixed baselines: accuracy per epoch");
        plots.AddRange(HistoryPlots.Save(baselines, Path.Combine(folder, BaselinesName), "Validation and training accuracy per epoch of the fixed baselines."));
        return plots;
    }

    private static readonly string[] Header = ["Model", "Layer groups", "Parameters", "Val. acc.", "Test acc.", "Test log-loss", "Training time"];

    /// <summary>The results as a fixed-width text table.</summary>
    public static IEnumerable<string> Table(IReadOnlyList<ModelRun> runs)
    {
        var rows = runs.Select(Cells).Prepend(Header).ToList();
        var widths = Enumerable.Range(0, Header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        string Line(string[] cells) => "  " + string.Join("  ", cells.Select((cell, c) => c < 2 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c])));
        yield return Line(rows[0]);
        yield return "  " + string.Join("  ", widths.Select(w => new string('-', w)));
        foreach (var row in rows.Skip(1))
        {
            yield return Line(row);
        }
    }

    /// <summary>The report: data, settings, results, and the search history generation by generation.</summary>
    public static string Markdown(RunSettings settings, RotatedMnist data, IReadOnlyList<ModelRun> runs, string modelPath, string reloadCheck, TimeSpan elapsed, string plots)
    {
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');

        Line("# Rotated MNIST: per-layer symmetry search with Equinas.MLNet");
        Line();
        Line(Invariant($"Generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC by `examples/RotatedDigits` in {ConsoleProgress.Format(elapsed)} on {Environment.ProcessorCount} cores."));
        Line();
        Line("## Data");
        Line();
        Line(Invariant($"- Source: {RotatedMnist.Source}, MNIST digits (Yann LeCun and Corinna Cortes)."));
        Line(Invariant($"- Splits: {data.Train.Count} training, {data.Validation.Count} validation (selects candidates), {data.Test.Count} test digits of {data.Height} x {data.Width}."));
        Line(Invariant($"- Every image rotated about its centre by its own angle drawn uniformly from [0, 360) degrees (`System.Random` seeded {settings.Seed}), bilinear interpolation, zero outside; pixels scaled to [0, 1]."));
        Line();
        Line("## Settings");
        Line();
        Line(Invariant($"- Seed {settings.Seed} (rotations, weight initialisation, data order)."));
        int candidates = runs[0].Parameters.History.Candidates.Count;
        Line(Invariant($"- Search: `EquinasEvolve` from all-D4, population {settings.Population}, {settings.Generations} generation(s), {settings.EpochsPerGeneration} epoch per candidate per generation, {settings.Moves} moves, the winner trained {settings.FinalEpochs} epoch more ({settings.LineageEpochs:0.###} epochs along the winning lineage; {candidates} trainings in all)."));
        Line(Invariant($"- Baselines: `SearchMode.Fixed` with `Group` C1, C4 and D4, each trained as many epochs as the whole search ({runs[1].Parameters.History.Settings?["Epochs"]}): the same compute, side by side on one libtorch thread each."));
        Line("- Network and optimiser: the library defaults (5 conv layers 16-32-32-64-160 scalar channels for 10 classes, 5 x 5 kernels, Adam 0.001, batch 64).");
        Line();
        Line("## Results (test split)");
        Line();
        Line("| " + string.Join(" | ", Header) + " |");
        Line("|" + string.Join("|", Header.Select((_, c) => c < 2 ? " -- " : " --: ")) + "|");
        foreach (var run in runs)
        {
            Line("| " + string.Join(" | ", Cells(run)) + " |");
        }

        Line();
        Line("Validation accuracy is on the validation split after training (for the search: the best final candidate's). Training time is `Fit` of the whole pipeline, data reading included.");
        Line();
        Line("## Plots");
        Line();
        md.Append(plots);
        Line("## Search history");
        Line();
        Line("Per generation, the best candidate (highest validation accuracy, then lowest validation loss); generation 0 is the initial all-D4 training.");
        Line();
        Line("| Generation | Candidates | Best candidate's groups | Change from its parent | Parameters | Val. acc. | Val. loss |");
        Line("| --: | --: | -- | -- | --: | --: | --: |");
        foreach (var generation in runs[0].Parameters.History.Candidates.GroupBy(c => c.Generation).OrderBy(g => g.Key))
        {
            var best = generation.OrderByDescending(c => c.ValidationAccuracy).ThenBy(c => c.ValidationLoss).ThenBy(c => c.Id).First();
            Line(Invariant($"| {generation.Key} | {generation.Count()} | {string.Join("-", best.LayerGroups)} | {best.ChangeText} | {best.Parameters:N0} | {best.ValidationAccuracy:P2} | {best.ValidationLoss:F4} |"));
        }

        Line();
        Line("## Saved model");
        Line();
        Line(Invariant($"- `{modelPath}` (searched model; load it with `mlContext.Model.Load`)."));
        Line(Invariant($"- Reloaded with a new `MLContext`: {reloadCheck}."));
        return md.ToString();
    }

    private static string[] Cells(ModelRun run) =>
    [
        run.Name,
        string.Join("-", run.Parameters.LayerGroups),
        Invariant($"{run.Parameters.ParameterCount:N0}"),
        Invariant($"{run.ValidationAccuracy:P2}"),
        Invariant($"{run.Metrics.MicroAccuracy:P2}"),
        Invariant($"{run.Metrics.LogLoss:F4}"),
        Invariant($"{run.TrainingTime.TotalSeconds:F1} s"),
    ];

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
