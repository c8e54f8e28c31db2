// Trains, evaluates, saves, reloads and uses an Equinas.MLNet model, with the library taken from its NuGet package.
// Data: a few hundred of the MNIST digits shipped in the repository (data/mnist-digits.bin.gz, copied next to the app).
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using Equinas.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

var watch = Stopwatch.StartNew();
var (train, test) = ShippedDigits.Read(Path.Combine(AppContext.BaseDirectory, "mnist-digits.bin.gz"), trainCount: 600, testCount: 300);
Console.WriteLine($"Equinas.MLNet {typeof(EquinasCatalog).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false).OfType<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion}");
Console.WriteLine($"Digits: {train.Count} to train, {test.Count} to test");

var mlContext = new MLContext(seed: 1);
var options = new EquivariantImageClassificationTrainer.Options
{
    Channels = [8, 16, 16],
    PopulationSize = 2,
    Generations = 1,
    EpochsPerGeneration = 2,
    LearningRate = 0.003,
    Seed = 1,
    Progress = new ConsoleProgress(),
};
var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label", nameof(Digit.Label))
    .Append(mlContext.MulticlassClassification.Trainers.EquinasEvolve(options))
    .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel"));
var trainData = mlContext.Data.LoadFromEnumerable(train);
var model = pipeline.Fit(trainData);

var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(mlContext.Data.LoadFromEnumerable(test)));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Test accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}"));
var parameters = model.OfType<EquinasPredictionTransformer>().Single().Model;
Console.WriteLine($"Layer groups: {string.Join(" -> ", parameters.LayerGroups)}");

string path = Path.Combine(Path.GetTempPath(), $"equinas-package-consumer-{Environment.ProcessId}.zip");
try
{
    mlContext.Model.Save(model, trainData.Schema, path);
    (model as IDisposable)?.Dispose();

    // A fresh context, as another process would do it.
    var other = new MLContext();
    var loaded = other.Model.Load(path, out _);
    using var engine = other.Model.CreatePredictionEngine<Digit, DigitPrediction>(loaded);
    int right = 0;
    foreach (var digit in test)
    {
        right += engine.Predict(digit).PredictedDigit == digit.Label ? 1 : 0;
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Reloaded model ({new FileInfo(path).Length / 1024.0:F0} KB): {right} of {test.Count} test digits right with a PredictionEngine"));
    foreach (var digit in test.Take(5))
    {
        var prediction = engine.Predict(digit);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  digit {digit.Label}: predicted {prediction.PredictedDigit} ({prediction.Score.Max():P1})"));
    }
}
finally
{
    File.Delete(path);
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Done in {watch.Elapsed.TotalSeconds:F1} s"));

/// <summary>A digit image as a row: 1 x 28 x 28 pixels in [0, 1] and the digit as text.</summary>
public sealed class Digit
{
    /// <summary>Gets or sets the pixels (the layout ExtractPixels produces).</summary>
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    /// <summary>Gets or sets the digit, "0" to "9".</summary>
    public string Label { get; set; } = "";
}

/// <summary>The model's answer for one digit.</summary>
public sealed class DigitPrediction
{
    /// <summary>Gets or sets the most probable digit.</summary>
    public string PredictedDigit { get; set; } = "";

    /// <summary>Gets or sets the probability of every digit.</summary>
    public float[] Score { get; set; } = [];
}

/// <summary>Prints the trainer's progress reports.</summary>
internal sealed class ConsoleProgress : IProgress<EquinasProgress>
{
    public void Report(EquinasProgress value) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {value.Phase} {value.Step}/{value.TotalSteps}: validation accuracy {value.ValidationAccuracy:P1}, groups {string.Join(",", value.LayerGroups)}"));
}

/// <summary>Reads data/mnist-digits.bin.gz (format in tools/make-digits.mjs): "EQDIGIT1", count, 28, 28, labels, split codes, 8-bit pixels.</summary>
internal static class ShippedDigits
{
    public static (List<Digit> Train, List<Digit> Test) Read(string path, int trainCount, int testCount)
    {
        using var reader = new BinaryReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        if (new string(reader.ReadChars(8)) != "EQDIGIT1")
        {
            throw new InvalidDataException($"{path}: not a digits file.");
        }

        int count = reader.ReadInt32(), height = reader.ReadInt32(), width = reader.ReadInt32();
        byte[] labels = reader.ReadBytes(count), splits = reader.ReadBytes(count), pixels = reader.ReadBytes(count * height * width);
        if (height != 28 || width != 28 || pixels.Length != count * 28 * 28)
        {
            throw new InvalidDataException($"{path}: expected {count} digits of 28 x 28 pixels.");
        }

        // Split code 0 is the training part, 2 the test part.
        List<Digit> Take(int split, int take) => Enumerable.Range(0, count)
            .Where(i => splits[i] == split)
            .Take(take)
            .Select(i => new Digit
            {
                Features = pixels.AsSpan(i * 784, 784).ToArray().Select(p => p / 255f).ToArray(),
                Label = labels[i].ToString(CultureInfo.InvariantCulture),
            })
            .ToList();
        return (Take(0, trainCount), Take(2, testCount));
    }
}
