using System.Diagnostics;
using System.Globalization;
using Equinas.Data;
using Equinas.MLNet;
using Microsoft.ML;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// An image folder larger than the image memory bound: a generated folder of RGB images (JPEG and PNG, 10 labels,
/// written once into a cache folder) read through LoadRawImageBytes and trained for one epoch (fixed all-D4, the small
/// preset, the default pooling for the size) three times in one process, each with RSS sampled every 20 ms:
/// a reference Fit on a small slice (the network's and the libraries' working memory), the whole folder with
/// <c>--cache-mb</c> as the memory bound (decoded on demand), and the whole folder held in memory. Prints peak RSS,
/// the growth over the RSS before each Fit, read and training images/s, and whether the bounded run's growth beyond
/// the reference stayed under the bound.
/// </summary>
internal static class FolderBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (
            Threads: args.Threads,
            Images: args.Int("images", 20_000),
            Size: args.Int("size", 64),
            CacheMb: args.Int("cache-mb", 256),
            Reference: args.Int("reference-images", 640),
            Folder: args.Text("folder", ""));
        args.RejectUnknown();
        if (o.Images < 20 || o.Size < 8 || o.CacheMb < 0 || o.Reference < 20)
        {
            throw new ArgumentException("--images must be at least 20, --size at least 8, --reference-images at least 20 and --cache-mb zero or more.");
        }

        torch.set_num_threads(o.Threads);
        string folder = o.Folder.Length > 0 ? o.Folder : Generate(o.Images, o.Size);
        var rows = Scan(folder);
        long decodedMb = (long)rows.Count * 3 * o.Size * o.Size * sizeof(float) / (1024 * 1024);
        Console.WriteLine($"folders: {rows.Count} RGB {o.Size}x{o.Size} images (JPEG/PNG, 10 labels) in {folder}; decoded {decodedMb} MB as floats; bound --cache-mb {o.CacheMb}; one epoch fixed all-D4, small preset");
        Console.WriteLine(Measure.MachineLine(o.Threads));

        // Every k-th row, so that the slice holds every label (the folder lists its rows label by label).
        var reference = Fit(rows.Where((_, i) => i % Math.Max(1, rows.Count / o.Reference) == 0).Take(o.Reference).ToList(), o.Size, cacheMb: (int)Math.Max(o.CacheMb, decodedMb + 64), "reference (small slice, in memory)");
        var bounded = Fit(rows, o.Size, o.CacheMb, $"whole folder, bound {o.CacheMb} MB");
        var inMemory = Fit(rows, o.Size, cacheMb: (int)(decodedMb + 256), "whole folder, in memory");

        double imageMemory = bounded.Growth - reference.Growth;
        bool under = imageMemory <= o.CacheMb;
        Console.WriteLine();
        Console.WriteLine($"{"run",-36}{"images",8}{"peak RSS",12}{"growth",10}{"read img/s",12}{"train img/s",12}{"lazy",6}");
        foreach (var r in new[] { reference, bounded, inMemory })
        {
            Console.WriteLine($"{r.Name,-36}{r.Images,8}{r.Peak,9:F0} MB{r.Growth,7:F0} MB{r.ReadRate,12:F0}{r.TrainRate,12:F1}{(r.Lazy ? "yes" : "no"),6}");
        }

        Console.WriteLine($"bounded run: RSS growth beyond the reference {imageMemory:F0} MB; configured bound {o.CacheMb} MB: {(under ? "under" : "OVER")} the bound");
        Measure.PrintJson(new Dictionary<string, object>
        {
            ["benchmark"] = "folders",
            ["threads"] = o.Threads,
            ["images"] = rows.Count,
            ["size"] = o.Size,
            ["cache_mb"] = o.CacheMb,
            ["decoded_mb"] = decodedMb,
            ["runs"] = new[] { reference, bounded, inMemory }.Select(r => new Dictionary<string, object>
            {
                ["name"] = r.Name,
                ["images"] = r.Images,
                ["lazy"] = r.Lazy,
                ["rss_before_mb"] = Math.Round(r.Before, 1),
                ["peak_rss_mb"] = Math.Round(r.Peak, 1),
                ["growth_mb"] = Math.Round(r.Growth, 1),
                ["read_s"] = Math.Round(r.ReadSeconds, 2),
                ["train_s"] = Math.Round(r.TrainSeconds, 2),
                ["read_images_per_s"] = Math.Round(r.ReadRate, 1),
                ["train_images_per_s"] = Math.Round(r.TrainRate, 2),
            }).ToArray(),
            ["bounded_growth_beyond_reference_mb"] = Math.Round(imageMemory, 1),
            ["under_bound"] = under,
        });
        return under ? 0 : 1;
    }

    private sealed record RunFigures(string Name, int Images, int TrainImages, bool Lazy, double Before, double Peak, double ReadSeconds, double TrainSeconds)
    {
        public double Growth => Peak - Before;

        /// <summary>Rows read (training and validation) per second of the reading phase.</summary>
        public double ReadRate => Images / Math.Max(1e-9, ReadSeconds);

        /// <summary>Training images per second of the epoch after reading (its training steps, the norm re-estimation and the validation pass).</summary>
        public double TrainRate => TrainImages / Math.Max(1e-9, TrainSeconds);
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }

    private static RunFigures Fit(List<PathRow> rows, int size, int cacheMb, string name)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var ml = new MLContext(seed: 1);
        bool lazy = false;
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && e.RawMessage.StartsWith("Reading the ", StringComparison.Ordinal))
            {
                Console.Error.WriteLine($"  {e.RawMessage}");
                lazy |= e.RawMessage.Contains("decoded on demand", StringComparison.Ordinal);
            }
        };
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new EquivariantImageClassificationTrainer.Options
        {
            SearchMode = SearchMode.Fixed,
            Epochs = 1,
            LabelColumnName = "LabelKey",
            ImageHeight = size,
            ImageWidth = size,
            ImageChannels = 3,
            ImagePathColumnName = nameof(PathRow.ImagePath),
            ImageCacheMegabytes = cacheMb,
            Seed = 1,
            ThreadsPerWorker = null,
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("LabelKey", nameof(PathRow.Label))
            .Append(ml.Transforms.LoadRawImageBytes("Features", imageFolder: null, inputColumnName: nameof(PathRow.ImagePath)))
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options));
        double before = Measure.RssMegabytes();
        using var sampler = new Sampler();
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(data);
        var parameters = EquinasModelParameters.FindIn(model)!;
        var timings = parameters.History.Timings!;
        double peak = sampler.Peak;
        Console.Error.WriteLine($"  {name}: {watch.Elapsed.TotalSeconds:F0} s, peak RSS {peak:F0} MB (before {before:F0} MB)");
        int trainImages = int.Parse(parameters.History.Settings!["TrainImages"], CultureInfo.InvariantCulture);
        var figures = new RunFigures(name, rows.Count, trainImages, lazy, before, peak, timings["data"].TotalSeconds, (timings["total"] - timings["data"]).TotalSeconds);
        parameters.Dispose();
        return figures;
    }

    /// <summary>The folder of <paramref name="images"/> images under the cache root, written once (atomically: a finished folder is renamed into place).</summary>
    private static string Generate(int images, int size)
    {
        string root = Environment.GetEnvironmentVariable("EQUINAS_CACHE") is { Length: > 0 } r ? r : Path.Combine(Path.GetTempPath(), "equinas-bench-cache");
        string folder = Path.Combine(root, string.Create(CultureInfo.InvariantCulture, $"folders-v1-{images}-{size}"));
        if (Directory.Exists(folder))
        {
            return folder;
        }

        string temp = folder + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        if (Directory.Exists(temp))
        {
            Directory.Delete(temp, recursive: true);
        }

        var watch = Stopwatch.StartNew();
        string[] labels = Enumerable.Range(0, 10).Select(i => string.Create(CultureInfo.InvariantCulture, $"class {i}")).ToArray();
        SyntheticImageFolder.Write(temp, labels, (images + labels.Length - 1) / labels.Length, i => (size, size, i % 2 == 0 ? SyntheticImageFormat.Jpeg : SyntheticImageFormat.Png, false), seed: 1);
        Directory.Move(temp, folder);
        Console.Error.WriteLine($"  wrote {folder} in {watch.Elapsed.TotalSeconds:F0} s");
        return folder;
    }

    private static List<PathRow> Scan(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".jpg", StringComparison.Ordinal) || f.EndsWith(".png", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f => new PathRow { ImagePath = f, Label = Path.GetRelativePath(folder, f).Split(Path.DirectorySeparatorChar)[0] })
            .ToList();

    /// <summary>Samples RSS every 20 ms on a background thread and keeps the highest value.</summary>
    private sealed class Sampler : IDisposable
    {
        private readonly Timer _timer;
        private readonly object _gate = new();
        private double _peak;

        public Sampler()
        {
            _peak = Measure.RssMegabytes();
            _timer = new Timer(_ => Sample(), null, 0, 20);
        }

        public double Peak
        {
            get
            {
                Sample();
                lock (_gate)
                {
                    return _peak;
                }
            }
        }

        public void Dispose() => _timer.Dispose();

        private void Sample()
        {
            double rss = Measure.RssMegabytes();
            lock (_gate)
            {
                _peak = Math.Max(_peak, rss);
            }
        }
    }
}
