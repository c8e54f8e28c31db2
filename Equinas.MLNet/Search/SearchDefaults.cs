#nullable enable
using Equinas.MLNet.Nn.Networks;

namespace Equinas.MLNet.Search;

/// <summary>
/// The one place where the default budget and settings are written. The engine's options records, the trainer's
/// public <c>EquivariantImageClassificationTrainer.Defaults</c> (which the catalog, the CLI and the examples read) and
/// the benchmarks all take their defaults from here.
/// </summary>
internal static class SearchDefaults
{
    public const string Group = "D4";
    public const int KernelSize = NetworkPresets.SmallKernelSize;
    public const int HeadHidden = NetworkPresets.SmallHeadHidden;
    public const double Epochs = 3;
    public const int BatchSize = 64;
    public const double LearningRate = 1e-3;
    public const int PopulationSize = 3;
    public const int Generations = 4;
    public const double EpochsPerGeneration = 0.5;
    public const double RetrainEpochs = 0;
    public const double ArchitectureLearningRate = 0.01;
    public const double WarmupEpochs = 0;
    public const bool SampleArchitectures = false;
    public const double ValidationFraction = 0.1;

    /// <summary>The most candidates trained at once by default (a generation of the default budget has up to about a dozen).</summary>
    public const int MaxDefaultWorkers = 8;

    /// <summary>Candidates of the evolutionary search trained at once by default: one per core, at most <see cref="MaxDefaultWorkers"/>.</summary>
    public static int Workers => Math.Clamp(Environment.ProcessorCount, 1, MaxDefaultWorkers);

    /// <summary>
    /// libtorch intra-op threads per candidate by default: the cores shared among the default workers (1 on machines
    /// of up to 8 cores). It depends on the machine only, never on a <c>Workers</c> setting, because a training's bits
    /// depend on its thread count: changing <c>Workers</c> must not change a result.
    /// </summary>
    public static int ThreadsPerWorker => Math.Max(1, Environment.ProcessorCount / Workers);

    /// <summary>The small preset's widths in scalar channels (5 conv layers, sized for 2 CPU cores).</summary>
    public static IReadOnlyList<int> Channels => NetworkPresets.SmallChannels;

    /// <summary>
    /// Pooling for a network of <paramref name="layers"/> conv layers: none for one layer, after the first for two or
    /// three, else after about 40% and 80% of the layers (after layers 1 and 3 for five).
    /// </summary>
    public static int[] Pooling(int layers) => layers switch
    {
        <= 1 => [],
        2 or 3 => [0],
        _ => new[] { (int)Math.Round(layers * 0.4) - 1, (int)Math.Round(layers * 0.8) - 1 }.Distinct().ToArray(),
    };
}
