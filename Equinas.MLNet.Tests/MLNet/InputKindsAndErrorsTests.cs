using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using SkiaSharp;
using Xunit;
using DigitRow = Equinas.Data.DigitRow;

namespace Equinas.MLNet.Tests.MLNet;

public sealed class FlatRow
{
    [VectorType(784)]
    public float[] Features { get; set; } = [];

    public string Digit { get; set; } = "";
}

public sealed class DoubleRow
{
    [VectorType(1, 28, 28)]
    public double[] Features { get; set; } = [];

    public string Digit { get; set; } = "";
}

public sealed class SmallRow
{
    [VectorType(1, 14, 14)]
    public float[] Features { get; set; } = [];

    public string Digit { get; set; } = "";
}

public sealed class ImageRow
{
    [ImageType(28, 28)]
    public MLImage? Image { get; set; }

    public string Digit { get; set; } = "";
}

public sealed class BytesRow
{
    public byte[] Bytes { get; set; } = [];

    public string Digit { get; set; } = "";
}

public sealed class KeyRow
{
    public string Digit { get; set; } = "";
}

public sealed class ScoreOnly
{
    public float[] Score { get; set; } = [];
}

/// <summary>The four kinds of feature column, and a clear error for every kind of bad input.</summary>
public sealed class InputKindsAndErrorsTests
{
    private sealed class ScoresOnly
    {
        public float[] Score { get; set; } = [];
    }

    private static EquivariantImageClassificationTrainer.Options Quick(Action<EquivariantImageClassificationTrainer.Options>? change = null)
    {
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 1;
        change?.Invoke(options);
        return options;
    }

    private static ITransformer Fit(MLContext ml, IDataView data, EquivariantImageClassificationTrainer.Options options) =>
        Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(data);

    private static List<T> Convert<T>(int split, int take, Func<DigitRow, T> make, params int[] classes) =>
        Digits.Rows(split, take, classes).Select(make).ToList();

    private static MLImage ToImage(DigitRow row, int size = 28)
    {
        var bgra = new byte[size * size * 4];
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                byte v = (byte)Math.Round(row.Features[(y * 28 * 28 / size / size * 0) + ((y * 28 / size) * 28) + (x * 28 / size)] * 255);
                int p = ((y * size) + x) * 4;
                bgra[p] = v;
                bgra[p + 1] = v;
                bgra[p + 2] = v;
                bgra[p + 3] = 255;
            }
        }

        return MLImage.CreateFromPixels(size, size, MLPixelFormat.Bgra32, bgra);
    }

    private static byte[] ToPng(DigitRow row, int size)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Gray8, SKAlphaType.Opaque));
        var pixels = bitmap.GetPixelSpan().ToArray();
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                pixels[(y * size) + x] = (byte)Math.Round(row.Features[((y * 28 / size) * 28) + (x * 28 / size)] * 255);
            }
        }

        System.Runtime.InteropServices.Marshal.Copy(pixels, 0, bitmap.GetPixels(), pixels.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    [Fact]
    public void A_flat_vector_with_the_shape_in_the_options_trains_and_predicts()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Convert(0, 150, r => new FlatRow { Features = r.Features, Digit = r.Digit }, 0, 1));
        var model = Fit(ml, data, Quick(o => { o.ImageHeight = 28; o.ImageWidth = 28; }));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(Convert(2, 60, r => new FlatRow { Features = r.Features, Digit = r.Digit }, 0, 1))));
        Assert.True(metrics.MicroAccuracy > 0.8, $"accuracy {metrics.MicroAccuracy}");
    }

    [Fact]
    public void An_image_column_trains_predicts_and_rejects_an_image_of_the_wrong_size()
    {
        var ml = new MLContext(seed: 1);
        var rows = Convert(0, 150, r => new ImageRow { Image = ToImage(r), Digit = r.Digit }, 0, 1);
        var model = Fit(ml, ml.Data.LoadFromEnumerable(rows), Quick(o => { o.FeatureColumnName = "Image"; o.ImageChannels = 1; }));
        var test = Convert(2, 40, r => new ImageRow { Image = ToImage(r), Digit = r.Digit }, 0, 1);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test)));
        Assert.True(metrics.MicroAccuracy > 0.8, $"accuracy {metrics.MicroAccuracy}");

        using var engine = ml.Model.CreatePredictionEngine<ImageRow, ScoreOnly>(model);
        var expected = engine.Predict(test[0]).Score;
        // Scores are deterministic: the same image gives bit-identical scores again.
        Assert.Equal(expected, engine.Predict(test[0]).Score);

        // ML.NET would save the model without the image column's type, so saving is refused up front.
        var refused = Assert.ThrowsAny<Exception>(() => ml.Model.Save(model, ml.Data.LoadFromEnumerable(rows).Schema, new MemoryStream()));
        var notSupported = Assert.IsType<NotSupportedException>(refused is NotSupportedException ? refused : refused.InnerException ?? refused);
        Assert.Contains("image column 'Image'", notSupported.Message, StringComparison.Ordinal);

        var wrong = new ImageRow { Image = ToImage(Digits.Rows(2, 1, 0)[0], 14), Digit = "0" };
        var error = Assert.Throws<InvalidDataException>(() => engine.Predict(wrong));
        Assert.Contains("'Image'", error.Message, StringComparison.Ordinal);
        Assert.Contains("14 x 14", error.Message, StringComparison.Ordinal);
        Assert.Contains("expected 28 x 28", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encoded_bytes_are_decoded_and_resized_the_same_way_in_training_and_prediction()
    {
        var ml = new MLContext(seed: 1);
        var rows = Convert(0, 150, r => new BytesRow { Bytes = ToPng(r, 56), Digit = r.Digit }, 0, 1);
        var model = Fit(ml, ml.Data.LoadFromEnumerable(rows), Quick(o => { o.FeatureColumnName = "Bytes"; o.ImageHeight = 28; o.ImageWidth = 28; o.ImageChannels = 1; }));
        var test = Convert(2, 40, r => new BytesRow { Bytes = ToPng(r, 56), Digit = r.Digit }, 0, 1);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(test)));
        Assert.True(metrics.MicroAccuracy > 0.8, $"accuracy {metrics.MicroAccuracy}");

        using var engine = ml.Model.CreatePredictionEngine<BytesRow, ScoreOnly>(model);
        var error = Assert.Throws<InvalidDataException>(() => engine.Predict(new BytesRow { Bytes = [0x89, 0x50, 0x4E, 0x47, 1, 2, 3], Digit = "0" }));
        Assert.Contains("'Bytes'", error.Message, StringComparison.Ordinal);
        Assert.Contains("do not decode as an image", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Undecodable_training_bytes_name_the_row_and_column()
    {
        var ml = new MLContext(seed: 1);
        var rows = Convert(0, 20, r => new BytesRow { Bytes = ToPng(r, 28), Digit = r.Digit }, 0, 1);
        rows[3].Bytes = [1, 2, 3, 4];
        var error = Assert.Throws<InvalidDataException>(() => Fit(ml, ml.Data.LoadFromEnumerable(rows), Quick(o => { o.FeatureColumnName = "Bytes"; o.ImageHeight = 28; o.ImageWidth = 28; o.StrictImageReading = true; })));
        Assert.Contains("Row 3 of feature column 'Bytes' holds 4 bytes", error.Message, StringComparison.Ordinal);

        // Not strict (the default): the row is skipped with a warning naming it, and training goes on.
        var warnings = new System.Collections.Concurrent.ConcurrentQueue<string>();
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning)
            {
                warnings.Enqueue(e.RawMessage);
            }
        };
        var model = Fit(ml, ml.Data.LoadFromEnumerable(rows), Quick(o => { o.FeatureColumnName = "Bytes"; o.ImageHeight = 28; o.ImageWidth = 28; }));
        Assert.Contains(warnings, w => w.StartsWith("Skipping row 3 of the training data: Row 3 of feature column 'Bytes' holds 4 bytes", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("Skipped 1 unreadable image(s) of 20 row(s)", StringComparison.Ordinal));
        EquinasModelParameters.FindIn(model)!.Dispose();
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "Infinity")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    public void Non_finite_pixels_name_the_row_column_and_position(float bad, string shown)
    {
        var ml = new MLContext(seed: 1);
        var rows = Digits.Rows(0, 30, 0, 1);
        rows[5].Features[(2 * 28) + 3] = bad;
        var error = Assert.Throws<InvalidDataException>(() => Fit(ml, ml.Data.LoadFromEnumerable(rows), Quick()));
        Assert.Equal($"Row 5 of feature column 'Features' holds {shown} at channel 0, y 2, x 3; expected finite pixel values.", error.Message);
    }

    [Fact]
    public void A_missing_feature_column_is_named_with_the_columns_found()
    {
        var ml = new MLContext();
        var error = Assert.ThrowsAny<ArgumentException>(() => Fit(ml, ml.Data.LoadFromEnumerable(Digits.Rows(0, 20, 0, 1)), Quick(o => o.FeatureColumnName = "Pixels")));
        Assert.Contains("Feature column 'Pixels' was not found", error.Message, StringComparison.Ordinal);
        Assert.Contains("'Features'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_feature_column_of_the_wrong_type_says_what_is_accepted()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(Convert(0, 20, r => new DoubleRow { Features = r.Features.Select(v => (double)v).ToArray(), Digit = r.Digit }, 0, 1));
        var error = Assert.ThrowsAny<ArgumentException>(() => Fit(ml, data, Quick()));
        Assert.Contains("Feature column 'Features' has type Vector<Double", error.Message, StringComparison.Ordinal);
        Assert.Contains("expected", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_flat_vector_needs_the_image_shape_and_one_that_fits()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(Convert(0, 20, r => new FlatRow { Features = r.Features, Digit = r.Digit }, 0, 1));
        var missing = Assert.ThrowsAny<ArgumentException>(() => Fit(ml, data, Quick()));
        Assert.Contains("Feature column 'Features' is Vector<Single, 784> without image dimensions; set ImageHeight and ImageWidth", missing.Message, StringComparison.Ordinal);
        var wrong = Assert.ThrowsAny<ArgumentException>(() => Fit(ml, data, Quick(o => { o.ImageHeight = 28; o.ImageWidth = 27; })));
        Assert.Contains("holds 784 values per row but ImageChannels x ImageHeight x ImageWidth = 1 x 28 x 27 = 756", wrong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Predicting_on_images_of_another_size_is_refused_with_both_types()
    {
        var ml = new MLContext(seed: 1);
        var model = Fit(ml, ml.Data.LoadFromEnumerable(Digits.Rows(0, 60, 0, 1)), Quick(o => o.Epochs = 0.5));
        var small = ml.Data.LoadFromEnumerable(new[] { new SmallRow { Features = new float[196], Digit = "0" } });
        var error = Assert.ThrowsAny<Exception>(() => model.Transform(small).Preview());
        Assert.Contains("Features", error.Message, StringComparison.Ordinal);
        Assert.Contains("Vector<Single, 1, 14, 14>", error.Message, StringComparison.Ordinal);
        Assert.Contains("Vector<Single, 1, 28, 28>", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_label_that_is_not_a_key_says_how_to_make_one()
    {
        var ml = new MLContext();
        var trainer = ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.LabelColumnName = "Digit"));
        var error = Assert.ThrowsAny<ArgumentException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(Digits.Rows(0, 20, 0, 1))));
        Assert.Contains("Label column 'Digit' has type String; expected a key type", error.Message, StringComparison.Ordinal);
        Assert.Contains("MapValueToKey", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fewer_than_two_classes_and_an_empty_training_set_are_refused()
    {
        var ml = new MLContext();
        var one = Assert.ThrowsAny<ArgumentException>(() => Fit(ml, ml.Data.LoadFromEnumerable(Digits.Rows(0, 20, 3)), Quick()));
        Assert.Contains("Label column 'Label' has 1 class(es); classification needs at least 2", one.Message, StringComparison.Ordinal);

        var keys = ml.Data.LoadFromEnumerable(new[] { new KeyRow { Digit = "0" }, new KeyRow { Digit = "1" } });
        var empty = ml.Data.LoadFromEnumerable(new List<DigitRow>());
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", nameof(DigitRow.Digit), keyData: keys)
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick()));
        var error = Assert.ThrowsAny<ArgumentException>(() => pipeline.Fit(empty));
        Assert.Contains("Cannot train: the training data has no rows; expected at least 2 labelled images", error.Message, StringComparison.Ordinal);

        // The way a new user meets it: MapValueToKey fitted on the same empty data (a key of one value).
        var mapped = Assert.ThrowsAny<ArgumentException>(() => Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick())).Fit(empty));
        Assert.Contains("Cannot train: the training data has no rows", mapped.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_validation_set_whose_label_keys_mean_other_classes_is_refused()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Digits.Rows(0, 60, 0, 1, 2));
        var validationRows = ml.Data.LoadFromEnumerable(Digits.Rows(1, 30, 2, 1, 0).OrderByDescending(r => r.Digit).ToList());
        var validation = ml.Transforms.Conversion.MapValueToKey("Label", nameof(DigitRow.Digit)).Fit(validationRows).Transform(validationRows);
        var error = Assert.ThrowsAny<ArgumentException>(() => Fit(ml, train, Quick(o => o.ValidationSet = validation)));
        Assert.Matches("Label column 'Label' maps classes to keys differently in the validation data: key [0-9] is '[0-9]' there but '[0-9]' in the training data", error.Message);
    }

    [Fact]
    public void Rows_with_a_missing_label_are_skipped_and_counted_in_a_warning()
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning)
            {
                warnings.Add(e.Message);
            }
        };
        var keys = ml.Data.LoadFromEnumerable(new[] { new KeyRow { Digit = "0" }, new KeyRow { Digit = "1" } });
        var rows = Digits.Rows(0, 90, 0, 1, 2);
        int twos = rows.Count(r => r.Digit == "2");
        var model = ml.Transforms.Conversion.MapValueToKey("Label", nameof(DigitRow.Digit), keyData: keys)
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.Epochs = 0.5)))
            .Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.True(twos > 0);
        Assert.Contains(warnings, w => w.Contains($"Skipped {twos} training row(s) whose label in column 'Label' is missing", StringComparison.Ordinal));
        Assert.Equal(2, TrainerTests.FindModel(model)!.ClassCount);
    }

    [Fact]
    public void Bad_options_name_the_option_the_expectation_and_the_value()
    {
        var ml = new MLContext();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.Group = "D3")));
        Assert.Contains("Option Group must be one of C1, C2, D1V, D1D, D1H, D1A, C4, D2VH, D2DA, D4; found D3.", error.Message, StringComparison.Ordinal);
        var widths = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.Channels = [8, 12])));
        Assert.Contains("Option Channels must be multiples of the group order (8 for layer 1); found [8, 12].", widths.Message, StringComparison.Ordinal);
        var lattice = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.LayerGroups = ["C4", "D4", "C1"])));
        Assert.Contains("layer 1: D4 is not in C4", lattice.Message, StringComparison.Ordinal);
        var workers = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.Workers = 0)));
        Assert.Contains("Option Workers must be a positive number or null; found 0.", workers.Message, StringComparison.Ordinal);
        var threads = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.ThreadsPerWorker = -1)));
        Assert.Contains("Option ThreadsPerWorker must be a positive number or null; found -1.", threads.Message, StringComparison.Ordinal);
        var folder = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.EquivariantImageClassification(Quick(o => o.CheckpointDirectory = " ")));
        Assert.Contains("Option CheckpointDirectory must be a folder path or null", folder.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_catalog_does_not_change_the_callers_options()
    {
        var ml = new MLContext();
        var options = Quick(o => o.Channels = [8, 16, 16]);
        ml.MulticlassClassification.Trainers.EquinasEvolve(options);
        ml.MulticlassClassification.Trainers.EquinasDifferentiable(options);
        Assert.Equal(SearchMode.Fixed, options.SearchMode);
    }

    [Fact]
    public void A_tampered_or_truncated_model_file_is_refused()
    {
        var ml = new MLContext(seed: 1);
        var model = Fit(ml, ml.Data.LoadFromEnumerable(Digits.Rows(0, 60, 0, 1)), Quick(o => o.Epochs = 0.5));
        var path = Path.Combine(Path.GetTempPath(), $"equinas-tamper-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, null, path);
            var original = File.ReadAllBytes(path);

            // Flip one byte of the weights entry, keeping the zip itself valid.
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                var entry = zip.Entries.Single(e => e.FullName.EndsWith("EquinasWeights.bin", StringComparison.Ordinal));
                byte[] bytes;
                using (var s = entry.Open())
                using (var copy = new MemoryStream())
                {
                    s.CopyTo(copy);
                    bytes = copy.ToArray();
                }

                bytes[bytes.Length / 2] ^= 0x40;
                string name = entry.FullName;
                entry.Delete();
                using var w = zip.CreateEntry(name).Open();
                w.Write(bytes);
            }

            var tampered = Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
            var inner = Chain(tampered).OfType<InvalidDataException>().FirstOrDefault();
            Assert.NotNull(inner);
            Assert.Contains("entry 'EquinasWeights.bin' should hold SHA-256", inner.Message, StringComparison.Ordinal);
            Assert.Contains("the entry was modified", inner.Message, StringComparison.Ordinal);
            Assert.Same(inner, tampered.GetBaseException());

            // Checked before ML.NET's reflection-based loader: the first message names the file and the entry.
            var verified = Assert.Throws<InvalidDataException>(() => EquinasModelParameters.VerifyFile(path));
            Assert.Contains($"Model file '{path}'", verified.Message, StringComparison.Ordinal);
            Assert.Contains("entry 'EquinasWeights.bin' should hold SHA-256", verified.Message, StringComparison.Ordinal);

            File.WriteAllBytes(path, original);
            EquinasModelParameters.VerifyFile(path);

            File.WriteAllBytes(path, original.AsSpan(0, original.Length / 2).ToArray());
            var truncated = Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
            Assert.NotEmpty(truncated.Message);
            var incomplete = Assert.Throws<InvalidDataException>(() => EquinasModelParameters.VerifyFile(path));
            Assert.Contains("is not a complete zip archive", incomplete.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }

        static IEnumerable<Exception> Chain(Exception? e)
        {
            for (; e is not null; e = e.InnerException)
            {
                yield return e;
            }
        }
    }

    [Fact]
    public void A_GPU_request_falls_back_to_the_CPU_only_when_allowed()
    {
        var data = new MLContext().Data.LoadFromEnumerable(Digits.Rows(0, 40, 0, 1));
        var strict = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
        var error = Assert.Throws<NotSupportedException>(() => Fit(strict, data, Quick(o => o.Epochs = 0.5)));
        Assert.Contains("MLContext.GpuDeviceId is 0", error.Message, StringComparison.Ordinal);
        Assert.Contains("FallbackToCpu", error.Message, StringComparison.Ordinal);

        var lenient = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = true };
        var warnings = new List<string>();
        lenient.Log += (_, e) =>
        {
            if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning)
            {
                warnings.Add(e.Message);
            }
        };
        var model = Fit(lenient, data, Quick(o => o.Epochs = 0.5));
        Assert.NotNull(TrainerTests.FindModel(model));
        Assert.Contains(warnings, w => w.Contains("running on the CPU", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("torch.cuda.is_available() is false", StringComparison.Ordinal));

        // The device is chosen again when the model loads: the same rules, from the loading context's settings.
        string path = Path.Combine(Path.GetTempPath(), $"equinas-device-{Guid.NewGuid():N}.zip");
        try
        {
            lenient.Model.Save(model, data.Schema, path);
            var refused = Assert.ThrowsAny<Exception>(() => strict.Model.Load(path, out _)).GetBaseException();
            Assert.IsType<NotSupportedException>(refused);
            Assert.Contains("MLContext.GpuDeviceId is 0", refused.Message, StringComparison.Ordinal);
            Assert.Contains("no CUDA device", refused.Message, StringComparison.Ordinal);

            warnings.Clear();
            var loaded = lenient.Model.Load(path, out _);
            Assert.Contains(warnings, w => w.Contains("running on the CPU", StringComparison.Ordinal));
            var scores = lenient.Data.CreateEnumerable<ScoresOnly>(loaded.Transform(data), reuseRowObject: false).ToList();
            Assert.All(scores, s => Assert.Equal(1.0, s.Score.Sum(), 4));
            (loaded as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
            (model as IDisposable)?.Dispose();
        }
    }
}
