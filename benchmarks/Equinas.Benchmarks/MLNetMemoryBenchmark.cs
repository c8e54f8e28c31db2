using System.Diagnostics;
using Equinas.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using Digits = Equinas.Data.ShippedDigits;
using Split = Equinas.Data.DigitSplit;

namespace Equinas.Benchmarks;

/// <summary>
/// Resident memory of the ML.NET path on the shipped digits: the peak of an evolutionary search with the default
/// budget, and the peak and the growth per epoch (after the first) of a 20-epoch fixed all-D4 training, RSS read from
/// /proc at every epoch end and by a sampler every 100 ms.
/// </summary>
internal static class MLNetMemoryBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (Threads: args.Threads, Epochs: args.Int("epochs", 20), Generations: args.Int("generations", 4));
        args.RejectUnknown();
        torch.set_num_threads(o.Threads);
        Console.WriteLine($"mlnet-memory: shipped digits (train 6,004, validation 2,000); EquinasEvolve default budget ({o.Generations} generations); fixed all-D4 training for {o.Epochs} epochs");
        Console.WriteLine(Measure.MachineLine(o.Threads));
        double start = Measure.RssMegabytes();

        var ml = new MLContext(seed: 1);
        var digits = Digits.Load();
        var train = Digits.ToDataView(ml, digits.Plain(Split.Train));
        var validation = Digits.ToDataView(ml, digits.Plain(Split.Validation));
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", "Digit").Fit(train);
        train = ml.Data.Cache(toKey.Transform(train));
        validation = ml.Data.Cache(toKey.Transform(validation));
        double afterData = Measure.RssMegabytes();

        // Search.
        double searchPeak, searchSeconds;
        using (var sampler = new RssSampler())
        {
            var watch = Stopwatch.StartNew();
            var model = ml.MulticlassClassification.Trainers.EquinasEvolve(new EquivariantImageClassificationTrainer.Options { Generations = o.Generations, ValidationSet = validation, Seed = 1 }).Fit(train);
            searchSeconds = watch.Elapsed.TotalSeconds;
            model.Model.Dispose();
            searchPeak = sampler.Peak;
        }

        Console.Error.WriteLine($"  search done in {searchSeconds:F0} s, peak RSS {searchPeak:F1} MB");

        // 20-epoch training.
        var perEpoch = new List<double>();
        double trainingPeak, trainingSeconds;
        using (var sampler = new RssSampler())
        {
            var watch = Stopwatch.StartNew();
            var options = new EquivariantImageClassificationTrainer.Options
            {
                SearchMode = SearchMode.Fixed,
                Epochs = o.Epochs,
                ValidationSet = validation,
                Seed = 1,
                Progress = new Reporter(_ =>
                {
                    perEpoch.Add(Measure.RssMegabytes());
                    Console.Error.WriteLine($"  epoch {perEpoch.Count}: RSS {perEpoch[^1]:F1} MB");
                }),
            };
            var model = ml.MulticlassClassification.Trainers.EquivariantImageClassification(options).Fit(train);
            trainingSeconds = watch.Elapsed.TotalSeconds;
            model.Model.Dispose();
            trainingPeak = sampler.Peak;
        }

        double growthPerEpoch = perEpoch.Count > 1 ? (perEpoch[^1] - perEpoch[0]) / (perEpoch.Count - 1) : double.NaN;
        double worstStep = perEpoch.Count > 1 ? perEpoch.Zip(perEpoch.Skip(1), (a, b) => b - a).Max() : double.NaN;
        Console.WriteLine();
        Console.WriteLine($"{"RSS at start",-44}{start,10:F1} MB");
        Console.WriteLine($"{"RSS with the data read (ML.NET cache)",-44}{afterData,10:F1} MB");
        Console.WriteLine($"{"peak RSS of the search",-44}{searchPeak,10:F1} MB ({searchSeconds:F0} s)");
        Console.WriteLine($"{"peak RSS of the " + o.Epochs + "-epoch training",-44}{trainingPeak,10:F1} MB ({trainingSeconds:F0} s)");
        Console.WriteLine($"{"RSS after epoch 1 / after the last",-44}{perEpoch.FirstOrDefault(),10:F1} / {perEpoch.LastOrDefault():F1} MB");
        Console.WriteLine($"{"growth per epoch after the first (mean)",-44}{growthPerEpoch,10:F2} MB (target < 5 MB)");
        Console.WriteLine($"{"largest growth between two epochs",-44}{worstStep,10:F2} MB");
        Measure.PrintJson(new Dictionary<string, object>
        {
            ["benchmark"] = "mlnet-memory",
            ["threads"] = o.Threads,
            ["epochs"] = o.Epochs,
            ["generations"] = o.Generations,
            ["rss_start_mb"] = Math.Round(start, 1),
            ["rss_data_mb"] = Math.Round(afterData, 1),
            ["search_peak_mb"] = Math.Round(searchPeak, 1),
            ["search_s"] = Math.Round(searchSeconds, 1),
            ["training_peak_mb"] = Math.Round(trainingPeak, 1),
            ["training_s"] = Math.Round(trainingSeconds, 1),
            ["growth_per_epoch_mb"] = Math.Round(growthPerEpoch, 3),
            ["largest_epoch_growth_mb"] = Math.Round(worstStep, 3),
            ["rss_per_epoch_mb"] = perEpoch.Select(r => Math.Round(r, 1)).ToArray(),
        });
        return 0;
    }

    private sealed class Reporter(Action<EquinasProgress> report) : IProgress<EquinasProgress>
    {
        public void Report(EquinasProgress value) => report(value);
    }

    /// <summary>Samples RSS every 100 ms on a background thread and keeps the highest value.</summary>
    private sealed class RssSampler : IDisposable
    {
        private readonly Timer _timer;
        private double _peak;

        public RssSampler()
        {
            _peak = Measure.RssMegabytes();
            _timer = new Timer(_ => Sample(), null, 0, 100);
        }

        public double Peak
        {
            get
            {
                Sample();
                lock (_timer)
                {
                    return _peak;
                }
            }
        }

        public void Dispose() => _timer.Dispose();

        private void Sample()
        {
            double rss = Measure.RssMegabytes();
            lock (_timer)
            {
                _peak = Math.Max(_peak, rss);
            }
        }
    }
}
