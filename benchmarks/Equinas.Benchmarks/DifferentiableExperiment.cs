using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Equinas.Benchmarks.Data;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Training;
using Equinas.Reports;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// EquiNAS_D on real digits. Part 1: digits moved by a random element of G, for G in {C1, C2, C4, D1V, D2VH, D4}:
/// where does z put its weight, per layer? Part 2: rotated digits, EquiNAS_D against fixed all-D4 and all-C1 networks
/// trained for the same epochs, several seeds. Writes Markdown, JSON and SVG plots of z and of its mass per group element (Equinas.Reports).
/// </summary>
internal static class DifferentiableExperiment
{
    private static readonly SymmetryGroup[] AugmentationGroups =
        [SymmetryGroup.C1, SymmetryGroup.C2, SymmetryGroup.C4, SymmetryGroup.D1V, SymmetryGroup.D2VH, SymmetryGroup.D4];

    public static int Run(BenchmarkOptions args)
    {
        int threads = args.Threads;
        int seeds = args.Int("seeds", 3);
        double epochs = args.Double("epochs", 3);
        var options = new DifferentiableOptions
        {
            Epochs = epochs,
            Training = new TrainingOptions { LearningRate = args.Double("lr", 1e-3), BatchSize = args.Int("batch", 64) },
            ArchitectureLearningRate = args.Double("alpha-lr", 0.01),
        };
        string output = args.Text("out", Path.Combine("docs", "results", "differentiable-digits"));
        string parts = args.Text("parts", "augmented,rotated");
        args.RejectUnknown();
        torch.set_num_threads(threads);

        var digits = ShippedDigits.Load();
        var template = NetworkPresets.Small();
        string machine = Measure.MachineLine(threads);
        var members = options.MemberGroups;
        Console.WriteLine($"differentiable: EquiNAS_D on the shipped digits; small network {template.Describe()} with every layer mixed over {string.Join(", ", members.Select(m => m.Name))}; {epochs} epochs; Adam lr {options.Training.LearningRate} (weights) / {options.ArchitectureLearningRate} (alphas); alpha batches from the held-out validation split");
        Console.WriteLine(machine);
        var markdown = new StringBuilder();
        var json = new Dictionary<string, object>
        {
            ["benchmark"] = "differentiable",
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["machine"] = machine,
            ["members"] = members.Select(m => m.Name).ToArray(),
            ["epochs"] = epochs,
        };
        string command = "dotnet run -c Release --project benchmarks/Equinas.Benchmarks -- differentiable " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2));
        markdown.AppendLine("# EquiNAS_D on digits");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {machine}.");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Command: `{command.Trim()}`");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Network: the small preset {template.Describe()}, every layer a [G]-mixed layer over {string.Join(", ", members.Select(m => m.Name))} (one summed filter and one convolution per layer). {epochs} epochs; Adam, learning rate {options.Training.LearningRate} for the weights and {options.ArchitectureLearningRate} for the architecture logits, batch {options.Training.BatchSize}; each step updates the weights on a training batch, then the logits on a batch of the held-out validation split. Data: the shipped MNIST digits (train 6,004, validation 2,000, test 1,996).");
        markdown.AppendLine();

        if (parts.Contains("augmented", StringComparison.Ordinal))
        {
            var zTables = new List<(SymmetryGroup Group, double[][] Z, double TestAccuracy, string Argmax)>();
            foreach (var g in AugmentationGroups)
            {
                using var train = digits.Augmented(DigitSplit.Train, g, seed: 201);
                using var validation = digits.Augmented(DigitSplit.Validation, g, seed: 202);
                using var test = digits.Augmented(DigitSplit.Test, g, seed: 203);
                var search = new DifferentiableSearch(options with { Seed = 1 });
                search.EpochCompleted += (_, e) => Console.Error.WriteLine($"  augmented by {g}: epoch {e.Epoch:0.##} val acc {e.Validation.Accuracy:P1}, argmax {string.Join("-", e.Z.Select(z => members[Array.IndexOf(z, z.Max())].Name))}");
                var watch = Stopwatch.StartNew();
                using var result = search.Run(template, train, validation);
                var accuracy = NetworkTrainer.Evaluate(result.Network, test, 256, CancellationToken.None).Accuracy;
                zTables.Add((g, result.Z.ToArray(), accuracy, string.Join("-", result.ArgmaxGroups.Select(a => a.Name))));
                Console.Error.WriteLine($"  augmented by {g}: test acc {accuracy:P2}, argmax {zTables[^1].Argmax} ({watch.Elapsed.TotalSeconds:F0} s)");
                // The initialisation is uniform, so every panel starts at z = 1/members at epoch 0.
                var epochsRecord = HistoryRecords.Epochs(members, result.History.Where(h => h.Phase == DifferentiablePhase.Search));
                SearchPlots.ZPerLayer(epochsRecord, sumConjugates: false, uniformStart: true, title: $"z per layer over training, digits augmented by {g.Name}").SaveSvg($"{output}-z-{g.Name}.svg");
                SearchPlots.ElementMassPerLayer(epochsRecord, $"Mass of z per element of D4 over training, digits augmented by {g.Name}").SaveSvg($"{output}-mass-{g.Name}.svg");
            }

            markdown.AppendLine("## 1. Digits moved by a random element of G: where z puts its weight");
            markdown.AppendLine();
            markdown.AppendLine("Every training, validation and test digit is moved by an element of G drawn uniformly. z after the last epoch, per layer (rows) and member group (columns); the largest entry per layer in bold. Plots of z over training (`-z-`) and of the mass of z on each element of D4 (`-mass-`): the SVG files next to this one.");
            markdown.AppendLine();
            foreach (var (g, z, accuracy, argmax) in zTables)
            {
                markdown.AppendLine(CultureInfo.InvariantCulture, $"**Augmented by {g.Name}** (test accuracy {accuracy:P2}; argmax {argmax}; plots `{Path.GetFileName(output)}-z-{g.Name}.svg`, `{Path.GetFileName(output)}-mass-{g.Name}.svg`)");
                markdown.AppendLine();
                markdown.AppendLine("| layer | " + string.Join(" | ", members.Select(m => m.Name)) + " |");
                markdown.AppendLine("| --- |" + string.Concat(members.Select(_ => " ---: |")));
                for (int layer = 0; layer < z.Length; layer++)
                {
                    double max = z[layer].Max();
                    var cells = z[layer].Select(v => v == max ? string.Create(CultureInfo.InvariantCulture, $"**{v:F3}**") : v.ToString("F3", CultureInfo.InvariantCulture));
                    markdown.AppendLine(CultureInfo.InvariantCulture, $"| {layer + 1} | {string.Join(" | ", cells)} |");
                }

                markdown.AppendLine();
            }

            json["augmented"] = zTables.Select(t => new { group = t.Group.Name, z = t.Z, test_accuracy = t.TestAccuracy, argmax = t.Argmax }).ToArray();
        }

        if (parts.Contains("rotated", StringComparison.Ordinal))
        {
            using var train = digits.Rotated(DigitSplit.Train, seed: 101);
            using var validation = digits.Rotated(DigitSplit.Validation, seed: 102);
            using var test = digits.Rotated(DigitSplit.Test, seed: 103);
            var runs = new List<(int Seed, string Method, string Architecture, long Parameters, double Validation, double Test, double Seconds)>();
            for (int seed = 1; seed <= seeds; seed++)
            {
                var watch = Stopwatch.StartNew();
                using (var result = new DifferentiableSearch(options with { Seed = seed }).Run(template, train, validation))
                {
                    var accuracy = NetworkTrainer.Evaluate(result.Network, test, 256, CancellationToken.None).Accuracy;
                    runs.Add((seed, "EquiNAS_D (mixture)", "argmax " + string.Join("-", result.ArgmaxGroups.Select(a => a.Name)), result.Network.ParameterCount, result.History[^1].Validation.Accuracy, accuracy, watch.Elapsed.TotalSeconds));
                    Console.Error.WriteLine($"  rotated, seed {seed}: EquiNAS_D test acc {accuracy:P2} ({watch.Elapsed.TotalSeconds:F0} s)");
                }

                foreach (var g in new[] { SymmetryGroup.D4, SymmetryGroup.C1 })
                {
                    var baseline = FixedBaseline.Train(template, g, train, validation, test, epochs, options.Training, seed);
                    runs.Add((seed, $"fixed {g.Name}", baseline.Architecture, baseline.Parameters, baseline.ValidationAccuracy, baseline.TestAccuracy, baseline.Seconds));
                    Console.Error.WriteLine($"  rotated, seed {seed}: fixed {g} test acc {baseline.TestAccuracy:P2} ({baseline.Seconds:F0} s)");
                }
            }

            markdown.AppendLine("## 2. Rotated digits: EquiNAS_D against fixed networks");
            markdown.AppendLine();
            markdown.AppendLine(CultureInfo.InvariantCulture, $"Every digit rotated by a uniform random angle (bilinear). Fixed networks train {epochs} epochs with the same optimiser. Seeds 1-{seeds} vary initialisation and data order.");
            markdown.AppendLine();
            markdown.AppendLine("| method | median test acc | min | max | parameters | median wall-clock s |");
            markdown.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
            foreach (var method in runs.Select(r => r.Method).Distinct())
            {
                var rs = runs.Where(r => r.Method == method).ToArray();
                markdown.AppendLine(CultureInfo.InvariantCulture, $"| {method} | {Measure.Median(rs.Select(r => r.Test)):P2} | {rs.Min(r => r.Test):P2} | {rs.Max(r => r.Test):P2} | {rs[0].Parameters:N0} | {Measure.Median(rs.Select(r => r.Seconds)):F0} |");
            }

            markdown.AppendLine();
            markdown.AppendLine("| method | seed | architecture | validation acc | test acc | wall-clock s |");
            markdown.AppendLine("| --- | --- | --- | ---: | ---: | ---: |");
            foreach (var r in runs.OrderBy(r => r.Method, StringComparer.Ordinal).ThenBy(r => r.Seed))
            {
                markdown.AppendLine(CultureInfo.InvariantCulture, $"| {r.Method} | {r.Seed} | {r.Architecture} | {r.Validation:P2} | {r.Test:P2} | {r.Seconds:F0} |");
            }

            markdown.AppendLine();
            json["rotated"] = runs.Select(r => new { r.Seed, r.Method, r.Architecture, r.Parameters, validation_accuracy = r.Validation, test_accuracy = r.Test, r.Seconds }).ToArray();
        }

        json["command"] = command.Trim();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output + ".md", markdown.ToString());
        var text = JsonSerializer.Serialize(json);
        File.WriteAllText(output + ".json", text + Environment.NewLine);
        Console.WriteLine(markdown.ToString());
        Console.WriteLine($"results written to {output}.md, {output}.json and the SVG plots");
        Console.WriteLine(text);
        return 0;
    }
}
