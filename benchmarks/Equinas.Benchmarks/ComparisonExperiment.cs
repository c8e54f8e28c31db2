using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Equinas.Benchmarks.Data;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// Both searches at their defaults against every control, on the shipped digits in three variants (upright, rotated by
/// continuous angles, moved by a random element of D4), per seed:
/// <list type="bullet">
/// <item>EquiNAS_E (default moves, budget and final training) and its copy-only control (the same selection and
/// restarts, no relaxation); with <c>--methods evolve-se</c> or <c>evolve-accuracy</c> also EquiNAS_E with the
/// one-standard-error selection rule (<c>SimplestWithinStandardError</c>) on or off, and <c>--controls no</c> skips the
/// fixed and retrained networks;</item>
/// <item>EquiNAS_D (default epochs, or <c>--d-steps N</c>; z starting at the top group, the default, or uniform with
/// <c>--d-init uniform</c>), keeping the mixture; with <c>--methods
/// differentiable-sampled</c> also the engine's sampled-chain search (score-function gradient, symmetry prior
/// <c>--d-prior</c>, warm-up <c>--d-warmup</c> epochs out of the same budget), keeping its largest-z chain;</item>
/// <item>each search's architecture retrained from scratch for the default training length (the paper's "retrain");</item>
/// <item>fixed all-C1, all-C4 and all-D4 networks trained the default length (as long as the searches' final
/// models), then trained on to as many weight steps as the whole evolutionary search (every candidate), each
/// evaluated at both points.</item>
/// </list>
/// Every row is appended to a JSON-lines file as soon as it is measured, so a run can be split over several sessions
/// (<c>--variants</c>, <c>--seeds</c>); the Markdown summary is rebuilt from every row recorded.
/// </summary>
internal static partial class ComparisonExperiment
{
    private static readonly string[] AllVariants = ["upright", "rotated", "d4"];

    private static readonly SymmetryGroup[] FixedGroups = [SymmetryGroup.C1, SymmetryGroup.C4, SymmetryGroup.D4];

    public static int Run(BenchmarkOptions args)
    {
        int threads = args.Threads;
        var variants = args.Text("variants", string.Join(",", AllVariants)).Split(',', StringSplitOptions.RemoveEmptyEntries);
        var seeds = args.Text("seeds", "1,2,3").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        // "none": no search, only the fixed networks (trained as long; compute-matched where a search was recorded).
        var methods = args.Text("methods", "evolve,copy,differentiable").Split(',', StringSplitOptions.RemoveEmptyEntries).Where(m => m != "none").ToHashSet(StringComparer.Ordinal);
        string output = args.Text("out", Path.Combine("docs", "results", "comparison"));
        bool summaryOnly = args.Int("summary-only", 0) != 0;
        // Smoke tests only: the first N images of each split (the results page then names the limit).
        int limit = args.Int("limit", 0);
        // Resume a split run: skip every row already recorded for a variant and seed, and rebuild what later rows need
        // (the searched architectures, the search's total steps) from the recorded ones.
        bool resume = args.Int("resume", 0) != 0;
        // "no": only the searches asked for, no fixed networks or retrained architectures (for a search variant
        // measured beside rows recorded already).
        bool controls = args.Choice("controls", "yes", "yes", "no") == "yes";
        // "mean-max": every network's head also reads the group mean of each channel's spatial maximum
        // (HeadPooling.MeanAndMax); its rows are a variant of their own ("d4 mean+max head").
        var head = args.Choice("head", "mean", "mean", "mean-max") == "mean" ? HeadPooling.Mean : HeadPooling.MeanAndMax;
        // "differentiable-sampled": EquiNAS_D training sampled chains (score-function gradient) with a symmetry prior
        // and a warm-up on drawn chains, the setting that kept the known-answer chains inside the labels' symmetry;
        // its warm-up comes out of the same step budget, and its kept chain is also retrained from scratch.
        // --d-steps N: both differentiable searches train N weight steps instead of the default (their rows then carry
        // the step count in their method, "EquiNAS_D (4301 steps)", beside the default's).
        int dSteps = args.Int("d-steps", 0);
        // --d-init: where both differentiable searches start each layer's z: "largest", the trainer's default (the top
        // group's logit 0 and the others' -2, as EquiNAS_E starts at all-D4), or "uniform" (the paper's start, and the
        // default until 2026-12-03); rows of the uniform start carry "(uniform start)" in their method.
        var sampled = new DifferentiableSettings(args.Double("d-prior", 0.01), args.Double("d-warmup", 1.4), args.Choice("d-gradient", "score", "score", "straight-through") == "score", dSteps,
            args.Start("d-init", SearchDefaults.MixtureStart));
        // --matched-to: how long the fixed networks train on after the default length. "search" (the default): as many
        // weight steps as the larger of the two evolutionary searches' totals (EquiNAS_E's and its copy-only
        // control's), rows "(compute-matched)". "evolve": as many as EquiNAS_E's own total in that seed, the issue's
        // "trained the same number of steps as the search" read literally, rows "(EquiNAS_E's steps)"; it needs
        // EquiNAS_E's row (recorded, or run with --methods evolve).
        bool toEvolve = args.Choice("matched-to", "search", "search", "evolve") == "evolve";
        // --fixed: which of the fixed all-G networks train (default all three: C1, C4, D4).
        var fixedNames = args.Text("fixed", string.Join(",", FixedGroups.Select(g => g.Name))).Split(',', StringSplitOptions.RemoveEmptyEntries);
        foreach (var f in fixedNames)
        {
            if (!FixedGroups.Any(g => g.Name == f))
            {
                throw new ArgumentException($"--fixed: '{f}' is not one of {string.Join(", ", FixedGroups.Select(g => g.Name))}.");
            }
        }

        var matching = new FixedSettings(toEvolve, fixedNames.ToHashSet(StringComparer.Ordinal));
        args.RejectUnknown();
        foreach (var v in variants)
        {
            if (!AllVariants.Contains(v))
            {
                throw new ArgumentException($"--variants: '{v}' is not one of {string.Join(", ", AllVariants)}.");
            }
        }

        foreach (var m in methods)
        {
            if (m is not ("evolve" or "copy" or "differentiable" or "differentiable-sampled" or "evolve-se" or "evolve-accuracy"))
            {
                throw new ArgumentException($"--methods: '{m}' is not one of evolve, copy, differentiable, differentiable-sampled, evolve-se, evolve-accuracy, none.");
            }
        }

        string machine = Measure.MachineLine(threads);
        string rowsPath = output + "-runs.jsonl";
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        if (!summaryOnly)
        {
            torch.set_num_threads(threads);
            var digits = ShippedDigits.Load();
            Console.WriteLine(machine);
            foreach (var variant in variants)
            {
                foreach (int seed in seeds)
                {
                    RunOne(digits, variant, seed, methods, threads, machine, rowsPath, limit, resume, controls, head, sampled, matching);
                }
            }
        }

        WriteSummary(rowsPath, output);
        return 0;
    }

    private static (ImageDataset Train, ImageDataset Validation, ImageDataset Test) Data(ShippedDigits digits, string variant) => variant switch
    {
        // The data are fixed across seeds (augmentation seeds 101-103); seeds vary initialisation and data order.
        "upright" => (digits.Dataset(DigitSplit.Train), digits.Dataset(DigitSplit.Validation), digits.Dataset(DigitSplit.Test)),
        "rotated" => (digits.Rotated(DigitSplit.Train, 101), digits.Rotated(DigitSplit.Validation, 102), digits.Rotated(DigitSplit.Test, 103)),
        _ => (digits.Augmented(DigitSplit.Train, SymmetryGroup.D4, 101), digits.Augmented(DigitSplit.Validation, SymmetryGroup.D4, 102), digits.Augmented(DigitSplit.Test, SymmetryGroup.D4, 103)),
    };

    private static void RunOne(ShippedDigits digits, string variant, int seed, HashSet<string> methods, int threads, string machine, string rowsPath, int limit, bool resume, bool controls, HeadPooling head, DifferentiableSettings sampled, FixedSettings matching)
    {
        var (train, validation, test) = Data(digits, variant);
        if (limit > 0)
        {
            (train, validation, test) = (Take(train, limit), Take(validation, limit), Take(test, limit));
            variant += $" (first {limit})";
        }

        if (head == HeadPooling.MeanAndMax)
        {
            variant += " mean+max head";
        }

        using var _train = train;
        using var _validation = validation;
        using var _test = test;
        var training = new TrainingOptions();
        int batch = training.BatchSize;
        int stepsPerEpoch = SearchDefaults.StepsPerEpoch(train.Count, batch);
        // The trainer's defaults, resolved for this data as the trainer resolves them.
        var template = digits.DefaultNetwork() with { HeadPooling = head };
        double epochs = SearchDefaults.EpochsFor(train.Count, batch);
        var evolution = new EvolutionOptions { Seed = seed, Training = training, EpochsPerGeneration = SearchDefaults.EpochsPerGenerationFor(train.Count, batch) };
        evolution = evolution with { FinalEpochs = SearchDefaults.FinalEpochsFor(train.Count, batch, (evolution.Generations + 1) * evolution.EpochsPerGeneration) };
        Console.WriteLine($"{variant} seed {seed}: train {train.Count}, validation {validation.Count}, test {test.Count}; {template.Describe()}; {epochs} epochs ({Steps(epochs)} steps) for fixed and differentiable training and the evolutionary lineage; generations of {evolution.EpochsPerGeneration} epoch, final {evolution.FinalEpochs}");
        int Steps(double e) => Math.Max(1, (int)Math.Round(e * stepsPerEpoch));

        void Record(Row row)
        {
            row = row with { Variant = variant, Seed = seed, Machine = machine, Date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) };
            File.AppendAllText(rowsPath, JsonSerializer.Serialize(row) + Environment.NewLine);
            Console.WriteLine($"  {row.Method,-28} {row.Architecture,-22} {row.Parameters,9:N0} params {row.Steps,6} steps  val {row.ValidationAccuracy:P2}  test {row.TestAccuracy:P2}  {row.Seconds,6:F0} s");
        }

        double Test(EquivariantNetwork network) => NetworkTrainer.Evaluate(network, test, training.EvaluationBatchSize, CancellationToken.None).Accuracy;

        var recorded = resume ? ReadRows(rowsPath).Where(r => r.Variant == variant && r.Seed == seed).GroupBy(r => r.Method).ToDictionary(g => g.Key, g => g.Last()) : [];
        static IReadOnlyList<SymmetryGroup> Groups(string architecture) =>
            architecture.Replace(" (mixture)", "", StringComparison.Ordinal).Split('-').Select(SymmetryGroup.Parse).ToArray();

        // Runs one evolutionary search and records its row; returns the result (the caller disposes it) and the weight
        // steps of every candidate of every generation.
        (EvolutionResult Result, int Steps) SearchAndRecord(string method, EvolutionOptions options)
        {
            var watch = Stopwatch.StartNew();
            var result = new EvolutionarySearch(options).Run(template, train, validation);
            try
            {
                int steps = result.History.Sum(g => g.Candidates.Count * Steps(
                    g.Generation == 0 ? options.InitialEpochs ?? options.EpochsPerGeneration : g.Generation > options.Generations ? options.FinalEpochs : options.EpochsPerGeneration));
                Record(new Row(method, string.Join("-", result.Groups.Select(g => g.Name)), result.Network.ParameterCount, steps, result.Best.ValidationAccuracy, Test(result.Network), watch.Elapsed.TotalSeconds, result.History.Sum(g => g.Candidates.Count)));
                return (result, steps);
            }
            catch
            {
                result.Dispose();
                throw;
            }
        }

        var retrain = new List<(string Method, IReadOnlyList<SymmetryGroup> Groups)>();
        int searchSteps = 0;
        int evolveSteps = 0;
        foreach (bool copyOnly in new[] { false, true })
        {
            if (!methods.Contains(copyOnly ? "copy" : "evolve"))
            {
                continue;
            }

            if (recorded.TryGetValue(copyOnly ? "EquiNAS_E copy-only" : "EquiNAS_E", out var done))
            {
                Console.WriteLine($"  {done.Method,-28} recorded already ({done.Architecture}, {done.Steps} steps)");
                searchSteps = Math.Max(searchSteps, done.Steps);
                if (!copyOnly)
                {
                    evolveSteps = done.Steps;
                    retrain.Add(("EquiNAS_E retrained", Groups(done.Architecture)));
                }

                continue;
            }

            var (result, steps) = SearchAndRecord(copyOnly ? "EquiNAS_E copy-only" : "EquiNAS_E", evolution with { CopyOnly = copyOnly });
            using var _result = result;
            searchSteps = Math.Max(searchSteps, steps);
            if (!copyOnly)
            {
                evolveSteps = steps;
                retrain.Add(("EquiNAS_E retrained", result.Groups));
            }
        }

        // EquiNAS_E with each selection rule set explicitly (SimplestWithinStandardError on, off), as rows of their own
        // beside the default's: no retrained architecture (it would take the next network index).
        foreach (var (flag, rule, label) in new[] { ("evolve-se", true, "EquiNAS_E one-SE"), ("evolve-accuracy", false, "EquiNAS_E accuracy ranking") })
        {
            if (!methods.Contains(flag))
            {
                continue;
            }

            if (recorded.TryGetValue(label, out var doneRule))
            {
                Console.WriteLine($"  {doneRule.Method,-28} recorded already ({doneRule.Architecture}, {doneRule.Steps} steps)");
                continue;
            }

            SearchAndRecord(label, evolution with { SimplestWithinStandardError = rule }).Result.Dispose();
        }

        // The differentiable searches' length: the default, or --d-steps (named in the method).
        double dEpochs = sampled.Steps > 0 ? (double)sampled.Steps / stepsPerEpoch : epochs;
        string dSuffix = (sampled.Steps > 0 ? $" ({sampled.Steps} steps)" : "")
            + (sampled.Initialization == SearchDefaults.MixtureStart ? "" : sampled.Initialization == AlphaInitialization.Uniform ? " (uniform start)" : " (largest-group start)");
        string dLabel = "EquiNAS_D" + dSuffix;
        // Runs one differentiable search (or reads its recorded row) and queues its chain for retraining. The mixture is
        // recorded as its argmax groups and all its members' weights; a sampled search's kept model as its largest-z
        // groups and the weights of their chain (the network its retrained row trains).
        void Differentiable(string method, string label, DifferentiableOptions options)
        {
            if (!methods.Contains(method))
            {
                return;
            }

            if (recorded.TryGetValue(label, out var done))
            {
                Console.WriteLine($"  {done.Method,-28} recorded already ({done.Architecture})");
                retrain.Add((label + " retrained", DifferentiableSearch.Chain(Groups(done.Architecture))));
                return;
            }

            var watch = Stopwatch.StartNew();
            using var threadsScope = TrainingThreads.Use(threads);
            using var result = new DifferentiableSearch(options).Run(template, train, validation);
            var validationAccuracy = result.History.Count > 0 ? result.History[^1].Validation.Accuracy : double.NaN;
            var chain = DifferentiableSearch.Chain(result.ArgmaxGroups);
            string architecture = string.Join("-", result.ArgmaxGroups.Select(g => g.Name));
            long parameters = result.Network.ParameterCount;
            if (options.SampleArchitectures)
            {
                using var probe = new GroupCnn(template.WithGroups(chain));
                parameters = probe.ParameterCount;
            }
            else
            {
                architecture += " (mixture)";
            }

            Record(new Row(label, architecture, parameters, Steps(options.WarmupEpochs + options.Epochs), validationAccuracy, Test(result.Network), watch.Elapsed.TotalSeconds, 1));
            retrain.Add((label + " retrained", chain));
        }

        Differentiable("differentiable", dLabel, new DifferentiableOptions { Seed = seed, Training = training, Epochs = dEpochs, Initialization = sampled.Initialization });
        double warmup = Math.Min(sampled.WarmupEpochs, dEpochs / 2);
        Differentiable("differentiable-sampled", "EquiNAS_D sampled" + dSuffix, new DifferentiableOptions
        {
            Seed = seed, Training = training, Epochs = dEpochs - warmup, WarmupEpochs = warmup,
            SampleArchitectures = true, ScoreFunctionGradients = sampled.ScoreFunction, SymmetryPrior = sampled.Prior,
            Initialization = sampled.Initialization,
        });

        // The fixed networks and the retrained architectures: trained side by side (one thread each, 2 at a time) for
        // the default length and tested; then the fixed networks train on (a new optimiser, as every generation of
        // the search starts one) to the evolutionary search's total steps and are tested again.
        var executor = new InProcessExecutor(Math.Min(2, Environment.ProcessorCount), 1);
        // On resume a fixed network trains again only when one of its two rows is missing (the compute-matched one
        // continues from the one trained as long), a retrained architecture only when its row is missing.
        // Each network keeps its index in the full list (fixed C1, C4, D4, then the retrained ones), which seeds its data
        // order, so a resumed run trains what it trains exactly as an uninterrupted one.
        var all = FixedGroups.Select(g => (Method: $"fixed all-{g.Name}", Groups: (IReadOnlyList<SymmetryGroup>)NetworkPresets.Uniform(g, 5)))
            .Concat(retrain).Select((n, i) => (n.Method, n.Groups, Index: i)).ToList();
        int matchedSteps = matching.ToEvolve ? evolveSteps : searchSteps;
        if (matching.ToEvolve && controls && evolveSteps == 0)
        {
            throw new InvalidOperationException($"--matched-to evolve: {variant} seed {seed} has no EquiNAS_E row; run it with --methods evolve (or record it first).");
        }

        var networks = all.Where(n => n.Index < FixedGroups.Length
            ? matching.Groups.Contains(FixedGroups[n.Index].Name)
              && (!recorded.ContainsKey(n.Method + " (as long)") || (matchedSteps > Steps(epochs) && !recorded.ContainsKey(n.Method + matching.Suffix)))
            : !recorded.ContainsKey(n.Method)).ToList();
        int fixedCount = networks.Count(n => n.Index < FixedGroups.Length);
        if (networks.Count == 0 || !controls)
        {
            return;
        }

        var built = networks.Select(n => SeededInit.Create(seed, () => new GroupCnn(template.WithGroups(n.Groups)))).ToList();
        try
        {
            var watch = Stopwatch.StartNew();
            var first = executor.Execute(new CandidateBatch(built.Select((n, i) => new CandidateJob(i, n, epochs, seed * 31 + networks[i].Index)).ToArray(), train, validation, training), null, CancellationToken.None);
            double firstSeconds = watch.Elapsed.TotalSeconds / networks.Count * Math.Min(2, Environment.ProcessorCount);
            for (int i = 0; i < networks.Count; i++)
            {
                first[i].Network.eval();
                string asLong = networks[i].Method.StartsWith("fixed", StringComparison.Ordinal) ? networks[i].Method + " (as long)" : networks[i].Method;
                if (recorded.TryGetValue(asLong, out var before))
                {
                    // Trained again only to go on to the compute-matched length: say whether it reproduced the row.
                    double again = Test(first[i].Network);
                    Console.WriteLine($"  {asLong,-28} recorded already; trained again: test {again:P2} against {before.TestAccuracy:P2} recorded ({(again == before.TestAccuracy ? "reproduced" : "differs")})");
                    continue;
                }

                Record(new Row(asLong, string.Join("-", networks[i].Groups.Select(g => g.Name)), first[i].Network.ParameterCount, Steps(epochs), first[i].Last.Validation!.Value.Accuracy, Test(first[i].Network), firstSeconds, 1));
            }

            if (matchedSteps > Steps(epochs) && fixedCount > 0)
            {
                double more = (double)(matchedSteps - Steps(epochs)) / stepsPerEpoch;
                watch.Restart();
                var second = executor.Execute(new CandidateBatch(built.Take(fixedCount).Select((n, i) => new CandidateJob(i, n, more, seed * 37 + networks[i].Index)).ToArray(), train, validation, training), null, CancellationToken.None);
                double seconds = watch.Elapsed.TotalSeconds / fixedCount * Math.Min(2, Environment.ProcessorCount);
                for (int i = 0; i < fixedCount; i++)
                {
                    second[i].Network.eval();
                    Record(new Row(networks[i].Method + matching.Suffix, string.Join("-", networks[i].Groups.Select(g => g.Name)), second[i].Network.ParameterCount, matchedSteps, second[i].Last.Validation!.Value.Accuracy, Test(second[i].Network), seconds, 1));
                }
            }
        }
        finally
        {
            foreach (var n in built)
            {
                n.Dispose();
            }
        }
    }

    /// <summary>Rebuilds the Markdown summary from every row recorded (the last row of a variant, seed and method wins).</summary>
    private static void WriteSummary(string rowsPath, string output)
    {
        if (!File.Exists(rowsPath))
        {
            Console.WriteLine($"no rows in {rowsPath} yet");
            return;
        }

        var rows = ReadRows(rowsPath)
            .GroupBy(r => (r.Variant, r.Seed, r.Method)).Select(g => g.Last()).ToList();
        string[] order =
        [
            "EquiNAS_E", "EquiNAS_E one-SE", "EquiNAS_E accuracy ranking", "EquiNAS_E accuracy ranking retrained", "EquiNAS_E copy-only", "EquiNAS_E retrained", "EquiNAS_D", "EquiNAS_D retrained", "EquiNAS_D sampled", "EquiNAS_D sampled retrained",
            "fixed all-C1 (as long)", "fixed all-C4 (as long)", "fixed all-D4 (as long)",
            "fixed all-C1 (compute-matched)", "fixed all-C4 (compute-matched)", "fixed all-D4 (compute-matched)",
            "fixed all-C1 (EquiNAS_E's steps)", "fixed all-C4 (EquiNAS_E's steps)", "fixed all-D4 (EquiNAS_E's steps)",
        ];
        // Each search's rows come together: the search, then its architecture retrained; a method named with a setting
        // in parentheses ("EquiNAS_D (4301 steps) retrained") right after the default's rows of the method it varies.
        // A method that is none of these comes last.
        (int Family, string Setting, int Position) Rank(string method)
        {
            string setting = SettingSuffix().Match(method).Value;
            string plain = setting.Length == 0 ? method : method.Replace(setting, "", StringComparison.Ordinal);
            int position = Array.IndexOf(order, plain);
            int family = Array.IndexOf(order, plain.EndsWith(" retrained", StringComparison.Ordinal) ? plain[..^" retrained".Length] : plain);
            return (family < 0 ? (position < 0 ? order.Length : position) : family, setting, position < 0 ? order.Length : position);
        }

        var md = new StringBuilder();
        md.AppendLine("# Searches against fixed networks and controls on the shipped digits");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Rows measured {string.Join(", ", rows.Select(r => r.Date).Distinct().Order())}, on:");
        md.AppendLine();
        // A split run may use other thread counts for other seeds: name which rows each machine line measured.
        foreach (var byMachine in rows.GroupBy(r => r.Machine))
        {
            var runs = byMachine.Select(r => $"{r.Variant} seed {r.Seed}").Distinct().Order(StringComparer.Ordinal);
            md.AppendLine(CultureInfo.InvariantCulture, $"- {byMachine.Key}: {string.Join(", ", runs)}");
        }

        md.AppendLine();
        md.AppendLine("Wall-clock seconds compare only rows of one machine line run under the same load (docs/results/README.md says which runs shared the machine); another thread count changes float rounding and with it the training trajectory, much as another seed does.");
        md.AppendLine();
        md.AppendLine("Command (a run can be split: every row is appended to `comparison-runs.jsonl` and this page is rebuilt from all of them):");
        md.AppendLine();
        md.AppendLine("```bash");
        md.AppendLine("dotnet run -c Release --project benchmarks/Equinas.Benchmarks -- compare --variants upright,rotated,d4 --seeds 1,2,3");
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine("Every option at its default (docs/design.md, \"Defaults\"): the small preset with the last layer widened to 160 channels for 10 classes, training 1000 weight steps (10.64 epochs of the 6,004 training digits) for fixed networks, EquiNAS_D and EquiNAS_E's winning lineage (generations of 0.53 epoch, the winner topped up after the last one), EquiNAS_E with block moves, population 3 and 4 generations. \"as long\": trained the default length; \"compute-matched\": trained on to as many weight steps as the larger of the two evolutionary searches (EquiNAS_E and its copy-only control; every candidate of every generation); \"EquiNAS_E's steps\": trained on to EquiNAS_E's own total in that seed (`--matched-to evolve`). Seeds vary initialisation and data order; the data are the same for every seed.");
        md.AppendLine();
        foreach (var variant in AllVariants.SelectMany(v => rows.Select(r => r.Variant).Where(r => r == v || r.StartsWith(v + " ", StringComparison.Ordinal))).Distinct())
        {
            var vr = rows.Where(r => r.Variant == variant).ToList();
            var seeds = vr.Select(r => r.Seed).Distinct().Order().ToArray();
            md.AppendLine(CultureInfo.InvariantCulture, $"## {variant} (seeds {string.Join(", ", seeds)})");
            md.AppendLine();
            md.AppendLine("| method | median test acc | per seed | architectures | median steps | median parameters |");
            md.AppendLine("| --- | ---: | --- | --- | ---: | ---: |");
            foreach (var method in vr.Select(r => r.Method).Distinct().OrderBy(Rank).ThenBy(m => m, StringComparer.Ordinal))
            {
                var mr = vr.Where(r => r.Method == method).OrderBy(r => r.Seed).ToArray();
                md.AppendLine(CultureInfo.InvariantCulture, $"| {method} | {Measure.Median(mr.Select(r => r.TestAccuracy)):P2} | {string.Join(" / ", mr.Select(r => r.TestAccuracy.ToString("P2", CultureInfo.InvariantCulture)))} | {string.Join(", ", mr.Select(r => r.Architecture).Distinct())} | {Measure.Median(mr.Select(r => (double)r.Steps)):F0} | {Measure.Median(mr.Select(r => (double)r.Parameters)):N0} |");
            }

            md.AppendLine();
            double Median(string method) => vr.Where(r => r.Method == method).Select(r => r.TestAccuracy).DefaultIfEmpty(double.NaN).Pipe(Measure.Median);
            double bestMatched = new[] { "C1", "C4", "D4" }.Select(g => Median($"fixed all-{g} (compute-matched)")).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
            double bestAsLong = new[] { "C1", "C4", "D4" }.Select(g => Median($"fixed all-{g} (as long)")).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
            md.AppendLine("Targets (medians over the seeds):");
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"- EquiNAS_E {Pct(Median("EquiNAS_E"))} against the best compute-matched fixed network {Pct(bestMatched)} minus 1 point: {Verdict(Median("EquiNAS_E"), bestMatched - 0.01)}.");
            // The literal reading of "trained the same number of steps as the search": the fixed networks trained on to
            // EquiNAS_E's own total (its copy-only control trains more), where measured; the bound is the best of the
            // groups measured, each over the seeds it has.
            var ownSteps = new[] { "C1", "C4", "D4" }.Where(g => vr.Any(r => r.Method == $"fixed all-{g} (EquiNAS_E's steps)")).ToArray();
            if (ownSteps.Length > 0)
            {
                double bestOwn = ownSteps.Max(g => Median($"fixed all-{g} (EquiNAS_E's steps)"));
                md.AppendLine(CultureInfo.InvariantCulture, $"- EquiNAS_E {Pct(Median("EquiNAS_E"))} against the best fixed network trained as many steps as EquiNAS_E's own search (measured: all-{string.Join(", all-", ownSteps)}) {Pct(bestOwn)} minus 1 point: {Verdict(Median("EquiNAS_E"), bestOwn - 0.01)}.");
            }

            foreach (var (label, what) in new[] { ("EquiNAS_E one-SE", "the one-standard-error rule, `SimplestWithinStandardError` on"), ("EquiNAS_E accuracy ranking", "`SimplestWithinStandardError` off") })
            {
                if (vr.Any(r => r.Method == label))
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"- {label} ({what}; seeds {string.Join(", ", vr.Where(r => r.Method == label).Select(r => r.Seed).Order())}) {Pct(Median(label))} against the same bound: {Verdict(Median(label), bestMatched - 0.01)}.");
                }
            }

            md.AppendLine(CultureInfo.InvariantCulture, $"- EquiNAS_D {Pct(Median("EquiNAS_D"))} against the best fixed network trained as long (its own compute) {Pct(bestAsLong)} minus 1 point: {Verdict(Median("EquiNAS_D"), bestAsLong - 0.01)}.");
            if (variant != "upright")
            {
                double best = Math.Max(Median("EquiNAS_E"), Median("EquiNAS_D"));
                md.AppendLine(CultureInfo.InvariantCulture, $"- The better search {Pct(best)} at least 2 points above all-C1 trained as long ({Pct(Median("fixed all-C1 (as long)"))}) and compute-matched ({Pct(Median("fixed all-C1 (compute-matched)"))}): {Verdict(best, Median("fixed all-C1 (as long)") + 0.02)} / {Verdict(best, Median("fixed all-C1 (compute-matched)") + 0.02)}.");
            }

            md.AppendLine();
            md.AppendLine("| seed | method | architecture | parameters | steps | candidates | validation acc | test acc | seconds |");
            md.AppendLine("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var r in vr.OrderBy(r => r.Seed).ThenBy(r => Rank(r.Method)).ThenBy(r => r.Method, StringComparer.Ordinal))
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {r.Seed} | {r.Method} | {r.Architecture} | {r.Parameters:N0} | {r.Steps} | {r.Candidates} | {r.ValidationAccuracy:P2} | {r.TestAccuracy:P2} | {r.Seconds:F0} |");
            }

            md.AppendLine();
        }

        File.WriteAllText(output + ".md", md.ToString());
        Console.WriteLine($"summary of {rows.Count} rows written to {output}.md");
    }

    private static List<Row> ReadRows(string rowsPath) =>
        File.Exists(rowsPath) ? File.ReadAllLines(rowsPath).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<Row>(l)!).ToList() : [];

    private static ImageDataset Take(ImageDataset data, int count)
    {
        using (data)
        {
            return data.Subset(Enumerable.Range(0, Math.Min(count, data.Count)).Select(i => (long)i).ToArray());
        }
    }

    private static string Pct(double value) => double.IsFinite(value) ? value.ToString("P2", CultureInfo.InvariantCulture) : "not measured";

    private static string Verdict(double value, double bound) =>
        !double.IsFinite(value) || !double.IsFinite(bound) ? "not measured" : value >= bound ? "met" : $"**missed** by {(bound - value) * 100:F2} points";

    private static TResult Pipe<T, TResult>(this T value, Func<T, TResult> f) => f(value);

    [GeneratedRegex(@"( \((\d+ steps|uniform start|largest-group start)\))+")]
    private static partial Regex SettingSuffix();

    /// <summary>
    /// The differentiable searches' settings: the sampled search's prior, warm-up and gradient
    /// (<c>--methods differentiable-sampled</c>), both searches' weight steps (<c>--d-steps</c>; 0 for the default) and
    /// how their z starts (<c>--d-init</c>).
    /// </summary>
    private sealed record DifferentiableSettings(double Prior, double WarmupEpochs, bool ScoreFunction, int Steps, AlphaInitialization Initialization);

    /// <summary>
    /// How long the fixed networks train on after the default length (<c>--matched-to</c>: the larger search's total, or
    /// EquiNAS_E's own) and which of them train (<c>--fixed</c>).
    /// </summary>
    private sealed record FixedSettings(bool ToEvolve, IReadOnlySet<string> Groups)
    {
        /// <summary>The method suffix of the rows trained on: "(compute-matched)" or "(EquiNAS_E's steps)".</summary>
        public string Suffix => ToEvolve ? " (EquiNAS_E's steps)" : " (compute-matched)";
    }

    /// <summary>One measured model.</summary>
    internal sealed record Row(string Method, string Architecture, long Parameters, int Steps, double ValidationAccuracy, double TestAccuracy, double Seconds, int Candidates)
    {
        public string Variant { get; init; } = "";

        public int Seed { get; init; }

        public string Machine { get; init; } = "";

        public string Date { get; init; } = "";
    }
}
