#nullable enable
using System.Globalization;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Search;
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Equinas.MLNet;

public sealed partial class EquivariantImageClassificationTrainer
{
    /// <summary>
    /// The default value of every setting, in one place: the <see cref="Options"/> initialisers, the catalog's simple
    /// overloads, the <c>equinas</c> tool and the examples read them from here.
    /// </summary>
    public static class Defaults
    {
        /// <summary>The default top group: D4, the pixel grid's full symmetry group.</summary>
        public const string Group = SearchDefaults.Group;

        /// <summary>The default kernel size: 5.</summary>
        public const int KernelSize = SearchDefaults.KernelSize;

        /// <summary>The default hidden units of the head: 32.</summary>
        public const int HeadHidden = SearchDefaults.HeadHidden;

        /// <summary>The default head pooling: <see cref="HeadPoolingMode.Mean"/> (the paper's head).</summary>
        public const HeadPoolingMode HeadPooling = (HeadPoolingMode)SearchDefaults.HeadPooling;

        /// <summary>
        /// The fewest epochs the default training length gives: 3. The default (<see cref="Options.Epochs"/> null) is
        /// this or enough epochs for <see cref="MinimumTrainingSteps"/> weight steps, whichever is more, at most 30.
        /// </summary>
        public const double MinimumEpochs = SearchDefaults.Epochs;

        /// <summary>The weight steps (mini-batches) a final model trains at least by default: 1000.</summary>
        public const int MinimumTrainingSteps = SearchDefaults.MinimumTrainingSteps;

        /// <summary>
        /// The fewest epochs per generation the default gives: 0.5. The default (<see cref="Options.EpochsPerGeneration"/>
        /// null) is this or enough epochs for <see cref="MinimumGenerationSteps"/> steps, whichever is more, at most 3.
        /// </summary>
        public const double MinimumEpochsPerGeneration = SearchDefaults.EpochsPerGeneration;

        /// <summary>The weight steps every candidate trains per generation at least by default: 50.</summary>
        public const int MinimumGenerationSteps = SearchDefaults.MinimumGenerationSteps;

        /// <summary>The default children of the evolutionary search: <see cref="EvolutionMoves.Blocks"/>.</summary>
        public const EvolutionMoves Moves = EvolutionMoves.Blocks;

        /// <summary>The default selection of the evolutionary search: by validation accuracy (false), not on the Pareto front.</summary>
        public const bool ParetoSelection = false;

        /// <summary>The default of <see cref="Options.SimplestWithinStandardError"/>.</summary>
        public const bool SimplestWithinStandardError = SearchDefaults.SimplestWithinStandardError;

        /// <summary>
        /// The default epochs for <paramref name="trainImages"/> training images of batch <paramref name="batchSize"/>:
        /// <see cref="MinimumEpochs"/>, or enough for <see cref="MinimumTrainingSteps"/> steps, at most 30, rounded to
        /// 0.01 (6,000 images of batch 64: 10.64; 3,000: 21.28; 60,000: 3).
        /// </summary>
        /// <param name="trainImages">Training images (after the validation split).</param>
        /// <param name="batchSize">The mini-batch size.</param>
        /// <returns>The epochs.</returns>
        public static double EpochsFor(int trainImages, int batchSize) => SearchDefaults.EpochsFor(trainImages, batchSize);

        /// <summary>
        /// The default epochs per generation for <paramref name="trainImages"/> training images:
        /// <see cref="MinimumEpochsPerGeneration"/>, or enough for <see cref="MinimumGenerationSteps"/> steps, at most 3,
        /// rounded to 0.01 (6,000 images of batch 64: 0.53; 3,000: 1.06; 60,000: 0.5).
        /// </summary>
        /// <param name="trainImages">Training images (after the validation split).</param>
        /// <param name="batchSize">The mini-batch size.</param>
        /// <returns>The epochs per generation.</returns>
        public static double EpochsPerGenerationFor(int trainImages, int batchSize) => SearchDefaults.EpochsPerGenerationFor(trainImages, batchSize);

        /// <summary>
        /// The default widths in scalar channels for <paramref name="classes"/> classes: the small preset 16, 32, 32,
        /// 64, 64 with the last layer widened to two D4 fields (16 channels) per class, at most 512 (10 classes:
        /// 16, 32, 32, 64, 160).
        /// </summary>
        /// <param name="classes">The number of classes.</param>
        /// <returns>The widths.</returns>
        public static IReadOnlyList<int> ChannelsFor(int classes) => SearchDefaults.ChannelsFor(classes);

        /// <summary>The default mini-batch size: 64.</summary>
        public const int BatchSize = SearchDefaults.BatchSize;

        /// <summary>The default Adam learning rate of the weights: 0.001.</summary>
        public const double LearningRate = SearchDefaults.LearningRate;

        /// <summary>The default survivors per generation: 3.</summary>
        public const int PopulationSize = SearchDefaults.PopulationSize;

        /// <summary>The default generations after the initial training: 4.</summary>
        public const int Generations = SearchDefaults.Generations;


        /// <summary>The default retraining epochs after the differentiable search: 0 (keep the mixture).</summary>
        public const double RetrainEpochs = SearchDefaults.RetrainEpochs;

        /// <summary>The default Adam learning rate of the mixture logits: 0.01.</summary>
        public const double ArchitectureLearningRate = SearchDefaults.ArchitectureLearningRate;

        /// <summary>
        /// The default start of the differentiable search's z: <see cref="MixtureStart.TopGroup"/> (since 2026-12-03;
        /// <see cref="MixtureStart.Uniform"/> before, the paper's).
        /// </summary>
        public const MixtureStart MixtureStart = (MixtureStart)SearchDefaults.MixtureStart;

        /// <summary>The default warm-up epochs (weights only) before the differentiable search.</summary>
        public const double WarmupEpochs = SearchDefaults.WarmupEpochs;

        /// <summary>The paper's rotated-MNIST learning rates (Adam, 100 epochs): weights 0.01 (<see cref="Options.LearningRate"/>).</summary>
        public const double PaperRotatedMnistLearningRate = 0.01;

        /// <summary>The paper's rotated-MNIST learning rate of the mixture logits: 0.01 (<see cref="Options.ArchitectureLearningRate"/>).</summary>
        public const double PaperRotatedMnistArchitectureLearningRate = 0.01;

        /// <summary>The paper's ISIC learning rates (Adam, 50 epochs): weights 0.001 (<see cref="Options.LearningRate"/>).</summary>
        public const double PaperIsicLearningRate = 0.001;

        /// <summary>The paper's ISIC learning rate of the mixture logits: 0.01 (<see cref="Options.ArchitectureLearningRate"/>).</summary>
        public const double PaperIsicArchitectureLearningRate = 0.01;

        /// <summary>The default share of the training data held out for validation: 0.1.</summary>
        public const double ValidationFraction = SearchDefaults.ValidationFraction;

        /// <summary>The default resize mode: <see cref="ImageResizeMode.Stretch"/>, what the trainer did before the option existed.</summary>
        public const ImageResizeMode ResizeMode = ImageResizeMode.Stretch;

        /// <summary>The default of <see cref="Options.StrictImageReading"/>: false (unreadable images are skipped with a warning).</summary>
        public const bool StrictImageReading = SearchDefaults.StrictImageReading;

        /// <summary>
        /// The default memory bound for decoded images: 1024 MB, about 21,800 RGB images of 64 x 64 (87,000 of
        /// 32 x 32, 340,000 grey 28 x 28), so that usual data sets stay on the in-memory path and a 4 GB machine keeps
        /// room for libtorch.
        /// </summary>
        public const int ImageCacheMegabytes = SearchDefaults.ImageCacheMegabytes;

        /// <summary>Gets the small preset's widths in scalar channels, 16, 32, 32, 64, 64: the default for up to 4 classes (see <see cref="ChannelsFor"/>).</summary>
        public static IReadOnlyList<int> Channels => SearchDefaults.Channels;

        /// <summary>Gets the default number of candidates the evolutionary search trains at once: one per core, at most 8.</summary>
        public static int Workers => SearchDefaults.Workers;

        /// <summary>
        /// Gets the default libtorch threads per candidate of the evolutionary search: the cores shared among the default
        /// workers (1 on machines of up to 8 cores). It depends on the machine only, never on <see cref="Options.Workers"/>.
        /// </summary>
        public static int ThreadsPerWorker => SearchDefaults.ThreadsPerWorker;
    }

    /// <summary>Options for <see cref="EquivariantImageClassificationTrainer"/>.</summary>
    public sealed class Options
    {
        /// <summary>Gets or sets the label column: a key type (use MapValueToKey). Default "Label".</summary>
        public string LabelColumnName { get; set; } = DefaultColumnNames.Label;

        /// <summary>Gets or sets the feature column holding the images (see the trainer's remarks for the accepted types). Default "Features".</summary>
        public string FeatureColumnName { get; set; } = DefaultColumnNames.Features;

        /// <summary>Gets or sets how the per-layer groups are chosen. Default <see cref="SearchMode.Evolutionary"/>.</summary>
        public SearchMode SearchMode { get; set; } = SearchMode.Evolutionary;

        /// <summary>
        /// Gets or sets the top group: every layer starts from it (evolutionary), mixes its subgroups (differentiable),
        /// or uses it when <see cref="LayerGroups"/> is not set (fixed). One of C1, C2, C4, D1V, D1H, D1D, D1A, D2VH,
        /// D2DA, D4 ("D1" means D1V, the left-right mirror; "D2" means D2VH). Default "D4".
        /// </summary>
        public string Group { get; set; } = Defaults.Group;

        /// <summary>
        /// Gets or sets, for <see cref="SearchMode.Fixed"/>, the group of each conv layer (one per entry of
        /// <see cref="Channels"/>; each a subgroup of the previous layer's). Default: <see cref="Group"/> everywhere.
        /// </summary>
        public string[]? LayerGroups { get; set; }

        /// <summary>
        /// Gets or sets the width of each conv layer in scalar channels (the same whatever the group; each must be a
        /// multiple of the group orders used: 8 for D4). Default, from the class count: the small preset 16, 32, 32, 64,
        /// 64 with the last layer widened to two D4 fields per class (10 classes: 16, 32, 32, 64, 160; see
        /// <see cref="Defaults.ChannelsFor"/>), the same for every group.
        /// </summary>
        public int[]? Channels { get; set; }

        /// <summary>Gets or sets the (odd) kernel size of every conv layer. Default 5.</summary>
        public int KernelSize { get; set; } = Defaults.KernelSize;

        /// <summary>
        /// Gets or sets the conv layers (0-based) after which the feature maps are pooled by 2. Default, chosen from the
        /// input size: after layers 1 and 3 for the default five layers up to 48 pixels (28 -> 7, 32 -> 8); on larger
        /// images one more pooling per halving needed to bring the last feature map to 12 pixels or less, after the
        /// first layers (64 and 96 pixels: after layers 0, 1 and 3; 64 -> 8, 96 -> 12); for other depths, after about
        /// 40% and 80% of the layers, and more in front on large images. Every pooling is exact on the grid.
        /// </summary>
        public int[]? PoolAfter { get; set; }

        /// <summary>Gets or sets the hidden units of the invariant classification head. Default 32.</summary>
        public int HeadHidden { get; set; } = Defaults.HeadHidden;

        /// <summary>
        /// Gets or sets what the invariant head reads from each field of the last layer: the mean over the group and
        /// the plane (<see cref="HeadPoolingMode.Mean"/>, the default), or also the group mean of the spatial maxima
        /// (<see cref="HeadPoolingMode.MeanAndMax"/>, twice the features). Both keep every guarantee of invariance and of
        /// exact relaxation. Saved with the model.
        /// </summary>
        public HeadPoolingMode HeadPooling { get; set; } = Defaults.HeadPooling;

        /// <summary>
        /// Gets or sets the epochs the final model trains (fractions allowed): all of fixed training, the differentiable
        /// search (before any <see cref="RetrainEpochs"/>), and for the evolutionary search its winning lineage, which
        /// the best network tops up to this length after the last generation (see <see cref="FinalEpochs"/>).
        /// Default null: from the data, at least 3 epochs and at least 1000 weight steps, at most 30 epochs
        /// (<see cref="Defaults.EpochsFor"/>; 6,000 images of batch 64: 10.64 epochs).
        /// </summary>
        public double? Epochs { get; set; }

        /// <summary>Gets or sets the mini-batch size. Default 64.</summary>
        public int BatchSize { get; set; } = Defaults.BatchSize;

        /// <summary>Gets or sets the Adam learning rate of the network weights. Default 0.001.</summary>
        public double LearningRate { get; set; } = Defaults.LearningRate;

        /// <summary>Gets or sets the survivors per generation of the evolutionary search. Default 3.</summary>
        public int PopulationSize { get; set; } = Defaults.PopulationSize;

        /// <summary>Gets or sets the generations of the evolutionary search after the initial training. Default 4.</summary>
        public int Generations { get; set; } = Defaults.Generations;

        /// <summary>
        /// Gets or sets the epochs every candidate trains per generation (fractions allowed). Default null: from the
        /// data, at least 0.5 epoch and at least 50 weight steps, at most 3 epochs (<see cref="Defaults.EpochsPerGenerationFor"/>).
        /// </summary>
        public double? EpochsPerGeneration { get; set; }

        /// <summary>
        /// Gets or sets the epochs the evolutionary search's best network trains after the last generation (0: none,
        /// the paper's behaviour). Default null: what its lineage (the initial training and every generation) lacks of
        /// <see cref="Epochs"/>, so that the searched model trains as long as a fixed one would.
        /// </summary>
        public double? FinalEpochs { get; set; }

        /// <summary>
        /// Gets or sets which children each survivor of the evolutionary search yields. Default
        /// <see cref="EvolutionMoves.Blocks"/>, which reaches every chain of groups in a few generations;
        /// <see cref="EvolutionMoves.Paper"/> is the paper's one step at the end of the network.
        /// </summary>
        public EvolutionMoves Moves { get; set; } = Defaults.Moves;

        /// <summary>
        /// Gets or sets whether the evolutionary search keeps the survivors on the Pareto front of (validation error,
        /// parameter count), fronts taken whole while they fit and the last by accuracy, instead of the most accurate.
        /// Default false. The model is still the most accurate survivor of the last generation.
        /// </summary>
        public bool ParetoSelection { get; set; } = Defaults.ParetoSelection;

        /// <summary>
        /// Gets or sets whether the evolutionary search ranks its candidates (survivors, and the network that trains on
        /// and becomes the model) by the one-standard-error rule: the candidates whose validation accuracy is within one
        /// binomial standard error of the best come first, the smallest first; with equal widths in scalar channels the
        /// smallest is the most symmetric. A relaxation must then gain more than the validation split can tell from
        /// noise. Ignored with <see cref="ParetoSelection"/>. See <see cref="Defaults.SimplestWithinStandardError"/>.
        /// </summary>
        public bool SimplestWithinStandardError { get; set; } = Defaults.SimplestWithinStandardError;

        /// <summary>
        /// Gets or sets, for the differentiable search, the epochs of retraining the chosen architecture as an ordinary
        /// G-CNN after the search: each layer gets its largest-z group (intersected with the previous layer's, so that
        /// the groups form a chain), and a new network with those groups is trained from scratch, giving a model as
        /// small and fast as a fixed one. Default 0: the model keeps the learned mixture.
        /// </summary>
        public double RetrainEpochs { get; set; } = Defaults.RetrainEpochs;

        /// <summary>
        /// Gets or sets the Adam learning rate of the mixture logits in the differentiable search. Default 0.01 (the
        /// paper's presets are in <see cref="Defaults"/>). The logits are updated after every weight step on a batch of
        /// the validation data, never on the batches the weights train on.
        /// </summary>
        public double ArchitectureLearningRate { get; set; } = Defaults.ArchitectureLearningRate;

        /// <summary>
        /// Gets or sets where the differentiable search's mixture weights z start in every layer:
        /// <see cref="MixtureStart.TopGroup"/> (the default; most of each layer's weight on the top group, as the
        /// evolutionary search starts at all-top-group) or <see cref="MixtureStart.Uniform"/> (the paper's). Ignored by
        /// the other modes. See <see cref="Defaults.MixtureStart"/>.
        /// </summary>
        public MixtureStart MixtureStart { get; set; } = Defaults.MixtureStart;

        /// <summary>
        /// Gets or sets, for the differentiable search, epochs that train the mixed network's weights only (z fixed)
        /// before z is learned, so that z starts moving once the members' kernels carry signal. Default 0.
        /// </summary>
        public double WarmupEpochs { get; set; } = Defaults.WarmupEpochs;

        /// <summary>Gets or sets the share of the training data held out for validation when no validation set is given. Default 0.1.</summary>
        public double ValidationFraction { get; set; } = Defaults.ValidationFraction;

        /// <summary>Gets or sets a validation set with the same columns; used instead of splitting the training data.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Gets or sets the seed of weight initialisation, data order and the validation split. Default: drawn from MLContext's seed.</summary>
        public int? Seed { get; set; }

        /// <summary>Gets or sets the image height, needed when the feature column's type does not carry it (flat vectors, encoded bytes).</summary>
        public int? ImageHeight { get; set; }

        /// <summary>Gets or sets the image width, needed when the feature column's type does not carry it (flat vectors, encoded bytes).</summary>
        public int? ImageWidth { get; set; }

        /// <summary>Gets or sets the image channels when the type does not carry them: flat vectors (default 1), images and bytes (1 grey, 3 RGB, the default, or 4 RGBA).</summary>
        public int? ImageChannels { get; set; }

        /// <summary>
        /// Gets or sets how images of another size or aspect ratio are brought to <see cref="ImageHeight"/> x
        /// <see cref="ImageWidth"/> when the trainer decodes them (encoded bytes from LoadRawImageBytes, or an Image
        /// column without a fixed size): stretched, padded to the target's shape, or cropped to its centre. Saved with
        /// the model, so prediction resizes the same way. Default <see cref="ImageResizeMode.Stretch"/>.
        /// </summary>
        public ImageResizeMode ResizeMode { get; set; } = Defaults.ResizeMode;

        /// <summary>
        /// Gets or sets whether an image that does not decode (an empty, truncated or corrupt file) stops training with
        /// an error naming it. Default false: such images are skipped, each named in a warning on MLContext.Log, with
        /// the count at the end. Applies to encoded bytes and Image columns; a pixel vector that is not finite always
        /// stops training.
        /// </summary>
        public bool StrictImageReading { get; set; } = Defaults.StrictImageReading;

        /// <summary>
        /// Gets or sets a text column holding each row's image file path (the input column of LoadRawImageBytes or
        /// LoadImages), used to name files in warnings and errors. Default: none, rows are named by position.
        /// </summary>
        public string? ImagePathColumnName { get; set; }

        /// <summary>
        /// Gets or sets the memory bound, in MB (2^20 bytes), for the decoded training and validation images. Data that
        /// fits is decoded once and held in memory; larger data is read once into a scratch file in the temp folder (the
        /// encoded bytes; the raw pixels of pixel columns) and decoded on demand through a least-recently-used cache of
        /// this size, so memory stays bounded whatever the folder's size. Batches, and so results, are the same bit for
        /// bit either way. 0 decodes every image on demand. Default 1024 (<see cref="Defaults.ImageCacheMegabytes"/>).
        /// </summary>
        public int ImageCacheMegabytes { get; set; } = Defaults.ImageCacheMegabytes;

        /// <summary>
        /// Gets or sets how many candidates the evolutionary search trains at once, each on a thread of its own. It
        /// changes only the speed: the result is the same, bit for bit, whatever the count. Default: one per core, at
        /// most 8 (<see cref="Defaults.Workers"/>).
        /// </summary>
        public int? Workers { get; set; }

        /// <summary>
        /// Gets or sets the libtorch (intra-op) threads each training uses: each candidate of the evolutionary search,
        /// or the one network of the other modes. Results depend on it, bit for bit (libtorch splits its sums by
        /// thread): keep it when results must repeat on another machine. Default: for the evolutionary search
        /// <see cref="Defaults.ThreadsPerWorker"/>; for the other modes libtorch's current count (normally the cores).
        /// </summary>
        public int? ThreadsPerWorker { get; set; }

        /// <summary>
        /// Gets or sets a folder for checkpoints. After every generation (evolutionary) or epoch (differentiable, fixed)
        /// the state needed to continue is written there atomically; a later <c>Fit</c> with the same data, the same
        /// options and the same folder continues after the last step written and makes a model with the same scores,
        /// bit for bit, as an uninterrupted run (a finished run's folder gives its model back without training). A
        /// checkpoint of other data or other options is refused with an error naming what differs. One run at a time
        /// per folder; the folder is left in place afterwards. Default: none.
        /// </summary>
        public string? CheckpointDirectory { get; set; }

        /// <summary>
        /// Gets or sets, for the evolutionary search, a cluster of worker machines that trains each generation's
        /// candidates instead of this process (<see cref="Workers"/> then does not apply; the result is the same, bit
        /// for bit, as in process with the same <see cref="ThreadsPerWorker"/>). Implemented by the
        /// <c>Equinas.MLNet.Orleans</c> package. The trainer does not dispose it. Default: none (train in this process).
        /// </summary>
        public CandidateCluster? Cluster { get; set; }

        /// <summary>Gets or sets where progress reports go after every generation or epoch.</summary>
        public IProgress<EquinasProgress>? Progress { get; set; }

        /// <summary>Gets or sets a token that stops training within one batch (Fit then throws <see cref="OperationCanceledException"/> and no model is made).</summary>
        public CancellationToken CancellationToken { get; set; }

        internal SymmetryGroup TopGroup => SymmetryGroup.Parse(Group);

        /// <summary>The widths: <see cref="Channels"/>, or (before <see cref="Resolve"/>) the small preset's, which has as many layers as every default.</summary>
        internal IReadOnlyList<int> ChannelsOrDefault => Channels ?? SearchDefaults.Channels;

        /// <summary>The resolved epochs (after <see cref="Resolve"/>).</summary>
        internal double EpochsValue => Epochs ?? throw new InvalidOperationException("Options not resolved.");

        /// <summary>The resolved epochs per generation (after <see cref="Resolve"/>).</summary>
        internal double EpochsPerGenerationValue => EpochsPerGeneration ?? throw new InvalidOperationException("Options not resolved.");

        /// <summary>The resolved final epochs (after <see cref="Resolve"/>).</summary>
        internal double FinalEpochsValue => FinalEpochs ?? throw new InvalidOperationException("Options not resolved.");

        /// <summary>
        /// A copy with every data-dependent default filled in for <paramref name="trainImages"/> training images and
        /// <paramref name="classes"/> classes: <see cref="Channels"/>, <see cref="Epochs"/>,
        /// <see cref="EpochsPerGeneration"/> and <see cref="FinalEpochs"/>.
        /// </summary>
        internal Options Resolve(int trainImages, int classes)
        {
            var o = Clone();
            o.Channels ??= SearchDefaults.ChannelsFor(classes).ToArray();
            o.Epochs ??= SearchDefaults.EpochsFor(trainImages, BatchSize);
            o.EpochsPerGeneration ??= SearchDefaults.EpochsPerGenerationFor(trainImages, BatchSize);
            double lineage = (Generations + 1) * o.EpochsPerGeneration.Value;
            o.FinalEpochs ??= Math.Round(Math.Max(0, o.Epochs.Value - lineage), 2);
            return o;
        }

        /// <summary>The pooling for images of <paramref name="height"/> x <paramref name="width"/>: <see cref="PoolAfter"/>, or the default for that size.</summary>
        internal IReadOnlyList<int> PoolAfterFor(int height, int width) => PoolAfter ?? SearchDefaults.Pooling(ChannelsOrDefault.Count, Math.Min(height, width));

        internal TrainingOptions TrainingOptions() => new() { LearningRate = LearningRate, BatchSize = BatchSize };

        /// <summary>A copy (arrays copied too), so that later changes to the caller's options do not reach a trainer.</summary>
        internal Options Clone()
        {
            var copy = (Options)MemberwiseClone();
            copy.LayerGroups = (string[]?)LayerGroups?.Clone();
            copy.Channels = (int[]?)Channels?.Clone();
            copy.PoolAfter = (int[]?)PoolAfter?.Clone();
            return copy;
        }

        /// <summary>The settings that shaped a trained model, as text, for its history.</summary>
        internal IReadOnlyDictionary<string, string> Describe(int seed, int trainImages, int validationImages, int threadsPerWorker, int height, int width)
        {
            var settings = new Dictionary<string, string>
            {
                [nameof(SearchMode)] = SearchMode.ToString(),
                [nameof(Group)] = TopGroup.Name,
                [nameof(Channels)] = string.Join(",", ChannelsOrDefault),
                [nameof(KernelSize)] = Text(KernelSize),
                [nameof(PoolAfter)] = string.Join(",", PoolAfterFor(height, width)),
                [nameof(ResizeMode)] = ResizeMode.ToString(),
                [nameof(HeadHidden)] = Text(HeadHidden),
                [nameof(BatchSize)] = Text(BatchSize),
                [nameof(LearningRate)] = Text(LearningRate),
                [nameof(Seed)] = Text(seed),
                [nameof(ThreadsPerWorker)] = Text(threadsPerWorker),
                ["TrainImages"] = Text(trainImages),
                ["ValidationImages"] = Text(validationImages),
            };
            // Recorded only when not the mean, so that checkpoints written before the option existed still match.
            if (HeadPooling != HeadPoolingMode.Mean)
            {
                settings[nameof(HeadPooling)] = HeadPooling.ToString();
            }

            switch (SearchMode)
            {
                case SearchMode.Evolutionary:
                    settings[nameof(Workers)] = Text(Workers ?? Defaults.Workers);
                    if (Cluster is not null)
                    {
                        settings[nameof(Cluster)] = Cluster.Description;
                    }

                    settings[nameof(PopulationSize)] = Text(PopulationSize);
                    settings[nameof(Generations)] = Text(Generations);
                    settings[nameof(EpochsPerGeneration)] = Text(EpochsPerGenerationValue);
                    settings[nameof(FinalEpochs)] = Text(FinalEpochsValue);
                    settings[nameof(Moves)] = Moves.ToString();
                    settings[nameof(ParetoSelection)] = ParetoSelection ? "true" : "false";
                    // Recorded only when on, so that checkpoints written before the option existed (accuracy ranking)
                    // still match a search that ranks by accuracy.
                    if (SimplestWithinStandardError && !ParetoSelection)
                    {
                        settings[nameof(SimplestWithinStandardError)] = "true";
                    }
                    break;
                case SearchMode.Differentiable:
                    settings[nameof(Epochs)] = Text(EpochsValue);
                    settings[nameof(ArchitectureLearningRate)] = Text(ArchitectureLearningRate);
                    settings[nameof(RetrainEpochs)] = Text(RetrainEpochs);
                    settings[nameof(WarmupEpochs)] = Text(WarmupEpochs);
                    // Recorded only when not uniform, so that checkpoints written before the option existed (uniform z)
                    // still match a search that starts uniform, and never match one that starts at the top group.
                    if (MixtureStart != MixtureStart.Uniform)
                    {
                        settings[nameof(MixtureStart)] = MixtureStart.ToString();
                    }

                    break;
                default:
                    settings[nameof(Epochs)] = Text(EpochsValue);
                    settings[nameof(LayerGroups)] = LayerGroups is null ? TopGroup.Name + " in every layer" : string.Join(",", LayerGroups);
                    break;
            }

            return settings;

            static string Text(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);
        }

        /// <summary>
        /// The settings a checkpoint must match to be continued: every one that shapes the result (those of
        /// <see cref="Describe"/>, the engine's version and the thread count included), not the worker count.
        /// The data are matched apart (<c>CheckpointIdentity.DescribeData</c>).
        /// </summary>
        internal IReadOnlyDictionary<string, string> CheckpointSettings(int seed, int trainImages, int validationImages, int threadsPerWorker, int height, int width)
        {
            var settings = Describe(seed, trainImages, validationImages, threadsPerWorker, height, width).ToDictionary(p => p.Key, p => p.Value);
            // Not the worker count (no result depends on it) nor the image counts (the data's own description has them).
            settings.Remove(nameof(Workers));
            // Nor where the candidates trained: a search started in process may continue on a cluster and back.
            settings.Remove(nameof(Cluster));
            settings.Remove("TrainImages");
            settings.Remove("ValidationImages");
            settings["EngineVersion"] = typeof(Options).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
                .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";
            return settings;
        }

        /// <summary>Throws an exception naming the first setting that is out of range.</summary>
        internal void Validate()
        {
            Require(!string.IsNullOrWhiteSpace(LabelColumnName), nameof(LabelColumnName), "a column name", LabelColumnName);
            Require(!string.IsNullOrWhiteSpace(FeatureColumnName), nameof(FeatureColumnName), "a column name", FeatureColumnName);
            Require(Enum.IsDefined(SearchMode), nameof(SearchMode), "Evolutionary, Differentiable or Fixed", SearchMode);
            Require(SymmetryGroup.TryParse(Group, out _), nameof(Group), $"one of {string.Join(", ", SymmetryGroup.All.Select(g => g.Name))}", Group);
            Require(Channels is null || (Channels.Length > 0 && Channels.All(c => c > 0)), nameof(Channels), "at least one positive width", Show(Channels));
            Require(KernelSize > 0 && KernelSize % 2 == 1, nameof(KernelSize), "a positive odd number", KernelSize);
            Require(PoolAfter is null || PoolAfter.All(p => p >= 0 && p < ChannelsOrDefault.Count), nameof(PoolAfter), $"layer indices in [0, {ChannelsOrDefault.Count})", Show(PoolAfter));
            Require(HeadHidden > 0, nameof(HeadHidden), "a positive number", HeadHidden);
            Require(Enum.IsDefined(HeadPooling), nameof(HeadPooling), "Mean or MeanAndMax", HeadPooling);
            Require(Epochs is null || (Epochs > 0 && double.IsFinite(Epochs.Value)), nameof(Epochs), "a positive number or null", Epochs);
            Require(BatchSize > 0, nameof(BatchSize), "a positive number", BatchSize);
            Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "a positive number", LearningRate);
            Require(PopulationSize > 0, nameof(PopulationSize), "a positive number", PopulationSize);
            Require(Generations >= 0, nameof(Generations), "zero or more", Generations);
            Require(EpochsPerGeneration is null || (EpochsPerGeneration > 0 && double.IsFinite(EpochsPerGeneration.Value)), nameof(EpochsPerGeneration), "a positive number or null", EpochsPerGeneration);
            Require(FinalEpochs is null || (FinalEpochs >= 0 && double.IsFinite(FinalEpochs.Value)), nameof(FinalEpochs), "zero, a positive number or null", FinalEpochs);
            Require(Enum.IsDefined(Moves), nameof(Moves), "Paper, Blocks or Suffixes", Moves);
            Require(ArchitectureLearningRate > 0 && double.IsFinite(ArchitectureLearningRate), nameof(ArchitectureLearningRate), "a positive number", ArchitectureLearningRate);
            Require(RetrainEpochs >= 0 && double.IsFinite(RetrainEpochs), nameof(RetrainEpochs), "zero or a positive number", RetrainEpochs);
            Require(WarmupEpochs >= 0 && double.IsFinite(WarmupEpochs), nameof(WarmupEpochs), "zero or a positive number", WarmupEpochs);
            Require(Enum.IsDefined(MixtureStart), nameof(MixtureStart), "TopGroup or Uniform", MixtureStart);
            Require(ValidationFraction > 0 && ValidationFraction < 1, nameof(ValidationFraction), "a number strictly between 0 and 1", ValidationFraction);
            Require(ImageHeight is null or > 0, nameof(ImageHeight), "a positive number or null", ImageHeight);
            Require(ImageWidth is null or > 0, nameof(ImageWidth), "a positive number or null", ImageWidth);
            Require(ImageChannels is null or > 0, nameof(ImageChannels), "a positive number or null", ImageChannels);
            Require(Enum.IsDefined(ResizeMode), nameof(ResizeMode), "Stretch, Pad or Crop", ResizeMode);
            Require(ImagePathColumnName is null || !string.IsNullOrWhiteSpace(ImagePathColumnName), nameof(ImagePathColumnName), "a column name or null", ImagePathColumnName);
            Require(ImageCacheMegabytes >= 0, nameof(ImageCacheMegabytes), "zero or a positive number", ImageCacheMegabytes);
            Require(Workers is null or > 0, nameof(Workers), "a positive number or null", Workers);
            Require(ThreadsPerWorker is null or > 0, nameof(ThreadsPerWorker), "a positive number or null", ThreadsPerWorker);
            Require(Cluster is null || SearchMode == SearchMode.Evolutionary, nameof(Cluster), "null unless SearchMode is Evolutionary (only its candidates are trained on a cluster)", Cluster?.Description);
            Require(CheckpointDirectory is null || !string.IsNullOrWhiteSpace(CheckpointDirectory), nameof(CheckpointDirectory), "a folder path or null", CheckpointDirectory);
            if (LayerGroups is { } groups)
            {
                Require(SearchMode == SearchMode.Fixed, nameof(LayerGroups), "null unless SearchMode is Fixed", Show(groups));
                Require(groups.Length == ChannelsOrDefault.Count, nameof(LayerGroups), $"one group per conv layer ({ChannelsOrDefault.Count}, the length of Channels)", Show(groups));
                foreach (var name in groups)
                {
                    Require(SymmetryGroup.TryParse(name, out _), nameof(LayerGroups), $"group names among {string.Join(", ", SymmetryGroup.All.Select(g => g.Name))}", Show(groups));
                }

                var parsed = groups.Select(SymmetryGroup.Parse).ToArray();
                for (int i = 1; i < parsed.Length; i++)
                {
                    Require(parsed[i].IsSubgroupOf(parsed[i - 1]), nameof(LayerGroups), $"a chain in which every group is a subgroup of the previous layer's (layer {i}: {parsed[i].Name} is not in {parsed[i - 1].Name})", Show(groups));
                }
            }

            var top = TopGroup;
            var widths = ChannelsOrDefault;
            int order = SearchMode == SearchMode.Fixed && LayerGroups is not null ? 1 : top.Order;
            for (int i = 0; i < widths.Count; i++)
            {
                int needed = LayerGroups is { } g ? SymmetryGroup.Parse(g[i]).Order : order;
                Require(widths[i] % needed == 0, nameof(Channels), $"multiples of the group order ({needed} for layer {i})", Show(Channels ?? widths.ToArray()));
            }
        }

        private static string Show<T>(IReadOnlyList<T>? values) => values is null ? "null" : "[" + string.Join(", ", values) + "]";

        private static void Require(bool condition, string name, string expected, object? found)
        {
            if (!condition)
            {
                throw new ArgumentOutOfRangeException(name, string.Create(CultureInfo.InvariantCulture, $"Option {name} must be {expected}; found {found ?? "null"}."));
            }
        }
    }
}
