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

    /// <summary>
    /// The memory bound for decoded images, in MB (1 MB = 2^20 bytes): training and validation images up to this size
    /// are held in memory as floats (the fast path), larger data is decoded on demand through a cache of this size.
    /// 1024 MB holds about 21,800 RGB images of 64 x 64, 87,000 of 32 x 32 or 340,000 grey digits of 28 x 28, so the
    /// usual data sets keep the in-memory path, and leaves room for libtorch's working memory on a 4 GB machine.
    /// </summary>
    public const int ImageCacheMegabytes = 1024;

    /// <summary>Reading stops at the first unreadable image only when asked to; by default such images are skipped with a warning.</summary>
    public const bool StrictImageReading = false;

    /// <summary>The final feature-map size the default pooling aims at on large inputs (at most; the head averages over it).</summary>
    public const int PooledSize = 12;

    /// <summary>Inputs up to this size (the smaller side) keep <see cref="Pooling(int)"/>, the pooling the defaults were tuned with on 28-pixel digits.</summary>
    public const int LargeInputSize = 48;

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

    /// <summary>
    /// Pooling for a network of <paramref name="layers"/> conv layers on images whose smaller side is
    /// <paramref name="size"/>: <see cref="Pooling(int)"/> up to <see cref="LargeInputSize"/> pixels (two poolings for
    /// four or more layers: 28 -> 7, 32 -> 8); above, as many more as bring the final feature map to
    /// <see cref="PooledSize"/> pixels or less, placed before the usual two, each after one of the first layers (64 and 96 pixels: after layers 0, 1 and 3 of five, 64 -> 8, 96 -> 12).
    /// Every pooling stays exact on the grid: the pool picks 2x2 on even sizes and 3x3 with padding 1 on odd ones.
    /// At most one pooling per layer except the last.
    /// </summary>
    public static int[] Pooling(int layers, int size)
    {
        var usual = Pooling(layers);
        if (size <= LargeInputSize)
        {
            return usual;
        }

        int pools = usual.Length, after = size;
        for (int i = 0; i < usual.Length; i++)
        {
            after = (after + 1) / 2;
        }

        while (after > PooledSize && pools < layers - 1)
        {
            after = (after + 1) / 2;
            pools++;
        }

        if (pools == usual.Length)
        {
            return usual;
        }

        int extra = pools - usual.Length;
        var chosen = Enumerable.Range(0, extra).Concat(usual.Select(p => Math.Max(p, 0))).ToList();
        for (int i = 1; i < chosen.Count; i++)
        {
            chosen[i] = Math.Max(chosen[i], chosen[i - 1] + 1);
        }

        return chosen[^1] <= layers - 2 ? chosen.ToArray() : Enumerable.Range(0, pools).ToArray();
    }
}
