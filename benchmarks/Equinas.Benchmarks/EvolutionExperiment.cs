using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Equinas.Benchmarks.Data;
using Equinas.MLNet;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Training;
using Equinas.Reports;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// EquiNAS_E against fixed all-D4 and all-C1 networks on the shipped digits rotated by continuous angles, each fixed
/// network trained for as many epochs as the search's winning lineage (initial training plus every generation), with
/// the same optimiser, for several seeds. Writes a Markdown and a JSON results file, and SVG plots of seed 1's search.
/// </summary>
internal static class EvolutionExperiment
{
    public static int Run(BenchmarkOptions args)
    {
        int threads = args.Threads;
        int seeds = args.Int("seeds", 3);
        var evolution = new EvolutionOptions
        {
            PopulationSize = args.Int("population", 3),
            Generations = args.Int("generations", 4),
            EpochsPerGeneration = args.Double("epochs-per-generation", 0.5),
            Training = new TrainingOptions { LearningRate = args.Double("lr", 1e-3), BatchSize = args.Int("batch", 64) },
        };
        string output = args.Text("out", Path.Combine("docs", "results", "evolution-rotated-digits"));
        args.RejectUnknown();
        torch.set_num_threads(threads);

        var digits = ShippedDigits.Load();
        // The data are fixed across seeds (rotation seeds 101-103); seeds vary initialisation and data order.
        using var train = digits.Rotated(DigitSplit.Train, seed: 101);
        using var validation = digits.Rotated(DigitSplit.Validation, seed: 102);
        using var test = digits.Rotated(DigitSplit.Test, seed: 103);
        double lineageEpochs = (evolution.InitialEpochs ?? evolution.EpochsPerGeneration) + (evolution.Generations * evolution.EpochsPerGeneration);
        var template = NetworkPresets.Small();
        string machine = Measure.MachineLine(threads);
        Console.WriteLine($"evolution: EquiNAS_E vs fixed all-D4 and all-C1 on rotated digits (train {train.Count}, validation {validation.Count}, test {test.Count})");
        Console.WriteLine($"small network {template.Describe()}; mu {evolution.PopulationSize}, {evolution.Generations} generations, {evolution.EpochsPerGeneration} epoch per generation; fixed networks: {lineageEpochs} epochs; Adam lr {evolution.Training.LearningRate}, batch {evolution.Training.BatchSize}; {seeds} seeds");
        Console.WriteLine(machine);

        var runs = new List<RunRecord>();
        IReadOnlyList<EquinasCandidate> firstCandidates = [];
        var firstBaselines = new List<Baseline>();
        for (int seed = 1; seed <= seeds; seed++)
        {
            var search = new EvolutionarySearch(evolution with { Seed = seed });
            search.GenerationCompleted += (_, g) =>
            {
                var best = g.Best;
                Console.Error.WriteLine($"  seed {seed} generation {g.Generation}: {g.Candidates.Count} candidates, best {string.Join("-", best.Groups)} val acc {best.ValidationAccuracy:P2} ({g.Elapsed.TotalSeconds:F0} s)");
            };
            var watch = Stopwatch.StartNew();
            using (var result = search.Run(template, train, validation))
            {
                var testMetrics = NetworkTrainer.Evaluate(result.Network, test, 256, CancellationToken.None);
                runs.Add(new RunRecord(seed, "EquiNAS_E", string.Join("-", result.Best.Groups), result.Network.ParameterCount, result.Best.ValidationAccuracy, testMetrics.Accuracy, watch.Elapsed.TotalSeconds,
                    result.History.Sum(g => g.Candidates.Count), result.Times));
                if (seed == 1)
                {
                    firstCandidates = HistoryRecords.Candidates(result.History);
                }

                Console.Error.WriteLine($"  seed {seed} EquiNAS_E: {runs[^1].Architecture} test acc {testMetrics.Accuracy:P2} in {watch.Elapsed.TotalSeconds:F0} s");
            }

            foreach (var group in new[] { SymmetryGroup.D4, SymmetryGroup.C1 })
            {
                var baseline = FixedBaseline.Train(template, group, train, validation, test, lineageEpochs, evolution.Training, seed);
                runs.Add(new RunRecord(seed, $"fixed {group.Name}", baseline.Architecture, baseline.Parameters, baseline.ValidationAccuracy, baseline.TestAccuracy, baseline.Seconds, 1, null));
                if (seed == 1)
                {
                    firstBaselines.Add(new Baseline($"fixed all-{group.Name}", baseline.Parameters, baseline.ValidationAccuracy));
                }

                Console.Error.WriteLine($"  seed {seed} fixed {group.Name}: test acc {baseline.TestAccuracy:P2} in {baseline.Seconds:F0} s");
            }
        }

        var methods = runs.Select(r => r.Method).Distinct().ToArray();
        var table = new StringBuilder();
        table.AppendLine("| method | seed | architecture (per-layer groups) | parameters | validation acc | test acc | wall-clock s |");
        table.AppendLine("| --- | --- | --- | ---: | ---: | ---: | ---: |");
        foreach (var r in runs.OrderBy(r => Array.IndexOf(methods, r.Method)).ThenBy(r => r.Seed))
        {
            table.AppendLine(CultureInfo.InvariantCulture, $"| {r.Method} | {r.Seed} | {r.Architecture} | {r.Parameters:N0} | {r.ValidationAccuracy:P2} | {r.TestAccuracy:P2} | {r.Seconds:F0} |");
        }

        var summary = new StringBuilder();
        summary.AppendLine("| method | median test acc | min | max | median parameters | median wall-clock s |");
        summary.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var m in methods)
        {
            var rs = runs.Where(r => r.Method == m).ToArray();
            summary.AppendLine(CultureInfo.InvariantCulture, $"| {m} | {Measure.Median(rs.Select(r => r.TestAccuracy)):P2} | {rs.Min(r => r.TestAccuracy):P2} | {rs.Max(r => r.TestAccuracy):P2} | {Measure.Median(rs.Select(r => (double)r.Parameters)):N0} | {Measure.Median(rs.Select(r => r.Seconds)):F0} |");
        }

        Console.WriteLine();
        Console.Write(summary);
        Console.WriteLine();
        Console.Write(table);

        string command = "dotnet run -c Release --project benchmarks/Equinas.Benchmarks -- evolution " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2));
        var markdown = new StringBuilder();
        markdown.AppendLine("# EquiNAS_E on rotated digits");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {machine}.");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Command: `{command.Trim()}`");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Data: the shipped MNIST digits (data/README.md), every image rotated by a uniform random angle (bilinear); train {train.Count}, validation {validation.Count}, test {test.Count}. Network: the small preset {template.Describe()} (scalar channels, the same for every group). Search: mu = {evolution.PopulationSize}, {evolution.Generations} generations, {evolution.EpochsPerGeneration} epoch per candidate per generation, initial network all D4. Fixed networks train {lineageEpochs} epochs, the length of the search's winning lineage. Adam, learning rate {evolution.Training.LearningRate}, batch {evolution.Training.BatchSize}. Seeds 1-{seeds} vary initialisation and data order; the data are the same for every seed.");
        markdown.AppendLine();
        markdown.AppendLine("## Summary");
        markdown.AppendLine();
        markdown.Append(summary);
        markdown.AppendLine();
        markdown.AppendLine("## Every run");
        markdown.AppendLine();
        markdown.Append(table);
        markdown.AppendLine();
        markdown.AppendLine("EquiNAS_E's wall-clock covers the whole search (every candidate of every generation); its time split, in seconds:");
        markdown.AppendLine();
        markdown.AppendLine("| seed | candidates trained | training | validation | morphism and copies | total |");
        markdown.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in runs.Where(r => r.Times is not null))
        {
            markdown.AppendLine(CultureInfo.InvariantCulture, $"| {r.Seed} | {r.Candidates} | {r.Times!.Training.TotalSeconds:F0} | {r.Times.Validation.TotalSeconds:F0} | {r.Times.Morphism.TotalSeconds:F1} | {r.Times.Total.TotalSeconds:F0} |");
        }

        // Seed 1's search with that seed's fixed networks, drawn by the CLI's plotting code.
        SearchPlots.SearchAccuracy(firstCandidates, firstBaselines).SaveSvg(output + "-accuracy.svg");
        SearchPlots.ErrorVsParameters(firstCandidates, firstBaselines, "seed 1: every candidate of the search and the fixed networks, validation error").SaveSvg(output + "-error-vs-parameters.svg");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Plots of the search with seed 1, the fixed networks of seed 1 drawn in: `{Path.GetFileName(output)}-accuracy.svg` (validation accuracy of every candidate per generation) and `{Path.GetFileName(output)}-error-vs-parameters.svg` (validation error against parameters).");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output + ".md", markdown.ToString());
        var json = JsonSerializer.Serialize(new
        {
            benchmark = "evolution",
            date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            machine,
            command = command.Trim(),
            lineage_epochs = lineageEpochs,
            runs = runs.Select(r => new { r.Method, r.Seed, r.Architecture, r.Parameters, r.ValidationAccuracy, r.TestAccuracy, r.Seconds }),
        });
        File.WriteAllText(output + ".json", json + Environment.NewLine);
        Console.WriteLine();
        Console.WriteLine($"results written to {output}.md and {output}.json");
        Console.WriteLine(json);
        return 0;
    }

    private sealed record RunRecord(int Seed, string Method, string Architecture, long Parameters, double ValidationAccuracy, double TestAccuracy, double Seconds, int Candidates, SearchTimes? Times);
}
