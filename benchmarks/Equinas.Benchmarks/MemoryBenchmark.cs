using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.Benchmarks;

/// <summary>
/// Resident memory over a long training run of the small all-D4 network (batch 64 of 1x28x28, Adam, one dispose scope
/// per step): RSS after a warm-up of 10% of the steps, at the end and at its highest, sampled every 50 steps.
/// </summary>
internal static class MemoryBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var options = (Threads: args.Threads, Steps: args.Int("steps", 2000), Batch: args.Int("batch", 64));
        args.RejectUnknown();
        torch.set_num_threads(options.Threads);
        torch.manual_seed(11);
        int steps = options.Steps;
        int warmup = Math.Max(1, steps / 10);
        Console.WriteLine($"memory: small all-D4 network, {steps} training steps, batch {options.Batch} of 1x28x28, warm-up {warmup} steps");
        Console.WriteLine(Measure.MachineLine(options.Threads));

        var spec = NetworkPresets.Small();
        using var net = new GroupCnn(spec);
        using var optimizer = optim.Adam(net.parameters(), 1e-3);
        // A fixed pool of batches, as a data loader over a real set would cycle through.
        var batches = Enumerable.Range(0, 8).Select(_ =>
        {
            var x = torch.rand(options.Batch, 1, 28, 28);
            var y = torch.randint(0, 10, [options.Batch], dtype: ScalarType.Int64);
            x.DetachFromDisposeScope();
            y.DetachFromDisposeScope();
            return (x, y);
        }).ToArray();

        double start = Measure.RssMegabytes(), afterWarmup = double.NaN, peakAfterWarmup = 0;
        var samples = new List<(int Step, double Rss)>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        net.train();
        for (int step = 1; step <= steps; step++)
        {
            using (var scope = NewDisposeScope())
            {
                var (x, y) = batches[step % batches.Length];
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(net.call(x), y);
                loss.backward();
                optimizer.step();
            }

            if (step == warmup)
            {
                afterWarmup = Measure.RssMegabytes();
            }

            if (step % 50 == 0 || step == steps)
            {
                double rss = Measure.RssMegabytes();
                samples.Add((step, rss));
                if (step >= warmup)
                {
                    peakAfterWarmup = Math.Max(peakAfterWarmup, rss);
                }

                if (step % 500 == 0)
                {
                    Console.Error.WriteLine($"  step {step}: RSS {rss:F1} MB");
                }
            }
        }

        double end = Measure.RssMegabytes();
        double seconds = watch.Elapsed.TotalSeconds;
        foreach (var (x, y) in batches)
        {
            x.Dispose();
            y.Dispose();
        }

        Console.WriteLine();
        Console.WriteLine($"{"RSS at start",-28}{start,10:F1} MB");
        Console.WriteLine($"{"RSS after warm-up",-28}{afterWarmup,10:F1} MB (step {warmup})");
        Console.WriteLine($"{"RSS at the end",-28}{end,10:F1} MB (step {steps})");
        Console.WriteLine($"{"highest RSS after warm-up",-28}{peakAfterWarmup,10:F1} MB");
        Console.WriteLine($"{"growth after warm-up",-28}{end - afterWarmup,10:F1} MB (target < 100 MB)");
        Console.WriteLine($"{"steps per second",-28}{steps / seconds,10:F2}");
        Measure.PrintJson(new Dictionary<string, object>
        {
            ["benchmark"] = "memory",
            ["steps"] = steps,
            ["warmup_steps"] = warmup,
            ["batch"] = options.Batch,
            ["threads"] = options.Threads,
            ["rss_start_mb"] = Math.Round(start, 1),
            ["rss_after_warmup_mb"] = Math.Round(afterWarmup, 1),
            ["rss_end_mb"] = Math.Round(end, 1),
            ["rss_peak_after_warmup_mb"] = Math.Round(peakAfterWarmup, 1),
            ["rss_growth_mb"] = Math.Round(end - afterWarmup, 1),
            ["rss_peak_growth_mb"] = Math.Round(peakAfterWarmup - afterWarmup, 1),
            ["steps_per_s"] = Math.Round(steps / seconds, 2),
            ["samples"] = samples.Select(s => new[] { s.Step, Math.Round(s.Rss, 1) }).ToArray(),
        });
        return 0;
    }
}
