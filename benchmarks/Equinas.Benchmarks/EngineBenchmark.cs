using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.Benchmarks;

/// <summary>
/// Training step (forward, backward, SGD update) and inference of the paper network with every layer D4, C4 or C1,
/// batch 64 of 1x28x28. Configurations are timed side by side: every round times each configuration once, in a
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
        var configs = groups.Select(g => new Config(g, options.Batch)).ToArray();
        try
        {
            foreach (var config in configs)
            {
                for (int i = 0; i < 2; i++)
                {
                    config.TrainStep();
                    config.Infer();
                    config.Expand();
                }
            }

            for (int round = 0; round < options.Rounds; round++)
            {
                for (int j = 0; j < configs.Length; j++)
                {
                    var config = configs[(round + j) % configs.Length];
                    config.TrainTimes.Add(Measure.Seconds(config.TrainStep));
                    config.InferTimes.Add(Measure.Seconds(config.Infer));
                    config.ExpandTimes.Add(Measure.Seconds(config.Expand));
                }

                Console.Error.WriteLine($"  round {round + 1}/{options.Rounds} done");
            }

            double macs = configs[0].Spec.MultiplyAccumulates(ImageSize, ImageSize);
            Console.WriteLine();
            Console.WriteLine($"{"config",-8}{"params",12}{"train step s",14}{"train img/s",13}{"train GFLOP/s",15}{"infer s",10}{"infer img/s",13}{"expand ms",11}");
            foreach (var c in configs)
            {
                double train = Measure.Median(c.TrainTimes), infer = Measure.Median(c.InferTimes);
                // A training step counts as three forward passes of conv work (forward, input and weight gradients).
                double gflops = 3 * 2 * macs * options.Batch / train / 1e9;
                Console.WriteLine($"{c.Group.Name,-8}{c.Net.ParameterCount,12:N0}{train,14:F3}{options.Batch / train,13:F1}{gflops,15:F1}{infer,10:F3}{options.Batch / infer,13:F1}{1000 * Measure.Median(c.ExpandTimes),11:F2}");
            }

            double Ratio(Func<Config, List<double>> times, int a, int b) => Measure.Median(times(configs[a])) / Measure.Median(times(configs[b]));
            double ratioD4C1 = Ratio(c => c.TrainTimes, 0, 2);
            Console.WriteLine();
            Console.WriteLine($"D4 / C1 training step time: {ratioD4C1:F3} (target <= 1.10); C4 / C1: {Ratio(c => c.TrainTimes, 1, 2):F3}; D4 / C1 inference: {Ratio(c => c.InferTimes, 0, 2):F3}");
            Console.WriteLine($"conv work: {macs / 1e9:F3} GMAC per image");
            Measure.PrintJson(new Dictionary<string, object>
            {
                ["benchmark"] = "engine",
                ["batch"] = options.Batch,
                ["threads"] = options.Threads,
                ["rounds"] = options.Rounds,
                ["gmac_per_image"] = Math.Round(macs / 1e9, 4),
                ["train_images_per_s"] = configs.ToDictionary(c => c.Group.Name, c => Math.Round(options.Batch / Measure.Median(c.TrainTimes), 2)),
                ["infer_images_per_s"] = configs.ToDictionary(c => c.Group.Name, c => Math.Round(options.Batch / Measure.Median(c.InferTimes), 2)),
                ["expand_ms"] = configs.ToDictionary(c => c.Group.Name, c => Math.Round(1000 * Measure.Median(c.ExpandTimes), 3)),
                ["train_gflops"] = configs.ToDictionary(c => c.Group.Name, c => Math.Round(6 * macs * options.Batch / Measure.Median(c.TrainTimes) / 1e9, 1)),
                ["ratio_d4_c1"] = Math.Round(ratioD4C1, 4),
                ["ratio_c4_c1"] = Math.Round(Ratio(c => c.TrainTimes, 1, 2), 4),
                ["ratio_infer_d4_c1"] = Math.Round(Ratio(c => c.InferTimes, 0, 2), 4),
                ["ratio_infer_c4_c1"] = Math.Round(Ratio(c => c.InferTimes, 1, 2), 4),
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

    private sealed class Config : IDisposable
    {
        private readonly Tensor _images;
        private readonly Tensor _labels;
        private readonly optim.Optimizer _optimizer;

        public Config(SymmetryGroup group, int batch)
        {
            Group = group;
            Spec = NetworkPresets.Paper(NetworkPresets.Uniform(group, 8), Classes);
            Net = new GroupCnn(Spec);
            _optimizer = optim.SGD(Net.parameters(), 0.01);
            _images = torch.rand(batch, 1, ImageSize, ImageSize);
            _labels = torch.randint(0, Classes, [batch], dtype: ScalarType.Int64);
            _images.DetachFromDisposeScope();
            _labels.DetachFromDisposeScope();
        }

        public SymmetryGroup Group { get; }

        public NetworkSpec Spec { get; }

        public GroupCnn Net { get; }

        public List<double> TrainTimes { get; } = [];

        public List<double> InferTimes { get; } = [];

        public List<double> ExpandTimes { get; } = [];

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

        /// <summary>Only the filter expansion of one forward pass (every layer), without gradients.</summary>
        public void Expand()
        {
            using var scope = NewDisposeScope();
            using var noGrad = torch.no_grad();
            foreach (var block in Net.Blocks)
            {
                _ = block.Conv switch
                {
                    LiftingConv2d l => LiftingConv2d.ExpandFilter(l.Weight, l.Group),
                    GroupConv2d g => GroupConv2d.ExpandFilter(g.Weight, g.Group),
                    _ => throw new InvalidOperationException("unknown conv layer"),
                };
            }
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
