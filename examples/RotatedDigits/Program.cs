using System.Diagnostics;
using System.Globalization;
using Equinas.MLNet;
using Equinas.Reports;
using Microsoft.ML;
using Microsoft.ML.Transforms;
using RotatedDigits;

// Rotated MNIST through ML.NET: search each layer's symmetry group by evolution from D4, compare with fixed all-C1,
// all-C4 and all-D4 networks trained as many steps as the whole search (every candidate), then save, report and
// reload the searched model.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var total = Stopwatch.StartNew();
RunSettings settings;
try
{
    settings = RunSettings.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(RunSettings.Usage);
    return 2;
}

if (settings.Help)
{
    Console.WriteLine(RunSettings.Usage);
    return 0;
}

// 1. Data: the shipped digits, each rotated by its own seeded angle.
var data = RotatedMnist.Load(settings.Seed);
Console.WriteLine($"Rotated MNIST from {RotatedMnist.Source}");
Console.WriteLine($"  {data.Train.Count} training, {data.Validation.Count} validation, {data.Test.Count} test digits of {data.Height} x {data.Width}, each rotated by an angle from U[0, 360) (seed {settings.Seed}), bilinear, pixels in [0, 1]; read in {total.Elapsed.TotalSeconds:F1} s.");
Console.WriteLine($"  Budget: search population {settings.Population}, {settings.Generations} generation(s) of {settings.EpochsPerGeneration} epoch, {settings.Moves} moves, the winner {settings.FinalEpochs} epoch more ({settings.LineageEpochs:0.###} epochs along its lineage); fixed networks train as many epochs as the whole search. {Environment.ProcessorCount} cores.{(settings.Quick ? " (--quick)" : "")}");

var ml = new MLContext(seed: settings.Seed);
var runsLock = new object();
var train = ml.Data.LoadFromEnumerable(data.Train);
var test = ml.Data.LoadFromEnumerable(data.Test);

// The label's keys are fixed to the digits "0".."9" in order, so the validation set (which must already carry the key
// column, as the pipeline's MapValueToKey never sees it) and the training pipeline map digits to the same keys.
var digitNames = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(d => new DigitName { Digit = d.ToString(CultureInfo.InvariantCulture) }));
IEstimator<ITransformer> MapLabel() => ml.Transforms.Conversion.MapValueToKey(
    "Label", nameof(ModelInput.Digit), keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue, keyData: digitNames);
var validationRows = ml.Data.LoadFromEnumerable(data.Validation);
var validation = MapLabel().Fit(validationRows).Transform(validationRows);

EquivariantImageClassificationTrainer.Options Options(string label, SearchMode mode, string group, double epochs, bool progress = true) => new()
{
    SearchMode = mode,
    Group = group,
    LabelColumnName = "Label",
    FeatureColumnName = nameof(ModelInput.Features),
    PopulationSize = settings.Population,
    Generations = settings.Generations,
    EpochsPerGeneration = settings.EpochsPerGeneration,
    FinalEpochs = settings.FinalEpochs,
    Moves = Enum.Parse<EvolutionMoves>(settings.Moves, ignoreCase: true),
    Epochs = epochs,
    ValidationSet = validation,
    Seed = settings.Seed,
    Progress = progress ? new ConsoleProgress(label) : null,
    // The fixed networks train side by side, one libtorch thread each (their results depend on the count, not on
    // what runs beside them).
    ThreadsPerWorker = mode == SearchMode.Fixed ? 1 : null,
};

ModelRun Run(string name, string description, EquivariantImageClassificationTrainer.Options options, bool quiet = false)
{
    if (!quiet)
    {
        Console.WriteLine();
        Console.WriteLine($"{name}: {description}");
    }

    var pipeline = MapLabel()
        .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel"));
    var watch = Stopwatch.StartNew();
    var model = pipeline.Fit(train);
    var time = watch.Elapsed;
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
    var parameters = ModelRun.FindModel(model);
    lock (runsLock)
    {
        Console.WriteLine($"  {(quiet ? name + " " : "")}-> {string.Join("-", parameters.LayerGroups)}, {parameters.ParameterCount:N0} parameters, test accuracy {metrics.MicroAccuracy:P2}, log-loss {metrics.LogLoss:F4}, trained in {time.TotalSeconds:F1} s");
    }

    return new ModelRun(name, description, model, parameters, metrics, time);
}

// 2. Train: the search, then fixed all-C1, all-C4 and all-D4 networks on the same data for as many epochs as the
// whole search trained (every candidate of every generation, and the winner's final epochs): the same compute.
var runs = new List<ModelRun>
{
    Run("EquiNAS_E search", $"evolution from all-D4, population {settings.Population}, {settings.Generations} generation(s) x {settings.EpochsPerGeneration} epoch, {settings.Moves} moves, winner +{settings.FinalEpochs} epoch", Options("search", SearchMode.Evolutionary, "D4", settings.LineageEpochs)),
};
var searchHistory = runs[0].Parameters.History.Candidates;
double searchEpochs = Math.Round(searchHistory.Sum(c => c.Change == EquinasChange.Final ? settings.FinalEpochs : settings.EpochsPerGeneration), 2);
Console.WriteLine();
Console.WriteLine($"Fixed networks, each trained {searchEpochs} epochs: as many as the whole search ({searchHistory.Count} candidates), side by side on one thread each");
var fixedRuns = new[] { ("Fixed all-C1", "a plain CNN (no symmetry)", "C1"), ("Fixed all-C4", "every layer C4-equivariant", "C4"), ("Fixed all-D4", "every layer D4-equivariant", "D4") };
var trainedFixed = new ModelRun[fixedRuns.Length];
// All three at once: with two at a time on 2 cores the third would train alone on one thread, one core idle.
Parallel.For(0, fixedRuns.Length, new ParallelOptions { MaxDegreeOfParallelism = fixedRuns.Length }, i =>
{
    var (name, description, group) = fixedRuns[i];
    trainedFixed[i] = Run(name, $"{description}, {searchEpochs} epochs", Options(name, SearchMode.Fixed, group, searchEpochs, progress: false), quiet: true);
});
runs.AddRange(trainedFixed);

Console.WriteLine();
Console.WriteLine("Results on the rotated test digits:");
foreach (var line in Report.Table(runs))
{
    Console.WriteLine(line);
}

// 3. Save the searched model and the report.
var searched = runs[0];
var outputFolder = Path.GetFullPath(settings.OutputFolder);
Directory.CreateDirectory(outputFolder);
var modelPath = Path.Combine(outputFolder, "rotated-digits-equinas.zip");
ml.Model.Save(searched.Model, train.Schema, modelPath);
var reportPath = Path.Combine(outputFolder, "report.md");

// 4. Reload with a new MLContext and check a PredictionEngine gives the first test image the same scores.
var firstImage = data.Test[0];
var expected = ml.Data.CreateEnumerable<ModelOutput>(searched.Model.Transform(ml.Data.LoadFromEnumerable(new[] { firstImage })), reuseRowObject: false).Single();
var fresh = new MLContext(seed: settings.Seed + 1);
var loaded = fresh.Model.Load(modelPath, out _);
ModelOutput reloaded;
using (var engine = fresh.Model.CreatePredictionEngine<ModelInput, ModelOutput>(loaded))
{
    reloaded = engine.Predict(firstImage);
}

bool identical = expected.Score.SequenceEqual(reloaded.Score) && expected.PredictedDigit == reloaded.PredictedDigit;
double maxDifference = expected.Score.Zip(reloaded.Score, (a, b) => (double)Math.Abs(a - b)).DefaultIfEmpty(double.PositiveInfinity).Max();
string check = identical
    ? $"identical scores for the first test image (digit {firstImage.Digit}, predicted {reloaded.PredictedDigit} with p = {reloaded.Score.Max():F4})"
    : $"MISMATCH for the first test image: largest score difference {maxDifference:G3}, predicted {expected.PredictedDigit} before and {reloaded.PredictedDigit} after";
Console.WriteLine();
Console.WriteLine($"Reloaded {modelPath} with a new MLContext: {check}.");

// 5. The report next to the model: report.md and its plots (the same plots as `equinas report`, with the fixed
// baselines drawn in), each file written atomically.
if (PlotFonts.Warning is { } fontWarning)
{
    Console.WriteLine($"Warning: {fontWarning}");
}

var plots = Report.WritePlots(runs, outputFolder);
HistoryPlots.WriteText(reportPath, Report.Markdown(settings, data, runs, modelPath, check, total.Elapsed, HistoryPlots.Markdown(plots, outputFolder)));
foreach (var run in runs)
{
    (run.Model as IDisposable)?.Dispose();
}

Console.WriteLine();
Console.WriteLine($"Model:  {modelPath}");
Console.WriteLine($"Report: {reportPath}");
foreach (var plot in plots)
{
    Console.WriteLine($"Plot:   {plot.Path}");
}

Console.WriteLine($"Total time {ConsoleProgress.Format(total.Elapsed)}.");
return identical ? 0 : 1;
