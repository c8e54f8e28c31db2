// Predicts image files with a model zip saved by ImageFolderTraining (either search mode):
//
//   dotnet run -c Release -- --model EquinasModel.zip <image file or folder> [more files or folders]
//
// Folders are searched recursively for PNG and JPEG files. Prints the predicted label and the three most probable
// labels of every image (the first 20 printed); when an image sits in a sub-folder named like a label, also the share predicted right.
using System.Globalization;
using ImageFolderPrediction;
using Microsoft.ML;
using Microsoft.ML.Data;

// One row at a time means batch-1 forwards, which run faster on one libtorch thread (docs/benchmarks.md); set it
// before any tensor work.
TorchSharp.torch.set_num_threads(1);

string modelPath = "EquinasModel.zip";
var inputs = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--model" && i + 1 < args.Length)
    {
        modelPath = args[++i];
    }
    else
    {
        inputs.Add(args[i]);
    }
}

string[] extensions = [".png", ".jpg", ".jpeg"];
var files = new List<string>();
foreach (var input in inputs)
{
    if (Directory.Exists(input))
    {
        files.AddRange(Directory.EnumerateFiles(input, "*", SearchOption.AllDirectories)
            .Where(f => extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal));
    }
    else if (File.Exists(input))
    {
        files.Add(input);
    }
    else
    {
        Console.Error.WriteLine($"'{input}' is neither a file nor a folder.");
        return 2;
    }
}

if (files.Count == 0 || !File.Exists(modelPath))
{
    Console.Error.WriteLine("Usage: ImageFolderPrediction --model <model zip> <image file or folder> [...]");
    Console.Error.WriteLine(File.Exists(modelPath) ? "No PNG or JPEG files given." : $"Model '{modelPath}' not found.");
    return 2;
}

var mlContext = new MLContext();
Equinas.MLNet.EquinasModelParameters.VerifyFile(modelPath); // a damaged file is named here, before ML.NET's loader wraps the error
ITransformer model = mlContext.Model.Load(modelPath, out _);
using var engine = mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);

// The Score column's slot names are the labels, in the order of the scores.
VBuffer<ReadOnlyMemory<char>> slotNames = default;
engine.OutputSchema["Score"].GetSlotNames(ref slotNames);
var labels = slotNames.DenseValues().Select(s => s.ToString()).ToArray();
Console.WriteLine($"Model {Path.GetFullPath(modelPath)}: labels {string.Join(", ", labels)}");

const int MaxShown = 20;
int known = 0, right = 0, shown = 0;
foreach (var file in files)
{
    var prediction = engine.Predict(new ModelInput { ImagePath = Path.GetFullPath(file) });
    var top3 = prediction.Score
        .Select((probability, index) => (Label: labels[index], Probability: probability))
        .OrderByDescending(p => p.Probability)
        .Take(3)
        .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Label} {p.Probability:P1}"));
    string folderName = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(file))) ?? "";
    if (labels.Contains(folderName))
    {
        known++;
        right += prediction.PredictedLabel == folderName ? 1 : 0;
    }

    if (++shown <= MaxShown)
    {
        Console.WriteLine($"{file}: {prediction.PredictedLabel}   (top 3: {string.Join(", ", top3)})");
    }
}

if (shown > MaxShown)
{
    Console.WriteLine($"... and {shown - MaxShown} more images");
}

if (known > 0)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{right} of {known} images in label-named folders predicted as their folder ({(double)right / known:P1})"));
}

return 0;
