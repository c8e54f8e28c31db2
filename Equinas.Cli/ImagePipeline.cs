using Equinas.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

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
    /// Label to key, then LoadRawImageBytes (path to the file's encoded bytes): the trainer decodes every image
    /// itself, resizing it by the resize mode and converting it to grey or RGB, so that an unreadable file is skipped
    /// (or, strict, reported) by name instead of stopping ML.NET's cursor, and the saved model (a bytes column) repeats
    /// the same decoding when it predicts. Models saved before 2026-12-01 hold their own LoadImages pipeline and keep
    /// working.
    /// </summary>
    public static IEstimator<ITransformer> Preprocessing(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey(LabelKeyColumn, LabelColumn)
            .Append(ml.Transforms.LoadRawImageBytes(FeaturesColumn, imageFolder: null, inputColumnName: PathColumn));

    /// <summary>The resize mode of a <c>--resize</c> value.</summary>
    public static ImageResizeMode ParseResize(string value) => value.Trim().ToLowerInvariant() switch
    {
        "stretch" => ImageResizeMode.Stretch,
        "pad" => ImageResizeMode.Pad,
        "crop" => ImageResizeMode.Crop,
        _ => throw new ArgumentException($"--resize {value}: expected stretch, pad or crop."),
    };

    /// <summary>
    /// The rows whose file decodes as an image, each other one named in a warning (evaluate and predict: the model
    /// would stop at such a row without naming its file); the count of skipped files.
    /// </summary>
    public static (List<ImageInput> Rows, int Skipped) Readable(IEnumerable<ImageInput> rows, string what)
    {
        var probe = new Equinas.MLNet.Input.InputSpec { Kind = Equinas.MLNet.Input.FeatureKind.Bytes, Column = FeaturesColumn, Channels = 1, Height = 1, Width = 1 };
        var kept = new List<ImageInput>();
        int skipped = 0;
        var pixel = new float[1];
        foreach (var row in rows)
        {
            try
            {
                probe.DecodeEncoded(File.ReadAllBytes(row.ImagePath), pixel, -1);
                kept.Add(row);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                skipped++;
                Output.Warning($"skipping unreadable image '{row.ImagePath}' ({what}): {e.Message}");
            }
        }

        if (skipped > 0)
        {
            Output.Warning($"skipped {skipped} unreadable image(s) of {kept.Count + skipped} ({what})");
        }

        return (kept, skipped);
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
