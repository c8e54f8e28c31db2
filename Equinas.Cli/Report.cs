using System.Globalization;
using System.Text;
using Equinas.MLNet;
using SkiaSharp;

namespace Equinas.Cli;

/// <summary>The training report: PNG plots and report.md, from the model's search history (and the CLI's run entry).</summary>
internal static class Report
{
    public const string AccuracyFile = "validation-accuracy.png";
    public const string ZFile = "z-per-layer.png";
    public const string ErrorFile = "error-vs-parameters.png";
    public const string MarkdownFile = "report.md";

    /// <summary>Writes the report into <paramref name="folder"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(EquinasModelParameters model, RunInfo? run, string folder)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        var history = model.History;
        if (history.Candidates.Count > 0)
        {
            written.Add(Save(folder, AccuracyFile, f => EvolutionAccuracy(f, history)));
            written.Add(Save(folder, ErrorFile, f => ErrorVsParameters(f, history, run)));
        }
        else if (history.Epochs.Count > 0)
        {
            written.Add(Save(folder, AccuracyFile, f => EpochAccuracy(f, history)));
        }

        var zEpochs = history.Epochs.Where(e => e.Z is { Count: > 0 }).ToList();
        if (zEpochs.Count > 0)
        {
            int layers = zEpochs[0].Z!.Count;
            written.Add(Save(folder, ZFile, f => ZPerLayer(f, zEpochs), 1000, 80 + (layers * 230)));
        }

        string markdown = Path.Combine(folder, MarkdownFile);
        File.WriteAllText(markdown, Markdown(model, run, written.Select(Path.GetFileName).ToList()!));
        written.Add(markdown);
        return written;
    }

    private static string Save(string folder, string name, Action<Figure> draw, int width = 1000, int height = 600)
    {
        string path = Path.Combine(folder, name);
        using var figure = new Figure(width, height);
        draw(figure);
        figure.Save(path);
        return path;
    }

    private static (double, double) Padded(IEnumerable<double> values, double lo = 0, double hi = 100)
    {
        var list = values.Where(double.IsFinite).ToList();
        if (list.Count == 0)
        {
            return (lo, hi);
        }

        double min = list.Min(), max = list.Max(), pad = Math.Max((max - min) * 0.1, 1);
        return (Math.Max(lo, min - pad), Math.Min(hi, max + pad));
    }

    private static string Percent(double v) => v.ToString("0.#", CultureInfo.InvariantCulture) + "%";

    /// <summary>Validation accuracy of every candidate per generation, with the best per generation as a line.</summary>
    private static void EvolutionAccuracy(Figure figure, EquinasHistory history)
    {
        var candidates = history.Candidates;
        int last = candidates.Max(c => c.Generation);
        var axes = new Axes(figure.Canvas, new SKRect(0, 0, figure.Width, figure.Height), (-0.3, last + 0.3), Padded(candidates.Select(c => c.ValidationAccuracy * 100)));
        axes.Frame($"Evolutionary search: validation accuracy per generation ({candidates.Count} candidates)", "generation (0 = initial training)", "validation accuracy", yFormat: Percent, integerX: true);
        var random = new Random(0);
        var jitter = candidates.Select(_ => (random.NextDouble() - 0.5) * 0.16).ToArray();
        axes.Points(candidates.Select((c, i) => c.Generation + jitter[i]).ToArray(), candidates.Select(c => c.ValidationAccuracy * 100).ToArray(), new SKColor(150, 150, 150, 200), 5);
        var survivors = candidates.Select((c, i) => (c, i)).Where(t => t.c.Survived).ToArray();
        axes.Points(survivors.Select(t => t.c.Generation + jitter[t.i]).ToArray(), survivors.Select(t => t.c.ValidationAccuracy * 100).ToArray(), Axes.Palette[1], 8, ring: true);
        var best = candidates.Select((c, i) => (c, x: c.Generation + jitter[i])).GroupBy(t => t.c.Generation).OrderBy(g => g.Key).Select(g => g.MaxBy(t => t.c.ValidationAccuracy)).ToArray();
        axes.Line(best.Select(t => t.x).ToArray(), best.Select(t => t.c.ValidationAccuracy * 100).ToArray(), Axes.Palette[0]);
        foreach (var (c, x) in best)
        {
            axes.Text(string.Join("-", c.LayerGroups), x, c.ValidationAccuracy * 100, 11, SKTextAlign.Center, 0, -14);
        }

        axes.Legend([("best of generation (layer groups above)", Axes.Palette[0], LegendMark.Line), ("candidate", new SKColor(150, 150, 150), LegendMark.Dot), ("kept as parent", Axes.Palette[1], LegendMark.Ring)]);
    }

    /// <summary>Train and validation accuracy per epoch, with phase changes marked.</summary>
    private static void EpochAccuracy(Figure figure, EquinasHistory history)
    {
        var epochs = history.Epochs;
        var xs = epochs.Select(e => e.Epoch).ToArray();
        var values = epochs.SelectMany(e => new[] { e.ValidationAccuracy * 100, e.TrainAccuracy * 100 });
        var axes = new Axes(figure.Canvas, new SKRect(0, 0, figure.Width, figure.Height), (0, Math.Max(1, xs.Max()) * 1.03), Padded(values));
        string what = history.Mode == SearchMode.Differentiable ? "Differentiable search" : "Fixed groups";
        axes.Frame($"{what}: accuracy per epoch", "epoch", "accuracy", yFormat: Percent);
        for (int i = 1; i < epochs.Count; i++)
        {
            if (epochs[i].Phase != epochs[i - 1].Phase)
            {
                axes.VerticalMarker(epochs[i - 1].Epoch, epochs[i].Phase + " →", new SKColor(120, 120, 120));
            }
        }

        var train = epochs.Select(e => e.TrainAccuracy * 100).ToArray();
        if (train.All(double.IsFinite))
        {
            axes.Line(xs, train, Axes.Palette[1], dashed: true);
        }

        axes.Line(xs, epochs.Select(e => e.ValidationAccuracy * 100).ToArray(), Axes.Palette[0]);
        axes.Legend([("validation", Axes.Palette[0], LegendMark.Line), ("training (over the epoch)", Axes.Palette[1], LegendMark.Line)]);
    }

    /// <summary>Validation error against parameter count for every candidate, coloured by generation.</summary>
    private static void ErrorVsParameters(Figure figure, EquinasHistory history, RunInfo? run)
    {
        var candidates = history.Candidates;
        var axes = new Axes(
            figure.Canvas,
            new SKRect(0, 0, figure.Width - 170, figure.Height - 22),
            Padded(candidates.Select(c => c.Parameters / 1000.0), 0, double.MaxValue),
            Padded(candidates.Select(c => (1 - c.ValidationAccuracy) * 100)));
        axes.Frame("Validation error against parameter count (every candidate)", "trainable parameters", "validation error", xFormat: v => v.ToString("0.#", CultureInfo.InvariantCulture) + "k", yFormat: Percent);
        int generations = candidates.Max(c => c.Generation) + 1;
        var legend = new List<(string, SKColor, LegendMark)>();
        foreach (var g in candidates.GroupBy(c => c.Generation).OrderBy(g => g.Key))
        {
            var color = Axes.Palette[g.Key % Axes.Palette.Length];
            axes.Points(g.Select(c => c.Parameters / 1000.0).ToArray(), g.Select(c => (1 - c.ValidationAccuracy) * 100).ToArray(), color, 6);
            legend.Add(($"generation {g.Key}", color, LegendMark.Dot));
        }

        var best = candidates.Where(c => c.Generation == generations - 1).MaxBy(c => c.ValidationAccuracy)!;
        axes.Points([best.Parameters / 1000.0], [(1 - best.ValidationAccuracy) * 100], SKColors.Black, 10, ring: true);
        axes.Text("final: " + string.Join("-", best.LayerGroups), best.Parameters / 1000.0, (1 - best.ValidationAccuracy) * 100, 12, SKTextAlign.Left, 12, -8);
        legend.Add(("final model", SKColors.Black, LegendMark.Ring));
        axes.Legend(legend, "out");
        string note = run?.Test is { } t
            ? string.Create(CultureInfo.InvariantCulture, $"test error of the final model: {(1 - t.Accuracy) * 100:0.##}% (test error is measured for the final model only)")
            : "validation error: test error is not stored per candidate";
        using var paint = Axes.TextPaint(12, SKTextAlign.Left);
        figure.Canvas.DrawText(note, axes.Plot.Left, figure.Height - 8, paint);
    }

    /// <summary>z per layer over training as stacked areas, one panel per layer.</summary>
    private static void ZPerLayer(Figure figure, List<EquinasEpoch> epochs)
    {
        int layers = epochs[0].Z!.Count;
        // Conjugate members (the four mirrors, the two Klein groups) are one band: which axis carries the weight is
        // not a property of the data's symmetry class.
        epochs = epochs.Select(e => e with { Z = e.Z!.Select(ZReadout.ByClass).ToArray() }).ToList();
        var members = epochs[0].Z!.SelectMany(l => l.Keys).Distinct().ToList();
        var order = new[] { "D4", "C4", "D2*", "C2", "D1*", "C1" };
        members = members.OrderBy(m => Array.IndexOf(order, m) is var i && i >= 0 ? i : 99).ThenBy(m => m, StringComparer.Ordinal).ToList();
        var colors = members.Select((m, i) => (m, Axes.Palette[i % Axes.Palette.Length])).ToDictionary(t => t.m, t => t.Item2);
        var xs = epochs.Select(e => e.Epoch).ToArray();
        float panelHeight = (figure.Height - 50f) / layers;
        using (var title = Axes.TextPaint(17, SKTextAlign.Center, bold: true))
        {
            figure.Canvas.DrawText("Differentiable search: mixture weights z per layer (stacked; input layer first)", figure.Width / 2f, 26, title);
        }

        for (int layer = 0; layer < layers; layer++)
        {
            var area = new SKRect(0, 40 + (layer * panelHeight), figure.Width - 150, 40 + ((layer + 1) * panelHeight));
            double xMin = xs.Length > 1 ? xs.Min() : xs[0] - 0.5, xMax = xs.Length > 1 ? xs.Max() : xs[0] + 0.5;
            var axes = new Axes(figure.Canvas, area, (xMin, xMax), (0, 1));
            var final = epochs[^1].Z![layer].MaxBy(kv => kv.Value);
            axes.Frame(string.Create(CultureInfo.InvariantCulture, $"layer {layer}: largest z at the end {final.Key} ({final.Value:F2})"), layer == layers - 1 ? "epoch" : "", "z");
            var lower = new double[xs.Length];
            foreach (var member in members)
            {
                var upper = lower.Select((v, i) => v + (epochs[i].Z![layer].TryGetValue(member, out var z) ? z : 0)).ToArray();
                if (xs.Length > 1)
                {
                    axes.Band(xs, lower, upper, colors[member]);
                }
                else
                {
                    axes.Rectangle(xMin + 0.3, lower[0], xMax - 0.3, upper[0], colors[member]);
                }

                lower = upper;
            }

            if (layer == 0)
            {
                axes.Legend(members.Select(m => (m, colors[m], LegendMark.Box)).ToList(), "out");
            }
        }
    }

    private static string Markdown(EquinasModelParameters model, RunInfo? run, IReadOnlyList<string> images)
    {
        var h = model.History;
        var md = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        md.AppendLine("# Equinas model report").AppendLine();
        md.AppendLine("## Settings").AppendLine();
        md.AppendLine("| setting | value |").AppendLine("| --- | --- |");
        md.AppendLine(ci, $"| search mode | {h.Mode} |");
        md.AppendLine(ci, $"| top group | {h.TopGroup} |");
        if (run is not null)
        {
            md.AppendLine(ci, $"| data | `{run.Data}` ({run.TrainImages} train, {run.ValidationImages} validation images) |");
            md.AppendLine(ci, $"| image size | {run.Size} x {run.Size}, {(run.Rgb ? "RGB" : "grey")} |");
            if (run.Generations is { } g)
            {
                md.AppendLine(ci, $"| generations / population / epochs per generation | {g} / {run.Population} / {run.EpochsPerGeneration} |");
            }

            if (run.Epochs is { } e)
            {
                md.AppendLine(ci, $"| epochs | {e} |");
            }

            if (run.ArchitectureLearningRate is { } a)
            {
                md.AppendLine(ci, $"| z learning rate | {a} |");
            }

            if (run.FixedGroups is { } fixedGroups)
            {
                md.AppendLine(ci, $"| fixed groups | {string.Join("-", fixedGroups)} |");
            }

            md.AppendLine(ci, $"| seed | {run.Seed} |");
            md.AppendLine(ci, $"| command | `{run.CommandLine}` |");
        }
        else
        {
            md.AppendLine("| (run settings) | not stored: the model was not trained by the equinas CLI |");
        }

        md.AppendLine().AppendLine("## Result").AppendLine();
        md.AppendLine("| | |").AppendLine("| --- | --- |");
        md.AppendLine(ci, $"| layer groups (input side first) | {string.Join(" - ", model.LayerGroups)} |");
        md.AppendLine(ci, $"| trainable parameters | {model.ParameterCount:N0} |");
        md.AppendLine(ci, $"| input (channels x height x width) | {model.InputShape.Channels} x {model.InputShape.Height} x {model.InputShape.Width} |");
        md.AppendLine(ci, $"| classes | {model.ClassCount} |");
        md.AppendLine(ci, $"| training time | {h.TrainingTime.TotalSeconds:F1} s |");
        if (run?.Test is { } t)
        {
            md.AppendLine(ci, $"| test accuracy ({t.Images} images) | {Commands.Pct(t.Accuracy)} (macro {Commands.Pct(t.MacroAccuracy)}, log-loss {t.LogLoss:F4}) |");
        }

        if (model.Z is { } z)
        {
            md.AppendLine(ci, $"| mixed layers kept, largest z (conjugates summed) | {string.Join(" - ", z.Select(l => ZReadout.ByClass(l).MaxBy(kv => kv.Value)).Select(kv => string.Create(ci, $"{kv.Key} {kv.Value:F2}")))} |");
        }

        if (h.Epochs.LastOrDefault(e => e.ElementMass is not null)?.ElementMass is { } mass)
        {
            md.AppendLine(ci, $"| element mass per layer at the end (r, r2, largest mirror) | {string.Join(" - ", mass.Select(ZReadout.Elements))} |");
        }

        md.AppendLine().AppendLine("## Plots").AppendLine();
        foreach (var image in images)
        {
            md.AppendLine(ci, $"![{image}]({image})").AppendLine();
        }

        md.AppendLine("## History").AppendLine();
        if (h.Candidates.Count > 0)
        {
            md.AppendLine("| generation | id | parent | change | layer groups | parameters | validation accuracy | validation loss | train loss | kept |");
            md.AppendLine("| ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |");
            foreach (var c in h.Candidates)
            {
                md.AppendLine(ci, $"| {c.Generation} | {c.Id} | {c.ParentId?.ToString(ci) ?? "-"} | {c.ChangeText} | {string.Join("-", c.LayerGroups)} | {c.Parameters:N0} | {Commands.Pct(c.ValidationAccuracy)} | {c.ValidationLoss:F4} | {c.TrainLoss:F4} | {(c.Survived ? "yes" : "")} |");
            }
        }

        if (h.Epochs.Count > 0)
        {
            md.AppendLine("| epoch | phase | train loss | train accuracy | validation loss | validation accuracy | largest z per layer (conjugates summed) | element mass per layer (r, r2, mirror) |");
            md.AppendLine("| ---: | --- | ---: | ---: | ---: | ---: | --- | --- |");
            foreach (var e in h.Epochs)
            {
                string zText = e.Z is null ? "-" : string.Join(", ", e.Z.Select(l => ZReadout.ByClass(l).MaxBy(kv => kv.Value)).Select(kv => string.Create(ci, $"{kv.Key} {kv.Value:F2}")));
                string massText = e.ElementMass is null ? "-" : string.Join(", ", e.ElementMass.Select(ZReadout.Elements));
                md.AppendLine(ci, $"| {e.Epoch:0.##} | {e.Phase} | {e.TrainLoss:F4} | {Commands.Pct(e.TrainAccuracy)} | {e.ValidationLoss:F4} | {Commands.Pct(e.ValidationAccuracy)} | {zText} | {massText} |");
            }
        }

        return md.ToString();
    }
}
