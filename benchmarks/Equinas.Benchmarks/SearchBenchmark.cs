using System.Diagnostics;
using Equinas.MLNet;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using TorchSharp;
using Digits = Equinas.Data.ShippedDigits;
using Split = Equinas.Data.DigitSplit;

namespace Equinas.Benchmarks;

/// <summary>
/// EquiNAS_E's wall clock through the ML.NET trainer on the shipped rotated digits:
/// <list type="number">
/// <item>workers: the default budget trained one candidate at a time on <c>--threads</c> libtorch threads (how every
/// search ran before candidates were trained in parallel), and by 1, 2 and 3 workers of one thread each (the default on
/// this machine is <see cref="EquivariantImageClassificationTrainer.Defaults.Workers"/> workers of
/// <see cref="EquivariantImageClassificationTrainer.Defaults.ThreadsPerWorker"/> thread), interleaved round by round;
/// the one-thread runs must give the same history bit for bit;</item>
/// <item>paper: the paper's budget scaled down (population 5), with the default workers;</item>
/// <item>checkpoint: the default budget writing a checkpoint after every generation, then a second <c>Fit</c> on the
/// finished folder (everything restored, nothing trained): what checkpoints cost per generation and what a resume costs;</item>
/// <item>validation: through the engine, candidates trained for two epochs per generation with the norm re-estimation
/// and validation after every epoch (before) and after the last only (now): the histories must be the same bit for bit.</item>
/// </list>
/// </summary>
internal static class SearchBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (
            Threads: args.Threads,
            Rounds: args.Int("rounds", 1),
            Parts: args.Text("parts", "workers,paper,checkpoint,validation").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            MaxWorkers: args.Int("max-workers", 3),
            Generations: args.Int("generations", EquivariantImageClassificationTrainer.Defaults.Generations),
            PaperGenerations: args.Int("paper-generations", 5),
            PaperEpochs: args.Double("paper-epochs-per-generation", 0.25));
        args.RejectUnknown();
        torch.set_num_threads(o.Threads);
        int defaultWorkers = EquivariantImageClassificationTrainer.Defaults.Workers;
        int defaultThreads = EquivariantImageClassificationTrainer.Defaults.ThreadsPerWorker;
        Console.WriteLine($"search: EquinasEvolve on the shipped rotated digits (train 6,004, validation 2,000); default budget unless noted; default here: {defaultWorkers} workers x {defaultThreads} thread(s)");
        Console.WriteLine(Measure.MachineLine(o.Threads));
        var ml = new MLContext(seed: 1);
        var digits = Digits.Load();
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", "Digit");
        var trainRaw = Digits.ToDataView(ml, digits.Rotated(Split.Train, 101));
        var mapper = toKey.Fit(trainRaw);
        var train = mapper.Transform(trainRaw);
        var validation = mapper.Transform(Digits.ToDataView(ml, digits.Rotated(Split.Validation, 102)));
        var json = new Dictionary<string, object> { ["benchmark"] = "search", ["threads"] = o.Threads, ["default_workers"] = defaultWorkers, ["default_threads_per_worker"] = defaultThreads };
        var runs = new List<Dictionary<string, object>>();

        SearchRun Search(string name, EquivariantImageClassificationTrainer.Options options)
        {
            double loadBefore = LoadAverage();
            var watch = Stopwatch.StartNew();
            var model = ml.MulticlassClassification.Trainers.EquinasEvolve(options).Fit(train);
            var wall = watch.Elapsed.TotalSeconds;
            double load = Math.Max(loadBefore, LoadAverage());
            var history = model.Model.History;
            var t = history.Timings!;
            double Seconds(string key) => t.TryGetValue(key, out var v) ? v.TotalSeconds : 0;
            var last = history.Candidates.Max(c => c.Generation);
            var best = history.Candidates.Where(c => c.Generation == last).MaxBy(c => c.ValidationAccuracy)!;
            var bits = history.Candidates.Select(c => $"{c.Generation} {c.Id} {string.Join("-", c.LayerGroups)} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.TrainLoss:R} {c.Survived}").ToArray();
            var run = new SearchRun(name, options.Workers ?? defaultWorkers, options.ThreadsPerWorker ?? defaultThreads, wall, Seconds("data"), Seconds("training"), Seconds("calibration"), Seconds("validation"), Seconds("morphism"), Seconds("checkpoints"),
                history.Candidates.Count, last, string.Join("-", model.Model.LayerGroups), best.ValidationAccuracy, bits, load);
            model.Model.Dispose();
            runs.Add(run.Json());
            Console.WriteLine(run.Line());
            return run;
        }

        EquivariantImageClassificationTrainer.Options Budget(int? workers, int? threads) => new() { ValidationSet = validation, Seed = 1, Workers = workers, ThreadsPerWorker = threads, Generations = o.Generations };

        Console.WriteLine();
        Console.WriteLine(SearchRun.Header);
        if (o.Parts.Contains("workers"))
        {
            // Sequential on all threads (as before), then 1..max workers of one thread; interleaved round by round.
            var configurations = new List<(string Name, int Workers, int Threads)> { ("sequential", 1, o.Threads) };
            configurations.AddRange(Enumerable.Range(1, o.MaxWorkers).Select(w => ($"{w} x 1 thread", w, 1)));
            var results = configurations.ToDictionary(c => c.Name, _ => new List<SearchRun>());
            for (int round = 0; round < o.Rounds; round++)
            {
                var order = round % 2 == 0 ? configurations : Enumerable.Reverse(configurations).ToList();
                foreach (var c in order)
                {
                    results[c.Name].Add(Search(c.Name, Budget(c.Workers, c.Threads)));
                }
            }

            double Median(string name) => Measure.Median(results[name].Select(r => r.Wall));
            var oneThread = results["1 x 1 thread"][0].Bits;
            bool identical = configurations.Where(c => c.Threads == 1).All(c => results[c.Name].All(r => r.Bits.SequenceEqual(oneThread)));
            string defaultName = defaultThreads == 1 && defaultWorkers <= o.MaxWorkers ? $"{defaultWorkers} x 1 thread" : "sequential";
            double speedup = Median("sequential") / Median(defaultName);
            Console.WriteLine();
            Console.WriteLine($"wall clock, median of {o.Rounds}: " + string.Join("; ", configurations.Select(c => $"{c.Name} {Median(c.Name):F1} s")));
            Console.WriteLine($"speedup of the default ({defaultName}) over sequential on {o.Threads} threads: {speedup:F2}x; over 1 worker of 1 thread: {Median("1 x 1 thread") / Median(defaultName):F2}x");
            Console.WriteLine($"one-thread runs bit-identical whatever the worker count: {identical}; sequential on {o.Threads} threads gives the same history: {results["sequential"][0].Bits.SequenceEqual(oneThread)}");
            json["speedup_workers_vs_1x1"] = Math.Round(Median("1 x 1 thread") / Median(defaultName), 3);
            json["one_thread_runs_identical"] = identical;
            json["scaling"] = configurations.Select(c => new Dictionary<string, object> { ["name"] = c.Name, ["workers"] = c.Workers, ["threads_per_worker"] = c.Threads, ["wall_s"] = Math.Round(Median(c.Name), 2) }).ToArray();
            json["speedup_workers"] = Math.Round(speedup, 3);
        }

        if (o.Parts.Contains("paper"))
        {
            var paper = Budget(null, null);
            paper.PopulationSize = 5;
            paper.Generations = o.PaperGenerations;
            paper.EpochsPerGeneration = o.PaperEpochs;
            Search("paper, scaled", paper);
        }

        if (o.Parts.Contains("checkpoint"))
        {
            var folder = Path.Combine(Path.GetTempPath(), $"equinas-bench-checkpoints-{Guid.NewGuid():N}");
            try
            {
                var options = Budget(null, null);
                options.CheckpointDirectory = folder;
                var written = Search("checkpointed", options);
                long bytes = Directory.GetFiles(folder, "checkpoint-*.zip").Max(f => new FileInfo(f).Length);
                var resumed = Search("resumed (done)", options);
                int generations = options.Generations + 1;
                double perGeneration = written.Checkpoints / generations;
                double restore = resumed.Wall - resumed.Data;
                Console.WriteLine();
                Console.WriteLine($"checkpoints: {generations} written, {written.Checkpoints * 1000:F0} ms in all, {perGeneration * 1000:F1} ms per generation, the largest {bytes / 1024.0:F0} KiB; a run over the finished folder took {resumed.Wall:F1} s ({restore:F2} s besides reading the data: reading, checking and rebuilding the survivors)");
                json["checkpoint"] = new Dictionary<string, object>
                {
                    ["write_ms_per_generation"] = Math.Round(perGeneration * 1000, 1),
                    ["largest_kib"] = Math.Round(bytes / 1024.0, 1),
                    ["resume_s"] = Math.Round(restore, 3),
                    ["checkpointed_wall_s"] = Math.Round(written.Wall, 2),
                };
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        if (o.Parts.Contains("validation"))
        {
            json["validation"] = ValidationPart(digits, o.Threads);
        }

        json["runs"] = runs;
        Measure.PrintJson(json);
        return 0;
    }

    /// <summary>
    /// Norm re-estimation and validation after every epoch of a candidate (before) and after its last (now), through
    /// the engine with a sequential executor: 1,500 training and 1,000 validation images, two epochs per generation.
    /// </summary>
    private static Dictionary<string, object> ValidationPart(Digits digits, int threads)
    {
        Console.WriteLine();
        Console.WriteLine("validation: the engine's EquiNAS_E on 1,500 rotated training digits and 1,000 validation digits, population 2, 2 generations of 2 epochs, one candidate at a time");
        using var train = Tensors(digits.Rotated(Split.Train, 101).Take(1500).ToArray());
        using var validation = Tensors(digits.Rotated(Split.Validation, 102).Take(1000).ToArray());
        var template = NetworkPresets.Small(NetworkPresets.Uniform(SymmetryGroup.D4, 5), classes: 10);
        var options = new EvolutionOptions { PopulationSize = 2, Generations = 2, EpochsPerGeneration = 2, Seed = 1, Training = new TrainingOptions() };
        var result = new Dictionary<string, object>();
        string[]? reference = null;
        foreach (bool everyEpoch in new[] { true, false })
        {
            var executor = new SequentialExecutor(everyEpoch, threads);
            double load = LoadAverage();
            var watch = Stopwatch.StartNew();
            using var run = new EvolutionarySearch(options) { Executor = executor }.Run(template, train, validation);
            double wall = watch.Elapsed.TotalSeconds;
            var t = run.Times;
            var bits = run.History.SelectMany(g => g.Candidates).Select(c => $"{c.Generation} {c.Id} {string.Join("-", c.Groups)} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.TrainLoss:R} {c.Survived}").ToArray();
            reference ??= bits;
            double spent = t.Training.TotalSeconds + t.Calibration.TotalSeconds + t.Validation.TotalSeconds;
            double share = (t.Calibration.TotalSeconds + t.Validation.TotalSeconds) / spent;
            string name = everyEpoch ? "before (every epoch)" : "now (last epoch)";
            load = Math.Max(load, LoadAverage());
            Console.WriteLine($"  {name,-22} wall {wall,6:F1} s (load {load:F1}); training {t.Training.TotalSeconds:F1} s, re-estimation {t.Calibration.TotalSeconds:F1} s, validation {t.Validation.TotalSeconds:F1} s: {share:P1} of the candidates' time; {bits.Length} candidates; same history as before: {bits.SequenceEqual(reference)}");
            result[everyEpoch ? "before" : "after"] = new Dictionary<string, object>
            {
                ["wall_s"] = Math.Round(wall, 2),
                ["training_s"] = Math.Round(t.Training.TotalSeconds, 2),
                ["calibration_s"] = Math.Round(t.Calibration.TotalSeconds, 2),
                ["validation_s"] = Math.Round(t.Validation.TotalSeconds, 2),
                ["share"] = Math.Round(share, 4),
                ["load_average"] = Math.Round(load, 2),
            };
            result["identical_history"] = bits.SequenceEqual(reference);
        }

        return result;

        static ImageDataset Tensors(Equinas.Data.DigitImage[] set)
        {
            var pixels = set.SelectMany(d => d.Pixels).ToArray();
            float mean = pixels.Average();
            float std = MathF.Sqrt(pixels.Select(v => (v - mean) * (v - mean)).Average());
            return new ImageDataset(
                torch.tensor(pixels.Select(v => (v - mean) / std).ToArray(), [set.Length, 1, 28, 28]),
                torch.tensor(set.Select(d => (long)d.Label).ToArray()),
                10);
        }
    }

    /// <summary>One candidate at a time on the calling thread: with every epoch evaluated (the loop before) or the last only (what every executor does now).</summary>
    private sealed class SequentialExecutor(bool everyEpoch, int threads) : ICandidateExecutor
    {
        public int ThreadsPerJob => threads;

        public IReadOnlyList<CandidateOutcome> Execute(CandidateBatch batch, Action<CandidateOutcome>? finished, CancellationToken cancellationToken)
        {
            var outcomes = new List<CandidateOutcome>();
            foreach (var job in batch.Jobs)
            {
                var outcome = everyEpoch
                    ? new CandidateOutcome(job.Id, job.Network, new NetworkTrainer(batch.Training).Fit(job.Network, batch.Train, batch.Validation, job.Epochs, job.Seed, cancellationToken, evaluateEveryEpoch: true))
                    : CandidateTraining.Train(job, batch, cancellationToken);
                finished?.Invoke(outcome);
                outcomes.Add(outcome);
            }

            return outcomes;
        }
    }

    private sealed record SearchRun(
        string Name, int Workers, int Threads, double Wall, double Data, double Training, double Calibration, double Validation, double Morphism, double Checkpoints,
        int Candidates, int Generations, string Groups, double Accuracy, string[] Bits, double Load)
    {
        public static string Header =>
            $"{"run",-18}{"workers",8}{"thr/w",6}{"cands",6}{"wall s",8}{"data s",8}{"train s",9}{"calib s",9}{"valid s",9}{"ckpt s",8}{"val+cal",9}{"load",6}  groups, best validation accuracy (train/calib/valid summed over workers; load: the machine's 1-minute load average, the higher of start and end)";

        public string Line() =>
            $"{Name,-18}{Workers,8}{Threads,6}{Candidates,6}{Wall,8:F1}{Data,8:F1}{Training,9:F1}{Calibration,9:F1}{Validation,9:F1}{Checkpoints,8:F2}{Share,9:P1}{Load,6:F1}  {Groups}, {Accuracy:P2}";

        /// <summary>Re-estimation and validation as a share of the candidates' time (training, re-estimation and validation).</summary>
        public double Share => (Calibration + Validation) / (Training + Calibration + Validation);

        public Dictionary<string, object> Json() => new()
        {
            ["run"] = Name,
            ["workers"] = Workers,
            ["threads_per_worker"] = Threads,
            ["candidates"] = Candidates,
            ["wall_s"] = Math.Round(Wall, 2),
            ["data_s"] = Math.Round(Data, 2),
            ["training_s"] = Math.Round(Training, 2),
            ["calibration_s"] = Math.Round(Calibration, 2),
            ["validation_s"] = Math.Round(Validation, 2),
            ["morphism_s"] = Math.Round(Morphism, 3),
            ["checkpoints_s"] = Math.Round(Checkpoints, 3),
            ["validation_share"] = Math.Round(Share, 4),
            ["groups"] = Groups,
            ["validation_accuracy"] = Math.Round(Accuracy, 4),
            ["load_average"] = Math.Round(Load, 2),
        };
    }

    /// <summary>The 1-minute load average (other work on the machine), or NaN where /proc/loadavg is missing.</summary>
    private static double LoadAverage() =>
        File.Exists("/proc/loadavg") && double.TryParse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture, out var load) ? load : double.NaN;
}
