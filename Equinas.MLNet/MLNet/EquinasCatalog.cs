#nullable enable
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Equinas.MLNet;

/// <summary>Extension methods that add the equivariance-aware image classification trainers to <see cref="MulticlassClassificationCatalog"/>.</summary>
public static class EquinasCatalog
{
    /// <summary>
    /// Creates an <see cref="EquivariantImageClassificationTrainer"/> that searches each layer's symmetry group by
    /// evolution (EquiNAS_E): every layer starts equivariant to <paramref name="group"/>, and each generation relaxes
    /// layers to subgroups without changing the network's function, trains the candidates and keeps the best.
    /// </summary>
    /// <param name="catalog">The multiclass classification catalog trainer object.</param>
    /// <param name="labelColumnName">The label column: a key type (use MapValueToKey).</param>
    /// <param name="featureColumnName">The image column: <c>Vector&lt;Single, C, H, W&gt;</c> from ExtractPixels (for other image columns use the options overload).</param>
    /// <param name="populationSize">Survivors per generation.</param>
    /// <param name="generations">Generations after the initial training.</param>
    /// <param name="epochsPerGeneration">Epochs every candidate trains per generation (fractions allowed); null for the default from the data (at least 0.5 epoch and 50 steps).</param>
    /// <param name="group">The group every layer starts from: C1, C2, C4, D1V, D1H, D1D, D1A, D2VH, D2DA or D4.</param>
    /// <param name="seed">The seed of initialisation, data order and validation split; null for one drawn from MLContext's seed.</param>
    /// <returns>The trainer.</returns>
    /// <example>
    /// <code language="csharp">
    /// var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
    ///     .Append(mlContext.Transforms.LoadImages("Image", imageFolder, "ImagePath"))
    ///     .Append(mlContext.Transforms.ResizeImages("Image", 28, 28))
    ///     .Append(mlContext.Transforms.ExtractPixels("Features", "Image", ImagePixelExtractingEstimator.ColorBits.Red))
    ///     .Append(mlContext.MulticlassClassification.Trainers.EquinasEvolve())
    ///     .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    /// </code>
    /// </example>
    public static EquivariantImageClassificationTrainer EquinasEvolve(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label,
        string featureColumnName = DefaultColumnNames.Features,
        int populationSize = EquivariantImageClassificationTrainer.Defaults.PopulationSize,
        int generations = EquivariantImageClassificationTrainer.Defaults.Generations,
        double? epochsPerGeneration = null,
        string group = EquivariantImageClassificationTrainer.Defaults.Group,
        int? seed = null) =>
        EquivariantImageClassification(catalog, new EquivariantImageClassificationTrainer.Options
        {
            SearchMode = SearchMode.Evolutionary,
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            PopulationSize = populationSize,
            Generations = generations,
            EpochsPerGeneration = epochsPerGeneration,
            Group = group,
            Seed = seed,
        });

    /// <summary>Creates an <see cref="EquivariantImageClassificationTrainer"/> for the evolutionary search with advanced options.</summary>
    /// <param name="catalog">The multiclass classification catalog trainer object.</param>
    /// <param name="options">The options; the trainer uses a copy with <see cref="EquivariantImageClassificationTrainer.Options.SearchMode"/> set to <see cref="SearchMode.Evolutionary"/>.</param>
    /// <returns>The trainer.</returns>
    public static EquivariantImageClassificationTrainer EquinasEvolve(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        EquivariantImageClassificationTrainer.Options options)
        => Create(catalog, options, SearchMode.Evolutionary);

    /// <summary>
    /// Creates an <see cref="EquivariantImageClassificationTrainer"/> that learns each layer's symmetry with its
    /// weights (EquiNAS_D): every layer is a [G]-mixed layer over the subgroups of <paramref name="group"/>, whose
    /// mixture weights z start with most of their weight on <paramref name="group"/> and are trained by gradient
    /// descent on validation batches.
    /// </summary>
    /// <param name="catalog">The multiclass classification catalog trainer object.</param>
    /// <param name="labelColumnName">The label column: a key type (use MapValueToKey).</param>
    /// <param name="featureColumnName">The image column: <c>Vector&lt;Single, C, H, W&gt;</c> from ExtractPixels (for other image columns use the options overload).</param>
    /// <param name="epochs">Epochs of the search (fractions allowed); null for the default from the data (at least 3 epochs and 1000 steps).</param>
    /// <param name="architectureLearningRate">Adam learning rate of the mixture logits.</param>
    /// <param name="group">The top group whose subgroups every layer mixes.</param>
    /// <param name="seed">The seed of initialisation, data order and validation split; null for one drawn from MLContext's seed.</param>
    /// <returns>The trainer.</returns>
    public static EquivariantImageClassificationTrainer EquinasDifferentiable(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label,
        string featureColumnName = DefaultColumnNames.Features,
        double? epochs = null,
        double architectureLearningRate = EquivariantImageClassificationTrainer.Defaults.ArchitectureLearningRate,
        string group = EquivariantImageClassificationTrainer.Defaults.Group,
        int? seed = null) =>
        EquivariantImageClassification(catalog, new EquivariantImageClassificationTrainer.Options
        {
            SearchMode = SearchMode.Differentiable,
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            Epochs = epochs,
            ArchitectureLearningRate = architectureLearningRate,
            Group = group,
            Seed = seed,
        });

    /// <summary>Creates an <see cref="EquivariantImageClassificationTrainer"/> for the differentiable search with advanced options.</summary>
    /// <param name="catalog">The multiclass classification catalog trainer object.</param>
    /// <param name="options">The options; the trainer uses a copy with <see cref="EquivariantImageClassificationTrainer.Options.SearchMode"/> set to <see cref="SearchMode.Differentiable"/>.</param>
    /// <returns>The trainer.</returns>
    public static EquivariantImageClassificationTrainer EquinasDifferentiable(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        EquivariantImageClassificationTrainer.Options options)
        => Create(catalog, options, SearchMode.Differentiable);

    /// <summary>
    /// Creates an <see cref="EquivariantImageClassificationTrainer"/> in any <see cref="SearchMode"/>, including
    /// <see cref="SearchMode.Fixed"/> (one given group per layer, no search).
    /// </summary>
    /// <param name="catalog">The multiclass classification catalog trainer object.</param>
    /// <param name="options">The options.</param>
    /// <returns>The trainer.</returns>
    public static EquivariantImageClassificationTrainer EquivariantImageClassification(
        this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        EquivariantImageClassificationTrainer.Options options)
        => Create(catalog, options, mode: null);

    /// <summary>A trainer over a copy of the options (later changes to the caller's object do not reach it), in <paramref name="mode"/> when given.</summary>
    private static EquivariantImageClassificationTrainer Create(
        MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, EquivariantImageClassificationTrainer.Options options, SearchMode? mode)
    {
        Contracts.CheckValue(catalog, nameof(catalog));
        Contracts.CheckValue(options, nameof(options));
        var copy = options.Clone();
        copy.SearchMode = mode ?? copy.SearchMode;
        return new EquivariantImageClassificationTrainer(catalog.GetEnvironment(), copy);
    }
}
