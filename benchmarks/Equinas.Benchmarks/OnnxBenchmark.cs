using Equinas.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// ONNX Runtime on the exported model beside ours, side by side in one process and on the same trained model (fixed
/// all-D4 small network, trained through ML.NET for <c>--epochs</c> on the shipped training digits): ML.NET's
/// <c>Transform</c> over the 10,000 digits, the engine's batched inference (<c>--batch</c> images per forward) and ONNX
/// Runtime's session on the file <see cref="EquinasModelParameters.SaveAsOnnx(string)"/> wrote, at the same batch size
/// and at batch 1, with the same number of threads (libtorch's and ONNX Runtime's intra-op pool; inter-op 1).
/// Rounds interleave the paths; medians are reported, and the largest difference between ONNX Runtime's and the
/// engine's probabilities over all images.
/// </summary>
internal static class OnnxBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (Threads: args.Threads, Rounds: args.Int("rounds", 3), Epochs: args.Double("epochs", 0.25), Batch: args.Int("batch", 256), Images: args.Int("images", 10_000));
        args.RejectUnknown();
        torch.set_num_threads(o.Threads);
        Console.WriteLine($"onnx: fixed all-D4 small network trained {o.Epochs} epoch(s); {o.Images} images, batch {o.Batch}; {o.Rounds} rounds, paths interleaved");
        Console.WriteLine(Measure.MachineLine(o.Threads));

        var digits = Equinas.Data.ShippedDigits.Load();
        BenchDigit[] Rows(Equinas.Data.DigitSplit split) => digits.Plain(split)
            .Select(d => new BenchDigit { Features = d.Pixels, Digit = (uint)d.Label + 1 })
            .ToArray();
        var train = Rows(Equinas.Data.DigitSplit.Train);
        var all = train.Concat(Rows(Equinas.Data.DigitSplit.Validation)).Concat(Rows(Equinas.Data.DigitSplit.Test)).ToArray();
        var rows = Enumerable.Range(0, o.Images).Select(i => all[i % all.Length]).ToArray();

        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(BenchDigit));
        schema[nameof(BenchDigit.Digit)].ColumnType = new KeyDataViewType(typeof(uint), 10);
        var options = new EquivariantImageClassificationTrainer.Options
        {
            SearchMode = SearchMode.Fixed,
            LabelColumnName = nameof(BenchDigit.Digit),
            Epochs = o.Epochs,
            Seed = 3,
        };
        var model = ml.MulticlassClassification.Trainers.EquivariantImageClassification(options).Fit(ml.Data.LoadFromEnumerable(train, schema));
        var parameters = model.Model;
        var view = ml.Data.LoadFromEnumerable(rows, schema);
        var pixels = rows.SelectMany(r => r.Features).ToArray();
        int size = parameters.InputShape.Channels * parameters.InputShape.Height * parameters.InputShape.Width;
        int classes = parameters.ClassCount;

        string file = Path.Combine(Path.GetTempPath(), $"equinas-bench-{Guid.NewGuid():N}.onnx");
        double exportSeconds = Measure.Seconds(() => parameters.SaveAsOnnx(file));
        long fileBytes = new FileInfo(file).Length;
        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = o.Threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(file, sessionOptions);
        File.Delete(file);

        float[] Engine(int batch, int count)
        {
            var result = new float[count * classes];
            for (int start = 0; start < count; start += batch)
            {
                int n = Math.Min(batch, count - start);
                var chunk = pixels.AsSpan(start * size, n * size).ToArray();
                parameters.PredictBatch(chunk, n).CopyTo(result, start * classes);
            }

            return result;
        }

        float[] Onnx(int batch, int count)
        {
            var result = new float[count * classes];
            var (c, h, w) = parameters.InputShape;
            for (int start = 0; start < count; start += batch)
            {
                int n = Math.Min(batch, count - start);
                var input = new DenseTensor<float>(pixels.AsMemory(start * size, n * size), new[] { n, c, h, w });
                using var output = session.Run(new[] { NamedOnnxValue.CreateFromTensor("pixels", input) });
                var probabilities = output[0].AsTensor<float>();
                for (int i = 0; i < n * classes; i++)
                {
                    result[(start * classes) + i] = probabilities.GetValue(i);
                }
            }

            return result;
        }

        // Warm-up: first calls build caches and thread pools in every runtime.
        var warm = model.Transform(ml.Data.LoadFromEnumerable(rows.Take(Math.Min(rows.Length, o.Batch)).ToArray(), schema));
        _ = warm.GetColumn<float[]>("Score").Count();
        int warmCount = Math.Min(rows.Length, o.Batch);
        _ = Engine(o.Batch, warmCount).Length + Onnx(o.Batch, warmCount).Length + Onnx(1, warmCount).Length;

        var transformSeconds = new List<double>();
        var engineSeconds = new List<double>();
        var onnxSeconds = new List<double>();
        var onnxOneSeconds = new List<double>();
        double worst = 0;
        for (int round = 0; round < o.Rounds; round++)
        {
            transformSeconds.Add(Measure.Seconds(() =>
            {
                var scored = model.Transform(view);
                var column = scored.Schema["Score"];
                using var cursor = scored.GetRowCursor([column]);
                var getter = cursor.GetGetter<VBuffer<float>>(column);
                VBuffer<float> value = default;
                while (cursor.MoveNext())
                {
                    getter(ref value);
                }
            }));
            float[] engine = [], onnx = [];
            engineSeconds.Add(Measure.Seconds(() => engine = Engine(o.Batch, rows.Length)));
            onnxSeconds.Add(Measure.Seconds(() => onnx = Onnx(o.Batch, rows.Length)));
            onnxOneSeconds.Add(Measure.Seconds(() => Onnx(1, rows.Length)));
            worst = Math.Max(worst, engine.Zip(onnx, (a, b) => (double)Math.Abs(a - b)).Max());
            Console.WriteLine($"round {round + 1}: transform {transformSeconds[^1]:F2} s, engine batched {engineSeconds[^1]:F2} s, ONNX Runtime batch {o.Batch} {onnxSeconds[^1]:F2} s, batch 1 {onnxOneSeconds[^1]:F2} s");
        }

        double transformRate = rows.Length / Measure.Median(transformSeconds);
        double engineRate = rows.Length / Measure.Median(engineSeconds);
        double onnxRate = rows.Length / Measure.Median(onnxSeconds);
        double onnxOneRate = rows.Length / Measure.Median(onnxOneSeconds);
        Console.WriteLine();
        Console.WriteLine($"{"images/s",-36} {"",12} {"vs engine",10}");
        Console.WriteLine($"{"ML.NET Transform",-36} {transformRate,12:F1} {transformRate / engineRate,10:F3}");
        Console.WriteLine($"{$"engine batched inference (batch {o.Batch})",-36} {engineRate,12:F1} {1.0,10:F3}");
        Console.WriteLine($"{$"ONNX Runtime (batch {o.Batch})",-36} {onnxRate,12:F1} {onnxRate / engineRate,10:F3}");
        Console.WriteLine($"{"ONNX Runtime (batch 1)",-36} {onnxOneRate,12:F1} {onnxOneRate / engineRate,10:F3}");
        Console.WriteLine($"export {exportSeconds:F2} s, {fileBytes:N0} bytes; largest |ONNX Runtime - engine| probability difference {worst:E2}");
        Measure.PrintJson(new
        {
            benchmark = "onnx",
            rounds = o.Rounds,
            images = rows.Length,
            batch = o.Batch,
            threads = o.Threads,
            transform_img_s = transformRate,
            batched_img_s = engineRate,
            ort_img_s = onnxRate,
            ort_batch1_img_s = onnxOneRate,
            ort_ratio = onnxRate / engineRate,
            transform_ratio = transformRate / engineRate,
            export_s = exportSeconds,
            onnx_bytes = fileBytes,
            max_abs_diff = worst,
        });
        (model as IDisposable)?.Dispose();
        return 0;
    }
}
