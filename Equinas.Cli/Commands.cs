using System.Diagnostics;
using System.Globalization;
using Equinas.Data;
using Equinas.MLNet;
using Equinas.MLNet.Orleans;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

using TrainerDefaults = Equinas.MLNet.EquivariantImageClassificationTrainer.Defaults;
namespace Equinas.Cli;

/// <summary>The settings of <c>equinas train</c>.</summary>
internal sealed record TrainSettings
{
    public string Data { get; init; } = "rotated-digits";

    public string Mode { get; init; } = "evolve";

    public IReadOnlyList<string>? Groups { get; init; }

    public string Group { get; init; } = TrainerDefaults.Group;

    public int Generations { get; init; } = TrainerDefaults.Generations;

    public int Population { get; init; } = TrainerDefaults.PopulationSize;

    /// <summary>Null: the trainer's default from the data.</summary>
    public double? EpochsPerGeneration { get; init; }

    /// <summary>Null: the trainer's default from the data.</summary>
    public double? Epochs { get; init; }

    public double ArchitectureLearningRate { get; init; } = TrainerDefaults.ArchitectureLearningRate;

    public double RetrainEpochs { get; init; } = TrainerDefaults.RetrainEpochs;

    public double WarmupEpochs { get; init; } = TrainerDefaults.WarmupEpochs;

    public MixtureStart MixtureStart { get; init; } = TrainerDefaults.MixtureStart;

    public IReadOnlyList<int>? Channels { get; init; }

    public int BatchSize { get; init; } = TrainerDefaults.BatchSize;

    public int Size { get; init; } = 28;

    public bool Rgb { get; init; }

    public string Resize { get; init; } = "stretch";

    public bool Strict { get; init; }

    public int ImageCacheMegabytes { get; init; } = TrainerDefaults.ImageCacheMegabytes;

    public int Seed { get; init; } = 1;

    public string Out { get; init; } = "equinas-model.zip";

    public string? Report { get; init; }

    public string? Checkpoint { get; init; }

    public int? Workers { get; init; }

    public int? ThreadsPerWorker { get; init; }

    /// <summary>Where the candidates train (null: in this process).</summary>
    public ClusterSettings? Cluster { get; init; }

    public string CommandLine { get; init; } = "";
}

/// <summary>Training was cancelled with a checkpoint folder to continue from; the message says how.</summary>
internal sealed class ResumableCancellationException(string message, Exception inner) : OperationCanceledException(message, inner);

/// <summary>Passes progress reports to a view and to a second listener.</summary>
internal sealed class Tee(IProgress<EquinasProgress> view, Action<EquinasProgress> also) : IProgress<EquinasProgress>
{
    public void Report(EquinasProgress value)
    {
        also(value);
        view.Report(value);
    }
}

/// <summary>The command handlers (callable in-process, as the tests do).</summary>
internal static class Commands
{
    /// <summary>Runs a worker until <paramref name="token"/> is cancelled (Ctrl+C); 0 when stopped that way.</summary>
    public static async Task<int> WorkerAsync(WorkerSettings s, CancellationToken token)
    {
        var options = s.ToOptions();
        using var host = EquinasWorkerHost.Build(options, new EquinasWorkerOptions { Slots = s.Slots, Log = Output.Info });
        await host.StartAsync(token).ConfigureAwait(false);
        string membership = options.RedisConnectionString is { } redis ? $"Redis {redis}" : $"localhost clustering (primary silo port {options.PrimarySiloPort})";
        Output.Info(string.Create(CultureInfo.InvariantCulture,
            $"worker ready: cluster '{options.ClusterId}', {membership}, listening on {options.AdvertisedAddress}:{options.SiloPort} (gateway {options.GatewayPort}), {s.Slots} slot(s){(options.Certificate is null ? ", no TLS" : ", TLS")}; Ctrl+C stops it"));
        try
        {
            await Task.Delay(Timeout.Infinite, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        Output.Info("worker stopped");
        return 0;
    }

    public static async Task<int> TrainAsync(TrainSettings s, CancellationToken token)
    {
        var total = Stopwatch.StartNew();
        var source = DataSource.Parse(s.Data);
        var mode = s.Mode switch
        {
            "evolve" => SearchMode.Evolutionary,
            "differentiable" => SearchMode.Differentiable,
            "fixed" => SearchMode.Fixed,
            _ => throw new ArgumentException($"--mode {s.Mode}: expected evolve, differentiable or fixed."),
        };
        if (s.Groups is not null && mode != SearchMode.Fixed)
        {
            throw new ArgumentException("--groups is for --mode fixed; the searches choose the groups themselves (use --group for the top group).");
        }

        if (s.Size < 3)
        {
            throw new ArgumentException($"--size must be at least 3; found {s.Size}.");
        }

        var resize = ImagePipeline.ParseResize(s.Resize);
        if (s.Cluster is not null && mode != SearchMode.Evolutionary)
        {
            throw new ArgumentException($"--cluster is for --mode evolve (its candidates are what a cluster trains); found --mode {s.Mode}.");
        }

        var clusterOptions = s.Cluster?.ToOptions();
        var ml = new MLContext(seed: s.Seed);
        int unreadable = 0;
        ml.Log += (_, e) => ShowTrainerLog(e, ref unreadable);
        if (source.TooSmallWarning() is { } tooSmall)
        {
            Output.Warning(tooSmall);
        }

        var trainRows = source.Rows(DataPart.Train);
        var validationRows = source.Rows(DataPart.Validation);
        var testRows = source.Rows(DataPart.Test);
        var classes = trainRows.Select(r => r.Label).Distinct(StringComparer.Ordinal).Count();
        if (classes < 2)
        {
            throw new ArgumentException($"--data {source.Description}: training needs at least two labels; found {classes}.");
        }

        Output.Info(string.Create(CultureInfo.InvariantCulture, $"data {source.Description}: {trainRows.Count} train, {validationRows.Count} validation, {testRows.Count} test images, {classes} labels; images read as {(s.Rgb ? "RGB" : "grey")} {s.Size}x{s.Size} ({s.Resize}{(s.Strict ? ", strict" : "")})"));

        var trainView = ImagePipeline.ToDataView(ml, trainRows);
        var preprocessing = ImagePipeline.Preprocessing(ml).Fit(trainView);
        var options = new EquivariantImageClassificationTrainer.Options
        {
            SearchMode = mode,
            LabelColumnName = ImagePipeline.LabelKeyColumn,
            FeatureColumnName = ImagePipeline.FeaturesColumn,
            Group = s.Group,
            LayerGroups = s.Groups?.ToArray(),
            Channels = s.Channels?.ToArray(),
            Generations = s.Generations,
            PopulationSize = s.Population,
            EpochsPerGeneration = s.EpochsPerGeneration,
            Epochs = s.Epochs,
            ArchitectureLearningRate = s.ArchitectureLearningRate,
            RetrainEpochs = s.RetrainEpochs,
            WarmupEpochs = s.WarmupEpochs,
            MixtureStart = s.MixtureStart,
            BatchSize = s.BatchSize,
            ImageHeight = s.Size,
            ImageWidth = s.Size,
            ImageChannels = s.Rgb ? 3 : 1,
            ResizeMode = resize,
            StrictImageReading = s.Strict,
            ImagePathColumnName = ImagePipeline.PathColumn,
            ImageCacheMegabytes = s.ImageCacheMegabytes,
            Seed = s.Seed,
            ValidationSet = validationRows.Count > 0 ? preprocessing.Transform(ImagePipeline.ToDataView(ml, validationRows)) : null,
            CancellationToken = token,
            CheckpointDirectory = s.Checkpoint,
            Workers = s.Workers,
            ThreadsPerWorker = s.ThreadsPerWorker,
        };
        await using var cluster = clusterOptions is null ? null : await EquinasCluster.ConnectAsync(clusterOptions, cancellationToken: token).ConfigureAwait(false);
        if (cluster is not null)
        {
            options.Cluster = cluster;
            cluster.Log = m => Output.Info("cluster: " + m);
            Output.Info($"candidates train on the {cluster.Description}");
        }

        if (s.Checkpoint is { } folder && Directory.Exists(folder) && Directory.EnumerateFiles(folder, "checkpoint-*.zip").Any())
        {
            Output.Info($"checkpoint folder {Path.GetFullPath(folder)} holds a checkpoint: continuing from it");
        }

        EquinasProgress? last = null;
        EquinasPredictionTransformer predictor;
        try
        {
            predictor = await ProgressView.RunAsync($"training ({s.Mode}, top group {s.Group})", progress =>
            {
                // The catalog copies the options, so the progress sink is set before the trainer is made.
                options.Progress = new Tee(progress, p => Volatile.Write(ref last, p));
                var trainer = ml.MulticlassClassification.Trainers.EquivariantImageClassification(options);
                return trainer.Fit(preprocessing.Transform(trainView));
            }).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (s.Checkpoint is not null)
        {
            var done = Volatile.Read(ref last);
            string kept = done is null
                ? "no generation or epoch had finished, so it holds nothing yet"
                : $"it holds everything up to the last finished step ({ProgressView.StepName(done)}; step {done.Step} of {done.TotalSteps})";
            throw new ResumableCancellationException(
                $"Cancelled; no model was written. The checkpoint folder {Path.GetFullPath(s.Checkpoint)} is kept: {kept}. Run the same command again (same data and options, --checkpoint {s.Checkpoint}) to continue from there.", e);
        }

        if (cluster is not null)
        {
            var costs = cluster.Executors.SelectMany(e => e.Costs).ToArray();
            Output.Info(string.Create(CultureInfo.InvariantCulture,
                $"cluster: {costs.Length} candidates on {costs.Select(c => c.Worker).Distinct().Count()} worker(s), {cluster.Executors.Sum(e => e.Retries)} sent again after a worker was lost, {cluster.Executors.Sum(e => e.Uploads)} dataset upload(s)"));
        }

        var scoredTrain = predictor.Transform(preprocessing.Transform(trainView));
        var toText = ml.Transforms.Conversion.MapKeyToValue(ImagePipeline.PredictedColumn, ImagePipeline.PredictedKeyColumn).Fit(scoredTrain);
        var model = new TransformerChain<ITransformer>(preprocessing, predictor, toText);
        var parameters = predictor.Model;

        TestMetrics? test = null;
        if (testRows.Count > 0)
        {
            test = Evaluate(ml, model, testRows, "test").Metrics;
            Output.Info(string.Create(CultureInfo.InvariantCulture, $"test ({test.Images} images): accuracy {test.Accuracy * 100:F2}%, macro accuracy {test.MacroAccuracy * 100:F2}%, log-loss {test.LogLoss:F4}"));
        }

        var run = new RunInfo
        {
            Data = source.Description,
            Mode = s.Mode,
            Group = s.Group,
            FixedGroups = s.Groups,
            Generations = mode == SearchMode.Evolutionary ? s.Generations : null,
            Population = mode == SearchMode.Evolutionary ? s.Population : null,
            // The values the trainer used (its defaults come from the data), as the model's history records them.
            EpochsPerGeneration = mode == SearchMode.Evolutionary ? Setting(parameters, "EpochsPerGeneration") ?? s.EpochsPerGeneration : null,
            Epochs = mode != SearchMode.Evolutionary ? Setting(parameters, "Epochs") ?? s.Epochs : null,
            ArchitectureLearningRate = mode == SearchMode.Differentiable ? s.ArchitectureLearningRate : null,
            Seed = s.Seed,
            Size = s.Size,
            Rgb = s.Rgb,
            Resize = s.Resize,
            UnreadableImages = Volatile.Read(ref unreadable),
            TrainImages = trainRows.Count,
            ValidationImages = validationRows.Count,
            TrainingSeconds = parameters.History.TrainingTime.TotalSeconds,
            Test = test,
            CommandLine = s.CommandLine,
            Created = DateTimeOffset.UtcNow,
        };
        ModelFile.Save(ml, model, trainView.Schema, run, s.Out);
        Output.Info(string.Create(CultureInfo.InvariantCulture, $"layer groups {string.Join("-", parameters.LayerGroups)}, {parameters.ParameterCount:N0} parameters; training {ProgressView.Clock(parameters.History.TrainingTime)}"));
        Output.Info($"model written to {Path.GetFullPath(s.Out)}");
        if (s.Report is { } reportFolder)
        {
            Report.Write(parameters, run, reportFolder);
            Output.Info($"report written to {Path.GetFullPath(reportFolder)}");
        }

        parameters.Dispose();
        Output.Info($"done in {ProgressView.Clock(total.Elapsed)}");
        return 0;
    }

    public static Task<int> EvaluateAsync(string modelPath, string data, string? part, CancellationToken token)
    {
        var ml = new MLContext(seed: 1);
        var source = DataSource.Parse(data);
        var chosen = ParsePart(part) ?? (source.IsDigits ? DataPart.Test : DataPart.All);
        var rows = source.Rows(chosen);
        token.ThrowIfCancellationRequested();
        var (model, _) = ModelFile.Load(ml, modelPath);
        try
        {
            var watch = Stopwatch.StartNew();
            var (metrics, raw, names) = Evaluate(ml, model, rows, chosen.ToString().ToLowerInvariant());
            Output.Heading($"{source.Description} ({metrics.Part}, {metrics.Images} images)");
            var summary = new Table().Border(TableBorder.Simple).AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
            summary.AddRow("accuracy", Pct(metrics.Accuracy));
            summary.AddRow("macro accuracy", Pct(metrics.MacroAccuracy));
            summary.AddRow("log-loss", metrics.LogLoss.ToString("F4", CultureInfo.InvariantCulture));
            AnsiConsole.Write(summary);

            Output.Heading("confusion matrix (rows: true label, columns: predicted)");
            var matrix = new Table().Border(TableBorder.Simple).AddColumn("true \\ predicted");
            foreach (var name in names)
            {
                matrix.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
            }

            matrix.AddColumn(new TableColumn("recall").RightAligned());
            var counts = raw.ConfusionMatrix.Counts;
            for (int i = 0; i < counts.Count; i++)
            {
                var cells = new List<string> { Markup.Escape(names[i]) };
                cells.AddRange(counts[i].Select((c, j) => i == j ? $"[bold]{c:0}[/]" : c == 0 ? "[grey]0[/]" : c.ToString("0", CultureInfo.InvariantCulture)));
                cells.Add(Pct(raw.ConfusionMatrix.PerClassRecall[i], "F1"));
                matrix.AddRow(cells.ToArray());
            }

            AnsiConsole.Write(matrix);
            Output.Info($"evaluated in {watch.Elapsed.TotalSeconds:F1} s");
            return Task.FromResult(0);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    public static Task<int> PredictAsync(string modelPath, string input, int top, CancellationToken token)
    {
        if (top < 1)
        {
            throw new ArgumentException($"--top must be at least 1; found {top}.");
        }

        string full = Path.GetFullPath(input);
        string[] files = File.Exists(full) ? [full]
            : Directory.Exists(full) ? DataSource.ImagesIn(full, recursive: true).ToArray()
            : throw new FileNotFoundException($"'{input}' is neither an image file nor a folder.", input);
        if (files.Length == 0)
        {
            throw new ArgumentException($"No images ({string.Join(", ", DataSource.ImageExtensions)}) found in '{input}'.");
        }

        files = ImagePipeline.Readable(files.Select(f => new ImageInput { ImagePath = f }), "predict").Rows.Select(r => r.ImagePath).ToArray();
        if (files.Length == 0)
        {
            throw new ArgumentException($"None of the images in '{input}' can be read.");
        }

        var ml = new MLContext(seed: 1);
        var (model, _) = ModelFile.Load(ml, modelPath);
        try
        {
            var watch = Stopwatch.StartNew();
            var scored = model.Transform(ImagePipeline.ToDataView(ml, files.Select(f => new ImageInput { ImagePath = f, Label = "" })));
            var parameters = ImagePipeline.FindModel(model) ?? throw new InvalidDataException($"'{modelPath}' holds no Equinas model.");
            var names = ImagePipeline.ClassNames(scored.Schema, parameters.ClassCount);
            var predictions = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).ToList();
            string baseFolder = File.Exists(full) ? Path.GetDirectoryName(full)! : full;
            var table = new Table().Border(TableBorder.Simple).AddColumn("image").AddColumn("predicted").AddColumn($"top {Math.Min(top, names.Length)} probabilities");
            foreach (var p in predictions)
            {
                token.ThrowIfCancellationRequested();
                var best = p.Score.Select((v, i) => (Name: names[i], Probability: v)).OrderByDescending(x => x.Probability).Take(top);
                table.AddRow(
                    Markup.Escape(Path.GetRelativePath(baseFolder, p.ImagePath)),
                    $"[bold]{Markup.Escape(p.PredictedText)}[/]",
                    Markup.Escape(string.Join("  ", best.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Name} {b.Probability * 100:F1}%")))));
            }

            AnsiConsole.Write(table);
            Output.Info($"{predictions.Count} images in {watch.Elapsed.TotalSeconds:F1} s");
            return Task.FromResult(0);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    public static Task<int> ReportAsync(string modelPath, string output)
    {
        var ml = new MLContext(seed: 1);
        var (model, run) = ModelFile.Load(ml, modelPath);
        try
        {
            var parameters = ImagePipeline.FindModel(model) ?? throw new InvalidDataException($"'{modelPath}' holds no Equinas model.");
            var written = Report.Write(parameters, run, output);
            foreach (var file in written)
            {
                Output.Info($"wrote {file}");
            }

            return Task.FromResult(0);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    public static Task<int> ExportAsync(string modelPath, string onnxPath)
    {
        if (string.IsNullOrWhiteSpace(onnxPath))
        {
            throw new ArgumentException("--onnx: give the .onnx file to write.");
        }

        string full = Path.GetFullPath(onnxPath);
        if (Directory.Exists(full))
        {
            throw new ArgumentException($"--onnx {onnxPath}: that is a folder; give the .onnx file to write.");
        }

        var ml = new MLContext(seed: 1);
        var (model, run) = ModelFile.Load(ml, modelPath, out var inputSchema);
        try
        {
            var parameters = ImagePipeline.FindModel(model) ?? throw new InvalidDataException($"'{modelPath}' holds no Equinas model.");
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            parameters.SaveAsOnnx(full);
            var (c, h, w) = parameters.InputShape;
            var names = ImagePipeline.ClassNames(model.GetOutputSchema(inputSchema), parameters.ClassCount);
            string pixels = run is null
                ? "the pixels as the model's feature column holds them, before normalisation (done in the graph)"
                : $"the image resized to {h} x {w}, {(run.Rgb ? "R, G, B planes" : "grey")}, 8-bit values / 255 (as train's ExtractPixels made them); normalisation is done in the graph";
            Output.Info($"wrote {full} ({new FileInfo(full).Length:N0} bytes, ONNX opset 18)");
            Output.Info($"input 'pixels': float[N, {c}, {h}, {w}]: {pixels}");
            Output.Info($"output 'probabilities': float[N, {parameters.ClassCount}], classes in the order {string.Join(", ", names)}");
            return Task.FromResult(0);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }

    public static Task<int> ExportDigitsAsync(string data, string split, int? count, string output)
    {
        var source = DataSource.Parse(data);
        if (!source.IsDigits)
        {
            throw new ArgumentException($"--data {data}: export-digits writes the shipped digits (digits, rotated-digits or augmented-digits:GROUP).");
        }

        var part = Enum.Parse<DigitSplit>(split, ignoreCase: true);
        IEnumerable<DigitImage> digits = source.Digits(part);
        if (count is { } n)
        {
            digits = digits.Take(n);
        }

        var files = ShippedDigits.WriteImageFolder(digits, output);
        Output.Info($"wrote {files.Count} PNG files of {source.Description} ({split}) into {Path.GetFullPath(output)}");
        return Task.FromResult(0);
    }

    /// <summary>Scores rows and computes ML.NET's multiclass metrics.</summary>
    internal static (TestMetrics Metrics, MulticlassClassificationMetrics Raw, string[] Names) Evaluate(MLContext ml, ITransformer model, IReadOnlyList<ImageInput> rows, string part)
    {
        if (rows.Count == 0)
        {
            throw new ArgumentException($"No images to evaluate in the {part} part.");
        }

        var (readable, _) = ImagePipeline.Readable(rows, part + " part");
        if (readable.Count == 0)
        {
            throw new ArgumentException($"None of the {rows.Count} images of the {part} part can be read.");
        }

        rows = readable;
        var scored = model.Transform(ImagePipeline.ToDataView(ml, rows));
        var raw = ml.MulticlassClassification.Evaluate(scored, ImagePipeline.LabelKeyColumn, ImagePipeline.ScoreColumn, ImagePipeline.PredictedKeyColumn);
        var parameters = ImagePipeline.FindModel(model) ?? throw new InvalidDataException("The model holds no Equinas model.");
        var names = ImagePipeline.ClassNames(scored.Schema, parameters.ClassCount);
        return (new TestMetrics(part, rows.Count, raw.MicroAccuracy, raw.MacroAccuracy, raw.LogLoss), raw, names);
    }

    /// <summary>
    /// Shows the trainer's warnings (unreadable files, labels with too few images) and its reading progress from
    /// MLContext.Log, and counts the skipped files.
    /// </summary>
    private static void ShowTrainerLog(LoggingEventArgs e, ref int unreadable)
    {
        if (!e.Source.Contains(EquivariantImageClassificationTrainer.LoadName, StringComparison.Ordinal))
        {
            return;
        }

        string message = e.RawMessage;
        if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning)
        {
            if (message.StartsWith("Skipping ", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref unreadable);
            }

            Output.Warning(message);
        }
        else if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info && message.StartsWith("Reading the ", StringComparison.Ordinal))
        {
            Output.Info(message);
        }
    }

    /// <summary>A share as a percentage without the culture's space before the sign.</summary>
    internal static string Pct(double share, string format = "F2") => (share * 100).ToString(format, CultureInfo.InvariantCulture) + "%";

    private static DataPart? ParsePart(string? part) => part is null ? null : Enum.Parse<DataPart>(part, ignoreCase: true);

    /// <summary>One scored row as predict reads it.</summary>
    private sealed class Prediction
    {
        public string ImagePath { get; set; } = "";

        public string PredictedText { get; set; } = "";

        public float[] Score { get; set; } = [];
    }

    /// <summary>A number the trained model's history records among its settings, or null.</summary>
    private static double? Setting(EquinasModelParameters parameters, string name) =>
        parameters.History.Settings is { } settings && settings.TryGetValue(name, out var text)
        && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) ? value : null;
}
