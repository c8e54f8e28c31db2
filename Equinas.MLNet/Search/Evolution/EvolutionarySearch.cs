#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Morphism;
using Equinas.MLNet.Nn.Networks;
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
/// whose group is smaller than the previous layer's, a child whose previous layer is relaxed to that group. Children
/// inherit the weights through the relaxation morphism (so they start from the parent's function), duplicates are
/// dropped, every candidate trains for a fraction of an epoch with an optimiser over all its parameters, and the best
/// by validation accuracy (or on the Pareto front of validation error and size) survive.
/// </summary>
internal sealed class EvolutionarySearch
{
    public EvolutionarySearch(EvolutionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public EvolutionOptions Options { get; }

    /// <summary>Raised after every generation (generation 0 is the initial training).</summary>
    public event EventHandler<GenerationRecord>? GenerationCompleted;

    /// <summary>Raised after each candidate is trained and evaluated.</summary>
    public event EventHandler<CandidateRecord>? CandidateEvaluated;

    /// <summary>
    /// Runs the search. <paramref name="template"/> gives widths (scalar channels), kernel, pooling, head and classes;
    /// its groups are replaced by <see cref="EvolutionOptions.TopGroup"/> in every layer.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled; every network built so far is disposed.</exception>
    public EvolutionResult Run(NetworkSpec template, ImageDataset train, ImageDataset validation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        var total = Stopwatch.StartNew();
        var clock = new Clocks();
        var history = new List<GenerationRecord>();
        var population = new List<Candidate>();
        int nextId = 0;
        try
        {
            var initialSpec = template.WithGroups(NetworkPresets.Uniform(Options.TopGroup, template.Layers.Count));
            var initial = new Candidate(nextId++, null, new CandidateChange(ChangeKind.Initial), SeededInit.Create(Options.Seed, () => new GroupCnn(initialSpec)));
            population.Add(initial);
            var generationWatch = Stopwatch.StartNew();
            TrainAndEvaluate(initial, 0, Options.InitialEpochs ?? Options.EpochsPerGeneration, train, validation, clock, cancellationToken);
            initial.Survived = true;
            history.Add(Record(0, population, generationWatch.Elapsed));

            for (int generation = 1; generation <= Options.Generations; generation++)
            {
                generationWatch.Restart();
                var candidates = new List<Candidate>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                try
                {
                    foreach (var parent in population)
                    {
                        foreach (var (layer, group) in Mutations(parent.Network.Spec))
                        {
                            var groups = layer < 0 ? parent.Network.Spec.Groups : RelaxationMorphism.RelaxedSpec(parent.Network.Spec, layer, group!).Groups;
                            if (!seen.Add(Key(groups)))
                            {
                                continue;
                            }

                            cancellationToken.ThrowIfCancellationRequested();
                            var morph = Stopwatch.StartNew();
                            var network = layer < 0 ? parent.Network.Clone() : RelaxationMorphism.Relax(parent.Network, layer, group!);
                            clock.Morphism += morph.Elapsed;
                            candidates.Add(new Candidate(nextId++, parent.Id, layer < 0 ? new CandidateChange(ChangeKind.Copy) : new CandidateChange(ChangeKind.Relax, layer, group!.Name), network));
                        }
                    }

                    foreach (var candidate in candidates)
                    {
                        TrainAndEvaluate(candidate, generation, Options.EpochsPerGeneration, train, validation, clock, cancellationToken);
                    }
                }
                catch
                {
                    DisposeAll(candidates);
                    throw;
                }

                var survivors = Select(candidates);
                foreach (var candidate in candidates)
                {
                    candidate.Survived = survivors.Contains(candidate);
                }

                history.Add(Record(generation, candidates, generationWatch.Elapsed));
                DisposeAll(population);
                DisposeAll(candidates.Where(c => !c.Survived));
                // Parents in rank order, so that where two parents yield the same architecture the better one's is kept.
                population = Rank(candidates.Where(c => c.Survived)).ToList();
            }

            var best = Rank(population).First();
            DisposeAll(population.Where(c => c != best));
            population.Clear();
            best.Network.eval();
            var bestRecord = history[^1].Candidates.First(c => c.Id == best.Id);
            return new EvolutionResult(best.Network, bestRecord, history, new SearchTimes(clock.Training, clock.Validation, clock.Morphism, total.Elapsed));
        }
        catch
        {
            DisposeAll(population);
            throw;
        }
    }

    /// <summary>
    /// The children of an architecture as (layer, group): (-1, null) for the unchanged copy; the last layer relaxed to
    /// each maximal subgroup of its group; layer i-1 relaxed to layer i's group wherever that is smaller.
    /// </summary>
    internal static IEnumerable<(int Layer, SymmetryGroup? Group)> Mutations(NetworkSpec spec)
    {
        yield return (-1, null);
        int last = spec.Layers.Count - 1;
        foreach (var maximal in spec.Layers[last].Group.MaximalSubgroups())
        {
            yield return (last, maximal);
        }

        for (int i = 1; i < spec.Layers.Count; i++)
        {
            if (spec.Layers[i].Group != spec.Layers[i - 1].Group)
            {
                yield return (i - 1, spec.Layers[i].Group);
            }
        }
    }

    private static string Key(IEnumerable<SymmetryGroup> groups) => string.Join("-", groups.Select(g => g.Name));

    private void TrainAndEvaluate(Candidate candidate, int generation, double epochs, ImageDataset train, ImageDataset validation, Clocks clock, CancellationToken cancellationToken)
    {
        // A seed per candidate and generation: the data order does not depend on how many candidates came before.
        int seed = unchecked((Options.Seed * 1_000_003) + (generation * 7_919) + candidate.Key);
        var history = new NetworkTrainer(Options.Training).Fit(candidate.Network, train, validation, epochs, seed, cancellationToken);
        var last = history[^1];
        clock.Training += TimeSpan.FromTicks(history.Sum(e => e.TrainingTime.Ticks));
        clock.Validation += TimeSpan.FromTicks(history.Sum(e => e.ValidationTime.Ticks));
        candidate.TrainLoss = last.Train.Loss;
        candidate.ValidationAccuracy = last.Validation!.Value.Accuracy;
        candidate.ValidationLoss = last.Validation!.Value.Loss;
        candidate.Generation = generation;
        CandidateEvaluated?.Invoke(this, candidate.ToRecord());
    }

    private static IOrderedEnumerable<Candidate> Rank(IEnumerable<Candidate> candidates) =>
        CandidateRanking.Rank(candidates, c => (c.ValidationAccuracy, c.ValidationLoss, c.Parameters, c.Id));

    private HashSet<Candidate> Select(List<Candidate> candidates)
    {
        if (!Options.ParetoSelection)
        {
            return Rank(candidates).Take(Options.PopulationSize).ToHashSet();
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

        public TimeSpan Validation { get; set; }

        public TimeSpan Morphism { get; set; }
    }

    private sealed class Candidate(int id, int? parentId, CandidateChange change, GroupCnn network)
    {
        public int Id { get; } = id;

        public int? ParentId { get; } = parentId;

        public CandidateChange Change { get; } = change;

        public GroupCnn Network { get; } = network;

        public int Generation { get; set; }

        public long Parameters { get; } = network.ParameterCount;

        /// <summary>A stable hash of the architecture, for seeding.</summary>
        public int Key { get; } = StableHash(network.Spec.Describe());

        public double ValidationAccuracy { get; set; }

        public double ValidationLoss { get; set; }

        public double TrainLoss { get; set; }

        public bool Survived { get; set; }

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
