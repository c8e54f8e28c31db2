using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;
using Xunit.Abstractions;

namespace Equinas.Cli.Tests;

/// <summary>
/// Three <c>equinas worker</c> processes on loopback with Redis membership (started by <c>.ci/run</c>), a driver
/// process (<c>equinas train --cluster redis=...</c>), one worker killed with SIGKILL mid-generation: the search
/// completes and its model scores every image exactly as an uninterrupted in-process run's; and a driver killed with
/// SIGKILL mid-search, run again with the same checkpoint folder, ends with that same model.
/// </summary>
[Collection("Console")]
public sealed class ClusterProcessTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Where .ci/run starts Redis; EQUINAS_TEST_REDIS overrides it.</summary>
    private static readonly string Redis = Environment.GetEnvironmentVariable("EQUINAS_TEST_REDIS") ?? "127.0.0.1:6390";

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"equinas-cluster-{Guid.NewGuid():N}");
    private readonly List<Process> _children = [];

    public void Dispose()
    {
        foreach (var child in _children)
        {
            if (!child.HasExited)
            {
                child.Kill();
            }

            child.Dispose();
        }

        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    // Skipped until 2026-12-01 for a hang after the kill: calls to live workers that travelled through the killed
    // worker's gateway lost their answers. The driver now settles such calls from the slots' status (see ClusterExecutor).
    [Fact]
    public async Task A_worker_killed_mid_generation_costs_the_search_nothing_but_time()
    {
        RequireRedis();
        var images = Path.Combine(_root, "images");
        Assert.Equal(0, InProcess("export-digits", "--data", "digits", "--split", "train", "--count", "300", "--out", images));
        string clusterId = $"test-{Guid.NewGuid():N}";
        string[] Train(string model, bool cluster) =>
        [
            "train", "--data", images, "--mode", "evolve", "--generations", "2", "--population", "2", "--epochs-per-generation", "2",
            "--channels", "8,16,16", "--threads-per-worker", "1", "--out", Path.Combine(_root, model),
            .. cluster ? new[] { "--cluster", $"redis={Redis}", "--cluster-id", clusterId } : [],
        ];

        // 1. Three workers, each with its own ports, in one Redis-kept cluster. The last one is killed as soon as it says
        //    it trains a candidate of generation 1 or later (ids from 1), so that candidate is in flight.
        var workers = await StartWorkers(3, clusterId);
        var victim = new LineReader(null, line => System.Text.RegularExpressions.Regex.IsMatch(line, @"^candidate [1-9]\d*: training"));
        workers[2].Also = victim;

        // 2. The driver.
        var driver = Start(Train("cluster.zip", cluster: true));
        var driverOutput = new LineReader(driver, _ => false);
        await victim.Wait(TimeSpan.FromMinutes(3), "a candidate of generation 1 on the last worker");
        workers[2].Process!.Kill(); // SIGKILL: the worker neither finishes its candidate nor leaves the cluster
        using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(4)))
        {
            try
            {
                await driver.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                driver.Kill();
                await driver.WaitForExitAsync();
                Assert.Fail($"the driver did not finish within 4 minutes: {await driverOutput.All()}\n{string.Join("\n", workers.Select((w, i) => $"worker {i}:\n{w.Seen}"))}");
            }
        }

        string text = await driverOutput.All();
        output.WriteLine(text);
        Assert.Equal(0, driver.ExitCode);
        Assert.Contains("goes to another worker", text, StringComparison.Ordinal);
        Assert.Matches(@"cluster: \d+ candidates on [23] worker\(s\), [1-9]\d* sent again", text);

        // 3. The same search in this process, uninterrupted.
        Assert.Equal(0, InProcess(Train("in-process.zip", cluster: false)));
        var (inProcess, inProcessHistory) = Scores(Path.Combine(_root, "in-process.zip"), images);
        var (onCluster, onClusterHistory) = Scores(Path.Combine(_root, "cluster.zip"), images);
        Assert.Equal(inProcess, onCluster);
        Assert.Equal(inProcessHistory, onClusterHistory);
    }

    [Fact]
    public async Task A_driver_killed_mid_search_and_run_again_continues_from_its_checkpoint_to_the_same_model()
    {
        RequireRedis();
        var images = Path.Combine(_root, "images");
        Assert.Equal(0, InProcess("export-digits", "--data", "digits", "--split", "train", "--count", "300", "--out", images));
        string clusterId = $"test-{Guid.NewGuid():N}";
        var checkpoints = Path.Combine(_root, "checkpoints");
        string[] Train(string model, bool cluster) =>
        [
            "train", "--data", images, "--mode", "evolve", "--generations", "3", "--population", "2", "--epochs-per-generation", "2",
            "--channels", "8,16,16", "--threads-per-worker", "1", "--out", Path.Combine(_root, model),
            .. cluster ? new[] { "--cluster", $"redis={Redis}", "--cluster-id", clusterId, "--checkpoint", checkpoints } : [],
        ];

        var workers = await StartWorkers(2, clusterId);

        // 1. The driver, killed with SIGKILL as soon as its first checkpoint is written (the workers may still be
        //    training its candidates: their answers go nowhere).
        var killed = Start(Train("killed.zip", cluster: true));
        var killedOutput = new LineReader(killed, _ => false);
        var watch = Stopwatch.StartNew();
        while (!Directory.Exists(checkpoints) || Directory.GetFiles(checkpoints, "checkpoint-*.zip").Length == 0)
        {
            if (killed.HasExited)
            {
                Assert.Fail($"the driver ended before its first checkpoint: {await killedOutput.All()}");
            }

            Assert.True(watch.Elapsed < TimeSpan.FromMinutes(3), $"no checkpoint within 3 minutes: {killedOutput.Seen}");
            await Task.Delay(10);
        }

        Assert.False(killed.HasExited, $"the driver ended at its first checkpoint: {killedOutput.Seen}");
        killed.Kill();
        await killed.WaitForExitAsync();
        output.WriteLine($"driver killed after {watch.Elapsed.TotalSeconds:F1} s:\n{await killedOutput.All()}");
        Assert.False(File.Exists(Path.Combine(_root, "killed.zip")));
        var left = Directory.GetFiles(checkpoints, "checkpoint-*.zip").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        output.WriteLine("left: " + string.Join(", ", left));

        // 2. The same command again, on the same workers: it continues from the checkpoint and finishes.
        var resumed = Start(Train("resumed.zip", cluster: true));
        var resumedOutput = new LineReader(resumed, _ => false);
        using (var limit = new CancellationTokenSource(TimeSpan.FromMinutes(4)))
        {
            try
            {
                await resumed.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                resumed.Kill();
                await resumed.WaitForExitAsync();
                Assert.Fail($"the resumed driver did not finish within 4 minutes: {await resumedOutput.All()}\n{string.Join("\n", workers.Select((w, i) => $"worker {i}:\n{w.Seen}"))}");
            }
        }

        string text = await resumedOutput.All();
        output.WriteLine(text);
        Assert.Equal(0, resumed.ExitCode);
        Assert.Contains("holds a checkpoint: continuing from it", text, StringComparison.Ordinal);
        Assert.Contains("(from the checkpoint)", text, StringComparison.Ordinal);

        // 3. An uninterrupted run in this process, without checkpoints: the same model, bit for bit.
        Assert.Equal(0, InProcess(Train("uninterrupted.zip", cluster: false)));
        var (uninterrupted, uninterruptedHistory) = Scores(Path.Combine(_root, "uninterrupted.zip"), images);
        var (again, againHistory) = Scores(Path.Combine(_root, "resumed.zip"), images);
        Assert.Equal(uninterrupted, again);
        Assert.Equal(uninterruptedHistory, againHistory);
    }

    /// <summary>Starts <paramref name="count"/> workers, each with its own ports, in one Redis-kept cluster, and waits until they are ready.</summary>
    private async Task<List<LineReader>> StartWorkers(int count, string clusterId)
    {
        var workers = new List<LineReader>();
        for (int i = 0; i < count; i++)
        {
            var worker = Start(["worker", "--cluster", $"redis={Redis}", "--cluster-id", clusterId, "--silo-port", Port().ToString(System.Globalization.CultureInfo.InvariantCulture), "--gateway-port", Port().ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            workers.Add(new LineReader(worker, line => line.StartsWith("worker ready", StringComparison.Ordinal)));
        }

        foreach (var worker in workers)
        {
            await worker.Wait(TimeSpan.FromMinutes(1), "worker ready");
        }

        return workers;
    }

    /// <summary>Fails (not skips) when the membership store is not running: .ci/run starts it.</summary>
    private static void RequireRedis()
    {
        var parts = Redis.Split(':');
        try
        {
            using var client = new TcpClient();
            client.Connect(parts[0], int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
            using var stream = client.GetStream();
            stream.Write("PING\r\n"u8);
            var buffer = new byte[16];
            int read = stream.Read(buffer);
            Assert.True(read > 0 && buffer[0] == (byte)'+', "no PONG");
        }
        catch (Exception e) when (e is SocketException or IOException or Xunit.Sdk.XunitException)
        {
            Assert.Fail($"The cluster test needs Redis at {Redis} (its membership store) and found none ({e.Message}). .ci/run installs and starts it; by hand: apt-get install redis-server && redis-server --port 6390 --bind 127.0.0.1 --daemonize yes (or set EQUINAS_TEST_REDIS=host:port).");
        }
    }

    private static int Port()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private Process Start(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "equinas"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var child = Process.Start(start)!;
        _children.Add(child);
        return child;
    }

    private int InProcess(params string[] args) => CliInProcess.Run(output, args).Code;

    /// <summary>The model's score vector for every test image of the folder, and its search history (as text).</summary>
    private static (float[][] Scores, string[] History) Scores(string model, string images)
    {
        var ml = new MLContext(seed: 1);
        var (loaded, _) = ModelFile.Load(ml, model);
        try
        {
            var rows = DataSource.Parse(images).Rows(DataPart.Test);
            var scores = loaded.Transform(ImagePipeline.ToDataView(ml, rows)).GetColumn<float[]>(ImagePipeline.ScoreColumn).ToArray();
            var history = ImagePipeline.FindModel(loaded)!.History;
            var lines = history.Candidates.Select(c => $"{c.Generation} {c.Id} {string.Join("-", c.LayerGroups)} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.Survived}")
                .Concat(history.Epochs.Select(e => $"{e.Phase} {e.Epoch:R} {e.TrainLoss:R} {e.ValidationAccuracy:R} {e.ValidationLoss:R}"))
                .ToArray();
            return (scores, lines);
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    /// <summary>Reads a child's output line by line (both streams, so it never blocks) and signals the first line that matches.</summary>
    private sealed class LineReader
    {
        private readonly System.Text.StringBuilder _seen = new();
        private readonly TaskCompletionSource _found = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Func<string, bool> _match;
        private readonly Task _reading = Task.CompletedTask;

        public LineReader(Process? process, Func<string, bool> match)
        {
            Process = process;
            _match = match;
            if (process is not null)
            {
                _reading = Task.WhenAll(Read(process.StandardOutput), Read(process.StandardError));
            }
        }

        public Process? Process { get; }

        /// <summary>A second reader that sees the same lines.</summary>
        public LineReader? Also { get; set; }

        public async Task Wait(TimeSpan limit, string what)
        {
            var done = Process is null ? Task.Delay(Timeout.Infinite) : Process.WaitForExitAsync();
            if (await Task.WhenAny(_found.Task, done, Task.Delay(limit)) != _found.Task)
            {
                Assert.Fail($"no {what} within {limit.TotalSeconds:F0} s: {Text()}");
            }
        }

        public async Task<string> All()
        {
            await _reading;
            return Text();
        }

        /// <summary>The lines read so far.</summary>
        public string Seen => Text();

        private string Text()
        {
            lock (_seen)
            {
                return _seen.ToString();
            }
        }

        private void Line(string line)
        {
            lock (_seen)
            {
                _seen.AppendLine(line);
            }

            if (_match(line))
            {
                _found.TrySetResult();
            }

            Also?.Line(line);
        }

        private async Task Read(StreamReader reader)
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                Line(line);
            }
        }
    }
}
