using Equinas.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Equinas.Cli;

/// <summary>
/// One input row of every model the CLI trains: the path of an image file and its label (empty when unknown).
/// Every data source (the shipped digits included, written once as PNG files) becomes rows of this shape, so the
/// saved model's input schema is (ImagePath, Label) and evaluate and predict feed it exactly as train did.
/// </summary>
internal sealed class ImageInput
{
    /// <summary>Gets or sets the image file (absolute path).</summary>
    public string ImagePath { get; set; } = "";

    /// <summary>Gets or sets the label as text ("" when unknown: it maps to a missing key).</summary>
    public string Label { get; set; } = "";
}

/// <summary>The pipeline shared by train, evaluate and predict.</summary>
internal static class ImagePipeline
{
    public const string PathColumn = nameof(ImageInput.ImagePath);
    public const string LabelColumn = nameof(ImageInput.Label);
    public const string LabelKeyColumn = "LabelKey";
    public const string ImageColumn = "Image";
    public const string FeaturesColumn = "Features";
    public const string ScoreColumn = "Score";
    public const string PredictedKeyColumn = "PredictedLabel";
    public const string PredictedColumn = "PredictedText";

    /// <summary>
    /// Label to key, then LoadImages (path), ResizeImages, ConvertToGrayscale (unless RGB) and ExtractPixels to a
    /// <c>Vector&lt;Single, C, H, W&gt;</c> in [0, 1]: the trainer's feature column is pixels, not an Image column,
    /// so the saved model loads again in a new process.
    /// </summary>
    public static IEstimator<ITransformer> Preprocessing(MLContext ml, int size, bool rgb)
    {
        IEstimator<ITransformer> pipeline = ml.Transforms.Conversion.MapValueToKey(LabelKeyColumn, LabelColumn)
            .Append(ml.Transforms.LoadImages(ImageColumn, imageFolder: null, inputColumnName: PathColumn))
            .Append(ml.Transforms.ResizeImages(ImageColumn, size, size, ImageColumn));
        if (!rgb)
        {
            pipeline = pipeline.Append(ml.Transforms.ConvertToGrayscale(ImageColumn));
        }

        return pipeline.Append(ml.Transforms.ExtractPixels(
            FeaturesColumn,
            ImageColumn,
            rgb ? ImagePixelExtractingEstimator.ColorBits.Rgb : ImagePixelExtractingEstimator.ColorBits.Red,
            scaleImage: 1f / 255));
    }

    /// <summary>Rows to an ML.NET data view.</summary>
    public static IDataView ToDataView(MLContext ml, IEnumerable<ImageInput> rows) => ml.Data.LoadFromEnumerable(rows.ToArray());

    /// <summary>The trained Equinas model inside a fitted chain (or null).</summary>
    public static EquinasModelParameters? FindModel(ITransformer model) => EquinasModelParameters.FindIn(model);

    /// <summary>The class names, from the Score column's slot names.</summary>
    public static string[] ClassNames(DataViewSchema schema, int count)
    {
        var score = schema[ScoreColumn];
        if (score.HasSlotNames())
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            score.GetSlotNames(ref names);
            var dense = names.DenseValues().Select(n => n.ToString()).ToArray();
            if (dense.Length == count)
            {
                return dense;
            }
        }

        return Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }
}
