using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.Benchmarks;

/// <summary>
/// Whether reduced precision pays on this machine: one conv2d of the paper network's shapes (batch 64, 5x5, the widest
/// layer 256 -> 256 at 7x7 and the costliest 128 -> 128 at 28x28) in fp32 and bfloat16, in the default (NCHW) and the
/// channels-last layout, and the CPU's instruction-set flags that decide which kernels libtorch can use.
/// </summary>
internal static class PrecisionBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (Threads: args.Threads, Repeats: args.Int("repeats", 3));
        args.RejectUnknown();
        torch.set_num_threads(o.Threads);
        Console.WriteLine($"precision: conv2d fp32 vs bf16, batch 64, 5x5, {o.Repeats} timed repeats after one warm-up, forward without gradients");
        Console.WriteLine(Measure.MachineLine(o.Threads));
        var flags = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? []
            : [];
        var relevant = new[] { "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16" };
        Console.WriteLine("CPU flags: " + string.Join(", ", relevant.Select(f => $"{f} {(flags.Contains(f) ? "yes" : "no")}")));
        Console.WriteLine();
        Console.WriteLine($"{"shape",-22}{"dtype",-10}{"layout",-15}{"ms",10}{"GFLOP/s",10}");
        var results = new List<Dictionary<string, object>>();
        foreach (var (cin, cout, size) in new[] { (256, 256, 7), (128, 128, 28) })
        {
            double flops = 2.0 * 64 * cin * cout * 25 * size * size;
            using var x = torch.randn(64, cin, size, size);
            using var w = torch.randn(cout, cin, 5, 5) * 0.01f;
            foreach (var (dtype, channelsLast) in new[] { (ScalarType.Float32, false), (ScalarType.Float32, true), (ScalarType.BFloat16, false), (ScalarType.BFloat16, true) })
            {
                using var scope = NewDisposeScope();
                var input = x.to(dtype);
                var filter = w.to(dtype);
                if (channelsLast)
                {
                    // NCHW shape with NHWC strides: what channels-last means to libtorch's kernel choice.
                    input = input.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
                    filter = filter.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
                }

                double seconds = Time(() =>
                {
                    using var inner = NewDisposeScope();
                    using var noGrad = torch.no_grad();
                    nn.functional.conv2d(input, filter, padding: [2, 2]);
                }, o.Repeats);
                string shape = $"{cin}->{cout} at {size}x{size}";
                string layout = channelsLast ? "channels-last" : "NCHW";
                Console.WriteLine($"{shape,-22}{dtype,-10}{layout,-15}{seconds * 1000,10:F1}{flops / seconds / 1e9,10:F1}");
                results.Add(new() { ["shape"] = shape, ["dtype"] = dtype.ToString(), ["layout"] = layout, ["ms"] = Math.Round(seconds * 1000, 2), ["gflops"] = Math.Round(flops / seconds / 1e9, 2) });
            }
        }

        Measure.PrintJson(new Dictionary<string, object>
        {
            ["benchmark"] = "precision",
            ["threads"] = o.Threads,
            ["cpu_flags"] = relevant.ToDictionary(f => f, flags.Contains),
            ["convs"] = results,
        });
        return 0;
    }

    private static double Time(Action action, int repeats)
    {
        action();
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            times.Add(watch.Elapsed.TotalSeconds);
        }

        return Measure.Median(times);
    }
}
