using System.Globalization;
using System.Text;
using Equinas.MLNet;
using Equinas.Reports;

namespace Equinas.Cli;

/// <summary>The training report: the plots (Equinas.Reports) and report.md, from the model's search history (and the CLI's run entry).</summary>
internal static class Report
{
    public const string MarkdownFile = "report.md";

    /// <summary>Writes the report into <paramref name="folder"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(EquinasModelParameters model, RunInfo? run, string folder)
    {
        Directory.CreateDirectory(folder);
        if (PlotFonts.Warning is { } warning)
        {
            Output.Info("warning: " + warning);
        }

        string note = run?.Test is { } t
            ? string.Create(CultureInfo.InvariantCulture, $"test error of the final model: {(1 - t.Accuracy) * 100:0.##}% (test error is measured for the final model only)")
            : "validation error; test error is not stored per candidate";
        var plots = HistoryPlots.Write(model.History, folder, new HistoryPlotOptions { ErrorNote = note });
        string markdown = Path.Combine(folder, MarkdownFile);
        HistoryPlots.WriteText(markdown, Markdown(model, run, HistoryPlots.Markdown(plots, folder)));
        return [.. plots.Select(p => p.Path), Path.GetFullPath(markdown)];
    }

    private static string Markdown(EquinasModelParameters model, RunInfo? run, string plots)
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
        md.Append(plots);

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
