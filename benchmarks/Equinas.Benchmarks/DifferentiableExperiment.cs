using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Equinas.Benchmarks.Data;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Training;
using Equinas.Reports;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// EquiNAS_D on real digits, every option at the trainer's default. Part 1: digits moved by a random element of G, for
/// G in {C1, C2, C4, D1V, D2VH, D4}: where does z put its weight, and does a chain drawn from it keep G? Next to the null
/// control. Part 2 (optional, <c>--parts rotated</c>): rotated digits, EquiNAS_D against fixed all-D4 and all-C1
/// networks trained for the same epochs, several seeds (the comparison experiment has the full set of controls). Writes Markdown, JSON and SVG plots of z and of its mass per group element (Equinas.Reports).
/// </summary>
internal static class DifferentiableExperiment
{
    private static readonly SymmetryGroup[] AugmentationGroups =
        [SymmetryGroup.C1, SymmetryGroup.C2, SymmetryGroup.C4, SymmetryGroup.D1V, SymmetryGroup.D2VH, SymmetryGroup.D4];

    public static int Run(BenchmarkOptions args)
    {
        int threads = args.Threads;
        int seeds = args.Int("seeds", 3);
        // The seed of the searches on moved digits (part "augmented"): one per run.
        int searchSeed = args.Int("search-seed", 1);
        var digits = ShippedDigits.Load();
        var training = new TrainingOptions { LearningRate = args.Double("lr", SearchDefaults.LearningRate), BatchSize = args.Int("batch", SearchDefaults.BatchSize) };
        // Every option at the trainer's default unless set: the epochs that give the default step count on these digits.
        double defaultEpochs = SearchDefaults.EpochsFor(digits.Count(DigitSplit.Train), training.BatchSize);
        double epochs = args.Double("epochs", defaultEpochs);
        var options = new DifferentiableOptions
        {
            Epochs = epochs,
            Training = training,
            ArchitectureLearningRate = args.Double("alpha-lr", SearchDefaults.ArchitectureLearningRate),
            // --init largest|uniform: where z starts, the trainer's default (the top group) unless set; "uniform" is the
            // paper's start, which the pages of 2026-12-01/02 measured.
            Initialization = args.Start("init", SearchDefaults.MixtureStart),
        };
        string output = args.Text("out", Path.Combine("docs", "results", "differentiable-digits"));
        string parts = args.Text("parts", "augmented,null");
        var augmentations = args.Text("groups", string.Join(",", AugmentationGroups.Select(g => g.Name))).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(SymmetryGroup.Parse).ToArray();
        args.RejectUnknown();
        torch.set_num_threads(threads);

        // The trainer's default network for these digits.
        var template = digits.DefaultNetwork();
        string machine = Measure.MachineLine(threads);
        var members = options.MemberGroups;
        Console.WriteLine($"differentiable: EquiNAS_D on the shipped digits; network {template.Describe()} with every layer mixed over {string.Join(", ", members.Select(m => m.Name))}; {epochs} epochs; Adam lr {options.Training.LearningRate} (weights) / {options.ArchitectureLearningRate} (alphas); alpha batches from the held-out validation split");
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
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Network: the trainer's default for 10 classes, {template.Describe()}, every layer a [G]-mixed layer over {string.Join(", ", members.Select(m => m.Name))} (one layout over D4, fixed-norm member kernels, one shared norm, a head that pools each D4 field). {epochs} epochs ({SearchDefaults.StepsPerEpoch(digits.Count(DigitSplit.Train), training.BatchSize) * epochs:F0} steps{(epochs == defaultEpochs ? ", the default" : "")}); z starting {(options.Initialization == AlphaInitialization.Uniform ? "uniform" : "at the top group (its logit 0, the others -2: z 0.45 for D4, 0.06 for each other member)")}{(options.Initialization == SearchDefaults.MixtureStart ? ", the default" : "")}; Adam, learning rate {options.Training.LearningRate} for the weights and {options.ArchitectureLearningRate} for the architecture logits, batch {options.Training.BatchSize}; each step updates the weights on a training batch, then the logits on a batch of the held-out validation split. Data: the shipped MNIST digits (train {digits.Count(DigitSplit.Train):N0}, validation {digits.Count(DigitSplit.Validation):N0}, test {digits.Count(DigitSplit.Test):N0}).");
        markdown.AppendLine();

        if (parts.Contains("augmented", StringComparison.Ordinal))
        {
            var rows = new List<(SymmetryGroup Group, string Method, double[][] Z, double TestAccuracy, string Argmax, double Keeps, IReadOnlyDictionary<SymmetryGroup, double> Invariance, double Seconds)>();
            foreach (var g in augmentations)
            {
                using var train = digits.Augmented(DigitSplit.Train, g, seed: 201);
                using var validation = digits.Augmented(DigitSplit.Validation, g, seed: 202);
                using var test = digits.Augmented(DigitSplit.Test, g, seed: 203);
                foreach (bool shuffled in new[] { false, true })
                {
                    if (shuffled && !parts.Contains("null", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    string method = shuffled ? "null control" : "EquiNAS_D";
                    var search = new DifferentiableSearch(options with { Seed = searchSeed, ShuffleArchitectureGradients = shuffled });
                    var watch = Stopwatch.StartNew();
                    using var result = search.Run(template, train, validation);
                    var accuracy = NetworkTrainer.Evaluate(result.Network, test, 256, CancellationToken.None).Accuracy;
                    var invariance = MixedGroupCnn.InvarianceDistribution(members, result.Z);
                    // The chance that a chain drawn from z keeps the whole symmetry the data were given.
                    double keeps = invariance.Where(p => g.IsSubgroupOf(p.Key)).Sum(p => p.Value);
                    rows.Add((g, method, result.Z.ToArray(), accuracy, string.Join("-", result.ArgmaxGroups.Select(a => a.Name)), keeps, invariance, watch.Elapsed.TotalSeconds));
                    Console.Error.WriteLine($"  augmented by {g}, {method}: test acc {accuracy:P2}, argmax {rows[^1].Argmax}, P(drawn chain invariant to {g}) {keeps:F3} ({watch.Elapsed.TotalSeconds:F0} s)");
                    if (!shuffled)
                    {
                        var epochsRecord = HistoryRecords.Epochs(members, result.History.Where(h => h.Phase == DifferentiablePhase.Search));
                        SearchPlots.ZPerLayer(epochsRecord, sumConjugates: false, uniformStart: options.Initialization == AlphaInitialization.Uniform, title: $"z per layer over training, digits augmented by {g.Name}").SaveSvg($"{output}-z-{g.Name}.svg");
                        SearchPlots.ElementMassPerLayer(epochsRecord, $"Mass of z per element of D4 over training, digits augmented by {g.Name}").SaveSvg($"{output}-mass-{g.Name}.svg");
                    }
                }
            }

            markdown.AppendLine("## 1. Digits moved by a random element of G: where z puts its weight");
            markdown.AppendLine();
            markdown.AppendLine(CultureInfo.InvariantCulture, $"Every training, validation and test digit is moved by an element of G drawn uniformly (seed {searchSeed} of the search). The null control is the same search with each layer's alpha gradient permuted across members every step: what z does without the members' identity.");
            markdown.AppendLine();
            markdown.AppendLine("Summary: `keeps G` is the probability that a chain drawn from the final z (each layer's member drawn with probability z) is invariant to all of G, i.e. keeps the symmetry the data were given; the most likely invariance groups of such a chain follow. Uniform z gives `keeps G` of 1 for C1, (5/10)^5 = 0.031 for C2, (2/10)^5 = 0.0003 for C4, (3/10)^5 = 0.002 for D1V, 0.1^5 for D2VH and D4; the top-group start (0.45 on D4, 0.06 on each other member) gives 1 for C1, 0.69^5 = 0.16 for C2, 0.51^5 = 0.035 for C4 and D2VH, 0.57^5 = 0.061 for D1V, 0.45^5 = 0.018 for D4.");
            markdown.AppendLine();
            markdown.AppendLine("| G | method | test acc | argmax per layer | keeps G | most likely invariance groups | last layer m(r), m(r2), m(f) |");
            markdown.AppendLine("| --- | --- | ---: | --- | ---: | --- | --- |");
            foreach (var r in rows)
            {
                var likely = string.Join(", ", r.Invariance.OrderByDescending(p => p.Value).Take(3).Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key.Name} {p.Value:F3}")));
                var mass = MixedGroupCnn.ElementMass(members, r.Z)[^1];
                markdown.AppendLine(CultureInfo.InvariantCulture, $"| {r.Group.Name} | {r.Method} | {r.TestAccuracy:P2} | {r.Argmax} | {r.Keeps:F3} | {likely} | {mass[1]:F3}, {mass[2]:F3}, {mass[4]:F3} |");
            }

            markdown.AppendLine();
            markdown.AppendLine("z after the last epoch, per layer (rows) and member group (columns), for the search; the largest entry per layer in bold. Plots of z over training (`-z-`) and of the mass of z on each element of D4 (`-mass-`): the SVG files next to this one.");
            markdown.AppendLine();
            foreach (var (g, _, z, accuracy, argmax, _, _, _) in rows.Where(r => r.Method == "EquiNAS_D"))
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

            json["augmented"] = rows.Select(t => new { group = t.Group.Name, method = t.Method, z = t.Z, test_accuracy = t.TestAccuracy, argmax = t.Argmax, keeps_group = t.Keeps, invariance = t.Invariance.ToDictionary(p => p.Key.Name, p => p.Value), seconds = t.Seconds }).ToArray();
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
