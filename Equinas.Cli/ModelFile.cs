using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;

namespace Equinas.Cli;

/// <summary>Test metrics measured by train (or evaluate).</summary>
internal sealed record TestMetrics(string Part, int Images, double Accuracy, double MacroAccuracy, double LogLoss);

/// <summary>
/// What the CLI knows about a training run that the model itself does not hold (the settings, the data, the test
/// metrics), stored as one extra entry in the model zip; ML.NET ignores it when loading.
/// </summary>
internal sealed record RunInfo
{
    public string Data { get; init; } = "";

    public string Mode { get; init; } = "";

    public string Group { get; init; } = "";

    public IReadOnlyList<string>? FixedGroups { get; init; }

    public int? Generations { get; init; }

    public int? Population { get; init; }

    public double? EpochsPerGeneration { get; init; }

    public double? Epochs { get; init; }

    public double? ArchitectureLearningRate { get; init; }

    public int Seed { get; init; }

    public int Size { get; init; }

    public bool Rgb { get; init; }

    /// <summary>Gets how images were resized (stretch, pad or crop; null in files written before the option).</summary>
    public string? Resize { get; init; }

    /// <summary>Gets the images skipped as unreadable while training (training and validation parts).</summary>
    public int? UnreadableImages { get; init; }

    public int TrainImages { get; init; }

    public int ValidationImages { get; init; }

    public double TrainingSeconds { get; init; }

    public TestMetrics? Test { get; init; }

    public string CommandLine { get; init; } = "";

    public DateTimeOffset Created { get; init; }
}

/// <summary>Saving (atomically) and loading model zips.</summary>
internal static class ModelFile
{
    public const string RunEntry = "EquinasCli/run.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>
    /// Saves to a temporary file in the target folder, adds the run entry, then renames it over the target, so the
    /// target is either the complete new model or untouched.
    /// </summary>
    public static void Save(MLContext ml, ITransformer model, DataViewSchema inputSchema, RunInfo run, string path)
    {
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            ml.Model.Save(model, inputSchema, temp);
            using (var zip = ZipFile.Open(temp, ZipArchiveMode.Update))
            {
                var entry = zip.CreateEntry(RunEntry, CompressionLevel.Optimal);
                using var stream = entry.Open();
                JsonSerializer.Serialize(stream, run, Json);
            }

            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Loads a model zip with its CLI run entry (null for models saved by other programs).</summary>
    public static (ITransformer Model, RunInfo? Run) Load(MLContext ml, string path) => Load(ml, path, out _);

    /// <summary>Loads a model zip with its CLI run entry (null for models saved by other programs) and its input schema.</summary>
    public static (ITransformer Model, RunInfo? Run) Load(MLContext ml, string path, out DataViewSchema inputSchema)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        }

        // Names a damaged entry in the first message (ML.NET's loader would wrap it in reflection exceptions).
        Equinas.MLNet.EquinasModelParameters.VerifyFile(path);
        var model = ml.Model.Load(path, out inputSchema);
        RunInfo? run = null;
        using (var zip = ZipFile.OpenRead(path))
        {
            if (zip.GetEntry(RunEntry) is { } entry)
            {
                using var stream = entry.Open();
                run = JsonSerializer.Deserialize<RunInfo>(stream, Json);
            }
        }

        return (model, run);
    }
}
