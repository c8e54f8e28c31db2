#nullable enable
using System.Diagnostics;
using System.Globalization;
using Equinas.MLNet;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Input;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;
using Microsoft.ML.Transforms.Image;
using TorchSharp;

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
/// | `Vector<Byte>` of encoded image bytes | from LoadRawImageBytes; decoded and resized to `ImageHeight` x `ImageWidth` |
///
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
/// | Is caching required? | No (the images are read once into memory) |
/// | Required NuGet in addition to Microsoft.ML | Equinas.MLNet, Microsoft.ML.ImageAnalytics, and one libtorch backend (for example libtorch-cpu-linux-x64) |
/// | Exportable to ONNX | No |
///
/// ### Training Algorithm Details
/// Every conv layer of the network is equivariant to a subgroup of D4 (rotations by quarter turns and the four
/// reflections). `Evolutionary` starts with every layer equivariant to `Group` and evolves a population: each
/// generation relaxes layers to subgroups without changing what the network computes (the equivariance relaxation
/// morphism), trains every candidate for `EpochsPerGeneration` epochs and keeps the `PopulationSize` most accurate on
/// the validation set. `Differentiable` makes every layer a weighted sum of layers constrained to each subgroup of
/// `Group` and learns the weights z with the network (`Epochs` epochs, `ArchitectureLearningRate` for z, z updated on
/// validation batches). `Fixed` trains the network with `LayerGroups` for `Epochs` epochs. Validation uses
/// `ValidationSet`, the data given to `Fit(train, validation)`, or a stratified `ValidationFraction` of the training
/// data. Training is seeded (`Seed`, else MLContext's seed), reports through `Progress` and `MLContext.Log`, and stops
/// within one batch when `CancellationToken` is cancelled or MLContext cancels execution.
///
/// Method: M. Maile, J. Wilson, P. Forré, *Equivariance-aware Architectural Optimization of Neural Networks*, ICLR 2023.
/// ]]></format>
/// </remarks>
public sealed class EquivariantImageClassificationTrainer
    : TrainerEstimatorBase<MulticlassPredictionTransformer<EquinasModelParameters>, EquinasModelParameters>,
    IEstimator<MulticlassPredictionTransformer<EquinasModelParameters>>
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
    public new MulticlassPredictionTransformer<EquinasModelParameters> Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains a model on <paramref name="trainData"/>, validating (selecting candidates, updating z) on <paramref name="validationData"/>.</summary>
    /// <param name="trainData">The training data: a label key column and an image feature column.</param>
    /// <param name="validationData">Validation data with the same columns, or null for <see cref="Options.ValidationSet"/> or a split of the training data.</param>
    /// <returns>The trained model as a prediction transformer.</returns>
    public MulticlassPredictionTransformer<EquinasModelParameters> Fit(IDataView trainData, IDataView? validationData)
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
    protected override MulticlassPredictionTransformer<EquinasModelParameters> MakeTransformer(EquinasModelParameters model, DataViewSchema trainSchema) =>
        new(Host, model, trainSchema, _options.FeatureColumnName, _options.LabelColumnName, DefaultColumnNames.Score, DefaultColumnNames.PredictedLabel);

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

        using (var device = Host.Start("Device"))
        {
            DeviceSelector.CheckCpuOnly(Host, device);
        }

        int seed = o.Seed ?? Host.Rand.Next();
        var spec = InputSpec.Resolve(trainData.Schema, o.FeatureColumnName, o.ImageHeight, o.ImageWidth, o.ImageChannels);
        int classes = DatasetReader.ClassCount(trainData.Schema, o.LabelColumnName, "training data");
        var raw = DatasetReader.Read(trainData, spec, o.LabelColumnName, CheckAlive);
        if (raw.SkippedMissingLabels > 0)
        {
            ch.Warning($"Skipped {raw.SkippedMissingLabels} training row(s) whose label in column '{o.LabelColumnName}' is missing (a value outside the key's values).");
        }

        if (raw.Count == 0)
        {
            throw new ArgumentException($"The training data has no rows with a label in column '{o.LabelColumnName}' ({raw.SkippedMissingLabels} row(s) with a missing label); expected at least 2 labelled images.", nameof(trainData));
        }

        if (spec.Kind == FeatureKind.Image)
        {
            ch.Warning($"Feature column '{spec.Column}' is an image column: the model predicts in this process but cannot be saved (ML.NET does not save image columns' types). For a model to save, feed pixels (ExtractPixels) or encoded bytes (LoadRawImageBytes).");
        }

        spec = spec.WithNormalization(raw.Pixels.AsSpan(0, raw.Count * spec.Size));
        ch.Info($"Read {raw.Count} training images of {spec.Shape} ({spec.Kind}) from column '{spec.Column}', {classes} classes, in {watch.Elapsed.TotalSeconds:F1} s.");

        ImageDataset? all = null, train = null, validation = null;
        try
        {
            all = raw.ToDataset(spec, classes);
            raw = null;
            if (validationData is not null)
            {
                spec.CheckColumn(validationData.Schema, o.FeatureColumnName, "validation data");
                int validationClasses = DatasetReader.ClassCount(validationData.Schema, o.LabelColumnName, "validation data");
                if (validationClasses != classes)
                {
                    throw new ArgumentException($"Label column '{o.LabelColumnName}' has {validationClasses} classes in the validation data but {classes} in the training data; map both with the same MapValueToKey.", nameof(validationData));
                }

                var trainNames = DatasetReader.KeyNames(trainData.Schema, o.LabelColumnName);
                var validationNames = DatasetReader.KeyNames(validationData.Schema, o.LabelColumnName);
                if (trainNames is not null && validationNames is not null && !trainNames.SequenceEqual(validationNames))
                {
                    int key = Enumerable.Range(0, Math.Min(trainNames.Length, validationNames.Length)).First(k => trainNames[k] != validationNames[k]);
                    throw new ArgumentException(
                        $"Label column '{o.LabelColumnName}' maps classes to keys differently in the validation data: key {key + 1} is '{validationNames[key]}' there but '{trainNames[key]}' in the training data. Fit one MapValueToKey (or give it keyData) and apply it to both.",
                        nameof(validationData));
                }

                if (trainNames is null != validationNames is null)
                {
                    ch.Warning($"Label column '{o.LabelColumnName}' has key values in only one of the training and validation data; make sure both were mapped by the same MapValueToKey.");
                }

                var rawValidation = DatasetReader.Read(validationData, spec, o.LabelColumnName, CheckAlive);
                if (rawValidation.Count == 0)
                {
                    throw new ArgumentException($"The validation data has no rows with a label in column '{o.LabelColumnName}'.", nameof(validationData));
                }

                validation = rawValidation.ToDataset(spec, classes);
                train = all;
                all = null;
            }
            else
            {
                if (all.Count < 2)
                {
                    throw new ArgumentException($"The training data has {all.Count} labelled image(s); at least 2 are needed to split off a validation set.", nameof(trainData));
                }

                (train, validation) = all.Split(o.ValidationFraction, seed);
            }

            var dataTime = watch.Elapsed;
            ch.Info($"{o.SearchMode} training on {train.Count} images, validating on {validation.Count}; seed {seed}.");
            var template = NetworkSpec.FromChannels(
                spec.Channels, NetworkPresets.Uniform(SymmetryGroup.C1, o.ChannelsOrDefault.Count), o.ChannelsOrDefault, o.KernelSize,
                o.PoolAfterOrDefault, classes, o.HeadHidden);
            var (network, history) = o.SearchMode switch
            {
                SearchMode.Evolutionary => Evolve(template, train, validation, seed, watch, ch, token),
                SearchMode.Differentiable => Differentiate(template, train, validation, seed, watch, ch, token),
                _ => TrainFixed(template, train, validation, seed, watch, ch, token),
            };
            var timings = new Dictionary<string, TimeSpan>(history.Timings ?? new Dictionary<string, TimeSpan>()) { ["data"] = dataTime, ["total"] = watch.Elapsed };
            history = history with { TrainingTime = watch.Elapsed, Timings = timings, Settings = o.Describe(seed, train.Count, validation.Count) };
            try
            {
                var model = EquinasModelParameters.Create(Host, network, spec, classes, history);
                ch.Info($"Trained in {watch.Elapsed.TotalSeconds:F1} s: layer groups {string.Join("-", model.LayerGroups)}, {model.ParameterCount} parameters.");
                return model;
            }
            catch
            {
                network.Dispose();
                throw;
            }
        }
        finally
        {
            all?.Dispose();
            train?.Dispose();
            validation?.Dispose();
        }
    }

    private (TrainedNetwork, EquinasHistory) Evolve(NetworkSpec template, ImageDataset train, ImageDataset validation, int seed, Stopwatch watch, IChannel ch, CancellationToken token)
    {
        var o = _options;
        var search = new EvolutionarySearch(new EvolutionOptions
        {
            TopGroup = o.TopGroup,
            PopulationSize = o.PopulationSize,
            Generations = o.Generations,
            EpochsPerGeneration = o.EpochsPerGeneration,
            Training = o.TrainingOptions(),
            Seed = seed,
        });
        int total = o.Generations + 1;
        int candidatesSoFar = 0;
        search.GenerationCompleted += (_, g) =>
        {
            // Generations grow from one network to several children per survivor: estimate the time left from the
            // time per candidate so far and a next generation of about four candidates per survivor (a copy and
            // relaxations), duplicates not counted.
            candidatesSoFar += g.Candidates.Count;
            var perCandidate = watch.Elapsed / Math.Max(1, candidatesSoFar);
            int expected = Math.Max(g.Candidates.Count, Math.Min(o.PopulationSize, g.Candidates.Count) * 4);
            var remaining = perCandidate * expected * (total - g.Generation - 1);
            var best = g.Best;
            ch.Info($"Generation {g.Generation}/{o.Generations}: {g.Candidates.Count} candidates; best {string.Join("-", best.Groups)}, validation accuracy {best.ValidationAccuracy:P2}, loss {best.ValidationLoss:F4}.");
            Report(new EquinasProgress
            {
                Mode = SearchMode.Evolutionary,
                Phase = "generation",
                Step = g.Generation + 1,
                Generation = g.Generation,
                TotalSteps = total,
                TrainLoss = best.TrainLoss,
                TrainAccuracy = double.NaN,
                ValidationLoss = best.ValidationLoss,
                ValidationAccuracy = best.ValidationAccuracy,
                LayerGroups = best.Groups,
                Parameters = best.Parameters,
                Elapsed = watch.Elapsed,
                Remaining = remaining,
            });
        };
        var result = search.Run(template, train, validation, token);
        var candidates = result.History.SelectMany(g => g.Candidates).Select(c => new EquinasCandidate
        {
            Generation = c.Generation,
            Id = c.Id,
            ParentId = c.ParentId,
            Change = c.Change,
            LayerGroups = c.Groups.ToArray(),
            Parameters = c.Parameters,
            ValidationAccuracy = c.ValidationAccuracy,
            ValidationLoss = c.ValidationLoss,
            TrainLoss = c.TrainLoss,
            Survived = c.Survived,
        }).ToArray();
        var t = result.Times;
        ch.Info($"Search time: training {t.Training.TotalSeconds:F1} s, validation {t.Validation.TotalSeconds:F1} s, morphism {t.Morphism.TotalSeconds:F1} s, total {t.Total.TotalSeconds:F1} s.");
        var timings = new Dictionary<string, TimeSpan> { ["training"] = t.Training, ["validation"] = t.Validation, ["morphism"] = t.Morphism };
        return (new TrainedNetwork(result.Network), new EquinasHistory { Mode = SearchMode.Evolutionary, TopGroup = o.TopGroup.Name, Candidates = candidates, Epochs = [], TrainingTime = watch.Elapsed, Timings = timings });
    }

    private (TrainedNetwork, EquinasHistory) Differentiate(NetworkSpec template, ImageDataset train, ImageDataset validation, int seed, Stopwatch watch, IChannel ch, CancellationToken token)
    {
        var o = _options;
        var options = new DifferentiableOptions
        {
            TopGroup = o.TopGroup,
            Epochs = o.Epochs,
            Training = o.TrainingOptions(),
            ArchitectureLearningRate = o.ArchitectureLearningRate,
            Seed = seed,
        };
        var members = options.MemberGroups.Select(m => m.Name).ToArray();
        long weights;
        using (var probe = new MixedGroupCnn(new MixedNetworkSpec(template, options.MemberGroups)))
        {
            weights = probe.WeightCount;
        }

        var search = new DifferentiableSearch(options);
        int total = (int)Math.Ceiling(o.Epochs);
        int step = 0;
        search.EpochCompleted += (_, e) =>
        {
            step++;
            var z = EquinasModelParameters.ZByName(members, e.Z);
            var argmax = z.Select(layer => layer.MaxBy(p => p.Value).Key).ToArray();
            ch.Info($"Epoch {e.Epoch:F2} ({e.Phase}): validation accuracy {e.Validation.Accuracy:P2}, loss {e.Validation.Loss:F4}; largest z per layer {string.Join("-", argmax)}.");
            Report(new EquinasProgress
            {
                Mode = SearchMode.Differentiable,
                Phase = e.Phase,
                Step = step,
                TotalSteps = total,
                TrainLoss = e.Train.Loss,
                TrainAccuracy = e.Train.Accuracy,
                ValidationLoss = e.Validation.Loss,
                ValidationAccuracy = e.Validation.Accuracy,
                LayerGroups = argmax,
                Z = z,
                Parameters = weights,
                Elapsed = watch.Elapsed,
                Remaining = Remaining(watch.Elapsed, step, total),
            });
        };
        using var result = search.Run(template, train, validation, token);
        var epochs = result.History.Select(e => new EquinasEpoch
        {
            Epoch = e.Epoch,
            Phase = e.Phase,
            Z = EquinasModelParameters.ZByName(members, e.Z),
            TrainLoss = e.Train.Loss,
            TrainAccuracy = e.Train.Accuracy,
            ValidationLoss = e.Validation.Loss,
            ValidationAccuracy = e.Validation.Accuracy,
        }).ToList();
        if (o.RetrainEpochs > 0)
        {
            // The chosen groups, made a chain (each layer's group inside the previous layer's) as a G-CNN needs.
            var chosen = result.ArgmaxGroups;
            var chain = new SymmetryGroup[chosen.Count];
            for (int i = 0; i < chain.Length; i++)
            {
                chain[i] = i == 0 ? chosen[0] : chosen[i].Intersect(chain[i - 1]);
            }

            ch.Info($"Retraining the chosen architecture {string.Join("-", chain.Select(g => g.Name))} (largest z per layer: {string.Join("-", chosen.Select(g => g.Name))}) for {o.RetrainEpochs} epoch(s).");
            var (network, retrain) = TrainFixedNetwork(template, chain, o.RetrainEpochs, "retrain", SearchMode.Differentiable, train, validation, unchecked(seed + 1), watch, ch, token);
            epochs.AddRange(retrain);
            return (new TrainedNetwork(network), new EquinasHistory { Mode = SearchMode.Differentiable, TopGroup = o.TopGroup.Name, Candidates = [], Epochs = epochs, TrainingTime = watch.Elapsed });
        }

        return (new TrainedNetwork(result.DetachNetwork()), new EquinasHistory { Mode = SearchMode.Differentiable, TopGroup = o.TopGroup.Name, Candidates = [], Epochs = epochs, TrainingTime = watch.Elapsed });
    }

    private (TrainedNetwork, EquinasHistory) TrainFixed(NetworkSpec template, ImageDataset train, ImageDataset validation, int seed, Stopwatch watch, IChannel ch, CancellationToken token)
    {
        var o = _options;
        var groups = o.LayerGroups is { } names
            ? names.Select(SymmetryGroup.Parse).ToArray()
            : NetworkPresets.Uniform(o.TopGroup, template.Layers.Count).ToArray();
        var (network, epochs) = TrainFixedNetwork(template, groups, o.Epochs, "epoch", SearchMode.Fixed, train, validation, seed, watch, ch, token);
        return (new TrainedNetwork(network), new EquinasHistory { Mode = SearchMode.Fixed, TopGroup = o.TopGroup.Name, Candidates = [], Epochs = epochs, TrainingTime = watch.Elapsed });
    }

    /// <summary>Trains a new network with one group per layer for <paramref name="epochCount"/> epochs; the caller owns the result.</summary>
    private (GroupCnn Network, List<EquinasEpoch> Epochs) TrainFixedNetwork(
        NetworkSpec template, IReadOnlyList<SymmetryGroup> groups, double epochCount, string phase, SearchMode mode,
        ImageDataset train, ImageDataset validation, int seed, Stopwatch watch, IChannel ch, CancellationToken token)
    {
        var o = _options;
        NetworkSpec spec;
        try
        {
            spec = template.WithGroups(groups);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"LayerGroups [{string.Join(", ", groups.Select(g => g.Name))}] do not fit Channels [{string.Join(", ", o.ChannelsOrDefault)}]: {e.Message}", nameof(Options.LayerGroups), e);
        }

        torch.manual_seed(seed);
        var network = new GroupCnn(spec);
        try
        {
            var trainer = new NetworkTrainer(o.TrainingOptions());
            var epochs = new List<EquinasEpoch>();
            int total = (int)Math.Ceiling(epochCount);
            var names = spec.Groups.Select(g => g.Name).ToArray();
            trainer.EpochCompleted += (_, e) =>
            {
                var v = e.Validation!.Value;
                epochs.Add(new EquinasEpoch { Epoch = e.Epoch, Phase = phase, TrainLoss = e.Train.Loss, TrainAccuracy = e.Train.Accuracy, ValidationLoss = v.Loss, ValidationAccuracy = v.Accuracy });
                ch.Info($"Epoch {e.Epoch:F2} ({phase}, {string.Join("-", names)}): validation accuracy {v.Accuracy:P2}, loss {v.Loss:F4}.");
                Report(new EquinasProgress
                {
                    Mode = mode,
                    Phase = phase,
                    Step = epochs.Count,
                    TotalSteps = total,
                    TrainLoss = e.Train.Loss,
                    TrainAccuracy = e.Train.Accuracy,
                    ValidationLoss = v.Loss,
                    ValidationAccuracy = v.Accuracy,
                    LayerGroups = names,
                    Parameters = network.ParameterCount,
                    Elapsed = watch.Elapsed,
                    Remaining = Remaining(watch.Elapsed, epochs.Count, total),
                });
            };
            trainer.Fit(network, train, validation, epochCount, seed, token);
            network.eval();
            return (network, epochs);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Report(EquinasProgress progress) => _options.Progress?.Report(progress);

    private static TimeSpan Remaining(TimeSpan elapsed, int done, int total) =>
        done <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(elapsed.Ticks / done * Math.Max(0, total - done));

    /// <summary>
    /// Turns MLContext's own cancellation (CancelExecution, which tools call) into the training token: a dedicated
    /// background thread (not the thread pool, which training can starve) polls the host every 50 ms.
    /// </summary>
    private sealed class HostCancellationWatcher : IDisposable
    {
        private readonly ManualResetEventSlim _stop = new();
        private readonly Thread? _thread;

        public HostCancellationWatcher(IHost host, CancellationTokenSource cancellation)
        {
            if (host is not ICancelable cancelable)
            {
                return;
            }

            _thread = new Thread(() =>
            {
                while (!_stop.Wait(50))
                {
                    if (cancelable.IsCanceled)
                    {
                        cancellation.Cancel();
                        return;
                    }
                }
            })
            {
                IsBackground = true,
                Name = "Equinas host cancellation",
            };
            _thread.Start();
        }

        public void Dispose()
        {
            _stop.Set();
            _thread?.Join();
            _stop.Dispose();
        }
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
        public string Group { get; set; } = "D4";

        /// <summary>
        /// Gets or sets, for <see cref="SearchMode.Fixed"/>, the group of each conv layer (one per entry of
        /// <see cref="Channels"/>; each a subgroup of the previous layer's). Default: <see cref="Group"/> everywhere.
        /// </summary>
        public string[]? LayerGroups { get; set; }

        /// <summary>
        /// Gets or sets the width of each conv layer in scalar channels (the same whatever the group; each must be a
        /// multiple of the group orders used: 8 for D4). Default: the small preset 16, 32, 32, 64, 64.
        /// </summary>
        public int[]? Channels { get; set; }

        /// <summary>Gets or sets the (odd) kernel size of every conv layer. Default 5.</summary>
        public int KernelSize { get; set; } = 5;

        /// <summary>
        /// Gets or sets the conv layers (0-based) after which the feature maps are pooled by 2. Default: after layers 1
        /// and 3 for the default five layers; for other depths, after about 40% and 80% of the layers.
        /// </summary>
        public int[]? PoolAfter { get; set; }

        /// <summary>Gets or sets the hidden units of the invariant classification head. Default 32.</summary>
        public int HeadHidden { get; set; } = 32;

        /// <summary>Gets or sets the epochs of the differentiable search or of fixed training (fractions allowed). Default 3.</summary>
        public double Epochs { get; set; } = 3;

        /// <summary>Gets or sets the mini-batch size. Default 64.</summary>
        public int BatchSize { get; set; } = 64;

        /// <summary>Gets or sets the Adam learning rate of the network weights. Default 0.001.</summary>
        public double LearningRate { get; set; } = 1e-3;

        /// <summary>Gets or sets the survivors per generation of the evolutionary search. Default 3.</summary>
        public int PopulationSize { get; set; } = 3;

        /// <summary>Gets or sets the generations of the evolutionary search after the initial training. Default 4.</summary>
        public int Generations { get; set; } = 4;

        /// <summary>Gets or sets the epochs every candidate trains per generation (fractions allowed). Default 0.5.</summary>
        public double EpochsPerGeneration { get; set; } = 0.5;

        /// <summary>
        /// Gets or sets, for the differentiable search, the epochs of retraining the chosen architecture as an ordinary
        /// G-CNN after the search: each layer gets its largest-z group (intersected with the previous layer's, so that
        /// the groups form a chain), and a new network with those groups is trained from scratch, giving a model as
        /// small and fast as a fixed one. Default 0: the model keeps the learned mixture.
        /// </summary>
        public double RetrainEpochs { get; set; }

        /// <summary>Gets or sets the Adam learning rate of the mixture logits in the differentiable search. Default 0.01.</summary>
        public double ArchitectureLearningRate { get; set; } = 0.01;

        /// <summary>Gets or sets the share of the training data held out for validation when no validation set is given. Default 0.1.</summary>
        public double ValidationFraction { get; set; } = 0.1;

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

        /// <summary>Gets or sets where progress reports go after every generation or epoch.</summary>
        public IProgress<EquinasProgress>? Progress { get; set; }

        /// <summary>Gets or sets a token that stops training within one batch (Fit then throws <see cref="OperationCanceledException"/> and no model is made).</summary>
        public CancellationToken CancellationToken { get; set; }

        internal SymmetryGroup TopGroup => SymmetryGroup.Parse(Group);

        internal IReadOnlyList<int> ChannelsOrDefault => Channels ?? [16, 32, 32, 64, 64];

        internal IReadOnlyList<int> PoolAfterOrDefault => PoolAfter ?? DefaultPooling(ChannelsOrDefault.Count);

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
        internal IReadOnlyDictionary<string, string> Describe(int seed, int trainImages, int validationImages)
        {
            var settings = new Dictionary<string, string>
            {
                [nameof(SearchMode)] = SearchMode.ToString(),
                [nameof(Group)] = TopGroup.Name,
                [nameof(Channels)] = string.Join(",", ChannelsOrDefault),
                [nameof(KernelSize)] = Text(KernelSize),
                [nameof(PoolAfter)] = string.Join(",", PoolAfterOrDefault),
                [nameof(HeadHidden)] = Text(HeadHidden),
                [nameof(BatchSize)] = Text(BatchSize),
                [nameof(LearningRate)] = Text(LearningRate),
                [nameof(Seed)] = Text(seed),
                ["TrainImages"] = Text(trainImages),
                ["ValidationImages"] = Text(validationImages),
            };
            switch (SearchMode)
            {
                case SearchMode.Evolutionary:
                    settings[nameof(PopulationSize)] = Text(PopulationSize);
                    settings[nameof(Generations)] = Text(Generations);
                    settings[nameof(EpochsPerGeneration)] = Text(EpochsPerGeneration);
                    break;
                case SearchMode.Differentiable:
                    settings[nameof(Epochs)] = Text(Epochs);
                    settings[nameof(ArchitectureLearningRate)] = Text(ArchitectureLearningRate);
                    settings[nameof(RetrainEpochs)] = Text(RetrainEpochs);
                    break;
                default:
                    settings[nameof(Epochs)] = Text(Epochs);
                    settings[nameof(LayerGroups)] = LayerGroups is null ? TopGroup.Name + " in every layer" : string.Join(",", LayerGroups);
                    break;
            }

            return settings;

            static string Text(IFormattable value) => value.ToString(null, CultureInfo.InvariantCulture);
        }

        internal static int[] DefaultPooling(int layers) => layers switch
        {
            <= 1 => [],
            2 or 3 => [0],
            _ => new[] { (int)Math.Round(layers * 0.4) - 1, (int)Math.Round(layers * 0.8) - 1 }.Distinct().ToArray(),
        };

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
            Require(Epochs > 0 && double.IsFinite(Epochs), nameof(Epochs), "a positive number", Epochs);
            Require(BatchSize > 0, nameof(BatchSize), "a positive number", BatchSize);
            Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "a positive number", LearningRate);
            Require(PopulationSize > 0, nameof(PopulationSize), "a positive number", PopulationSize);
            Require(Generations >= 0, nameof(Generations), "zero or more", Generations);
            Require(EpochsPerGeneration > 0 && double.IsFinite(EpochsPerGeneration), nameof(EpochsPerGeneration), "a positive number", EpochsPerGeneration);
            Require(ArchitectureLearningRate > 0 && double.IsFinite(ArchitectureLearningRate), nameof(ArchitectureLearningRate), "a positive number", ArchitectureLearningRate);
            Require(RetrainEpochs >= 0 && double.IsFinite(RetrainEpochs), nameof(RetrainEpochs), "zero or a positive number", RetrainEpochs);
            Require(ValidationFraction > 0 && ValidationFraction < 1, nameof(ValidationFraction), "a number strictly between 0 and 1", ValidationFraction);
            Require(ImageHeight is null or > 0, nameof(ImageHeight), "a positive number or null", ImageHeight);
            Require(ImageWidth is null or > 0, nameof(ImageWidth), "a positive number or null", ImageWidth);
            Require(ImageChannels is null or > 0, nameof(ImageChannels), "a positive number or null", ImageChannels);
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
