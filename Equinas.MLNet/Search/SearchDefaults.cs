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

    /// <summary>What the head reads by default: the mean over the group and the plane (the paper's head).</summary>
    public const Nn.Layers.HeadPooling HeadPooling = Nn.Layers.HeadPooling.Mean;
    public const double Epochs = 3;
    public const int BatchSize = 64;
    public const double LearningRate = 1e-3;
    public const int PopulationSize = 3;
    public const int Generations = 4;
    public const double EpochsPerGeneration = 0.5;
    public const double RetrainEpochs = 0;
    public const double ArchitectureLearningRate = 0.01;

    /// <summary>
    /// Where EquiNAS_D's z starts by default: at the top group (its logit 0, the others -2). Measured on the shipped
    /// digits (docs/results/README.md, 2026-12-03): the uniform start leaves z near uniform after the default budget
    /// and its mixture 4 to 5 points below the best fixed network on rotated and D4-moved digits.
    /// </summary>
    public const Mixed.AlphaInitialization MixtureStart = Mixed.AlphaInitialization.PreferLargest;
    public const double WarmupEpochs = 0;
    public const bool SampleArchitectures = false;
    public const double SymmetryPrior = 0;
    public const double ValidationFraction = 0.1;

    /// <summary>Whether EquiNAS_E ranks by the one-standard-error rule by default (<see cref="Evolution.EvolutionOptions.SimplestWithinStandardError"/>).</summary>
    public const bool SimplestWithinStandardError = false;

    /// <summary>The children a parent of the evolutionary search yields by default.</summary>
    public const Evolution.MutationSet Mutations = Evolution.MutationSet.Blocks;

    /// <summary>
    /// The weight steps (mini-batches) a final model trains at least by default: fixed and differentiable training
    /// (<see cref="EpochsFor"/>), and the evolutionary search's winning lineage (<see cref="FinalEpochsFor"/>). Epochs
    /// alone undertrain small data sets: 3 epochs of 3,000 images are 141 steps.
    /// </summary>
    public const int MinimumTrainingSteps = 1000;

    /// <summary>The weight steps every candidate trains per generation at least by default (<see cref="EpochsPerGenerationFor"/>).</summary>
    public const int MinimumGenerationSteps = 50;

    /// <summary>The most epochs the step rule gives (on tiny data sets).</summary>
    public const double MaximumDefaultEpochs = 30;

    /// <summary>The most epochs per generation the step rule gives (on tiny data sets).</summary>
    public const double MaximumDefaultEpochsPerGeneration = 3;

    /// <summary>The widest last layer the class-count rule gives, in scalar channels.</summary>
    public const int MaximumDefaultLastChannels = 512;

    /// <summary>Mini-batches per epoch of <paramref name="trainImages"/> images (the last one may be short).</summary>
    public static int StepsPerEpoch(int trainImages, int batchSize) => Math.Max(1, (trainImages + batchSize - 1) / Math.Max(1, batchSize));

    /// <summary>
    /// The default epochs of fixed and differentiable training: <see cref="Epochs"/> (3), or more where 3 epochs are
    /// fewer than <see cref="MinimumTrainingSteps"/> steps, at most <see cref="MaximumDefaultEpochs"/>; rounded to
    /// 0.01 epoch. 6,000 images of batch 64: 10.64 epochs; 3,000: 21.28; 60,000: 3.
    /// </summary>
    public static double EpochsFor(int trainImages, int batchSize) =>
        Math.Round(Math.Clamp((double)MinimumTrainingSteps / StepsPerEpoch(trainImages, batchSize), Epochs, MaximumDefaultEpochs), 2);

    /// <summary>
    /// The default epochs per generation: <see cref="EpochsPerGeneration"/> (0.5), or more where that is fewer than
    /// <see cref="MinimumGenerationSteps"/> steps, at most <see cref="MaximumDefaultEpochsPerGeneration"/>; rounded to
    /// 0.01 epoch. 6,000 images of batch 64: 0.53; 3,000: 1.06; 60,000: 0.5.
    /// </summary>
    public static double EpochsPerGenerationFor(int trainImages, int batchSize) =>
        Math.Round(Math.Clamp((double)MinimumGenerationSteps / StepsPerEpoch(trainImages, batchSize), EpochsPerGeneration, MaximumDefaultEpochsPerGeneration), 2);

    /// <summary>
    /// The default epochs the evolutionary search's winner trains after the last generation: what its lineage
    /// (<paramref name="lineageEpochs"/>: the initial training and one generation's epochs per generation) lacks of
    /// <see cref="EpochsFor"/>, so that the searched model trains as long as a default fixed one; 0 when the lineage
    /// is already as long.
    /// </summary>
    public static double FinalEpochsFor(int trainImages, int batchSize, double lineageEpochs) =>
        Math.Round(Math.Max(0, EpochsFor(trainImages, batchSize) - lineageEpochs), 2);

    /// <summary>
    /// The default widths for <paramref name="classes"/> classes: the small preset, with the last layer widened so
    /// that it has at least two D4 fields (16 scalar channels) per class, at most
    /// <see cref="MaximumDefaultLastChannels"/>: an invariant head of an all-D4 network reads one feature per field,
    /// and 8 features (the small preset's 64 channels) are too few for 10 classes. 2-4 classes: 16-32-32-64-64;
    /// 10 classes: 16-32-32-64-160. The same widths for every group (the paper's equal scalar channels).
    /// </summary>
    public static IReadOnlyList<int> ChannelsFor(int classes)
    {
        var widths = NetworkPresets.SmallChannels.ToArray();
        int wanted = Math.Min(MaximumDefaultLastChannels, 2 * 8 * Math.Max(1, classes));
        widths[^1] = Math.Max(widths[^1], wanted);
        return widths;
    }

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
