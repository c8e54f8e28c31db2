using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;
using DigitRow = Equinas.Data.DigitRow;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>One small fixed model trained through ML.NET on digits, shared by the pipeline export tests.</summary>
public sealed class TrainedDigits : IDisposable
{
    public TrainedDigits()
    {
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 1;
        options.Channels = [8, 16];
        Model = Digits.MapLabel(Ml).Append(Ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
            .Fit(Ml.Data.LoadFromEnumerable(Digits.Rows(0, 160, 0, 1, 2)));
        Parameters = EquinasModelParameters.FindIn(Model)!;
    }

    public MLContext Ml { get; } = new(seed: 1);

    public ITransformer Model { get; }

    public EquinasModelParameters Parameters { get; }

    /// <summary>Test digits (never seen in training).</summary>
    public List<DigitRow> Test { get; } = Digits.Rows(2, 10, 0, 1, 2);

    public void Dispose() => (Model as IDisposable)?.Dispose();
}

/// <summary>Scores and the predicted key as ML.NET's scorer makes them.</summary>
public sealed class ScoredDigit
{
    public float[] Score { get; set; } = [];

    public uint PredictedLabel { get; set; }
}

/// <summary>The ONNX model of the network alone run by ApplyOnnxModel.</summary>
public sealed class OnnxScored
{
    [ColumnName("probabilities")]
    public float[] Probabilities { get; set; } = [];
}

/// <summary>
/// The export inside ML.NET: <c>ApplyOnnxModel</c> runs the file <see cref="EquinasModelParameters.SaveAsOnnx(Stream)"/>
/// wrote; <c>mlContext.Model.ConvertToOnnx</c> exports a pipeline of exportable transforms plus the trainer as one ONNX
/// model with ML.NET's Score and PredictedLabel, and refuses, naming the problem and pointing to SaveAsOnnx, where the
/// features come from image transforms or are images or bytes.
/// </summary>
public sealed class OnnxPipelineTests(TrainedDigits trained) : IClassFixture<TrainedDigits>
{
    private const double Tolerance = 1e-5;

    private static string TempFile(string extension) => Path.Combine(Path.GetTempPath(), $"equinas-{Guid.NewGuid():N}{extension}");

    private List<ScoredDigit> MLNetScores(ITransformer model, IDataView data) =>
        trained.Ml.Data.CreateEnumerable<ScoredDigit>(model.Transform(data), reuseRowObject: false).ToList();

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual, (e, a) => (double)Math.Abs(e - a)).Max();
        Assert.True(worst <= Tolerance, $"{what}: differs from ML.NET's Score by {worst:E2}.");
        Assert.Equal(Array.IndexOf(expected, expected.Max()), Array.IndexOf(actual, actual.Max()));
    }

    [Fact]
    public void ApplyOnnxModel_runs_the_exported_network_inside_an_MLNet_pipeline()
    {
        var ml = trained.Ml;
        string path = TempFile(".onnx");
        try
        {
            trained.Parameters.SaveAsOnnx(path);
            var data = ml.Data.LoadFromEnumerable(trained.Test);
            var (c, h, w) = trained.Parameters.InputShape;
            var shapes = new Dictionary<string, int[]> { ["pixels"] = [1, c, h, w], ["probabilities"] = [1, trained.Parameters.ClassCount] };
            // The explicit gpuDeviceId, fallbackToCpu and recursionLimit avoid ML.NET 5.0.1's ambiguous overloads (CS0121).
            var onnx = ml.Transforms.CopyColumns("pixels", nameof(DigitRow.Features))
                .Append(ml.Transforms.ApplyOnnxModel(["probabilities"], ["pixels"], path, shapes, gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100))
                .Fit(data);
            try
            {
                var fromOnnx = ml.Data.CreateEnumerable<OnnxScored>(onnx.Transform(data), reuseRowObject: false).ToList();
                var fromMLNet = MLNetScores(trained.Model, data);
                Assert.Equal(trained.Test.Count, fromOnnx.Count);
                for (int i = 0; i < fromOnnx.Count; i++)
                {
                    AssertClose(fromMLNet[i].Score, fromOnnx[i].Probabilities, $"row {i}");
                }
            }
            finally
            {
                (onnx as IDisposable)?.Dispose();
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>ML.NET's export of <paramref name="model"/> run by ONNX Runtime row by row gives ML.NET's Score and PredictedLabel.</summary>
    private void AssertConvertToOnnxScoresLikeMLNet(ITransformer model, IDataView data, IReadOnlyList<DigitRow> rows)
    {
        var ml = trained.Ml;
        using var stream = new MemoryStream();
        ml.Model.ConvertToOnnx(model, data, stream);
        var expected = MLNetScores(model, data);

        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(stream.ToArray(), options);
        Assert.Contains("Score.output", session.OutputMetadata.Keys);
        Assert.Contains("PredictedLabel.output", session.OutputMetadata.Keys);
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            var inputs = new List<NamedOnnxValue>();
            foreach (var (name, meta) in session.InputMetadata)
            {
                int[] dims = meta.Dimensions.Select(d => d < 0 ? 1 : d).ToArray();
                inputs.Add(name switch
                {
                    nameof(DigitRow.Features) => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(row.Features, dims)),
                    nameof(DigitRow.Digit) => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(new[] { row.Digit }, dims)),
                    _ => throw new InvalidOperationException($"Unexpected ONNX input '{name}'."),
                });
            }

            using var results = session.Run(inputs);
            var score = results.Single(r => r.Name == "Score.output").AsEnumerable<float>().ToArray();
            var predicted = results.Single(r => r.Name == "PredictedLabel.output").AsEnumerable<uint>().Single();
            AssertClose(expected[i].Score, score, $"row {i}");
            Assert.Equal(expected[i].PredictedLabel, predicted);
        }
    }

    [Fact]
    public void ConvertToOnnx_exports_the_pipeline_with_Score_and_PredictedLabel_as_MLNet_computes_them()
    {
        AssertConvertToOnnxScoresLikeMLNet(trained.Model, trained.Ml.Data.LoadFromEnumerable(trained.Test), trained.Test);
    }

    [Fact]
    public void ConvertToOnnx_exports_a_model_trained_on_a_flat_vector_with_the_shape_in_the_options()
    {
        var ml = trained.Ml;
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 1;
        options.Channels = [8, 8];
        options.ImageHeight = 28;
        options.ImageWidth = 28;
        static FlatRow Flat(DigitRow r) => new() { Features = r.Features, Digit = r.Digit };
        var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
            .Fit(ml.Data.LoadFromEnumerable(Digits.Rows(0, 60, 0, 1).Select(Flat).ToList()));
        try
        {
            var test = Digits.Rows(2, 4, 0, 1);
            AssertConvertToOnnxScoresLikeMLNet(model, ml.Data.LoadFromEnumerable(test.Select(Flat).ToList()), test);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void ConvertToOnnx_of_a_pipeline_whose_features_come_from_image_transforms_names_the_problem_and_points_to_SaveAsOnnx()
    {
        var ml = new MLContext(seed: 1);
        var folder = Path.Combine(Path.GetTempPath(), $"equinas-onnx-images-{Guid.NewGuid():N}");
        try
        {
            var digits = Equinas.Data.ShippedDigits.Load().Plain(Equinas.Data.DigitSplit.Train).Where(d => d.Label < 2).Take(40);
            var files = Equinas.Data.ShippedDigits.WriteImageFolder(digits, folder);
            var rows = files.Select(f => new ImagePathRow { ImagePath = f, Digit = Path.GetFileName(Path.GetDirectoryName(f)!) }).ToArray();
            var options = TrainerTests.Small(SearchMode.Fixed);
            options.Epochs = 1;
            options.Channels = [8, 8];
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(ImagePathRow.Digit))
                .Append(ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: nameof(ImagePathRow.ImagePath)))
                .Append(ml.Transforms.ResizeImages("Image", 28, 28, "Image"))
                .Append(ml.Transforms.ExtractPixels("Features", "Image", Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Red, scaleImage: 1f / 255))
                .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options));
            var data = ml.Data.LoadFromEnumerable(rows);
            var model = pipeline.Fit(data);
            try
            {
                var e = Assert.Throws<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, data, new MemoryStream()));
                Assert.Contains("'Features'", e.Message, StringComparison.Ordinal);
                Assert.Contains("ExtractPixels", e.Message, StringComparison.Ordinal);
                Assert.Contains("SaveAsOnnx", e.Message, StringComparison.Ordinal);

                // The direct export of the same model works.
                using var stream = new MemoryStream();
                EquinasModelParameters.FindIn(model)!.SaveAsOnnx(stream);
                Assert.True(stream.Length > 0);
            }
            finally
            {
                (model as IDisposable)?.Dispose();
            }
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Fact]
    public void An_image_column_model_refuses_ConvertToOnnx_clearly_and_its_direct_export_reads_the_decoded_pixels()
    {
        var ml = new MLContext(seed: 1);
        var train = Digits.Rows(0, 40, 0, 1).Select(r => new ImageRow { Image = ToImage(r), Digit = r.Digit }).ToList();
        var test = Digits.Rows(2, 6, 0, 1);
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 1;
        options.Channels = [8, 8];
        options.FeatureColumnName = "Image";
        var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(ml.Data.LoadFromEnumerable(train));
        try
        {
            var testView = ml.Data.LoadFromEnumerable(test.Select(r => new ImageRow { Image = ToImage(r), Digit = r.Digit }).ToList());
            var e = Assert.Throws<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, testView, new MemoryStream()));
            Assert.Contains("image column 'Image'", e.Message, StringComparison.Ordinal);
            Assert.Contains("SaveAsOnnx", e.Message, StringComparison.Ordinal);

            // The network alone: its input is the decoded image, R, G, B planes of 0-255 values.
            var parameters = EquinasModelParameters.FindIn(model)!;
            Assert.Equal((3, 28, 28), parameters.InputShape);
            using var stream = new MemoryStream();
            parameters.SaveAsOnnx(stream);
            using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1 };
            using var session = new InferenceSession(stream.ToArray(), sessionOptions);
            var expected = ml.Data.CreateEnumerable<ScoreOnly>(model.Transform(testView), reuseRowObject: false).ToList();
            for (int i = 0; i < test.Count; i++)
            {
                var plane = test[i].Features.Select(v => (float)Math.Round(v * 255)).ToArray();
                var pixels = plane.Concat(plane).Concat(plane).ToArray();
                using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("pixels", new DenseTensor<float>(pixels, new[] { 1, 3, 28, 28 })) });
                AssertClose(expected[i].Score, results.Single().AsEnumerable<float>().ToArray(), $"row {i}");
            }
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void An_encoded_bytes_model_refuses_ConvertToOnnx_clearly()
    {
        var ml = new MLContext(seed: 1);
        var rows = Digits.Rows(0, 30, 0, 1).Select(r => new BytesRow { Bytes = Equinas.Data.ShippedDigits.EncodePng(r.Features), Digit = r.Digit }).ToList();
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 1;
        options.Channels = [8, 8];
        options.FeatureColumnName = nameof(BytesRow.Bytes);
        options.ImageHeight = 28;
        options.ImageWidth = 28;
        options.ImageChannels = 1;
        var data = ml.Data.LoadFromEnumerable(rows);
        var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(data);
        try
        {
            var e = Assert.Throws<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, data, new MemoryStream()));
            Assert.Contains("encoded image bytes column 'Bytes'", e.Message, StringComparison.Ordinal);
            Assert.Contains("SaveAsOnnx", e.Message, StringComparison.Ordinal);
            using var stream = new MemoryStream();
            EquinasModelParameters.FindIn(model)!.SaveAsOnnx(stream);
            Assert.True(stream.Length > 0);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    /// <summary>A grey digit as a BGRA image with equal colour channels (value = round(pixel * 255)).</summary>
    private static MLImage ToImage(DigitRow row)
    {
        var bgra = new byte[28 * 28 * 4];
        for (int p = 0; p < 28 * 28; p++)
        {
            byte v = (byte)Math.Round(row.Features[p] * 255);
            bgra[(p * 4) + 0] = v;
            bgra[(p * 4) + 1] = v;
            bgra[(p * 4) + 2] = v;
            bgra[(p * 4) + 3] = 255;
        }

        return MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, bgra);
    }
}

/// <summary>An image file and its label.</summary>
public sealed class ImagePathRow
{
    public string ImagePath { get; set; } = "";

    public string Digit { get; set; } = "";
}
