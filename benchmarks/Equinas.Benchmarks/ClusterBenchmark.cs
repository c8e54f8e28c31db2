using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Orleans;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using Digits = Equinas.Data.ShippedDigits;
using Split = Equinas.Data.DigitSplit;

namespace Equinas.Benchmarks;

/// <summary>
/// EquiNAS_E's candidates on an Orleans cluster of worker processes on this machine (localhost clustering): candidates
/// per minute with 1 and 2 workers of one slot and one thread each, against the in-process search with 1 and 2
/// workers of one thread; the per-candidate overhead (encoding, transfer, decoding: everything but the worker's
/// training) as a fraction of its training time; every run's history must be the in-process one, bit for bit.
/// The workers are this program run as <c>cluster-worker</c> (a hidden benchmark), so they are separate processes.
/// </summary>
internal static class ClusterBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (
            TrainImages: args.Int("train-images", 2000),
            ValidationImages: args.Int("validation-images", 1000),
            Generations: args.Int("generations", 2),
            Population: args.Int("population", 2),
            Epochs: args.Double("epochs-per-generation", 0.5),
            Channels: args.Text("channels", "16,32,32,64,64"));
        args.RejectUnknown();
        torch.set_num_threads(1);
        var channels = o.Channels.Split(',').Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Console.WriteLine($"cluster: EquiNAS_E on {o.TrainImages} rotated training and {o.ValidationImages} validation digits, channels {o.Channels}, population {o.Population}, {o.Generations} generations of {o.Epochs} epochs; 1 libtorch thread per candidate everywhere");
        Console.WriteLine(Measure.MachineLine(1));
        var digits = Digits.Load();
        using var train = Tensors(digits.Rotated(Split.Train, 101).Take(o.TrainImages).ToArray());
        using var validation = Tensors(digits.Rotated(Split.Validation, 102).Take(o.ValidationImages).ToArray());
        var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.D4, channels.Length), channels, 5, SearchPoolingFor(channels.Length), 10, 32);
        EvolutionOptions Options(int workers) => new()
        {
            PopulationSize = o.Population, Generations = o.Generations, EpochsPerGeneration = o.Epochs, Seed = 1,
            Training = new TrainingOptions(), Workers = workers, ThreadsPerWorker = 1,
        };

        var json = new Dictionary<string, object> { ["benchmark"] = "cluster", ["train_images"] = o.TrainImages, ["generations"] = o.Generations, ["population"] = o.Population, ["epochs_per_generation"] = o.Epochs };
        string[]? reference = null;

        (double Wall, int Candidates, bool Same) Search(ICandidateExecutor? executor, int workers)
        {
            var watch = Stopwatch.StartNew();
            using var result = new EvolutionarySearch(Options(workers)) { Executor = executor }.Run(template, train, validation);
            double wall = watch.Elapsed.TotalSeconds;
            var bits = result.History.SelectMany(g => g.Candidates).Select(c => $"{c.Generation} {c.Id} {string.Join("-", c.Groups)} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.TrainLoss:R} {c.Survived}").ToArray();
            reference ??= bits;
            return (wall, bits.Length, bits.SequenceEqual(reference));
        }

        foreach (int workers in new[] { 1, 2 })
        {
            var (wall, count, same) = Search(null, workers);
            Console.WriteLine($"  in process, {workers} worker(s) x 1 thread: {count} candidates in {wall:F1} s = {count / wall * 60:F1} candidates/min; same history: {same}");
            json[$"in_process_{workers}"] = new Dictionary<string, object> { ["wall_s"] = Math.Round(wall, 2), ["candidates_per_min"] = Math.Round(count / wall * 60, 2), ["identical_history"] = same };
        }

        foreach (int workers in new[] { 1, 2 })
        {
            int primary = FreePort();
            var gateways = new List<int>();
            var processes = new List<Process>();
            try
            {
                for (int w = 0; w < workers; w++)
                {
                    int silo = w == 0 ? primary : FreePort(), gateway = FreePort();
                    gateways.Add(gateway);
                    processes.Add(StartWorker(silo, gateway, primary));
                }

                var cluster = new EquinasClusterOptions { GatewayPorts = gateways, ClusterId = "bench", ServiceId = "bench" };
                using var connection = EquinasCluster.ConnectAsync(cluster).GetAwaiter().GetResult();
                var executor = (ClusterExecutor)connection.CreateExecutor(threadsPerJob: 1);
                var (wall, count, same) = Search(executor, workers);
                var costs = executor.Costs;
                double overhead = Measure.Median(costs.Select(c => c.OverheadFraction));
                double encodeMs = Measure.Median(costs.Select(c => c.Encode.TotalMilliseconds));
                double decodeMs = Measure.Median(costs.Select(c => c.Decode.TotalMilliseconds));
                double transferMs = Measure.Median(costs.Select(c => (c.RoundTrip - c.WorkerTime).TotalMilliseconds));
                double workerOnlyMs = Measure.Median(costs.Select(c => (c.WorkerTime - c.Training).TotalMilliseconds));
                double trainingMs = Measure.Median(costs.Select(c => c.Training.TotalMilliseconds));
                Console.WriteLine($"  cluster, {workers} worker process(es) x 1 slot x 1 thread: {count} candidates in {wall:F1} s = {count / wall * 60:F1} candidates/min; same history: {same}; {executor.Uploads} dataset upload(s)");
                Console.WriteLine($"    per candidate (medians): training {trainingMs:F0} ms; encode {encodeMs:F1} ms, transfer {transferMs:F1} ms, worker decode/encode {workerOnlyMs:F1} ms, decode {decodeMs:F1} ms; overhead {overhead:P2} of training");
                json[$"cluster_{workers}"] = new Dictionary<string, object>
                {
                    ["wall_s"] = Math.Round(wall, 2), ["candidates_per_min"] = Math.Round(count / wall * 60, 2), ["identical_history"] = same,
                    ["uploads"] = executor.Uploads, ["median_training_ms"] = Math.Round(trainingMs, 1), ["median_encode_ms"] = Math.Round(encodeMs, 2),
                    ["median_transfer_ms"] = Math.Round(transferMs, 2), ["median_worker_codec_ms"] = Math.Round(workerOnlyMs, 2), ["median_decode_ms"] = Math.Round(decodeMs, 2),
                    ["median_overhead_fraction"] = Math.Round(overhead, 4),
                };
            }
            finally
            {
                foreach (var p in processes)
                {
                    if (!p.HasExited)
                    {
                        p.Kill();
                    }

                    p.WaitForExit();
                    p.Dispose();
                }
            }
        }

        Measure.PrintJson(json);
        return 0;
    }

    /// <summary>The hidden benchmark the cluster runs as its workers: one silo until stdin closes.</summary>
    public static int Worker(BenchmarkOptions args)
    {
        var cluster = new EquinasClusterOptions
        {
            SiloPort = args.Int("silo-port", 11111), GatewayPort = args.Int("gateway-port", 30000), PrimarySiloPort = args.Int("primary-port", 11111),
            ClusterId = "bench", ServiceId = "bench",
        };
        args.RejectUnknown();
        using var host = EquinasWorkerHost.Build(cluster, new EquinasWorkerOptions { Slots = 1 });
        host.StartAsync().GetAwaiter().GetResult();
        Console.WriteLine("ready");
        Console.In.ReadToEnd();
        host.StopAsync().GetAwaiter().GetResult();
        return 0;
    }

    private static Process StartWorker(int silo, int gateway, int primary)
    {
        // This program again: its apphost, or the dotnet host with this assembly when run as 'dotnet Equinas.Benchmarks.dll'.
        string host = Environment.ProcessPath!;
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(ClusterBenchmark).Assembly.Location);
        }

        foreach (var a in new[] { "cluster-worker", "--silo-port", $"{silo}", "--gateway-port", $"{gateway}", "--primary-port", $"{primary}" })
        {
            start.ArgumentList.Add(a);
        }

        var process = Process.Start(start)!;
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null && line != "ready")
        {
        }

        if (line is null)
        {
            throw new InvalidOperationException($"The worker on silo port {silo} ended before it was ready.");
        }

        // Keep draining its output so that it never blocks.
        _ = process.StandardOutput.ReadToEndAsync();
        return process;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static int[] SearchPoolingFor(int layers) => Equinas.MLNet.Search.SearchDefaults.Pooling(layers).ToArray();

    private static ImageDataset Tensors(Equinas.Data.DigitImage[] set)
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
