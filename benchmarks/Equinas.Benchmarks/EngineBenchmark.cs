using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.Benchmarks;

/// <summary>
/// Training step (forward, backward, SGD update) and inference of the paper network with every layer D4, C4 or C1, and
/// with every layer a [G]-mixed layer over the authors' six groups {C1, C2, C4, D1, D2, D4} (one step updates weights
/// and architecture logits; inference uses the cached summed filters), batch 64 of 1x28x28. Configurations are timed side by side: every round times each configuration once, in a
/// rotated order, after warm-up; the figures are medians over rounds.
/// </summary>
internal static class EngineBenchmark
{
    private const int ImageSize = 28;
    private const int Classes = 10;

    public static int Run(BenchmarkOptions args)
    {
        var options = (Threads: args.Threads, Rounds: args.Int("rounds", 7), Batch: args.Int("batch", 64));
        args.RejectUnknown();
        torch.set_num_threads(options.Threads);
        torch.manual_seed(7);
        Console.WriteLine($"engine: paper network (8 layers, 5x5, 128/256 scalar channels), batch {options.Batch} of 1x{ImageSize}x{ImageSize}, {options.Rounds} rounds");
        Console.WriteLine(Measure.MachineLine(options.Threads));

        var groups = new[] { SymmetryGroup.D4, SymmetryGroup.C4, SymmetryGroup.C1 };
        var configs = groups.Select(g => new Config(g.Name, g, options.Batch))
            .Append(new Config("mixed", null, options.Batch))
            .ToArray();
        using var peak = new PeakProbe(options.Batch);
        try
        {
            foreach (var config in configs)
            {
                for (int i = 0; i < 2; i++)
                {
                    config.TrainStep();
                    config.Infer();
                    config.ExpandAction();
                }
            }

            // Training steps, interleaved round by round so that the machine's drift hits every configuration alike.
            for (int round = 0; round < options.Rounds; round++)
            {
                for (int j = 0; j < configs.Length; j++)
                {
                    var config = configs[(round + j) % configs.Length];
                    config.TrainTimes.Add(Measure.Seconds(config.TrainStep));
                    config.ExpandTimes.Add(Measure.Seconds(config.ExpandAction));
                }

                peak.Round();

                Console.Error.WriteLine($"  training round {round + 1}/{options.Rounds} done");
            }

            // Inference of the trained networks in evaluation mode: one untimed pass first, which builds the mixed
            // network's cached filters as a deployed model would once, then interleaved timed rounds.
            foreach (var config in configs)
            {
                config.Infer();
            }

            for (int round = 0; round < options.Rounds; round++)
            {
                for (int j = 0; j < configs.Length; j++)
                {
                    var config = configs[(round + j) % configs.Length];
                    config.InferTimes.Add(Measure.Seconds(config.Infer));
                }
            }

            double macs = configs[0].Spec.MultiplyAccumulates(ImageSize, ImageSize);
            Console.WriteLine();
            Console.WriteLine($"{"config",-8}{"params",12}{"train step s",14}{"train img/s",13}{"train GFLOP/s",15}{"infer s",10}{"infer img/s",13}{"expand ms",11}");
            foreach (var c in configs)
            {
                double train = Measure.Median(c.TrainTimes), infer = Measure.Median(c.InferTimes);
                // A training step counts as three forward passes of conv work (forward, input and weight gradients).
                double gflops = 3 * 2 * macs * options.Batch / train / 1e9;
                Console.WriteLine($"{c.Name,-8}{c.ParameterCount,12:N0}{train,14:F3}{options.Batch / train,13:F1}{gflops,15:F1}{infer,10:F3}{options.Batch / infer,13:F1}{1000 * Measure.Median(c.ExpandTimes),11:F2}");
            }

            double Ratio(Func<Config, List<double>> times, int a, int b) => Measure.Median(times(configs[a])) / Measure.Median(times(configs[b]));
            double ratioD4C1 = Ratio(c => c.TrainTimes, 0, 2);
            Console.WriteLine();
            Console.WriteLine($"D4 / C1 training step time: {ratioD4C1:F3} (target <= 1.10); C4 / C1: {Ratio(c => c.TrainTimes, 1, 2):F3}; D4 / C1 inference: {Ratio(c => c.InferTimes, 0, 2):F3}");
            Console.WriteLine($"mixed / D4 training step time: {Ratio(c => c.TrainTimes, 3, 0):F3} (target <= 1.5); mixed (cached filters) / D4 inference: {Ratio(c => c.InferTimes, 3, 0):F3} (target <= 1.1)");
            Console.WriteLine($"conv work: {macs / 1e9:F3} GMAC per image");
            double d4Gflops = 6 * macs * options.Batch / Measure.Median(configs[0].TrainTimes) / 1e9;
            Console.WriteLine($"measured fp32 peak (same process, same threads): matmul 2048 {peak.MatmulGflops:F1} GFLOP/s, conv 256->256 at 7x7 {peak.WideConvGflops:F1}, conv 128->128 at 28x28 {peak.BigConvGflops:F1}; peak {peak.Peak:F1}");
            Console.WriteLine($"all-D4 training step: {d4Gflops:F1} GFLOP/s = {d4Gflops / peak.Peak:F3} of peak (target >= 0.8)");
            Measure.PrintJson(new Dictionary<string, object>
            {
                ["benchmark"] = "engine",
                ["batch"] = options.Batch,
                ["threads"] = options.Threads,
                ["rounds"] = options.Rounds,
                ["gmac_per_image"] = Math.Round(macs / 1e9, 4),
                ["train_images_per_s"] = configs.ToDictionary(c => c.Name, c => Math.Round(options.Batch / Measure.Median(c.TrainTimes), 2)),
                ["infer_images_per_s"] = configs.ToDictionary(c => c.Name, c => Math.Round(options.Batch / Measure.Median(c.InferTimes), 2)),
                ["expand_ms"] = configs.ToDictionary(c => c.Name, c => Math.Round(1000 * Measure.Median(c.ExpandTimes), 3)),
                ["train_gflops"] = configs.ToDictionary(c => c.Name, c => Math.Round(6 * macs * options.Batch / Measure.Median(c.TrainTimes) / 1e9, 1)),
                ["ratio_d4_c1"] = Math.Round(ratioD4C1, 4),
                ["ratio_c4_c1"] = Math.Round(Ratio(c => c.TrainTimes, 1, 2), 4),
                ["ratio_infer_d4_c1"] = Math.Round(Ratio(c => c.InferTimes, 0, 2), 4),
                ["ratio_infer_c4_c1"] = Math.Round(Ratio(c => c.InferTimes, 1, 2), 4),
                ["ratio_mixed_d4"] = Math.Round(Ratio(c => c.TrainTimes, 3, 0), 4),
                ["ratio_mixed_cached_d4"] = Math.Round(Ratio(c => c.InferTimes, 3, 0), 4),
                ["peak_gflops"] = Math.Round(peak.Peak, 1),
                ["peak_matmul_gflops"] = Math.Round(peak.MatmulGflops, 1),
                ["peak_conv_wide_gflops"] = Math.Round(peak.WideConvGflops, 1),
                ["peak_conv_big_gflops"] = Math.Round(peak.BigConvGflops, 1),
                ["d4_train_fraction_of_peak"] = Math.Round(d4Gflops / peak.Peak, 4),
            });
            return 0;
        }
        finally
        {
            foreach (var config in configs)
            {
                config.Dispose();
            }
        }
    }

    /// <summary>
    /// The machine's fp32 peak as libtorch reaches it in this process with these threads: a 2048 x 2048 matrix product
    /// and one conv2d of the paper network's widest (256 -> 256 at 7x7) and costliest (128 -> 128 at 28x28) layers,
    /// batch as configured, forward only; timed once per round, interleaved with the configurations.
    /// </summary>
    private sealed class PeakProbe : IDisposable
    {
        private readonly Tensor _a = torch.randn(2048, 2048);
        private readonly Tensor _b = torch.randn(2048, 2048);
        private readonly Tensor _wideInput;
        private readonly Tensor _wideFilter = torch.randn(256, 256, 5, 5);
        private readonly Tensor _bigInput;
        private readonly Tensor _bigFilter = torch.randn(128, 128, 5, 5);
        private readonly int _batch;
        private readonly List<double> _matmul = [];
        private readonly List<double> _wide = [];
        private readonly List<double> _big = [];

        public PeakProbe(int batch)
        {
            _batch = batch;
            _wideInput = torch.randn(batch, 256, 7, 7);
            _bigInput = torch.randn(batch, 128, 28, 28);
            Round();
            _matmul.Clear();
            _wide.Clear();
            _big.Clear();
        }

        public double MatmulGflops => 2.0 * 2048 * 2048 * 2048 / Measure.Median(_matmul) / 1e9;

        public double WideConvGflops => 2.0 * _batch * 256 * 256 * 25 * 49 / Measure.Median(_wide) / 1e9;

        public double BigConvGflops => 2.0 * _batch * 128 * 128 * 25 * 784 / Measure.Median(_big) / 1e9;

        public double Peak => Math.Max(MatmulGflops, Math.Max(WideConvGflops, BigConvGflops));

        public void Round()
        {
            using var noGrad = torch.no_grad();
            _matmul.Add(Measure.Seconds(() =>
            {
                using var scope = NewDisposeScope();
                torch.mm(_a, _b);
            }));
            _wide.Add(Measure.Seconds(() =>
            {
                using var scope = NewDisposeScope();
                nn.functional.conv2d(_wideInput, _wideFilter, padding: [2, 2]);
            }));
            _big.Add(Measure.Seconds(() =>
            {
                using var scope = NewDisposeScope();
                nn.functional.conv2d(_bigInput, _bigFilter, padding: [2, 2]);
            }));
        }

        public void Dispose()
        {
            _a.Dispose();
            _b.Dispose();
            _wideInput.Dispose();
            _wideFilter.Dispose();
            _bigInput.Dispose();
            _bigFilter.Dispose();
        }
    }

    private sealed class Config : IDisposable
    {
        private static readonly SymmetryGroup[] AuthorsGroups =
            [SymmetryGroup.C1, SymmetryGroup.C2, SymmetryGroup.C4, SymmetryGroup.D1V, SymmetryGroup.D2VH, SymmetryGroup.D4];

        private readonly Tensor _images;
        private readonly Tensor _labels;
        private readonly optim.Optimizer _optimizer;

        /// <summary>A fixed network over <paramref name="group"/>, or the all-mixed network when it is null.</summary>
        public Config(string name, SymmetryGroup? group, int batch)
        {
            Name = name;
            Spec = NetworkPresets.Paper(NetworkPresets.Uniform(group ?? SymmetryGroup.C1, 8), Classes);
            if (group is null)
            {
                var mixed = new MixedGroupCnn(new MixedNetworkSpec(Spec, AuthorsGroups));
                Net = mixed;
                ParameterCount = mixed.ParameterCount;
                Expand = () =>
                {
                    foreach (var block in mixed.Blocks)
                    {
                        _ = block.Conv.MixedFilter(block.Conv.Z());
                    }
                };
            }
            else
            {
                var net = new GroupCnn(Spec);
                Net = net;
                ParameterCount = net.ParameterCount;
                Expand = () =>
                {
                    foreach (var block in net.Blocks)
                    {
                        _ = block.Conv switch
                        {
                            LiftingConv2d l => LiftingConv2d.ExpandFilter(l.Weight, l.Group),
                            GroupConv2d g => GroupConv2d.ExpandFilter(g.Weight, g.Group),
                            _ => throw new InvalidOperationException("unknown conv layer"),
                        };
                    }
                };
            }

            _optimizer = optim.SGD(Net.parameters(), 0.01);
            _images = torch.rand(batch, 1, ImageSize, ImageSize);
            _labels = torch.randint(0, Classes, [batch], dtype: ScalarType.Int64);
            _images.DetachFromDisposeScope();
            _labels.DetachFromDisposeScope();
            ExpandAction = () =>
            {
                using var scope = NewDisposeScope();
                using var noGrad = torch.no_grad();
                Expand();
            };
        }

        public string Name { get; }

        public NetworkSpec Spec { get; }

        public nn.Module<Tensor, Tensor> Net { get; }

        /// <summary>Trainable scalars (architecture logits excluded for the mixed network).</summary>
        public long ParameterCount { get; }

        public List<double> TrainTimes { get; } = [];

        public List<double> InferTimes { get; } = [];

        public List<double> ExpandTimes { get; } = [];

        /// <summary>Only the filter construction of one forward pass (every layer), without gradients.</summary>
        public Action ExpandAction { get; }

        private Action Expand { get; }

        public void TrainStep()
        {
            using var scope = NewDisposeScope();
            Net.train();
            _optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(Net.call(_images), _labels);
            loss.backward();
            _optimizer.step();
        }

        public void Infer()
        {
            using var scope = NewDisposeScope();
            using var noGrad = torch.no_grad();
            Net.eval();
            Net.call(_images);
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            Net.Dispose();
            _images.Dispose();
            _labels.Dispose();
        }
    }
}
