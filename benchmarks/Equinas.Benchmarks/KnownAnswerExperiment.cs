using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Equinas.Data;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Training;
using Equinas.Reports;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// EquiNAS_D on a task whose answer is known (Equinas.Data.KnownAnswerTask): for each normal subgroup A of D4, classes
/// are (object, coset of A), so the labels are A-invariant and changed by every element outside A, and the last
/// layer's group must lie inside A. For every A and seed: the search (mixture kept), the null control (alpha
/// gradients shuffled across members every step), the argmax chain retrained from scratch, and fixed all-A and all-C1
/// networks trained as long as the search. Reports the last layer's z mass on members not inside A, and plots z and its mass per element over training (seed 1, SVG).
/// </summary>
internal static class KnownAnswerExperiment
{
    private sealed record Outcome(string Group, int Seed, string Method, string Architecture, double MassOutside, double TestAccuracy, double Seconds, double[][]? Z, double[][]? ElementMass);

    public static int Run(BenchmarkOptions args)
    {
        int threads = args.Threads;
        int seeds = args.Int("seeds", 3);
        double epochs = args.Double("epochs", 8);
        double warmup = args.Double("warmup", 0);
        int trainCount = args.Int("train", 2_000);
        int size = args.Int("size", 17);
        int objects = args.Int("objects", 4);
        double noise = args.Double("noise", 0.25);
        var groups = args.Text("groups", string.Join(",", KnownAnswerTask.NormalSubgroups)).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(SymmetryGroup.Parse).ToArray();
        var channels = args.Text("channels", "16,32,32,64,64").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
        var options = new DifferentiableOptions
        {
            Epochs = epochs,
            WarmupEpochs = warmup,
            Training = new TrainingOptions { LearningRate = args.Double("lr", 1e-3), BatchSize = args.Int("batch", 64) },
            ArchitectureLearningRate = args.Double("alpha-lr", 0.01),
            Initialization = args.Start("init", AlphaInitialization.Uniform),
            SampleArchitectures = args.Choice("sample", "no", "yes", "no") == "yes",
            SymmetryPrior = args.Double("prior", 0),
            ScoreFunctionGradients = args.Choice("gradient", "straight-through", "straight-through", "score") == "score",
        };
        string parts = args.Text("parts", "search,null,retrain,fixed");
        var extraFixed = args.Text("fixed-groups", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(SymmetryGroup.Parse).ToArray();
        // Chains of groups trained as one-hot mixed networks (nested or not), e.g. C1-C1-C1-C1-D4: what a network
        // whose last layer is not inside A can do on the task.
        var chains = args.Text("chains", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(c => c.Split('-').Select(SymmetryGroup.Parse).ToArray()).ToArray();
        string output = args.Text("out", Path.Combine("docs", "results", "known-answer"));
        // Rebuild the page from the JSON of earlier runs (for example two halves of the groups run side by side), with
        // the same settings as those runs: nothing is trained.
        var render = args.Text("render", "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        args.RejectUnknown();
        torch.set_num_threads(threads);
        string machine = Measure.MachineLine(threads);
        var members = options.MemberGroups;
        string command = "dotnet run -c Release --project benchmarks/Equinas.Benchmarks -- known-answer " + string.Join(' ', Environment.GetCommandLineArgs().Skip(2));
        Console.WriteLine($"known-answer: EquiNAS_D on (object, coset of A) classes; {size}x{size}, {objects} objects, {trainCount} training images; {warmup} warm-up + {epochs} search epochs; lr {options.Training.LearningRate} / alpha {options.ArchitectureLearningRate}");
        Console.WriteLine(machine);

        var runs = new List<Outcome>();
        if (render.Length > 0)
        {
            var commands = new List<string>();
            foreach (var file in render)
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(file));
                commands.Add(doc.RootElement.GetProperty("command").GetString()!);
                machine = doc.RootElement.GetProperty("machine").GetString()!;
                foreach (var r in doc.RootElement.GetProperty("runs").EnumerateArray())
                {
                    double[][]? z = r.TryGetProperty("z", out var zs) && zs.ValueKind == JsonValueKind.Array
                        ? zs.EnumerateArray().Select(l => l.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray()
                        : null;
                    runs.Add(new Outcome(r.GetProperty("group").GetString()!, r.GetProperty("seed").GetInt32(), r.GetProperty("method").GetString()!, r.GetProperty("architecture").GetString()!, r.GetProperty("mass_outside").GetDouble(), r.GetProperty("test_accuracy").GetDouble(), r.GetProperty("seconds").GetDouble(), z, z is null ? null : MixedGroupCnn.ElementMass(members, z)));
                }
            }

            command = string.Join("` and `", commands);
            groups = runs.Select(r => r.Group).Distinct().Select(SymmetryGroup.Parse).ToArray();
        }

        foreach (var a in render.Length > 0 ? [] : groups)
        {
            var task = KnownAnswerTask.Create(a.Name, objects, size, seed: 1);
            var outside = members.Select(m => !m.IsSubgroupOf(a)).ToArray();
            var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, channels.Length), channels, 5, [1, 3], task.Classes, 32);
            for (int seed = 1; seed <= seeds; seed++)
            {
                // The data vary with the seed too (images, noise), the objects do not.
                using var train = ToDataset(task.Images(trainCount, seed: 1000 + seed, noise), task);
                using var heldOut = ToDataset(task.Images(trainCount / 4, seed: 2000 + seed, noise), task);
                using var test = ToDataset(task.Images(trainCount / 2, seed: 3000 + seed, noise), task);
                foreach (bool shuffled in new[] { false, true })
                {
                    if (!parts.Contains(shuffled ? "null" : "search", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    var watch = Stopwatch.StartNew();
                    using var result = new DifferentiableSearch(options with { Seed = seed, ShuffleArchitectureGradients = shuffled }).Run(template, train, heldOut);
                    double accuracy = NetworkTrainer.Evaluate(result.Network, test, 256, CancellationToken.None).Accuracy;
                    var last = result.Z[^1];
                    double mass = last.Where((_, i) => outside[i]).Sum();
                    string method = shuffled ? "null control (shuffled alpha gradients)" : "EquiNAS_D (mixture)";
                    var (isA, outsideA) = InvarianceOdds(members, result.Z, a);
                    runs.Add(new Outcome(a.Name, seed, method, string.Join("-", result.ArgmaxGroups.Select(g => g.Name)), mass, accuracy, watch.Elapsed.TotalSeconds, result.Z.ToArray(), MixedGroupCnn.ElementMass(members, result.Z)));
                    Console.Error.WriteLine($"  A={a} seed {seed} {method}: mass outside A {mass:F3}, P(invariance = A) {isA:F3}, P(invariance not inside A) {outsideA:F3}, argmax {runs[^1].Architecture}, test {accuracy:P2} ({watch.Elapsed.TotalSeconds:F0} s)");
                    if (!shuffled && seed == 1)
                    {
                        var epochsRecord = HistoryRecords.Epochs(members, result.History);
                        SearchPlots.ZPerLayer(epochsRecord, sumConjugates: false, uniformStart: options.Initialization == AlphaInitialization.Uniform, title: $"z per layer over training, classes (figure, coset of {a.Name}), seed 1").SaveSvg($"{output}-z-{a.Name}.svg");
                        SearchPlots.ElementMassPerLayer(epochsRecord, $"Mass of z per element of D4, classes (figure, coset of {a.Name}), seed 1").SaveSvg($"{output}-mass-{a.Name}.svg");
                    }

                    if (!shuffled && parts.Contains("retrain", StringComparison.Ordinal))
                    {
                        var chain = DifferentiableSearch.Chain(result.ArgmaxGroups);
                        var retrained = FixedBaseline.Train(template, chain, train, heldOut, test, warmup + epochs, options.Training, seed + 1);
                        double retrainedMass = chain[^1].IsSubgroupOf(a) ? 0 : 1;
                        runs.Add(new Outcome(a.Name, seed, "argmax chain retrained", retrained.Architecture, retrainedMass, retrained.TestAccuracy, retrained.Seconds, null, null));
                        Console.Error.WriteLine($"  A={a} seed {seed} retrained {retrained.Architecture}: test {retrained.TestAccuracy:P2}");
                    }
                }

                foreach (var chain in chains)
                {
                    var trained = FixedBaseline.TrainChain(template, chain, train, heldOut, test, warmup + epochs, options.Training, seed);
                    var meet = SymmetryGroup.IntersectAll(chain);
                    runs.Add(new Outcome(a.Name, seed, $"one-hot chain {trained.Architecture}", trained.Architecture, chain[^1].IsSubgroupOf(a) ? 0 : 1, trained.TestAccuracy, trained.Seconds, null, null));
                    Console.Error.WriteLine($"  A={a} seed {seed} one-hot chain {trained.Architecture} (invariant to {meet}): test {trained.TestAccuracy:P2}");
                }

                if (parts.Contains("fixed", StringComparison.Ordinal))
                {
                    foreach (var g in new[] { a, SymmetryGroup.C1 }.Concat(extraFixed).Distinct())
                    {
                        var baseline = FixedBaseline.Train(template, g, train, heldOut, test, warmup + epochs, options.Training, seed);
                        runs.Add(new Outcome(a.Name, seed, g == a ? "fixed all-A" : $"fixed all-{g.Name}", baseline.Architecture, g.IsSubgroupOf(a) ? 0 : 1, baseline.TestAccuracy, baseline.Seconds, null, null));
                        Console.Error.WriteLine($"  A={a} seed {seed} fixed {g}: test {baseline.TestAccuracy:P2}");
                    }
                }
            }
        }

        var markdown = new StringBuilder();
        markdown.AppendLine("# EquiNAS_D on a task with a known answer");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {machine}.");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Command: `{command.Trim()}`");
        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Task (`Equinas.Data.KnownAnswerTask`): {objects} random stroke figures without symmetry of their own on a {size}x{size} grid; for a normal subgroup A of D4 the classes are (figure, coset gA), each image its figure moved by a uniform element of its coset plus Gaussian noise (sd {noise}). Labels are A-invariant and changed by every element outside A, so the last layer's group must lie inside A. {trainCount} training, {trainCount / 4} held-out (validation and alpha batches), {trainCount / 2} test images per seed. Network: widths {string.Join(",", channels)} (scalar channels), 5x5 kernels, pooling after layers 2 and 4, every layer mixed over {string.Join(", ", members.Select(m => m.Name))}. {warmup} warm-up epochs (weights only) and {epochs} search epochs; Adam lr {options.Training.LearningRate} (weights), {options.ArchitectureLearningRate} (alphas), batch {options.Training.BatchSize}. Fixed networks and the retrained argmax chain train {warmup + epochs} epochs. The null control runs the same search with each layer's alpha gradient permuted across members every step. Search: {(options.SampleArchitectures ? $"sampled chains ({(options.ScoreFunctionGradients ? "score-function" : "straight-through")} alpha gradients{(warmup > 0 ? ", warm-up on chains drawn from the uniform z" : "")})" : "the relaxed mixture")}{(options.SymmetryPrior > 0 ? string.Create(CultureInfo.InvariantCulture, $", symmetry prior {options.SymmetryPrior} per bit given up") : "")}.");
        markdown.AppendLine();
        markdown.AppendLine("Target (the issue's): the last layer's z mass on members not inside A below 0.1 for every A in 3 of 3 seeds, far from the null control; the retrained argmax chain within 1 point of fixed all-A. The network's invariance is the intersection of its layers' groups, so the columns `P(inv = A)` and `P(inv not in A)` give, for a chain drawn from z, the chance that its invariance group is exactly A and that it is not inside A (the network would then be blind to an element that changes the label); for a fixed or retrained network they are 0 or 1.");
        markdown.AppendLine();
        markdown.AppendLine("| A | method | last-layer mass outside A (per seed) | P(inv = A) | P(inv not in A) | median test acc | test acc per seed | argmax per seed |");
        markdown.AppendLine("| --- | --- | --- | --- | --- | ---: | --- | --- |");
        foreach (var a in groups)
        {
            foreach (var method in runs.Where(r => r.Group == a.Name).Select(r => r.Method).Distinct())
            {
                var rs = runs.Where(r => r.Group == a.Name && r.Method == method).OrderBy(r => r.Seed).ToArray();
                string mass = rs.Any(r => r.Z is null) ? "-" : string.Join(", ", rs.Select(r => r.MassOutside.ToString("F3", CultureInfo.InvariantCulture)));
                var odds = rs.Select(r => Odds(r, members, a)).ToArray();
                string isA = string.Join(", ", odds.Select(o => o.IsA.ToString("F3", CultureInfo.InvariantCulture)));
                string outside = string.Join(", ", odds.Select(o => o.OutsideA.ToString("F3", CultureInfo.InvariantCulture)));
                markdown.AppendLine(CultureInfo.InvariantCulture, $"| {a.Name} | {method} | {mass} | {isA} | {outside} | {Measure.Median(rs.Select(r => r.TestAccuracy)):P2} | {string.Join(", ", rs.Select(r => r.TestAccuracy.ToString("P1", CultureInfo.InvariantCulture)))} | {string.Join("; ", rs.Select(r => r.Architecture))} |");
            }
        }

        markdown.AppendLine();
        markdown.AppendLine(CultureInfo.InvariantCulture, $"Mass per group element in the last layer (search, seed 1): m(g) = sum of z over the members containing g. Plots of the search with seed 1 over training: `{(render.Length > 0 ? string.Join("`, `", render.Select(f => Path.GetFileNameWithoutExtension(f))) : Path.GetFileName(output))}-z-A.svg` (z per layer) and `-mass-A.svg` (mass per element), for each A.");
        markdown.AppendLine();
        markdown.AppendLine("| A | " + string.Join(" | ", D4Element.All.Select(g => g.ToString())) + " |");
        markdown.AppendLine("| --- |" + string.Concat(D4Element.All.Select(_ => " ---: |")));
        foreach (var r in runs.Where(r => r.Method == "EquiNAS_D (mixture)" && r.Seed == 1))
        {
            markdown.AppendLine(CultureInfo.InvariantCulture, $"| {r.Group} | {string.Join(" | ", r.ElementMass![^1].Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))} |");
        }

        markdown.AppendLine();
        var json = new Dictionary<string, object>
        {
            ["benchmark"] = "known-answer",
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            ["machine"] = machine,
            ["command"] = command.Trim(),
            ["members"] = members.Select(m => m.Name).ToArray(),
            ["runs"] = runs.Select(r => new { group = r.Group, seed = r.Seed, method = r.Method, architecture = r.Architecture, mass_outside = r.MassOutside, test_accuracy = r.TestAccuracy, seconds = r.Seconds, z = r.Z }).ToArray(),
        };
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output + ".md", markdown.ToString());
        var text = JsonSerializer.Serialize(json);
        File.WriteAllText(output + ".json", text + Environment.NewLine);
        Console.WriteLine(markdown.ToString());
        Console.WriteLine($"results written to {output}.md and {output}.json");
        Console.WriteLine(text);
        return 0;
    }

    /// <summary>The invariance odds of a run: from its z for a search, from its architecture (a chain) otherwise.</summary>
    private static (double IsA, double OutsideA) Odds(Outcome run, IReadOnlyList<SymmetryGroup> members, SymmetryGroup a)
    {
        if (run.Z is { } z)
        {
            return InvarianceOdds(members, z, a);
        }

        var meet = SymmetryGroup.IntersectAll(run.Architecture.Split('-').Select(SymmetryGroup.Parse).ToArray());
        return (meet == a ? 1 : 0, meet.IsSubgroupOf(a) ? 0 : 1);
    }

    /// <summary>
    /// For a chain drawn from z: the probability that its invariance group (the intersection of its members) is A,
    /// and that it is not inside A (the network would then be invariant to an element that changes the label).
    /// </summary>
    internal static (double IsA, double OutsideA) InvarianceOdds(IReadOnlyList<SymmetryGroup> members, IReadOnlyList<double[]> z, SymmetryGroup a)
    {
        var odds = MixedGroupCnn.InvarianceDistribution(members, z);
        return (odds.GetValueOrDefault(a), odds.Where(s => !s.Key.IsSubgroupOf(a)).Sum(s => s.Value));
    }

    private static ImageDataset ToDataset(IReadOnlyList<DigitImage> images, KnownAnswerTask task)
    {
        var pixels = images.SelectMany(i => i.Pixels).ToArray();
        var labels = images.Select(i => (long)i.Label).ToArray();
        return new ImageDataset(torch.tensor(pixels, [images.Count, 1, task.Size, task.Size]), torch.tensor(labels), task.Classes);
    }
}
