// Trains an image classifier on a folder of images (one sub-folder per label), the way a Model Builder training
// project does, with an equivariance-aware trainer from Equinas.MLNet, and saves it as an ML.NET model zip.
//
//   dotnet run -c Release -- [--mode evolve|differentiable] [--model EquinasModel.zip] [--folder <image folder>]
//                            [--digits 3000] [--variant rotated|plain] [--seed 1]
//                            [--channels 8,16,16,32] [--generations 2] [--population 2] [--epochs-per-generation 1]
//                            [--epochs 3] [--learning-rate 0.003]
//
// Without --folder it first writes --digits shipped MNIST digits (rotated by random angles unless --variant plain)
// as PNG files into a folder next to the app, so that it runs out of the box.
using System.Diagnostics;
using System.Globalization;
using Equinas.Data;
using Equinas.MLNet;
using ImageFolderTraining;
using Microsoft.ML;
using Microsoft.ML.Data;

var arguments = Arguments.Parse(args);
if (arguments is null)
{
    return 2;
}

var total = Stopwatch.StartNew();
string folder = arguments.Folder ?? WriteShippedDigits(arguments);

// 1. Load the image folder: one row per image file, labelled with the name of its sub-folder.
var mlContext = new MLContext(seed: arguments.Seed);
var images = LoadImagesFromDirectory(folder);
if (images.Count == 0)
{
    Console.Error.WriteLine($"No PNG or JPEG files in the sub-folders of '{folder}'.");
    return 1;
}

Console.WriteLine($"Images: {images.Count} in {images.Select(i => i.Label).Distinct().Count()} labels from {folder}");
IDataView data = mlContext.Data.LoadFromEnumerable(images);
var split = mlContext.Data.TrainTestSplit(data, testFraction: 0.2, seed: arguments.Seed);

// 2. The pipeline: label to key, file to encoded bytes, the equivariant CNN (the bytes are decoded and resized to
//    28 x 28 grey inside the trainer and the saved model), key back to the label text.
var options = new EquivariantImageClassificationTrainer.Options
{
    LabelColumnName = "Label",
    FeatureColumnName = "ImageBytes",
    ImageHeight = 28,
    ImageWidth = 28,
    ImageChannels = 1,
    Channels = arguments.Channels,
    Generations = arguments.Generations,
    PopulationSize = arguments.PopulationSize,
    EpochsPerGeneration = arguments.EpochsPerGeneration,
    Epochs = arguments.Epochs,
    LearningRate = arguments.LearningRate,
    Seed = arguments.Seed,
    Progress = new ConsoleProgress(),
};
var trainer = arguments.Mode == "differentiable"
    ? mlContext.MulticlassClassification.Trainers.EquinasDifferentiable(options)
    : mlContext.MulticlassClassification.Trainers.EquinasEvolve(options);
var pipeline = mlContext.Transforms.Conversion.MapValueToKey(outputColumnName: "Label", inputColumnName: "Label")
    .Append(mlContext.Transforms.LoadRawImageBytes(outputColumnName: "ImageBytes", imageFolder: null, inputColumnName: "ImagePath"))
    .Append(trainer)
    .Append(mlContext.Transforms.Conversion.MapKeyToValue(outputColumnName: "PredictedLabel", inputColumnName: "PredictedLabel"));

// 3. Train.
Console.WriteLine($"Training ({arguments.Mode}) on {split.TrainSet.GetRowCount() ?? CountRows(split.TrainSet)} images ...");
var watch = Stopwatch.StartNew();
var model = pipeline.Fit(split.TrainSet);
Console.WriteLine($"Trained in {watch.Elapsed.TotalSeconds:F1} s");
var parameters = model.OfType<EquinasPredictionTransformer>().Single().Model;
Console.WriteLine($"Layer groups: {string.Join(" -> ", parameters.LayerGroups)} ({parameters.ParameterCount:N0} parameters)");

// 4. Evaluate on the held-out images.
var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet), labelColumnName: "Label");
Console.WriteLine($"Test images: {CountRows(split.TestSet)}");
Console.WriteLine($"Micro accuracy: {metrics.MicroAccuracy:P2}");
Console.WriteLine($"Macro accuracy: {metrics.MacroAccuracy:P2}");
Console.WriteLine($"Log-loss:       {metrics.LogLoss:F4}");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

// 5. Save: the input schema (ImagePath, Label) and the whole pipeline, loadable by another app.
mlContext.Model.Save(model, data.Schema, arguments.ModelPath);
Console.WriteLine($"Model saved to {Path.GetFullPath(arguments.ModelPath)} ({new FileInfo(arguments.ModelPath).Length / 1024.0:F0} KB)");
Console.WriteLine($"Total time: {total.Elapsed.TotalSeconds:F1} s");
(model as IDisposable)?.Dispose();
return 0;

// Model Builder's LoadImagesFromDirectory: every PNG/JPEG file of every sub-folder, labelled with the sub-folder's name.
static List<ModelInput> LoadImagesFromDirectory(string folder)
{
    string[] extensions = [".png", ".jpg", ".jpeg"];
    return Directory.EnumerateDirectories(folder)
        .Order(StringComparer.Ordinal)
        .SelectMany(directory => Directory.EnumerateFiles(directory)
            .Where(file => extensions.Contains(Path.GetExtension(file), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .Select(file => new ModelInput { ImagePath = Path.GetFullPath(file), Label = Path.GetFileName(directory) }))
        .ToList();
}

static long CountRows(IDataView data)
{
    long rows = 0;
    using var cursor = data.GetRowCursor([]);
    while (cursor.MoveNext())
    {
        rows++;
    }

    return rows;
}

// Writes shipped MNIST training digits as PNG files (one sub-folder per digit), unless the folder already holds them.
static string WriteShippedDigits(Arguments arguments)
{
    string folder = Path.Combine(AppContext.BaseDirectory, $"digit-images-{arguments.Variant}-{arguments.Digits}-seed{arguments.Seed}");
    if (Directory.Exists(folder) && Directory.EnumerateFiles(folder, "*.png", SearchOption.AllDirectories).Take(arguments.Digits + 1).Count() == arguments.Digits)
    {
        Console.WriteLine($"Using the digit images written before in {folder}");
        return folder;
    }

    if (Directory.Exists(folder))
    {
        Directory.Delete(folder, recursive: true);
    }

    var shipped = ShippedDigits.Load();
    var digits = arguments.Variant == "plain"
        ? shipped.Plain(DigitSplit.Train)
        : shipped.Rotated(DigitSplit.Train, arguments.Seed);
    var written = ShippedDigits.WriteImageFolder(digits.Take(arguments.Digits), folder);
    Console.WriteLine($"Wrote {written.Count} {arguments.Variant} digit images to {folder}");
    return folder;
}

namespace ImageFolderTraining
{
    /// <summary>Prints the trainer's progress reports as they come (synchronously, in order).</summary>
    internal sealed class ConsoleProgress : IProgress<EquinasProgress>
    {
        public void Report(EquinasProgress value) =>
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {value.Phase} {value.Step}/{value.TotalSteps}: validation accuracy {value.ValidationAccuracy:P1}, loss {value.ValidationLoss:F3}, groups {string.Join(",", value.LayerGroups)}, {value.Elapsed.TotalSeconds:F0} s elapsed, ~{value.Remaining.TotalSeconds:F0} s left"));
    }

    /// <summary>The command line.</summary>
    internal sealed record Arguments
    {
        public string Mode { get; init; } = "evolve";

        public string ModelPath { get; init; } = "EquinasModel.zip";

        public string? Folder { get; init; }

        public int Digits { get; init; } = 3000;

        public string Variant { get; init; } = "rotated";

        public int Seed { get; init; } = 1;

        public int[]? Channels { get; init; } = [8, 16, 16, 32];

        public int Generations { get; init; } = 2;

        public int PopulationSize { get; init; } = 2;

        public double EpochsPerGeneration { get; init; } = 1;

        public double Epochs { get; init; } = 3;

        public double LearningRate { get; init; } = 0.003;

        /// <summary>Parses the arguments; prints the usage and returns null when they are wrong.</summary>
        public static Arguments? Parse(string[] args)
        {
            var result = new Arguments();
            try
            {
                for (int i = 0; i < args.Length; i++)
                {
                    string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value.");
                    result = args[i] switch
                    {
                        "--mode" => result with { Mode = Value() },
                        "--model" => result with { ModelPath = Value() },
                        "--folder" => result with { Folder = Value() },
                        "--digits" => result with { Digits = int.Parse(Value(), CultureInfo.InvariantCulture) },
                        "--variant" => result with { Variant = Value() },
                        "--seed" => result with { Seed = int.Parse(Value(), CultureInfo.InvariantCulture) },
                        "--channels" => result with { Channels = Value().Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray() },
                        "--generations" => result with { Generations = int.Parse(Value(), CultureInfo.InvariantCulture) },
                        "--population" => result with { PopulationSize = int.Parse(Value(), CultureInfo.InvariantCulture) },
                        "--epochs-per-generation" => result with { EpochsPerGeneration = double.Parse(Value(), CultureInfo.InvariantCulture) },
                        "--epochs" => result with { Epochs = double.Parse(Value(), CultureInfo.InvariantCulture) },
                        "--learning-rate" => result with { LearningRate = double.Parse(Value(), CultureInfo.InvariantCulture) },
                        _ => throw new FormatException($"Unknown argument '{args[i]}'."),
                    };
                }

                if (result.Mode is not ("evolve" or "differentiable"))
                {
                    throw new FormatException($"--mode must be evolve or differentiable, not '{result.Mode}'.");
                }

                if (result.Variant is not ("rotated" or "plain"))
                {
                    throw new FormatException($"--variant must be rotated or plain, not '{result.Variant}'.");
                }

                if (result.Folder is not null && !Directory.Exists(result.Folder))
                {
                    throw new FormatException($"The folder '{result.Folder}' does not exist.");
                }

                return result;
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine(e.Message);
                Console.Error.WriteLine("Usage: ImageFolderTraining [--mode evolve|differentiable] [--model EquinasModel.zip] [--folder <folder with one sub-folder per label>]");
                Console.Error.WriteLine("                           [--digits 3000] [--variant rotated|plain] [--seed 1] [--channels 8,16,16,32]");
                Console.Error.WriteLine("                           [--generations 2] [--population 2] [--epochs-per-generation 1] [--epochs 3] [--learning-rate 0.003]");
                return null;
            }
        }
    }
}
