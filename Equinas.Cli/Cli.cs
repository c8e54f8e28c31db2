using System.CommandLine;
using System.Globalization;
using Equinas.MLNet;
using Spectre.Console;

using TrainerDefaults = Equinas.MLNet.EquivariantImageClassificationTrainer.Defaults;
namespace Equinas.Cli;

/// <summary>The command tree of the <c>equinas</c> tool.</summary>
internal static class Cli
{
    /// <summary>Builds the root command with every sub-command.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("equinas: train, evaluate, predict with and report on equivariance-aware image classifiers (Equinas.MLNet).");
        root.Subcommands.Add(TrainCommand());
        root.Subcommands.Add(EvaluateCommand());
        root.Subcommands.Add(PredictCommand());
        root.Subcommands.Add(ReportCommand());
        root.Subcommands.Add(ExportCommand());
        root.Subcommands.Add(ExportDigitsCommand());
        root.Subcommands.Add(WorkerCommand());
        return root;
    }

    private const string DataHelp = "digits, rotated-digits, augmented-digits:GROUP, or an image folder with one sub-folder per label (PNG/JPEG/BMP files, nested folders allowed)";

    private static Command TrainCommand()
    {
        var data = new Option<string>("--data", "-d") { Description = $"Training data: {DataHelp}.", DefaultValueFactory = _ => "rotated-digits" };
        var mode = new Option<string>("--mode", "-m") { Description = "How the per-layer groups are chosen: evolve (EquiNAS_E), differentiable (EquiNAS_D) or fixed.", DefaultValueFactory = _ => "evolve" };
        mode.AcceptOnlyFromAmong("evolve", "differentiable", "fixed");
        var groups = new Option<string?>("--groups") { Description = "Fixed mode: comma-separated group per conv layer, e.g. D4,D4,C4,C4,C1 (default: --group everywhere)." };
        var group = new Option<string>("--group", "-g") { Description = "Top group: C1, C2, C4, D1V, D1H, D1D, D1A, D2VH, D2DA or D4.", DefaultValueFactory = _ => TrainerDefaults.Group };
        var generations = new Option<int>("--generations") { Description = "Evolve: generations after the initial training.", DefaultValueFactory = _ => TrainerDefaults.Generations };
        var population = new Option<int>("--population") { Description = "Evolve: survivors per generation.", DefaultValueFactory = _ => TrainerDefaults.PopulationSize };
        var epochsPerGeneration = new Option<double?>("--epochs-per-generation") { Description = $"Evolve: epochs each candidate trains per generation (fractions allowed; default from the data: at least {TrainerDefaults.MinimumEpochsPerGeneration} epoch and {TrainerDefaults.MinimumGenerationSteps} steps)." };
        var epochs = new Option<double?>("--epochs") { Description = $"Epochs the final model trains: fixed training, the differentiable search, or the evolutionary search's winning lineage, topped up after the last generation (fractions allowed; default from the data: at least {TrainerDefaults.MinimumEpochs} epochs and {TrainerDefaults.MinimumTrainingSteps} steps)." };
        var alphaLr = new Option<double>("--alpha-lr") { Description = "Differentiable: Adam learning rate of the mixture weights z.", DefaultValueFactory = _ => TrainerDefaults.ArchitectureLearningRate };
        var retrain = new Option<double>("--retrain-epochs") { Description = "Differentiable: after the search, retrain the chosen groups as an ordinary G-CNN for this many epochs (0 keeps the mixture).", DefaultValueFactory = _ => TrainerDefaults.RetrainEpochs };
        var mixtureStart = new Option<string>("--mixture-start") { Description = "Differentiable: where z starts in every layer: top-group (most weight on the top group, as evolve starts at all-top-group) or uniform (the paper's).", DefaultValueFactory = _ => TrainerDefaults.MixtureStart == MixtureStart.Uniform ? "uniform" : "top-group" };
        mixtureStart.AcceptOnlyFromAmong("top-group", "uniform");
        var warmup = new Option<double>("--warmup-epochs") { Description = "Differentiable: epochs that train the weights only (z fixed) before the search.", DefaultValueFactory = _ => TrainerDefaults.WarmupEpochs };
        var channels = new Option<string?>("--channels") { Description = "Comma-separated width of each conv layer in scalar channels (multiples of the group order; default " + string.Join(",", TrainerDefaults.Channels) + " with the last layer widened to 16 per class, e.g. " + string.Join(",", TrainerDefaults.ChannelsFor(10)) + " for 10 classes)." };
        var batch = new Option<int>("--batch-size") { Description = "Mini-batch size.", DefaultValueFactory = _ => TrainerDefaults.BatchSize };
        var size = new Option<int>("--size") { Description = "Images are resized to SIZE x SIZE.", DefaultValueFactory = _ => 28 };
        var rgb = new Option<bool>("--rgb") { Description = "Use the three colour channels instead of grey." };
        var resize = new Option<string>("--resize") { Description = "How images of another size or shape become SIZE x SIZE: stretch (scale each side), pad (fit inside, black bands) or crop (cover, keep the centre).", DefaultValueFactory = _ => "stretch" };
        resize.AcceptOnlyFromAmong("stretch", "pad", "crop");
        var strict = new Option<bool>("--strict") { Description = "Stop with an error naming the file at the first image that does not decode (default: skip such files with a warning)." };
        var cache = new Option<int>("--image-cache-mb") { Description = $"Memory bound for decoded images in MB: larger folders are decoded on demand through a cache of this size (default {TrainerDefaults.ImageCacheMegabytes}).", DefaultValueFactory = _ => TrainerDefaults.ImageCacheMegabytes };
        var seed = new Option<int>("--seed", "-s") { Description = "Seed of initialisation and data order.", DefaultValueFactory = _ => 1 };
        var output = new Option<string>("--out", "-o") { Description = "Model zip to write (atomically).", DefaultValueFactory = _ => "equinas-model.zip" };
        var report = new Option<string?>("--report") { Description = "Folder to write the report (PNG plots and report.md) into after training." };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Folder for checkpoints: the state after every generation or epoch is written there, and the same command run again continues from the last one (with the same scores as an uninterrupted run)." };
        var workers = new Option<int?>("--workers") { Description = $"Evolve: candidates trained at once (speed only; results do not depend on it; default {TrainerDefaults.Workers} here)." };
        var threadsPerWorker = new Option<int?>("--threads-per-worker") { Description = $"libtorch threads per training (results depend on it; default for evolve {TrainerDefaults.ThreadsPerWorker} here, else libtorch's own)." };
        var cluster = new Option<string?>("--cluster") { Description = "Evolve: train the candidates on a cluster of 'equinas worker' processes: localhost[:GATEWAY,GATEWAY...] (this machine) or redis=CONNECTION (several machines); see docs/cluster.md." };
        var (clusterId, tlsCert, tlsPassword) = ClusterOptions();
        var command = new Command("train", "Train a model and save it as an ML.NET model zip.")
        {
            data, mode, groups, group, generations, population, epochsPerGeneration, epochs, alphaLr, retrain, mixtureStart, warmup, channels, batch, size, rgb, resize, strict, cache, seed, output, report, checkpoint, workers, threadsPerWorker,
            cluster, clusterId, tlsCert, tlsPassword,
        };
        command.SetAction((result, token) => Guard(() => Commands.TrainAsync(
            new TrainSettings
            {
                Data = result.GetValue(data)!,
                Mode = result.GetValue(mode)!,
                Groups = SplitList(result.GetValue(groups)),
                Group = result.GetValue(group)!,
                Generations = result.GetValue(generations),
                Population = result.GetValue(population),
                EpochsPerGeneration = result.GetValue(epochsPerGeneration),
                Epochs = result.GetValue(epochs),
                ArchitectureLearningRate = result.GetValue(alphaLr),
                RetrainEpochs = result.GetValue(retrain),
                WarmupEpochs = result.GetValue(warmup),
                MixtureStart = result.GetValue(mixtureStart) == "uniform" ? MixtureStart.Uniform : MixtureStart.TopGroup,
                Channels = SplitList(result.GetValue(channels))?.Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray(),
                BatchSize = result.GetValue(batch),
                Size = result.GetValue(size),
                Rgb = result.GetValue(rgb),
                Resize = result.GetValue(resize)!,
                Strict = result.GetValue(strict),
                ImageCacheMegabytes = result.GetValue(cache),
                Seed = result.GetValue(seed),
                Out = result.GetValue(output)!,
                Report = result.GetValue(report),
                Checkpoint = result.GetValue(checkpoint),
                Workers = result.GetValue(workers),
                ThreadsPerWorker = result.GetValue(threadsPerWorker),
                Cluster = result.GetValue(cluster) is { } where
                    ? new ClusterSettings { Cluster = where, ClusterId = result.GetValue(clusterId)!, TlsCertificate = result.GetValue(tlsCert), TlsPassword = result.GetValue(tlsPassword) }
                    : null,
                CommandLine = "equinas " + string.Join(' ', result.Tokens.Select(t => t.Value)),
            },
            token)));
        return command;
    }

    private static Command EvaluateCommand()
    {
        var model = ModelOption();
        var data = new Option<string>("--data", "-d") { Description = $"Data to evaluate on: {DataHelp}.", DefaultValueFactory = _ => "rotated-digits" };
        var part = PartOption();
        var command = new Command("evaluate", "Accuracy, macro accuracy, log-loss and the confusion matrix of a model on labelled data.") { model, data, part };
        command.SetAction((result, token) => Guard(() => Commands.EvaluateAsync(result.GetValue(model)!, result.GetValue(data)!, result.GetValue(part), token)));
        return command;
    }

    private static Command PredictCommand()
    {
        var model = ModelOption();
        var input = new Argument<string>("input") { Description = "An image file, or a folder whose images (sub-folders included) are classified." };
        var top = new Option<int>("--top") { Description = "How many of the most probable classes to show per image.", DefaultValueFactory = _ => 3 };
        var command = new Command("predict", "Predict the label of images.") { model, input, top };
        command.SetAction((result, token) => Guard(() => Commands.PredictAsync(result.GetValue(model)!, result.GetValue(input)!, result.GetValue(top), token)));
        return command;
    }

    private static Command ReportCommand()
    {
        var model = ModelOption();
        var output = new Option<string>("--out", "-o") { Description = "Folder to write the PNG plots and report.md into.", DefaultValueFactory = _ => "equinas-report" };
        var command = new Command("report", "Plots and a markdown report of how a model's architecture was found.") { model, output };
        command.SetAction((result, token) => Guard(() => Commands.ReportAsync(result.GetValue(model)!, result.GetValue(output)!)));
        return command;
    }

    private static Command ExportCommand()
    {
        var model = ModelOption();
        var onnx = new Option<string>("--onnx") { Description = "The ONNX file to write (atomically): the network alone, input 'pixels' float[N, C, H, W], output 'probabilities' float[N, classes].", Required = true };
        var command = new Command("export", "Export a model's network as an ONNX model (for ONNX Runtime and other ONNX tools).") { model, onnx };
        command.SetAction((result, token) => Guard(() => Commands.ExportAsync(result.GetValue(model)!, result.GetValue(onnx)!)));
        return command;
    }

    private static Command ExportDigitsCommand()
    {
        var data = new Option<string>("--data", "-d") { Description = "digits, rotated-digits or augmented-digits:GROUP.", DefaultValueFactory = _ => "rotated-digits" };
        var part = new Option<string>("--split") { Description = "train, validation or test.", DefaultValueFactory = _ => "test" };
        part.AcceptOnlyFromAmong("train", "validation", "test");
        var count = new Option<int?>("--count", "-n") { Description = "Write only the first N digits of the split (default: all)." };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write one sub-folder per label into.", Required = true };
        var command = new Command("export-digits", "Utility: write shipped digits as PNG files into an image folder (one sub-folder per label).") { data, part, count, output };
        command.SetAction((result, token) => Guard(() => Commands.ExportDigitsAsync(result.GetValue(data)!, result.GetValue(part)!, result.GetValue(count), result.GetValue(output)!)));
        return command;
    }

    private static Command WorkerCommand()
    {
        var cluster = new Option<string>("--cluster") { Description = "Membership: localhost (this machine only; the first worker keeps it) or redis=CONNECTION (workers on several machines).", DefaultValueFactory = _ => "localhost" };
        var (clusterId, tlsCert, tlsPassword) = ClusterOptions();
        var address = new Option<string>("--address") { Description = "Address to listen on and announce; anything but loopback needs --cluster redis=... and should use --tls-cert.", DefaultValueFactory = _ => "127.0.0.1" };
        var siloPort = new Option<int>("--silo-port") { Description = "Port for worker-to-worker traffic (one per worker on a machine).", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "Port drivers (equinas train --cluster) connect to (one per worker on a machine).", DefaultValueFactory = _ => 30000 };
        var primaryPort = new Option<int>("--primary-port") { Description = "localhost clustering: the silo port of the first worker, which keeps the membership.", DefaultValueFactory = _ => 11111 };
        var slots = new Option<int>("--slots") { Description = "Candidates trained at once (each with the driver's --threads-per-worker).", DefaultValueFactory = _ => 1 };
        var command = new Command("worker", "Join a cluster and train the candidates that 'equinas train --cluster' sends, until stopped (Ctrl+C).")
        {
            cluster, clusterId, tlsCert, tlsPassword, address, siloPort, gatewayPort, primaryPort, slots,
        };
        command.SetAction((result, token) => Guard(() => Commands.WorkerAsync(
            new WorkerSettings
            {
                Cluster = new ClusterSettings { Cluster = result.GetValue(cluster)!, ClusterId = result.GetValue(clusterId)!, TlsCertificate = result.GetValue(tlsCert), TlsPassword = result.GetValue(tlsPassword) },
                Address = result.GetValue(address)!,
                SiloPort = result.GetValue(siloPort),
                GatewayPort = result.GetValue(gatewayPort),
                PrimaryPort = result.GetValue(primaryPort),
                Slots = result.GetValue(slots),
            },
            token)));
        return command;
    }

    private static (Option<string> ClusterId, Option<string?> TlsCert, Option<string?> TlsPassword) ClusterOptions() =>
        (new Option<string>("--cluster-id") { Description = "Cluster id: workers and drivers with the same id form one cluster.", DefaultValueFactory = _ => "equinas" },
         new Option<string?>("--tls-cert") { Description = "A .pfx file (certificate and private key) that turns on TLS; every worker and driver must use the same certificate, others are refused." },
         new Option<string?>("--tls-password") { Description = "Password of the --tls-cert file (default: the environment variable EQUINAS_TLS_PASSWORD)." });

    private static Option<string> ModelOption() =>
        new("--model") { Description = "The model zip written by train.", DefaultValueFactory = _ => "equinas-model.zip" };

    private static Option<string?> PartOption()
    {
        var part = new Option<string?>("--split") { Description = "all, train, validation or test (default: test for the digits, all for an image folder; folders are split by train's fixed-seed stratified split)." };
        part.AcceptOnlyFromAmong("all", "train", "validation", "test");
        return part;
    }

    private static string[]? SplitList(string? value) =>
        string.IsNullOrWhiteSpace(value) ? null : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Runs a command, turning expected failures into one red line and exit code 1 (130 when cancelled).</summary>
    private static async Task<int> Guard(Func<Task<int>> run)
    {
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            Output.Error(e is ResumableCancellationException ? e.Message : "Cancelled; nothing was written.");
            return 130;
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or FormatException or InvalidOperationException or UnauthorizedAccessException)
        {
            Output.Error(e.Message);
            return 1;
        }
    }
}

/// <summary>Console output helpers that stay readable when redirected.</summary>
internal static class Output
{
    public static void Error(string message) => AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");

    /// <summary>A plain line (no wrapping at the console width, so redirected output keeps one line per message).</summary>
    public static void Info(string message) => Console.WriteLine(message);

    /// <summary>A warning line.</summary>
    public static void Warning(string message) => Console.WriteLine($"warning: {message}");

    public static void Heading(string message) => AnsiConsole.MarkupLine($"[bold]{Markup.Escape(message)}[/]");
}
