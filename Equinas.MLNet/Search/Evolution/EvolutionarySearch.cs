#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Morphism;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using TorchSharp;

namespace Equinas.MLNet.Search.Evolution;

/// <summary>The outcome of EquiNAS_E: the best network (owned; dispose it), its architecture and the history.</summary>
internal sealed class EvolutionResult : IDisposable
{
    public EvolutionResult(GroupCnn network, CandidateRecord best, IReadOnlyList<GenerationRecord> history, SearchTimes times)
    {
        Network = network;
        Best = best;
        History = history;
        Times = times;
    }

    /// <summary>The selected network, in evaluation mode.</summary>
    public GroupCnn Network { get; }

    /// <summary>The selected candidate's record (last generation).</summary>
    public CandidateRecord Best { get; }

    /// <summary>Per-layer groups of the selected network.</summary>
    public IReadOnlyList<SymmetryGroup> Groups => Network.Spec.Groups;

    public IReadOnlyList<GenerationRecord> History { get; }

    public SearchTimes Times { get; }

    public void Dispose() => Network.Dispose();
}

/// <summary>
/// EquiNAS_E (method note section 5): start from a network whose layers all have the top group; every generation, each
/// parent yields an unchanged copy, children whose last layer is relaxed to each maximal subgroup, and, for every layer
/// whose group is smaller than the previous layer's, a child whose previous layer is relaxed to that group
/// (<see cref="MutationSet.Paper"/>); with <see cref="MutationSet.Blocks"/> (the default) also children whose layers from
/// the start of a run of equal groups on are relaxed one lattice step at once. Children inherit the weights through
/// the relaxation morphism (so they start from the parent's function), duplicates are dropped, every candidate trains
/// for a fraction of an epoch with an optimiser over all its parameters, and the best by validation accuracy (or on the
/// Pareto front of validation error and size) survive. After the last generation the best network optionally trains
/// <see cref="EvolutionOptions.FinalEpochs"/> more epochs (a last generation of one candidate).
/// </summary>
/// <remarks>
/// A generation's candidates are trained by an <see cref="ICandidateExecutor"/> (by default
/// <see cref="InProcessExecutor"/> with <see cref="EvolutionOptions.Workers"/> workers): the result is the same, bit for
/// bit, whatever the worker count. With <see cref="Checkpoints"/>, the state after every generation (the survivors'
/// networks, the history, the next id) is written, and a later run with the same store continues after the last
/// generation written, with the same result as an uninterrupted run.
/// </remarks>
internal sealed class EvolutionarySearch
{
    /// <summary>The kind recorded in this search's checkpoints.</summary>
    public const string CheckpointKind = "generation";

    public EvolutionarySearch(EvolutionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public EvolutionOptions Options { get; }

    /// <summary>Trains each generation's candidates; null for an <see cref="InProcessExecutor"/> with the options' workers and threads.</summary>
    public ICandidateExecutor? Executor { get; init; }

    /// <summary>Where the state after every generation is written and a run resumes from; null for none.</summary>
    public CheckpointStore? Checkpoints { get; init; }

    /// <summary>Raised after every generation (generation 0 is the initial training).</summary>
    public event EventHandler<GenerationRecord>? GenerationCompleted;

    /// <summary>Raised after each candidate is trained and evaluated (from the worker that trained it, one at a time).</summary>
    public event EventHandler<CandidateRecord>? CandidateEvaluated;

    /// <summary>Raised once, before training, when the search continues from a checkpoint: the generations read back.</summary>
    public event EventHandler<IReadOnlyList<GenerationRecord>>? Resumed;

    /// <summary>
    /// Runs the search. <paramref name="template"/> gives widths (scalar channels), kernel, pooling, head and classes;
    /// its groups are replaced by <see cref="EvolutionOptions.TopGroup"/> in every layer.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled; every network built so far is disposed.</exception>
    /// <exception cref="CheckpointMismatchException">The store's checkpoint was written for other data or options.</exception>
    public EvolutionResult Run(NetworkSpec template, ImageDataset train, ImageDataset validation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        var total = Stopwatch.StartNew();
        var clock = new Clocks();
        var history = new List<GenerationRecord>();
        var population = new List<Candidate>();
        var executor = Executor ?? new InProcessExecutor(Options.Workers, Options.ThreadsPerWorker);
        int nextId = 0, first = 1;
        try
        {
            var generationWatch = Stopwatch.StartNew();
            if (Checkpoints?.Latest() is { } saved)
            {
                var state = saved.State<EvolutionState>();
                foreach (var candidate in state.Population)
                {
                    population.Add(Candidate.Restore(candidate, saved, Options.Training.Device));
                }

                history.AddRange(state.History);
                nextId = state.NextId;
                first = state.Generation + 1;
                clock.Restore(state);
                Resumed?.Invoke(this, history.ToArray());
            }
            else
            {
                var initialSpec = template.WithGroups(NetworkPresets.Uniform(Options.TopGroup, template.Layers.Count));
                var initial = new Candidate(nextId++, null, new CandidateChange(ChangeKind.Initial), SeededInit.Create(Options.Seed, () => new GroupCnn(initialSpec), Options.Training.Device));
                population.Add(initial);
                TrainAll(population, 0, Options.InitialEpochs ?? Options.EpochsPerGeneration, train, validation, executor, clock, cancellationToken);
                initial.Survived = true;
                history.Add(Record(0, population, generationWatch.Elapsed));
                Save(0, population, history, nextId, clock, total.Elapsed);
            }

            for (int generation = first; generation <= Options.Generations; generation++)
            {
                generationWatch.Restart();
                var candidates = new List<Candidate>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                try
                {
                    foreach (var parent in population)
                    {
                        int copies = 0;
                        foreach (var move in Moves(parent.Network.Spec, Options.Mutations))
                        {
                            // The copy-only control turns every move into one more copy (its own data order, no dedup).
                            bool copy = move.Kind == ChangeKind.Copy || Options.CopyOnly;
                            var groups = copy ? parent.Network.Spec.Groups : Apply(parent.Network.Spec, move).Groups;
                            if (!Options.CopyOnly && !seen.Add(Key(groups)))
                            {
                                continue;
                            }

                            cancellationToken.ThrowIfCancellationRequested();
                            var morph = Stopwatch.StartNew();
                            var network = copy ? parent.Network.Clone() : Apply(parent.Network, move);
                            clock.Morphism += morph.Elapsed;
                            var change = copy ? new CandidateChange(ChangeKind.Copy) : new CandidateChange(move.Kind, move.Layer, move.Group!.Name);
                            candidates.Add(new Candidate(nextId++, parent.Id, change, network) { Restart = copy ? copies++ : 0 });
                        }
                    }

                    TrainAll(candidates, generation, Options.EpochsPerGeneration, train, validation, executor, clock, cancellationToken);
                }
                catch
                {
                    DisposeAll(candidates);
                    throw;
                }

                var survivors = Select(candidates, validation.Count);
                foreach (var candidate in candidates)
                {
                    candidate.Survived = survivors.Contains(candidate);
                }

                history.Add(Record(generation, candidates, generationWatch.Elapsed));
                DisposeAll(population);
                DisposeAll(candidates.Where(c => !c.Survived));
                // Parents in rank order, so that where two parents yield the same architecture the better one's is kept.
                population = Order(candidates.Where(c => c.Survived), validation.Count).ToList();
                Save(generation, population, history, nextId, clock, total.Elapsed);
            }

            if (Options.FinalEpochs > 0 && first <= Options.Generations + 1)
            {
                // The winner trains on as one more candidate (so a cluster trains it too), recorded as a last
                // generation of one and checkpointed like any generation.
                generationWatch.Restart();
                var winner = Order(population, validation.Count).First();
                var final = new Candidate(nextId++, winner.Id, new CandidateChange(ChangeKind.Final), winner.Network.Clone());
                var finals = new List<Candidate> { final };
                try
                {
                    TrainAll(finals, Options.Generations + 1, Options.FinalEpochs, train, validation, executor, clock, cancellationToken);
                }
                catch
                {
                    DisposeAll(finals);
                    throw;
                }

                final.Survived = true;
                history.Add(Record(Options.Generations + 1, finals, generationWatch.Elapsed));
                DisposeAll(population);
                population = finals;
                Save(Options.Generations + 1, population, history, nextId, clock, total.Elapsed);
            }

            var best = Order(population, validation.Count).First();
            DisposeAll(population.Where(c => c != best));
            population.Clear();
            best.Network.eval();
            var bestRecord = history[^1].Candidates.First(c => c.Id == best.Id);
            return new EvolutionResult(best.Network, bestRecord, history, clock.Times(total.Elapsed, Checkpoints));
        }
        catch
        {
            DisposeAll(population);
            throw;
        }
    }

    /// <summary>
    /// The children of an architecture as (layer, group): (-1, null) for the unchanged copy; the last layer relaxed to
    /// each maximal subgroup of its group; layer i-1 relaxed to layer i's group wherever that is smaller (the paper's
    /// moves, <see cref="MutationSet.Paper"/>).
    /// </summary>
    internal static IEnumerable<(int Layer, SymmetryGroup? Group)> Mutations(NetworkSpec spec) =>
        Moves(spec, MutationSet.Paper).Select(m => (m.Kind == ChangeKind.Copy ? -1 : m.Layer, m.Group));

    /// <summary>
    /// The children of an architecture: the copy first, then the paper's relaxations, then for
    /// <see cref="MutationSet.Blocks"/> the suffix relaxations (<see cref="ChangeKind.RelaxFrom"/>) from the first layer
    /// of every run of equal groups to each maximal subgroup of its group (for <see cref="MutationSet.Suffixes"/> from
    /// every layer but the last). Moves may give the same architecture;
    /// the search keeps the first.
    /// </summary>
    internal static IEnumerable<Move> Moves(NetworkSpec spec, MutationSet set)
    {
        yield return new Move(ChangeKind.Copy, -1, null);
        int last = spec.Layers.Count - 1;
        foreach (var maximal in spec.Layers[last].Group.MaximalSubgroups())
        {
            yield return new Move(ChangeKind.Relax, last, maximal);
        }

        for (int i = 1; i < spec.Layers.Count; i++)
        {
            if (spec.Layers[i].Group != spec.Layers[i - 1].Group)
            {
                yield return new Move(ChangeKind.Relax, i - 1, spec.Layers[i].Group);
            }
        }

        if (set == MutationSet.Paper)
        {
            yield break;
        }

        for (int k = 0; k < last; k++)
        {
            if (set == MutationSet.Blocks && k > 0 && spec.Layers[k].Group == spec.Layers[k - 1].Group)
            {
                continue;
            }

            foreach (var maximal in spec.Layers[k].Group.MaximalSubgroups())
            {
                yield return new Move(ChangeKind.RelaxFrom, k, maximal);
            }
        }
    }

    /// <summary>
    /// The single-layer relaxations a relaxation move is made of, in the order they are applied: for
    /// <see cref="ChangeKind.Relax"/> the one layer; for <see cref="ChangeKind.RelaxFrom"/> every layer from the last
    /// back to the move's whose group changes when intersected with the move's group (relaxing one layer leaves the
    /// others' groups as they are, so the targets can be read off the parent's architecture).
    /// </summary>
    private static IEnumerable<(int Layer, SymmetryGroup Group)> Steps(NetworkSpec spec, Move move)
    {
        if (move.Kind == ChangeKind.Relax)
        {
            yield return (move.Layer, move.Group!);
            yield break;
        }

        for (int i = spec.Layers.Count - 1; i >= move.Layer; i--)
        {
            var target = spec.Layers[i].Group.Intersect(move.Group!);
            if (target != spec.Layers[i].Group)
            {
                yield return (i, target);
            }
        }
    }

    /// <summary>The architecture a relaxation move gives.</summary>
    internal static NetworkSpec Apply(NetworkSpec spec, Move move) =>
        Steps(spec, move).Aggregate(spec, (current, step) => RelaxationMorphism.RelaxedSpec(current, step.Layer, step.Group));

    /// <summary>
    /// The child network a relaxation move gives, made by the morphism (so it computes what the parent computes); a
    /// suffix move relaxes from the last layer back, every step exact.
    /// </summary>
    internal static GroupCnn Apply(GroupCnn parent, Move move)
    {
        GroupCnn? current = null;
        try
        {
            foreach (var (layer, group) in Steps(parent.Spec, move))
            {
                var next = RelaxationMorphism.Relax(current ?? parent, layer, group);
                current?.Dispose();
                current = next;
            }

            return current ?? parent.Clone();
        }
        catch
        {
            current?.Dispose();
            throw;
        }
    }

    /// <summary>One child-making move: a copy, a one-layer relaxation, or a suffix relaxation from a layer.</summary>
    internal readonly record struct Move(ChangeKind Kind, int Layer, SymmetryGroup? Group);

    private static string Key(IEnumerable<SymmetryGroup> groups) => string.Join("-", groups.Select(g => g.Name));

    /// <summary>Trains and evaluates the candidates through the executor and records their metrics.</summary>
    private void TrainAll(List<Candidate> candidates, int generation, double epochs, ImageDataset train, ImageDataset validation, ICandidateExecutor executor, Clocks clock, CancellationToken cancellationToken)
    {
        // A seed per candidate and generation: the data order does not depend on how many candidates came before.
        // Copies of one parent in the copy-only control (Restart 1, 2, ...) get data orders of their own.
        var jobs = candidates.Select(c => new CandidateJob(c.Id, c.Network, epochs, unchecked((Options.Seed * 1_000_003) + (generation * 7_919) + c.Key + (c.Restart * 104_729)))).ToArray();
        var byId = candidates.ToDictionary(c => c.Id);
        var outcomes = executor.Execute(
            new CandidateBatch(jobs, train, validation, Options.Training),
            outcome => CandidateEvaluated?.Invoke(this, byId[outcome.Id].Apply(outcome, generation).ToRecord()),
            cancellationToken);
        foreach (var outcome in outcomes)
        {
            byId[outcome.Id].Apply(outcome, generation);
            clock.Training += TimeSpan.FromTicks(outcome.Epochs.Sum(e => e.TrainingTime.Ticks));
            clock.Calibration += TimeSpan.FromTicks(outcome.Epochs.Sum(e => e.CalibrationTime.Ticks));
            clock.Validation += TimeSpan.FromTicks(outcome.Epochs.Sum(e => e.ValidationTime.Ticks));
        }
    }

    /// <summary>Writes the state after <paramref name="generation"/>: the survivors' networks, the history, the next id and the clocks.</summary>
    private void Save(int generation, List<Candidate> population, List<GenerationRecord> history, int nextId, Clocks clock, TimeSpan elapsed)
    {
        if (Checkpoints is null)
        {
            return;
        }

        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var candidate in population)
        {
            using var architecture = new MemoryStream();
            using var weights = new MemoryStream();
            using (var architectureWriter = new BinaryWriter(architecture, System.Text.Encoding.UTF8, leaveOpen: true))
            using (var weightsWriter = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                // Not disposed: the network stays the candidate's.
                new StoredNetwork(candidate.Network).Save(architectureWriter, weightsWriter);
            }

            entries[Candidate.ArchitectureEntry(candidate.Id)] = architecture.ToArray();
            entries[Candidate.WeightsEntry(candidate.Id)] = weights.ToArray();
        }

        var state = new EvolutionState(
            generation, nextId, history.ToArray(), population.Select(c => c.Save()).ToArray(),
            clock.Training, clock.Calibration, clock.Validation, clock.Morphism, clock.Elapsed + elapsed);
        Checkpoints.Save(generation, CheckpointKind, state, entries);
    }

    private static IOrderedEnumerable<Candidate> Rank(IEnumerable<Candidate> candidates) =>
        CandidateRanking.Rank(candidates, c => (c.ValidationAccuracy, c.ValidationLoss, c.Parameters, c.Id));

    /// <summary>
    /// The search's order of candidates: <see cref="CandidateRanking"/>, or with
    /// <see cref="EvolutionOptions.SimplestWithinStandardError"/> the one-standard-error rule on top of it.
    /// </summary>
    private List<Candidate> Order(IEnumerable<Candidate> candidates, int validationCount) =>
        Options.SimplestWithinStandardError && !Options.ParetoSelection
            ? CandidateRanking.SimplestWithinStandardError(candidates, c => (c.ValidationAccuracy, c.ValidationLoss, c.Parameters, c.Id), validationCount)
            : Rank(candidates).ToList();

    private HashSet<Candidate> Select(List<Candidate> candidates, int validationCount)
    {
        if (!Options.ParetoSelection)
        {
            return Order(candidates, validationCount).Take(Options.PopulationSize).ToHashSet();
        }

        // Non-dominated sorting on (validation error, parameters), fronts taken whole while they fit, the last one
        // by accuracy.
        var selected = new HashSet<Candidate>();
        var remaining = candidates.ToList();
        while (selected.Count < Options.PopulationSize && remaining.Count > 0)
        {
            var front = remaining.Where(a => !remaining.Any(b => Dominates(b, a))).ToList();
            foreach (var c in Rank(front).Take(Options.PopulationSize - selected.Count))
            {
                selected.Add(c);
            }

            remaining.RemoveAll(front.Contains);
        }

        return selected;
    }

    private static bool Dominates(Candidate a, Candidate b) =>
        a.ValidationAccuracy >= b.ValidationAccuracy && a.Parameters <= b.Parameters
        && (a.ValidationAccuracy > b.ValidationAccuracy || a.Parameters < b.Parameters);

    private GenerationRecord Record(int generation, IEnumerable<Candidate> candidates, TimeSpan elapsed)
    {
        var record = new GenerationRecord(generation, candidates.Select(c => c.ToRecord()).ToArray(), elapsed);
        GenerationCompleted?.Invoke(this, record);
        return record;
    }

    private static void DisposeAll(IEnumerable<Candidate> candidates)
    {
        foreach (var c in candidates.ToArray())
        {
            c.Network.Dispose();
        }
    }

    private sealed class Clocks
    {
        public TimeSpan Training { get; set; }

        public TimeSpan Calibration { get; set; }

        public TimeSpan Validation { get; set; }

        public TimeSpan Morphism { get; set; }

        /// <summary>Wall clock of the runs before this one (a resumed search).</summary>
        public TimeSpan Elapsed { get; set; }

        public void Restore(EvolutionState state)
        {
            Training = state.Training;
            Calibration = state.Calibration;
            Validation = state.Validation;
            Morphism = state.Morphism;
            Elapsed = state.Elapsed;
        }

        public SearchTimes Times(TimeSpan elapsed, CheckpointStore? checkpoints) =>
            new(Training, Validation, Morphism, Elapsed + elapsed, Calibration, checkpoints?.WriteTime ?? TimeSpan.Zero);
    }

    /// <summary>What a checkpoint of this search holds besides the survivors' networks.</summary>
    /// <param name="Generation">The last generation completed.</param>
    /// <param name="NextId">The id the next candidate gets.</param>
    /// <param name="History">Every generation so far.</param>
    /// <param name="Population">The survivors, in rank order.</param>
    /// <param name="Training">Training time so far (summed over candidates).</param>
    /// <param name="Calibration">Norm re-estimation time so far.</param>
    /// <param name="Validation">Validation time so far.</param>
    /// <param name="Morphism">Morphism time so far.</param>
    /// <param name="Elapsed">Wall clock so far.</param>
    internal sealed record EvolutionState(
        int Generation, int NextId, IReadOnlyList<GenerationRecord> History, IReadOnlyList<SavedCandidate> Population,
        TimeSpan Training, TimeSpan Calibration, TimeSpan Validation, TimeSpan Morphism, TimeSpan Elapsed);

    /// <summary>A survivor as a checkpoint holds it (its network is in the entries named by its id).</summary>
    internal sealed record SavedCandidate(int Id, int? ParentId, CandidateChange Change, int Generation, double ValidationAccuracy, double ValidationLoss, double TrainLoss, bool Survived);

    private sealed class Candidate(int id, int? parentId, CandidateChange change, GroupCnn network)
    {
        public int Id { get; } = id;

        public int? ParentId { get; } = parentId;

        public CandidateChange Change { get; } = change;

        /// <summary>The network (replaced when an executor hands back a rebuilt one).</summary>
        public GroupCnn Network { get; private set; } = network;

        public int Generation { get; set; }

        /// <summary>0, or for the copy-only control's copies of one parent, 1, 2, ... (the first copy is 0).</summary>
        public int Restart { get; init; }

        public long Parameters { get; } = network.ParameterCount;

        /// <summary>A stable hash of the architecture, for seeding.</summary>
        public int Key { get; } = StableHash(network.Spec.Describe());

        public double ValidationAccuracy { get; set; }

        public double ValidationLoss { get; set; }

        public double TrainLoss { get; set; }

        public bool Survived { get; set; }

        public static string ArchitectureEntry(int id) => $"network-{id}.architecture";

        public static string WeightsEntry(int id) => $"network-{id}.weights";

        /// <summary>Rebuilds a survivor from a checkpoint.</summary>
        public static Candidate Restore(SavedCandidate saved, Checkpoint checkpoint, TorchSharp.torch.Device? device)
        {
            using var architecture = new BinaryReader(new MemoryStream(checkpoint.Entry(ArchitectureEntry(saved.Id)), writable: false));
            using var weights = new BinaryReader(new MemoryStream(checkpoint.Entry(WeightsEntry(saved.Id)), writable: false));
            var stored = StoredNetwork.Load(architecture, weights, device);
            if (stored.Network is not GroupCnn network)
            {
                stored.Dispose();
                throw new InvalidDataException($"The checkpoint '{checkpoint.Path}' holds a {stored.Description.Summary()} network for candidate {saved.Id}; the evolutionary search keeps fixed ones.");
            }

            return new Candidate(saved.Id, saved.ParentId, saved.Change, network)
            {
                Generation = saved.Generation,
                ValidationAccuracy = saved.ValidationAccuracy,
                ValidationLoss = saved.ValidationLoss,
                TrainLoss = saved.TrainLoss,
                Survived = saved.Survived,
            };
        }

        public SavedCandidate Save() => new(Id, ParentId, Change, Generation, ValidationAccuracy, ValidationLoss, TrainLoss, Survived);

        /// <summary>Takes a trained candidate's network and metrics.</summary>
        public Candidate Apply(CandidateOutcome outcome, int generation)
        {
            var last = outcome.Last;
            Network = outcome.Network;
            TrainLoss = last.Train.Loss;
            ValidationAccuracy = last.Validation!.Value.Accuracy;
            ValidationLoss = last.Validation!.Value.Loss;
            Generation = generation;
            return this;
        }

        public CandidateRecord ToRecord() => new(
            Generation, Id, ParentId, Change, Network.Spec.Groups.Select(g => g.Name).ToArray(), Parameters,
            ValidationAccuracy, ValidationLoss, TrainLoss, Survived);

        private static int StableHash(string text)
        {
            unchecked
            {
                int hash = (int)2166136261;
                foreach (char ch in text)
                {
                    hash = (hash ^ ch) * 16777619;
                }

                return hash;
            }
        }
    }
}
