#nullable enable
using System.Diagnostics;
using Equinas.MLNet;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Input;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Equinas.MLNet.Runs;
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Execution;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;
using Microsoft.ML.Transforms.Image;

namespace Equinas.MLNet;

/// <summary>
/// The <see cref="IEstimator{TTransformer}"/> for image classification with a group-equivariant CNN whose per-layer
/// symmetry groups (subgroups of the pixel grid's symmetry group D4) are searched while it trains: by evolution with
/// the equivariance relaxation morphism (EquiNAS_E), by gradient descent over [G]-mixed layers (EquiNAS_D), or given.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// To create this trainer, use
/// [EquinasEvolve](xref:Equinas.MLNet.EquinasCatalog.EquinasEvolve(Microsoft.ML.MulticlassClassificationCatalog.MulticlassClassificationTrainers,System.String,System.String,System.Int32,System.Int32,System.Double,System.String,System.Nullable{System.Int32})),
/// [EquinasDifferentiable](xref:Equinas.MLNet.EquinasCatalog.EquinasDifferentiable(Microsoft.ML.MulticlassClassificationCatalog.MulticlassClassificationTrainers,System.String,System.String,System.Double,System.Double,System.String,System.Nullable{System.Int32}))
/// or [EquivariantImageClassification](xref:Equinas.MLNet.EquinasCatalog.EquivariantImageClassification(Microsoft.ML.MulticlassClassificationCatalog.MulticlassClassificationTrainers,Equinas.MLNet.EquivariantImageClassificationTrainer.Options)).
///
/// ### Input and Output Columns
/// The label column must be a [key](xref:Microsoft.ML.Data.KeyDataViewType) type (use MapValueToKey); the class count
/// is its key count, and rows with a missing key are skipped (the count is logged). The feature column is one of:
///
/// | Feature column type | Notes |
/// | -- | -- |
/// | `Vector<Single, C, H, W>` | from ExtractPixels; the shape is read from the type |
/// | `Vector<Single>` of C·H·W values | planar channels; set `ImageChannels`, `ImageHeight`, `ImageWidth` |
/// | `Image<H, W>` ([MLImage](xref:Microsoft.ML.Data.MLImage)) | from LoadImages and ResizeImages; `ImageChannels` 1 (grey), 3 (RGB, the default) or 4 |
/// | `Vector<Byte>` of encoded image bytes | from LoadRawImageBytes; decoded and resized to `ImageHeight` x `ImageWidth` by `ResizeMode` |
///
/// Images that do not decode (empty, truncated or corrupt files) are skipped with a warning naming each (the file when
/// `ImagePathColumnName` is set) and a count, or stop training with an error when `StrictImageReading` is set.
/// Pixels are normalised per channel with the mean and standard deviation of the training images; the statistics are
/// saved with the model, so prediction repeats the same preprocessing.
///
/// The trainer outputs the following columns:
///
/// | Output Column Name | Column Type | Description|
/// | -- | -- | -- |
/// | `Score` | Vector of [Single](xref:System.Single) | The softmax probability of each class, with the label's key values as slot names. |
/// | `PredictedLabel` | [key](xref:Microsoft.ML.Data.KeyDataViewType) type | The most probable class, with the label's key values. |
///
/// ### Trainer Characteristics
/// |  |  |
/// | -- | -- |
/// | Machine learning task | Multiclass classification |
/// | Is normalization required? | No (done inside the model) |
/// | Is caching required? | No (the images are read once; up to `ImageCacheMegabytes` they are held in memory, beyond it decoded on demand) |
/// | Required NuGet in addition to Microsoft.ML | Equinas.MLNet, Microsoft.ML.ImageAnalytics, and one libtorch backend (for example libtorch-cpu-linux-x64) |
/// | Exportable to ONNX | Yes: `EquinasModelParameters.SaveAsOnnx` (the network alone), and `ConvertToOnnx` where the features reach the trainer as a float vector (not through image transforms, not an image or bytes column) |
///
/// ### Training Algorithm Details
/// Every conv layer of the network is equivariant to a subgroup of D4 (rotations by quarter turns and the four
/// reflections). `Evolutionary` starts with every layer equivariant to `Group` and evolves a population: each
/// generation relaxes layers to subgroups without changing what the network computes (the equivariance relaxation
/// morphism), trains every candidate for `EpochsPerGeneration` epochs and keeps the `PopulationSize` most accurate on
/// the validation set. `Differentiable` makes every layer a weighted sum of layers constrained to each subgroup of
/// `Group` and learns the weights z with the network (`Epochs` epochs, `ArchitectureLearningRate` for z, z updated on
/// validation batches, z starting with most of every layer's weight on `Group` unless `MixtureStart` is `Uniform`). `Fixed` trains the network with `LayerGroups` for `Epochs` epochs. Validation uses
/// `ValidationSet`, the data given to `Fit(train, validation)`, or a stratified `ValidationFraction` of the training
/// data. Training is seeded (`Seed`, else MLContext's seed), reports through `Progress` and `MLContext.Log`, and stops
/// within one batch when `CancellationToken` is cancelled or MLContext cancels execution.
///
/// Method: M. Maile, J. Wilson, P. Forré, *Equivariance-aware Architectural Optimization of Neural Networks*, ICLR 2023.
/// ]]></format>
/// </remarks>
public sealed partial class EquivariantImageClassificationTrainer
    : TrainerEstimatorBase<EquinasPredictionTransformer, EquinasModelParameters>,
    IEstimator<EquinasPredictionTransformer>
{
    internal const string LoadName = "EquivariantImageClassification";

    private readonly Options _options;

    internal EquivariantImageClassificationTrainer(IHostEnvironment env, Options options)
        : base(
            Contracts.CheckRef(env, nameof(env)).Register(LoadName),
            new SchemaShape.Column(Contracts.CheckRef(options, nameof(options)).FeatureColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false),
            new SchemaShape.Column(options.LabelColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true),
            default)
    {
        options.Validate();
        _options = options;
    }

    /// <summary>Gets what this trainer needs and supports: no normalisation, no caching, a validation set.</summary>
    public override TrainerInfo Info { get; } = new(normalization: false, calibration: false, caching: false, supportValid: true, supportIncrementalTrain: false, supportTest: false);

    /// <inheritdoc/>
    protected override PredictionKind PredictionKind => PredictionKind.MulticlassClassification;

    /// <summary>Trains a model on <paramref name="input"/>, validating on <see cref="Options.ValidationSet"/> or a split of it.</summary>
    /// <param name="input">The training data: a label key column and an image feature column.</param>
    /// <returns>The trained model as a prediction transformer.</returns>
    public new EquinasPredictionTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains a model on <paramref name="trainData"/>, validating (selecting candidates, updating z) on <paramref name="validationData"/>.</summary>
    /// <param name="trainData">The training data: a label key column and an image feature column.</param>
    /// <param name="validationData">Validation data with the same columns, or null for <see cref="Options.ValidationSet"/> or a split of the training data.</param>
    /// <returns>The trained model as a prediction transformer.</returns>
    public EquinasPredictionTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        Host.CheckValue(trainData, nameof(trainData));
        var model = Train(trainData, validationData ?? _options.ValidationSet);
        try
        {
            return MakeTransformer(model, trainData.Schema);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Checks the input columns and describes the output columns (Score and PredictedLabel).</summary>
    /// <param name="inputSchema">The shape of the data the trainer would be fitted on.</param>
    /// <returns>The input columns with Score and PredictedLabel added.</returns>
    public new SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        Host.CheckValue(inputSchema, nameof(inputSchema));
        if (!inputSchema.TryFindColumn(_options.FeatureColumnName, out var feature))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Feature column '{_options.FeatureColumnName}' was not found; the data has columns [{string.Join(", ", inputSchema.Select(c => $"'{c.Name}'"))}]. Set FeatureColumnName to the column holding the images.");
        }

        bool featureOk = feature.Kind is SchemaShape.Column.VectorKind.Vector or SchemaShape.Column.VectorKind.VariableVector
            ? feature.ItemType.RawType == typeof(float) || feature.ItemType.RawType == typeof(byte)
            : feature.ItemType is ImageDataViewType;
        if (!featureOk)
        {
            string? found = feature.Kind == SchemaShape.Column.VectorKind.Scalar ? feature.ItemType.ToString() : $"Vector<{feature.ItemType}>";
            throw new ArgumentException($"Feature column '{feature.Name}' has type {found}; expected a vector of Single (pixels, e.g. Vector<Single, C, H, W> from ExtractPixels), a vector of Byte (encoded images from LoadRawImageBytes) or an Image column (LoadImages).");
        }

        if (!inputSchema.TryFindColumn(_options.LabelColumnName, out var label))
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{_options.LabelColumnName}' was not found; the data has columns [{string.Join(", ", inputSchema.Select(c => $"'{c.Name}'"))}].");
        }

        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar)
        {
            throw new ArgumentException($"Label column '{label.Name}' has type {label.ItemType} ({label.Kind}); expected a scalar key type. Convert it with MapValueToKey.");
        }

        var columns = inputSchema.ToDictionary(c => c.Name);
        foreach (var column in GetOutputColumnsCore(inputSchema))
        {
            columns[column.Name] = column;
        }

        return new SchemaShape(columns.Values);
    }

    /// <inheritdoc/>
    protected override SchemaShape.Column[] GetOutputColumnsCore(SchemaShape inputSchema)
    {
        inputSchema.TryFindColumn(_options.LabelColumnName, out var label);
        var keyValues = label.Annotations.Where(a => a.Name == AnnotationUtils.Kinds.KeyValues);
        return
        [
            new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, new SchemaShape(AnnotationUtils.AnnotationsForMulticlassScoreColumn(label))),
            new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, new SchemaShape(keyValues.Concat(AnnotationUtils.GetTrainerOutputAnnotation()))),
        ];
    }

    /// <inheritdoc/>
    protected override EquinasModelParameters TrainModelCore(TrainContext context)
    {
        Host.CheckValue(context, nameof(context));
        return Train(context.TrainingSet.Data, context.ValidationSet?.Data ?? _options.ValidationSet);
    }

    /// <inheritdoc/>
    protected override EquinasPredictionTransformer MakeTransformer(EquinasModelParameters model, DataViewSchema trainSchema) =>
        EquinasPredictionTransformer.Create(Host, model, trainSchema, _options.FeatureColumnName, _options.LabelColumnName);

    private EquinasModelParameters Train(IDataView trainData, IDataView? validationData)
    {
        var watch = Stopwatch.StartNew();
        var o = _options;
        using var ch = Host.Start("Training");
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(o.CancellationToken);
        using var watcher = new HostCancellationWatcher(Host, cancellation);
        var token = cancellation.Token;
        void CheckAlive()
        {
            Host.CheckAlive();
            token.ThrowIfCancellationRequested();
        }

        TorchSharp.torch.Device device;
        using (var deviceChannel = Host.Start("Device"))
        {
            device = DeviceSelection.Resolve(Host, deviceChannel);
        }

        int seed = o.Seed ?? Host.Rand.Next();
        using var data = TrainingData.Read(trainData, validationData, o, seed, ch, CheckAlive);
        var dataTime = watch.Elapsed;
        ch.Info($"Read {data.Train.Count + (validationData is null ? data.Validation.Count : 0)} training images of {data.Spec.Shape} ({data.Spec.Kind}) from column '{data.Spec.Column}', {data.Classes} classes, in {dataTime.TotalSeconds:F1} s.");
        ch.Info($"{o.SearchMode} training on {data.Train.Count} images, validating on {data.Validation.Count}; seed {seed}.");
        // Every default that depends on the data (widths by class count, epochs by steps) is fixed here, once.
        o = o.Resolve(data.Train.Count, data.Classes);
        var template = NetworkSpec.FromChannels(
            data.Spec.Channels, NetworkPresets.Uniform(SymmetryGroup.C1, o.ChannelsOrDefault.Count), o.ChannelsOrDefault, o.KernelSize,
            o.PoolAfterFor(data.Spec.Height, data.Spec.Width), data.Classes, o.HeadHidden) with
        {
            HeadPooling = (Nn.Layers.HeadPooling)o.HeadPooling,
        };
        var reporter = new RunReporter(o.SearchMode, o.TopGroup.Name, o.Progress, ch, watch);
        int threads = TrainingThreads.Resolve(o.ThreadsPerWorker, candidates: o.SearchMode == SearchMode.Evolutionary);
        using var checkpoints = OpenCheckpoints(o, data, seed, threads, ch);
        var run = ModeRuns.For(o.SearchMode).Run(new RunContext(o, template, data.Train, data.Validation, seed, reporter, token, threads, checkpoints, device));
        try
        {
            var timings = new Dictionary<string, TimeSpan>(run.Timings ?? new Dictionary<string, TimeSpan>()) { ["data"] = dataTime, ["total"] = watch.Elapsed };
            var history = reporter.History(timings) with { Settings = o.Describe(seed, data.Train.Count, data.Validation.Count, threads, data.Spec.Height, data.Spec.Width) };
            var model = EquinasModelParameters.Create(Host, new StoredNetwork(run.Network), data.Spec, data.Classes, history, device);
            ch.Info($"Trained in {watch.Elapsed.TotalSeconds:F1} s: layer groups {string.Join("-", model.LayerGroups)}, {model.ParameterCount} parameters.");
            return model;
        }
        catch
        {
            run.Network.Dispose();
            throw;
        }
    }

    /// <summary>The checkpoint folder of the options, for this data, seed and thread count (null when none is set).</summary>
    private static CheckpointStore? OpenCheckpoints(Options o, TrainingData data, int seed, int threads, IChannel ch)
    {
        if (o.CheckpointDirectory is not { } directory)
        {
            return null;
        }

        var identity = new CheckpointIdentity(
            CheckpointIdentity.DescribeData(data.Train, data.Validation),
            o.CheckpointSettings(seed, data.Train.Count, data.Validation.Count, threads, data.Spec.Height, data.Spec.Width));
        var store = new CheckpointStore(directory, identity, ch.Warning);
        try
        {
            if (store.Latest() is { } latest)
            {
                ch.Info($"Continuing from checkpoint '{latest.Path}' ({latest.Kind} {latest.Step}, written {latest.Written:yyyy-MM-dd HH:mm:ss} UTC).");
            }
            else
            {
                ch.Info($"Writing checkpoints to '{store.Directory}' after every {(o.SearchMode == SearchMode.Evolutionary ? "generation" : "epoch")}.");
            }

            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }
}
