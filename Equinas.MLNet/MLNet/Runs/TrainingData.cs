#nullable enable
using System.Globalization;
using Equinas.MLNet.Input;
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Equinas.MLNet.Runs;

/// <summary>
/// The training and validation images a run trains on, read from ML.NET data views: the input spec (with the training
/// data's normalisation), the class count from the label key, and the label keys checked to mean the same classes in
/// both sets. Owns the datasets.
/// </summary>
internal sealed class TrainingData : IDisposable
{
    private TrainingData(InputSpec spec, int classes, ImageDataset train, ImageDataset validation)
    {
        Spec = spec;
        Classes = classes;
        Train = train;
        Validation = validation;
    }

    public InputSpec Spec { get; }

    public int Classes { get; }

    public ImageDataset Train { get; }

    public ImageDataset Validation { get; }

    /// <summary>
    /// Reads <paramref name="trainData"/> and <paramref name="validationData"/> (or splits a stratified
    /// <see cref="EquivariantImageClassificationTrainer.Options.ValidationFraction"/> off the training data).
    /// </summary>
    /// <exception cref="ArgumentException">A column, a label or a row is not what the trainer needs (the message says what).</exception>
    public static TrainingData Read(IDataView trainData, IDataView? validationData, EquivariantImageClassificationTrainer.Options o, int seed, IChannel ch, Action checkAlive)
    {
        var spec = InputSpec.Resolve(trainData.Schema, o.FeatureColumnName, o.ImageHeight, o.ImageWidth, o.ImageChannels) with { Resize = o.ResizeMode };
        // The label's column and type first; its class count after the rows are read, so that an empty set is
        // reported as empty (MapValueToKey fitted on no rows makes a key of one value).
        DatasetReader.ClassCount(trainData.Schema, o.LabelColumnName, "training data", requireTwo: false);
        long bound = (long)o.ImageCacheMegabytes * 1024 * 1024;
        using var raw = DatasetReader.Read(trainData, spec, o.LabelColumnName, checkAlive, Settings(o, bound, "training data", ch));
        if (raw.SkippedMissingLabels > 0)
        {
            ch.Warning($"Skipped {raw.SkippedMissingLabels} training row(s) whose label in column '{o.LabelColumnName}' is missing (a value outside the key's values).");
        }

        if (raw.Count == 0)
        {
            string why = raw.SkippedMissingLabels == 0 && raw.Unreadable.Count == 0
                ? "the training data has no rows"
                : $"the training data has no readable rows with a label in column '{o.LabelColumnName}' ({raw.SkippedMissingLabels} row(s) with a missing label, {raw.Unreadable.Count} unreadable image(s))";
            throw new ArgumentException($"Cannot train: {why}; expected at least 2 labelled images.", nameof(trainData));
        }

        int classes = DatasetReader.ClassCount(trainData.Schema, o.LabelColumnName, "training data");
        if (spec.Kind == FeatureKind.Image)
        {
            ch.Warning($"Feature column '{spec.Column}' is an image column: the model predicts in this process but cannot be saved (ML.NET does not save image columns' types). For a model to save, feed pixels (ExtractPixels) or encoded bytes (LoadRawImageBytes).");
        }

        spec = raw.Sums.Apply();
        var names = DatasetReader.KeyNames(trainData.Schema, o.LabelColumnName);
        // The bound is for all decoded images together: training images held in memory leave the rest to the
        // validation images; training images decoded on demand share one cache of the whole bound with them.
        long left = raw.Spill is not null ? bound : Math.Max(0, bound - raw.HeldBytes);
        var cache = new DecodedImageCache(left);
        ImageDataset? all = null, validation = null;
        try
        {
            all = raw.ToDataset(spec, classes, cache);
            if (validationData is not null)
            {
                CheckLabelCounts(raw.Labels, classes, names, null, ch);
                // Lazy training images: the validation images are decoded on demand too, through the same cache.
                validation = ReadValidation(trainData, validationData, spec, classes, o, ch, checkAlive, all.IsLazy ? 0 : left, cache);
                var data = new TrainingData(spec, classes, all, validation);
                all = null;
                validation = null;
                return data;
            }

            if (all.Count < 2)
            {
                throw new ArgumentException($"The training data has {all.Count} labelled image(s); at least 2 are needed to split off a validation set.", nameof(trainData));
            }

            CheckLabelCounts(raw.Labels, classes, names, o.ValidationFraction, ch);
            var (train, split) = all.Split(o.ValidationFraction, seed);
            return new TrainingData(spec, classes, train, split);
        }
        finally
        {
            all?.Dispose();
            validation?.Dispose();
        }
    }

    private static ReadSettings Settings(EquivariantImageClassificationTrainer.Options o, long bound, string role, IChannel ch) =>
        new(o.StrictImageReading, o.ImagePathColumnName, bound, role, ch.Warning, ch.Info);

    /// <summary>
    /// Labels with too few images: an error when a label would have no training image after the split, a warning when
    /// it has no image at all or none left for validation (its accuracy is then not validated).
    /// </summary>
    private static void CheckLabelCounts(long[] labels, int classes, string[]? names, double? fraction, IChannel ch)
    {
        var counts = new int[classes];
        foreach (long label in labels)
        {
            counts[label]++;
        }

        string Name(int k) => names is not null && k < names.Length ? $"'{names[k]}'" : $"with key {k + 1}";
        var empty = Enumerable.Range(0, classes).Where(k => counts[k] == 0).ToArray();
        if (empty.Length > 0)
        {
            ch.Warning($"Label(s) {string.Join(", ", empty.Select(Name))} have no readable training image: the model can still predict them but has learned nothing about them.");
        }

        if (fraction is not { } f)
        {
            return;
        }

        var noTraining = Enumerable.Range(0, classes).Where(k => counts[k] > 0 && counts[k] - (int)Math.Round(counts[k] * f) < 1).ToArray();
        if (noTraining.Length > 0)
        {
            throw new ArgumentException(
                $"Label(s) {string.Join(", ", noTraining.Select(k => string.Create(CultureInfo.InvariantCulture, $"{Name(k)} ({counts[k]} image(s), {(int)Math.Round(counts[k] * f)} for validation)")))} would have no training image after holding out ValidationFraction {f.ToString(CultureInfo.InvariantCulture)} for validation; add images, lower ValidationFraction, or give a validation set.");
        }

        var noValidation = Enumerable.Range(0, classes).Where(k => counts[k] > 0 && (int)Math.Round(counts[k] * f) == 0).ToArray();
        if (noValidation.Length > 0)
        {
            ch.Warning($"Label(s) {string.Join(", ", noValidation.Select(k => string.Create(CultureInfo.InvariantCulture, $"{Name(k)} ({counts[k]} image(s))")))} have too few images for ValidationFraction {f.ToString(CultureInfo.InvariantCulture)} to hold one out: they get no validation image, so validation accuracy does not measure them; at least {(int)Math.Ceiling(0.5 / f)} per label are needed.");
        }
    }

    private static ImageDataset ReadValidation(IDataView trainData, IDataView validationData, InputSpec spec, int classes, EquivariantImageClassificationTrainer.Options o, IChannel ch, Action checkAlive, long bound, DecodedImageCache cache)
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

        using var rawValidation = DatasetReader.Read(validationData, spec, o.LabelColumnName, checkAlive, Settings(o, bound, "validation data", ch));
        if (rawValidation.Count == 0)
        {
            throw new ArgumentException($"The validation data has no readable rows with a label in column '{o.LabelColumnName}' ({rawValidation.Unreadable.Count} unreadable image(s)).", nameof(validationData));
        }

        return rawValidation.ToDataset(spec, classes, cache);
    }

    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
    }
}
