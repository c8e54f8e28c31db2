#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search;
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Runs;

/// <summary>
/// What every mode's run gets: the validated options, the network template, the data, the seed, the reporter, the
/// libtorch threads per training and the checkpoint store (null for none).
/// </summary>
internal sealed record RunContext(
    EquivariantImageClassificationTrainer.Options Options, NetworkSpec Template, ImageDataset Train, ImageDataset Validation,
    int Seed, RunReporter Reporter, CancellationToken Token, int Threads = 1, CheckpointStore? Checkpoints = null, TorchSharp.torch.Device? Device = null)
{
    public TrainingOptions Training => Options.TrainingOptions() with { Device = Device };
}

/// <summary>A trained network (owned by the caller) and the timings of the run that made it.</summary>
internal sealed record RunResult(EquivariantNetwork Network, IReadOnlyDictionary<string, TimeSpan>? Timings = null);

/// <summary>One training mode: trains a network on the context's data and reports through its reporter.</summary>
internal interface IModeRun
{
    RunResult Run(RunContext context);
}

/// <summary>The run for each <see cref="SearchMode"/>.</summary>
internal static class ModeRuns
{
    public static IModeRun For(SearchMode mode) => mode switch
    {
        SearchMode.Evolutionary => new EvolutionRun(),
        SearchMode.Differentiable => new DifferentiableRun(),
        _ => new FixedRun(),
    };
}

/// <summary>EquiNAS_E: the evolutionary search, reported per generation.</summary>
internal sealed class EvolutionRun : IModeRun
{
    public RunResult Run(RunContext context)
    {
        var o = context.Options;
        var executor = o.Cluster?.CreateExecutor(context.Threads);
        using var owned = executor as IDisposable;
        var search = new EvolutionarySearch(new EvolutionOptions
        {
            TopGroup = o.TopGroup,
            PopulationSize = o.PopulationSize,
            Generations = o.Generations,
            EpochsPerGeneration = o.EpochsPerGenerationValue,
            FinalEpochs = o.FinalEpochsValue,
            Mutations = o.Moves switch
            {
                EvolutionMoves.Paper => MutationSet.Paper,
                EvolutionMoves.Suffixes => MutationSet.Suffixes,
                _ => MutationSet.Blocks,
            },
            ParetoSelection = o.ParetoSelection,
            SimplestWithinStandardError = o.SimplestWithinStandardError,
            Training = context.Training,
            Seed = context.Seed,
            Workers = o.Workers ?? SearchDefaults.Workers,
            ThreadsPerWorker = context.Threads,
        })
        {
            Checkpoints = context.Checkpoints,
            Executor = executor,
        };
        int total = o.Generations + 1 + (o.FinalEpochsValue > 0 ? 1 : 0);
        int candidatesSoFar = 0;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        search.GenerationCompleted += (_, g) =>
        {
            // Generations grow from one network to several children per survivor: estimate the time left from the
            // time per candidate so far and a next generation of about four candidates per survivor (a copy and
            // relaxations), duplicates not counted.
            candidatesSoFar += g.Candidates.Count;
            var perCandidate = watch.Elapsed / Math.Max(1, candidatesSoFar);
            int expected = Math.Max(g.Candidates.Count, Math.Min(o.PopulationSize, g.Candidates.Count) * 4);
            context.Reporter.Generation(g, total, perCandidate * expected * (total - g.Generation - 1));
        };
        search.Resumed += (_, generations) =>
        {
            foreach (var g in generations)
            {
                context.Reporter.Generation(g, total, TimeSpan.Zero, restored: true);
            }
        };
        var result = search.Run(context.Template, context.Train, context.Validation, context.Token);
        var t = result.Times;
        // Training, calibration and validation are summed over candidates (with several workers, more than the total).
        var timings = new Dictionary<string, TimeSpan> { ["training"] = t.Training, ["calibration"] = t.Calibration, ["validation"] = t.Validation, ["morphism"] = t.Morphism };
        if (context.Checkpoints is not null)
        {
            timings["checkpoints"] = t.Checkpoints;
        }

        return new RunResult(result.Network, timings);
    }
}

/// <summary>EquiNAS_D: the differentiable search (and the optional retraining), reported per epoch.</summary>
internal sealed class DifferentiableRun : IModeRun
{
    public RunResult Run(RunContext context)
    {
        var o = context.Options;
        var options = new DifferentiableOptions
        {
            TopGroup = o.TopGroup,
            Epochs = o.EpochsValue,
            Training = context.Training,
            ArchitectureLearningRate = o.ArchitectureLearningRate,
            RetrainEpochs = o.RetrainEpochs,
            WarmupEpochs = o.WarmupEpochs,
            Initialization = (AlphaInitialization)o.MixtureStart,
            Seed = context.Seed,
        };
        var members = options.MemberGroups.Select(m => m.Name).ToArray();
        int total = (int)Math.Ceiling(o.WarmupEpochs) + (int)Math.Ceiling(o.EpochsValue) + (int)Math.Ceiling(o.RetrainEpochs);
        var search = new DifferentiableSearch(options) { Checkpoints = context.Checkpoints };
        void Report(DifferentiableEpoch e, bool restored)
        {
            var z = EquinasModelParameters.ZByName(members, e.Z);
            var groups = z.Select(layer => layer.MaxBy(p => p.Value).Key).ToArray();
            var phase = e.Phase switch
            {
                DifferentiablePhase.Warmup => EquinasPhase.Warmup,
                DifferentiablePhase.Search => EquinasPhase.Search,
                _ => EquinasPhase.Retrain,
            };
            bool mixed = e.Phase != DifferentiablePhase.Retrain;
            context.Reporter.Epoch(phase, e.Epoch, total, e.Train, e.Validation, groups, mixed ? z : null, e.Parameters, restored, mixed ? ElementMass(options.MemberGroups, e.Z) : null);
        }

        search.EpochCompleted += (_, e) => Report(e, restored: false);
        search.Resumed += (_, epochs) =>
        {
            foreach (var e in epochs)
            {
                Report(e, restored: true);
            }
        };
        using var threads = TrainingThreads.Use(context.Threads);
        var result = search.Run(context.Template, context.Train, context.Validation, context.Token);
        return new RunResult(result.TakeNetwork());
    }

    /// <summary>Per layer, the mass of z on each element of D4 (the sum of z over the members containing it), by element name.</summary>
    internal static IReadOnlyList<IReadOnlyDictionary<string, double>> ElementMass(IReadOnlyList<SymmetryGroup> members, IReadOnlyList<double[]> z) =>
        Mixed.MixedGroupCnn.ElementMass(members, z)
            .Select(layer => (IReadOnlyDictionary<string, double>)D4Element.All.ToDictionary(g => g.ToString(), g => layer[g.Index]))
            .ToArray();
}

/// <summary>A network with fixed per-layer groups, reported per epoch (and checkpointed after every epoch).</summary>
internal sealed class FixedRun : IModeRun
{
    private const string CheckpointKind = "epoch";
    private const string CheckpointPrefix = "fit";

    public RunResult Run(RunContext context)
    {
        var o = context.Options;
        var groups = o.LayerGroups is { } names
            ? names.Select(SymmetryGroup.Parse).ToArray()
            : NetworkPresets.Uniform(o.TopGroup, context.Template.Layers.Count).ToArray();
        NetworkSpec spec;
        try
        {
            spec = context.Template.WithGroups(groups);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"LayerGroups [{string.Join(", ", groups.Select(g => g.Name))}] do not fit Channels [{string.Join(", ", o.ChannelsOrDefault)}]: {e.Message}", nameof(o.LayerGroups), e);
        }

        var network = SeededInit.Create(context.Seed, () => new GroupCnn(spec), context.Device);
        try
        {
            int total = (int)Math.Ceiling(o.EpochsValue);
            var layerGroups = spec.Groups.Select(g => g.Name).ToArray();
            var trainer = new NetworkTrainer(context.Training);
            trainer.EpochCompleted += (_, e) => context.Reporter.Epoch(EquinasPhase.Training, e.Epoch, total, e.Train, e.Validation!.Value, layerGroups, null, network.ParameterCount);
            FitState? resume = null;
            if (context.Checkpoints is { } store)
            {
                if (store.Latest() is { } saved)
                {
                    resume = FitCheckpoint.Read(saved, CheckpointPrefix, saved.State<FixedState>().Fit);
                    foreach (var e in resume.Epochs)
                    {
                        context.Reporter.Epoch(EquinasPhase.Training, e.Epoch, total, e.Train, e.Validation!.Value, layerGroups, null, network.ParameterCount, restored: true);
                    }
                }

                trainer.StateSaved += (_, fit) =>
                {
                    var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    store.Save(fit.Epochs.Count, CheckpointKind, new FixedState(FitCheckpoint.Add(fit, CheckpointPrefix, entries)), entries);
                };
            }

            using var threads = TrainingThreads.Use(context.Threads);
            trainer.Fit(network, context.Train, context.Validation, o.EpochsValue, context.Seed, context.Token, resume: resume);
            network.PrepareForInference();
            return new RunResult(network);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }
}

/// <summary>What a fixed run's checkpoint holds besides the entries of its training state.</summary>
/// <param name="Fit">The training's steps and epochs.</param>
internal sealed record FixedState(FitCheckpoint.SavedFit Fit);
