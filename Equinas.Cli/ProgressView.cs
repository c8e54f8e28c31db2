using System.Diagnostics;
using System.Globalization;
using Equinas.MLNet;
using Spectre.Console;

namespace Equinas.Cli;

/// <summary>
/// Shows training progress from <see cref="EquivariantImageClassificationTrainer.Options.Progress"/>: a live table
/// that refreshes four times a second on an interactive terminal, or one plain line per report when the output is
/// redirected (a file or a pipe gets readable lines, no cursor movement and no colour codes).
/// </summary>
internal sealed class ProgressView : IProgress<EquinasProgress>
{
    private readonly object _gate = new();
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private readonly bool _live;
    private readonly string _title;
    private EquinasProgress? _latest;
    private TimeSpan _latestAt;
    private double _bestValidation = double.NaN;

    public ProgressView(string title, bool live)
    {
        _title = title;
        _live = live;
    }

    /// <summary>Gets whether the terminal can show a live display (interactive and not redirected).</summary>
    public static bool CanShowLive => AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;

    /// <summary>Runs <paramref name="work"/> on a worker thread while showing progress.</summary>
    public static async Task<T> RunAsync<T>(string title, Func<IProgress<EquinasProgress>, T> work)
    {
        var view = new ProgressView(title, CanShowLive);
        if (!view._live)
        {
            Console.WriteLine($"{title}: started");
            return await Task.Run(() => work(view)).ConfigureAwait(false);
        }

        var task = Task.Run(() => work(view));
        var table = view.Render();
        await AnsiConsole.Live(table).AutoClear(false).StartAsync(async ctx =>
        {
            while (!task.IsCompleted)
            {
                ctx.UpdateTarget(view.Render());
                await Task.WhenAny(task, Task.Delay(250)).ConfigureAwait(false);
            }

            ctx.UpdateTarget(view.Render());
        }).ConfigureAwait(false);
        return await task.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Report(EquinasProgress value)
    {
        lock (_gate)
        {
            _latest = value;
            _latestAt = _watch.Elapsed;
            if (double.IsNaN(_bestValidation) || value.ValidationAccuracy > _bestValidation)
            {
                _bestValidation = value.ValidationAccuracy;
            }
        }

        if (!_live)
        {
            Console.WriteLine(PlainLine(value, _bestValidation));
        }
    }

    /// <summary>The steps finished (1-based) and the total.</summary>
    internal static (int Done, int Total) Steps(EquinasProgress p) =>
        (p.Step, p.TotalSteps);

    internal static string StepName(EquinasProgress p) => p.Mode switch
    {
        SearchMode.Evolutionary => p.Generation == 0 ? "initial training (generation 0)" : $"generation {p.Generation}",
        SearchMode.Differentiable => $"epoch {p.Step} ({p.Phase})",
        _ => $"epoch {p.Step}",
    };

    internal static string PlainLine(EquinasProgress p, double best)
    {
        var (done, total) = Steps(p);
        return string.Create(CultureInfo.InvariantCulture, $"[{done}/{total}] {StepName(p)}{(p.Restored ? " (from the checkpoint)" : "")}: validation accuracy {p.ValidationAccuracy * 100:F2}% (best {best * 100:F2}%), loss {p.ValidationLoss:F4}; groups {string.Join("-", p.LayerGroups)}; elapsed {Clock(p.Elapsed)}, left ~{Clock(p.Remaining)}");
    }

    internal static string Clock(TimeSpan t) => t.TotalHours >= 1
        ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
        : t.ToString(@"mm\:ss", CultureInfo.InvariantCulture);

    private Table Render()
    {
        EquinasProgress? p;
        TimeSpan at, now = _watch.Elapsed;
        double best;
        lock (_gate)
        {
            p = _latest;
            at = _latestAt;
            best = _bestValidation;
        }

        var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(_title)).HideHeaders();
        table.AddColumn("what");
        table.AddColumn("value");
        if (p is null)
        {
            table.AddRow("status", "training the first generation / epoch ...");
            table.AddRow("elapsed", Clock(now));
            return table;
        }

        var (done, total) = Steps(p);
        int width = 30, filled = total > 0 ? Math.Clamp(done * width / total, 0, width) : 0;
        table.AddRow("progress", $"[green]{new string('#', filled)}[/][grey]{new string('-', width - filled)}[/] {done}/{total}");
        table.AddRow("last finished", Markup.Escape(StepName(p) + (p.Restored ? " (from the checkpoint)" : "")));
        table.AddRow("validation accuracy", string.Create(CultureInfo.InvariantCulture, $"{p.ValidationAccuracy * 100:F2}% (best so far [bold]{best * 100:F2}%[/])"));
        table.AddRow("validation loss", p.ValidationLoss.ToString("F4", CultureInfo.InvariantCulture));
        table.AddRow("layer groups", Markup.Escape(string.Join(" - ", p.LayerGroups)));
        if (p.Z is { } z)
        {
            table.AddRow("z (largest per layer, conjugates summed)", Markup.Escape(string.Join("  ", z.Select(layer => ZReadout.ByClass(layer).MaxBy(kv => kv.Value)).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:F2}")))));
        }

        if (p.ElementMass is { } mass)
        {
            table.AddRow("element mass per layer (r, r2, mirror)", Markup.Escape(string.Join("  ", mass.Select(ZReadout.Elements))));
        }

        if (p.Parameters > 0)
        {
            table.AddRow("parameters", p.Parameters.ToString("N0", CultureInfo.InvariantCulture));
        }

        var left = p.Remaining - (now - at);
        table.AddRow("elapsed", Clock(now));
        table.AddRow("time left", done >= total ? "finishing" : "~" + Clock(left > TimeSpan.Zero ? left : TimeSpan.Zero));
        return table;
    }
}
