using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Equinas.Data;
using Equinas.MLNet;
using Microsoft.ML;
using TorchSharp;

namespace Equinas.Benchmarks;

/// <summary>
/// An image folder larger than the image memory bound: a generated folder of RGB images (JPEG and PNG, 10 labels,
/// written once into a cache folder) read through LoadRawImageBytes and trained for one epoch (fixed all-D4, the small
/// preset, the default pooling for the size). Each Fit runs in a fresh process of its own (this program run as
/// <c>folders --fit ...</c>), with RSS sampled every 20 ms, so that no run inherits another's heap, allocator caches or
/// library loading: a reference Fit on a slice of the folder decoded on demand with no cache (<c>--cache-mb 0</c>: the
/// network's, the libraries' and the decoding path's working memory, every batch full-sized), trained for as many steps
/// as the whole folder's epoch; the whole folder with <c>--cache-mb</c> as the bound; the whole folder held in memory.
/// Prints peak RSS (with its anonymous and file-backed parts and the managed heap's commit), the growth of the peak and
/// of the RSS held while training (the median of the second half of the training) over the RSS before each Fit, read
/// and training images/s, and whether the bounded run holds no more beyond the reference than the bound plus
/// <see cref="PerImageBytes"/> for each image beyond the reference's (exit code 1 when it does).
/// </summary>
internal static class FolderBenchmark
{
    /// <summary>
    /// The memory an image may cost whatever the bound, in bytes: what the trainer keeps per image (label, source row,
    /// scratch-file offset and length, dataset row index and label tensor: about 50 bytes) and the lists it builds
    /// while reading and splitting (about 100 more), rounded up. 20,000 images: 5 MB.
    /// </summary>
    internal const int PerImageBytes = 256;

    public static int Run(BenchmarkOptions args)
    {
        var o = (
            Threads: args.Threads,
            Images: args.Int("images", 20_000),
            Size: args.Int("size", 64),
            CacheMb: args.Text("cache-mb", "256"),
            Reference: args.Int("reference-images", 2_560),
            Folder: args.Text("folder", ""),
            Fit: args.Text("fit", ""),
            Take: args.Int("take", int.MaxValue),
            Epochs: args.Double("epochs", 1),
            // "no" leaves out the in-memory Fit (at 100,000 64 x 64 RGB images it would hold 4.7 GB of floats).
            InMemory: args.Choice("in-memory", "yes", "yes", "no"));
        args.RejectUnknown();
        if (!int.TryParse(o.CacheMb, NumberStyles.Integer, CultureInfo.InvariantCulture, out int cacheMb) || cacheMb < 0)
        {
            throw new ArgumentException($"--cache-mb needs zero or a positive integer; found '{o.CacheMb}'.");
        }

        if (o.Images < 20 || o.Size < 8 || o.Reference < 20)
        {
            throw new ArgumentException("--images must be at least 20, --size at least 8 and --reference-images at least 20.");
        }

        torch.set_num_threads(o.Threads);
        if (o.Fit.Length > 0)
        {
            // One Fit in this fresh process (started by the parent below); its figures go to stdout as one line.
            var slice = Scan(o.Folder);
            if (o.Take < slice.Count)
            {
                // Every k-th row, so that the slice holds every label (the folder lists its rows label by label).
                int step = Math.Max(1, slice.Count / o.Take);
                slice = slice.Where((_, i) => i % step == 0).Take(o.Take).ToList();
            }

            var fit = Fit(slice, o.Size, cacheMb, o.Epochs, o.Fit);
            Console.WriteLine("FIT " + JsonSerializer.Serialize(fit));
            return 0;
        }

        string folder = o.Folder.Length > 0 ? o.Folder : Generate(o.Images, o.Size);
        var rows = Scan(folder);
        long decodedMb = (long)rows.Count * 3 * o.Size * o.Size * sizeof(float) / (1024 * 1024);
        int reference = Math.Min(o.Reference, rows.Count);
        Console.WriteLine($"folders: {rows.Count} RGB {o.Size}x{o.Size} images (JPEG/PNG, 10 labels) in {folder}; decoded {decodedMb} MB as floats; bound --cache-mb {cacheMb}; one epoch fixed all-D4, small preset; each Fit in a fresh process");
        Console.WriteLine(Measure.MachineLine(o.Threads));

        // The reference trains as many steps as the whole folder's epoch (its slice for more epochs): libtorch's and the
        // allocator's working memory keeps growing over the first hundreds of steps, so a shorter reference would
        // count that growth as the images' memory.
        double referenceEpochs = (double)rows.Count / reference;
        var referenceFit = Child(folder, o.Size, o.Threads, 0, reference, referenceEpochs, string.Create(CultureInfo.InvariantCulture, $"reference ({reference} images x {referenceEpochs:F2} epochs, no cache)"));
        var bounded = Child(folder, o.Size, o.Threads, cacheMb, int.MaxValue, 1, $"whole folder, bound {cacheMb} MB");
        var inMemory = o.InMemory == "yes" ? Child(folder, o.Size, o.Threads, (int)(decodedMb + 256), int.MaxValue, 1, "whole folder, in memory") : null;

        // The check: the RSS the bounded run holds while it trains (the median of the second half of its training, when
        // the cache is full) beyond the reference's, against the bound and the per-image bookkeeping. Peaks are printed
        // too, but they are the moments of libtorch's largest temporaries (evaluation batches), whose native memory
        // varied by about 200 MB between processes (2026-12-01, 64 x 64: 433 to 627 MB outside the managed heap at the
        // peak, in four runs of 2,560 to 8,000 images with and without a cache, with no order in the image count).
        double imageMemory = bounded.PlateauGrowth - referenceFit.PlateauGrowth;
        double peakImageMemory = bounded.Growth - referenceFit.Growth;
        double bookkeepingMb = (double)PerImageBytes * Math.Max(0, bounded.Images - referenceFit.Images) / (1024 * 1024);
        double allowed = cacheMb + bookkeepingMb;
        bool under = imageMemory <= allowed;
        Console.WriteLine();
        Console.WriteLine($"{"run",-46}{"images",8}{"peak RSS",12}{"anon",9}{"file",8}{"GC heap",10}{"growth",10}{"reading",10}{"held",10}{"read img/s",12}{"train img/s",12}{"lazy",6}");
        foreach (var r in new[] { referenceFit, bounded, inMemory }.OfType<RunFigures>())
        {
            Console.WriteLine($"{r.Name,-46}{r.Images,8}{r.Peak,9:F0} MB{r.PeakAnon,6:F0} MB{r.PeakFile,5:F0} MB{r.PeakGcCommitted,7:F0} MB{r.Growth,7:F0} MB{r.ReadingGrowth,7:F0} MB{r.PlateauGrowth,7:F0} MB{r.ReadRate,12:F0}{r.TrainRate,12:F1}{(r.Lazy ? "yes" : "no"),6}");
        }

        Console.WriteLine("(anon, file, GC heap: at the peak; growth: peak over the RSS before the Fit; reading: the highest RSS while reading over it; held: median RSS of the second half of its training over it)");
        Console.WriteLine($"bounded run: RSS held beyond the reference {imageMemory:F0} MB (at the peaks {peakImageMemory:F0} MB); allowed {allowed:F0} MB (bound {cacheMb} MB + {PerImageBytes} bytes x {Math.Max(0, bounded.Images - referenceFit.Images)} images more than the reference = {bookkeepingMb:F1} MB): {(under ? "under" : "OVER")} the bound");
        Measure.PrintJson(new Dictionary<string, object>
        {
            ["benchmark"] = "folders",
            ["threads"] = o.Threads,
            ["images"] = rows.Count,
            ["size"] = o.Size,
            ["cache_mb"] = cacheMb,
            ["decoded_mb"] = decodedMb,
            ["per_image_bytes"] = PerImageBytes,
            ["runs"] = new[] { referenceFit, bounded, inMemory }.OfType<RunFigures>().Select(r => new Dictionary<string, object>
            {
                ["name"] = r.Name,
                ["images"] = r.Images,
                ["lazy"] = r.Lazy,
                ["rss_before_mb"] = Math.Round(r.Before, 1),
                ["peak_rss_mb"] = Math.Round(r.Peak, 1),
                ["peak_anon_mb"] = Math.Round(r.PeakAnon, 1),
                ["peak_file_mb"] = Math.Round(r.PeakFile, 1),
                ["peak_gc_committed_mb"] = Math.Round(r.PeakGcCommitted, 1),
                ["growth_mb"] = Math.Round(r.Growth, 1),
                ["held_growth_mb"] = Math.Round(r.PlateauGrowth, 1),
                ["reading_growth_mb"] = Math.Round(r.ReadingGrowth, 1),
                ["read_s"] = Math.Round(r.ReadSeconds, 2),
                ["train_s"] = Math.Round(r.TrainSeconds, 2),
                ["read_images_per_s"] = Math.Round(r.ReadRate, 1),
                ["train_images_per_s"] = Math.Round(r.TrainRate, 2),
            }).ToArray(),
            ["bounded_held_beyond_reference_mb"] = Math.Round(imageMemory, 1),
            ["bounded_peak_growth_beyond_reference_mb"] = Math.Round(peakImageMemory, 1),
            ["allowed_mb"] = Math.Round(allowed, 1),
            ["under_bound"] = under,
        });
        return under ? 0 : 1;
    }

    /// <summary>Runs one Fit in a fresh process of this program and returns its figures.</summary>
    private static RunFigures Child(string folder, int size, int threads, int cacheMb, int take, double epochs, string name)
    {
        // This program again: its apphost, or the dotnet host with this assembly when run as 'dotnet Equinas.Benchmarks.dll'.
        string host = Environment.ProcessPath!;
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(FolderBenchmark).Assembly.Location);
        }

        foreach (var a in new[] { "folders", "--fit", name, "--folder", folder, "--size", $"{size}", "--threads", $"{threads}", "--cache-mb", $"{cacheMb}", "--epochs", epochs.ToString("R", CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(a);
        }

        if (take != int.MaxValue)
        {
            start.ArgumentList.Add("--take");
            start.ArgumentList.Add($"{take}");
        }

        using var process = Process.Start(start)!;
        RunFigures? figures = null;
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null)
        {
            if (line.StartsWith("FIT ", StringComparison.Ordinal))
            {
                figures = JsonSerializer.Deserialize<RunFigures>(line[4..]);
            }
            else
            {
                Console.WriteLine(line);
            }
        }

        process.WaitForExit();
        return process.ExitCode == 0 && figures is not null
            ? figures
            : throw new InvalidOperationException($"The Fit '{name}' (a child process) exited with code {process.ExitCode} and no figures.");
    }

    internal sealed record RunFigures(string Name, int Images, int TrainImages, double Epochs, bool Lazy, double Before, double Peak, double PeakAnon, double PeakFile, double PeakGcCommitted, double Plateau, double ReadSeconds, double TrainSeconds, double ReadingPeak)
    {
        /// <summary>Growth of the highest RSS while reading over the RSS before the Fit.</summary>
        public double ReadingGrowth => ReadingPeak - Before;

        public double Growth => Peak - Before;

        /// <summary>Growth of the median RSS of the second half of the training over the RSS before the Fit.</summary>
        public double PlateauGrowth => Plateau - Before;

        /// <summary>Rows read (training and validation) per second of the reading phase.</summary>
        public double ReadRate => Images / Math.Max(1e-9, ReadSeconds);

        /// <summary>Training images per second of the epochs after reading (its training steps, the norm re-estimation and the validation pass).</summary>
        public double TrainRate => TrainImages * Epochs / Math.Max(1e-9, TrainSeconds);
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";

        public string Label { get; set; } = "";
    }

    private static RunFigures Fit(List<PathRow> rows, int size, int cacheMb, double epochs, string name)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var ml = new MLContext(seed: 1);
        bool lazy = false;
        Sampler? sampler = null;
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && e.RawMessage.StartsWith("Read ", StringComparison.Ordinal) && e.RawMessage.Contains(" training images of ", StringComparison.Ordinal))
            {
                sampler?.MarkTraining();
            }


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
            Epochs = epochs,
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
        using var sampling = new Sampler();
        sampler = sampling;
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(data);
        var parameters = EquinasModelParameters.FindIn(model)!;
        var timings = parameters.History.Timings!;
        var peak = sampling.Peak;
        double plateau = sampling.Plateau;
        Console.Error.WriteLine($"  {name}: {watch.Elapsed.TotalSeconds:F0} s, peak RSS {peak.Rss:F0} MB (anonymous {peak.Anon:F0} MB, file-backed {peak.File:F0} MB, GC heap committed {peak.GcCommitted:F0} MB; median of the training's second half {plateau:F0} MB; before {before:F0} MB)");
        int trainImages = int.Parse(parameters.History.Settings!["TrainImages"], CultureInfo.InvariantCulture);
        var figures = new RunFigures(name, rows.Count, trainImages, epochs, lazy, before, peak.Rss, peak.Anon, peak.File, peak.GcCommitted, plateau, timings["data"].TotalSeconds, (timings["total"] - timings["data"]).TotalSeconds, sampling.ReadingPeak);
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

    /// <summary>
    /// Samples RSS every 20 ms on a background thread and keeps the highest sample, with its anonymous and file-backed
    /// parts and the GC heap's committed bytes at that moment. A sample allocates nothing on the managed heap: it
    /// reads /proc/self/statm into a buffer it keeps (reading /proc/self/status line by line made about 0.3 MB/s of
    /// strings, which sat in generation 0 up to its budget and showed up as growth in the longer runs).
    /// </summary>
    private sealed class Sampler : IDisposable
    {
        private readonly Timer _timer;
        private readonly object _gate = new();
        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _statm = File.OpenHandle("/proc/self/statm");
        private readonly byte[] _buffer = new byte[256];
        private readonly double _pageMb = Environment.SystemPageSize / 1048576.0;
        private readonly double[] _samples = new double[1 << 18];
        private int _count;
        private int _training;
        private (double Rss, double Anon, double File, double GcCommitted) _peak;

        public Sampler()
        {
            Sample();
            _timer = new Timer(_ => Sample(), null, 0, 20);
        }

        public (double Rss, double Anon, double File, double GcCommitted) Peak
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

        /// <summary>The highest RSS sampled while the data were read (before <see cref="MarkTraining"/>), in MB.</summary>
        public double ReadingPeak
        {
            get
            {
                lock (_gate)
                {
                    double max = 0;
                    foreach (double v in _samples.AsSpan(0, _training > 0 ? _training : _count))
                    {
                        max = Math.Max(max, v);
                    }

                    return max;
                }
            }
        }

        /// <summary>Marks the end of reading: <see cref="Plateau"/> looks at the training after it.</summary>
        public void MarkTraining()
        {
            lock (_gate)
            {
                _training = _count;
            }
        }

        /// <summary>
        /// The median of the samples in the second half of the training (after <see cref="MarkTraining"/>): the RSS the
        /// run holds while it trains, without the moments of its largest temporaries (an evaluation batch's activations).
        /// </summary>
        public double Plateau
        {
            get
            {
                lock (_gate)
                {
                    int from = _training + ((_count - _training) / 2);
                    var late = _samples.AsSpan(from, _count - from).ToArray();
                    Array.Sort(late);
                    return late.Length == 0 ? double.NaN : late[late.Length / 2];
                }
            }
        }

        public void Dispose()
        {
            using var done = new ManualResetEvent(false);
            _timer.Dispose(done);
            done.WaitOne();
            _statm.Dispose();
        }

        private void Sample()
        {
            lock (_gate)
            {
                if (_statm.IsClosed)
                {
                    return;
                }

                // statm: size resident shared text lib data dt, in pages; shared = file-backed (and shared memory).
                int length = RandomAccess.Read(_statm, _buffer, 0);
                var fields = _buffer.AsSpan(0, length);
                long resident = Field(fields, 1), shared = Field(fields, 2);
                double rss = resident * _pageMb;
                if (_count < _samples.Length)
                {
                    _samples[_count++] = rss;
                }

                if (rss > _peak.Rss)
                {
                    _peak = (rss, (resident - shared) * _pageMb, shared * _pageMb, GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes / 1048576.0);
                }
            }
        }

        /// <summary>The <paramref name="index"/>-th space-separated number of <paramref name="text"/>.</summary>
        private static long Field(ReadOnlySpan<byte> text, int index)
        {
            long value = 0;
            int field = 0;
            foreach (byte c in text)
            {
                if (c == (byte)' ')
                {
                    if (field++ == index)
                    {
                        return value;
                    }

                    value = 0;
                }
                else if (c is >= (byte)'0' and <= (byte)'9')
                {
                    value = (value * 10) + (c - '0');
                }
            }

            return field == index ? value : throw new InvalidDataException("/proc/self/statm has fewer fields than expected.");
        }
    }
}
