using System.Diagnostics;
using Equinas.MLNet;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.Benchmarks;

/// <summary>A digit as an ML.NET row (the ExtractPixels layout).</summary>
internal sealed class BenchDigit
{
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    public uint Digit { get; set; }
}

/// <summary>Scores only.</summary>
internal sealed class BenchScore
{
    public float[] Score { get; set; } = [];
}

/// <summary>
/// The ML.NET path against the engine on the same data, side by side in one process: Fit through
/// <c>EquivariantImageClassification</c> (fixed all-D4 small network, the shipped training and validation digits)
/// against the engine's own training loop on the same tensors; Transform over the 10,000 digits (batched scoring)
/// against the engine's batched inference, and ML.NET's per-row scorer on the same model for reference;
/// PredictionEngine latency for one image.
/// </summary>
internal static class MLNetBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (Threads: args.Threads, Rounds: args.Int("rounds", 3), Epochs: args.Double("epochs", 1), Batch: args.Int("batch", 64), Latency: args.Int("predictions", 500), Images: args.Int("images", 10_000));
        args.RejectUnknown();
        torch.set_num_threads(o.Threads);
        Console.WriteLine($"mlnet: fixed all-D4 small network, {o.Epochs} epoch(s), batch {o.Batch}; Transform over {o.Images} images; {o.Rounds} rounds, ML.NET and engine interleaved");
        Console.WriteLine(Measure.MachineLine(o.Threads));

        var digits = Equinas.Data.ShippedDigits.Load();
        BenchDigit[] Rows(Equinas.Data.DigitSplit split) => digits.Plain(split)
            .Select(d => new BenchDigit { Features = d.Pixels, Digit = (uint)d.Label + 1 })
            .ToArray();
        var train = Rows(Equinas.Data.DigitSplit.Train);
        var validation = Rows(Equinas.Data.DigitSplit.Validation);
        var every = train.Concat(validation).Concat(Rows(Equinas.Data.DigitSplit.Test)).ToArray();
        if (o.Images < 1 || o.Images > every.Length)
        {
            throw new ArgumentException($"--images must be between 1 and {every.Length} (the shipped digits); found {o.Images}.");
        }

        var rows = every.Take(o.Images).ToArray();

        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(BenchDigit));
        schema[nameof(BenchDigit.Digit)].ColumnType = new KeyDataViewType(typeof(uint), 10);
        var trainView = ml.Data.LoadFromEnumerable(train, schema);
        var validationView = ml.Data.LoadFromEnumerable(validation, schema);
        var allView = ml.Data.LoadFromEnumerable(rows, schema);
        var options = new EquivariantImageClassificationTrainer.Options
        {
            SearchMode = SearchMode.Fixed,
            LabelColumnName = nameof(BenchDigit.Digit),
            Epochs = o.Epochs,
            BatchSize = o.Batch,
            ValidationSet = validationView,
            Seed = 3,
        };

        // The engine's own loop on the same data, normalised as the trainer does (per-channel training mean and std).
        float mean = train.SelectMany(r => r.Features).Average();
        float std = MathF.Sqrt(train.SelectMany(r => r.Features).Select(v => (v - mean) * (v - mean)).Average());
        ImageDataset Tensors(BenchDigit[] set) => new(
            torch.tensor(set.SelectMany(r => r.Features.Select(v => (v - mean) / std)).ToArray(), [set.Length, 1, 28, 28]),
            torch.tensor(set.Select(r => (long)r.Digit - 1).ToArray()),
            10);

        // The network the trainer builds for these options: the small preset, all-D4, 10 classes.
        var spec = NetworkPresets.Small(NetworkPresets.Uniform(Equinas.MLNet.Groups.SymmetryGroup.D4, 5), classes: 10);
        var fitSeconds = new List<double>();
        var engineSeconds = new List<double>();
        var transformSeconds = new List<double>();
        var batchedSeconds = new List<double>();
        var perRowSeconds = new List<double>();
        ITransformer? model = null;
        for (int round = 0; round < o.Rounds; round++)
        {
            (model as IDisposable)?.Dispose();
            fitSeconds.Add(Measure.Seconds(() => model = ml.MulticlassClassification.Trainers.EquivariantImageClassification(options).Fit(trainView)));
            engineSeconds.Add(Measure.Seconds(() =>
            {
                using var trainSet = Tensors(train);
                using var validationSet = Tensors(validation);
                torch.manual_seed(3);
                using var network = new GroupCnn(spec);
                new NetworkTrainer(new TrainingOptions { BatchSize = o.Batch }).Fit(network, trainSet, validationSet, o.Epochs, 3, CancellationToken.None);
            }));

            var m = model!;
            void ReadScores(IDataView scored)
            {
                var column = scored.Schema["Score"];
                using var cursor = scored.GetRowCursor([column]);
                var getter = cursor.GetGetter<VBuffer<float>>(column);
                VBuffer<float> value = default;
                while (cursor.MoveNext())
                {
                    getter(ref value);
                }
            }

            transformSeconds.Add(Measure.Seconds(() => ReadScores(m.Transform(allView))));

            // ML.NET's scorer on the data itself asks the model row by row: the path Transform took before batching.
            perRowSeconds.Add(Measure.Seconds(() => ReadScores(((PredictionTransformerBase<EquinasModelParameters>)m).Transform(allView))));
            // Only the forward passes are timed: the tensors are normalised and the network built (and its expanded
            // filters cached, as the ML.NET model does at load) beforehand, so Transform's row reading, copying and
            // normalisation count against it.
            using (var all = Tensors(rows))
            {
                torch.manual_seed(3);
                using var network = new GroupCnn(spec);
                network.PrepareForInference();
                batchedSeconds.Add(Measure.Seconds(() =>
                {
                    using var noGrad = torch.no_grad();
                    for (long start = 0; start < all.Count; start += 256)
                    {
                        using var scope = NewDisposeScope();
                        var probabilities = nn.functional.softmax(network.call(all.Images.narrow(0, start, Math.Min(256, all.Count - start))), 1);
                        _ = probabilities.data<float>().ToArray();
                    }
                }));
            }

            Console.WriteLine($"round {round + 1}: fit {fitSeconds[^1]:F1} s, engine loop {engineSeconds[^1]:F1} s, transform {transformSeconds[^1]:F2} s, engine batched inference {batchedSeconds[^1]:F2} s, per-row scorer {perRowSeconds[^1]:F2} s");
        }

        int scoringBatch = ((EquinasPredictionTransformer)model!).BatchSize;
        var latencies = new List<double>();
        using (var engine = ml.Model.CreatePredictionEngine<BenchDigit, BenchScore>(model!, new PredictionEngineOptions { OwnsTransformer = false }))
        {
            for (int i = 0; i < o.Latency; i++)
            {
                var watch = Stopwatch.StartNew();
                engine.Predict(rows[i % rows.Length]);
                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }
        }

        (model as IDisposable)?.Dispose();
        latencies.Sort();
        double fit = Measure.Median(fitSeconds), loop = Measure.Median(engineSeconds);
        double transform = Measure.Median(transformSeconds), batched = Measure.Median(batchedSeconds);
        double epochsPerSecondFit = o.Epochs / fit, epochsPerSecondLoop = o.Epochs / loop;
        double rowsPerSecondTransform = rows.Length / transform, rowsPerSecondBatched = rows.Length / batched;
        double rowsPerSecondPerRow = rows.Length / Measure.Median(perRowSeconds);
        double p50 = latencies[latencies.Count / 2], p99 = latencies[(int)Math.Min(latencies.Count - 1, Math.Ceiling(latencies.Count * 0.99) - 1)];
        Console.WriteLine();
        Console.WriteLine($"{"",-34} {"ML.NET",12} {"engine",12} {"ratio",8}");
        Console.WriteLine($"{"training, epochs/s (Fit vs loop)",-34} {epochsPerSecondFit,12:F4} {epochsPerSecondLoop,12:F4} {epochsPerSecondFit / epochsPerSecondLoop,8:F3}");
        Console.WriteLine($"{"inference, images/s (Transform)",-34} {rowsPerSecondTransform,12:F1} {rowsPerSecondBatched,12:F1} {rowsPerSecondTransform / rowsPerSecondBatched,8:F3}");
        Console.WriteLine($"{"  per-row scorer (before batching)",-34} {rowsPerSecondPerRow,12:F1} {rowsPerSecondBatched,12:F1} {rowsPerSecondPerRow / rowsPerSecondBatched,8:F3}");
        Console.WriteLine($"Transform over {rows.Length} images in batches of {scoringBatch}; engine batches of 256");
        Console.WriteLine($"PredictionEngine latency, one image: median {p50:F2} ms, p99 {p99:F2} ms ({o.Latency} predictions)");
        Measure.PrintJson(new
        {
            benchmark = "mlnet",
            rounds = o.Rounds,
            epochs = o.Epochs,
            batch = o.Batch,
            threads = o.Threads,
            fit_s = fit,
            engine_loop_s = loop,
            fit_ratio = epochsPerSecondFit / epochsPerSecondLoop,
            images = rows.Length,
            transform_batch = scoringBatch,
            transform_img_s = rowsPerSecondTransform,
            transform_per_row_img_s = rowsPerSecondPerRow,
            batched_img_s = rowsPerSecondBatched,
            transform_ratio = rowsPerSecondTransform / rowsPerSecondBatched,
            transform_per_row_ratio = rowsPerSecondPerRow / rowsPerSecondBatched,
            latency_ms_median = p50,
            latency_ms_p99 = p99,
        });
        return 0;
    }
}
