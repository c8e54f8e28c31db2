#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Evolution;

/// <summary>Which children a parent of EquiNAS_E yields.</summary>
internal enum MutationSet
{
    /// <summary>
    /// The paper's: an unchanged copy, the last layer relaxed to each maximal subgroup of its group, and every layer
    /// whose group is larger than the next layer's relaxed to that group. One lattice step per generation at the end
    /// of the network; a layer k steps from the last needs about k + 3 generations to reach C1.
    /// </summary>
    Paper,

    /// <summary>
    /// The paper's children and, for the first layer of every run of equal groups, that layer relaxed to each maximal
    /// subgroup H of its group with every later layer intersected with H: a whole run moves one lattice step at once
    /// (all-C1 in 3 generations, the paper's moves need 3 + layers - 1). Of the 155 chains of a 4-layer network, 102
    /// are reached within 4 generations (the paper's moves: 52), every one within 6 (paper: 9); about twice the
    /// paper's children per survivor.
    /// </summary>
    Blocks,

    /// <summary>
    /// The paper's children and, for every layer but the last, that layer relaxed to each maximal subgroup of its
    /// group with every later layer intersected with it: every chain within 3 generations (the lattice's height), at
    /// about (layers - 1) x 3 children per survivor.
    /// </summary>
    Suffixes,
}

/// <summary>
/// Budget and settings of EquiNAS_E. The defaults finish in minutes on 2 CPU cores with the small network; the
/// paper's runs used <c>PopulationSize = 5</c>, <c>Generations = 50</c>, <c>EpochsPerGeneration = 0.5</c>, plain SGD
/// with learning rate 0.1 and batch 64 (about 25 epochs per lineage, hundreds in total).
/// </summary>
internal sealed record EvolutionOptions
{
    /// <summary>The group every layer starts from (any lattice member).</summary>
    public SymmetryGroup TopGroup { get; init; } = SymmetryGroup.D4;

    /// <summary>Survivors per generation (the paper's mu).</summary>
    public int PopulationSize { get; init; } = SearchDefaults.PopulationSize;

    /// <summary>Generations after the initial training.</summary>
    public int Generations { get; init; } = SearchDefaults.Generations;

    /// <summary>Epochs every candidate trains per generation; fractions allowed.</summary>
    public double EpochsPerGeneration { get; init; } = SearchDefaults.EpochsPerGeneration;

    /// <summary>Epochs the initial all-top-group network trains before the first generation (default: one generation's worth).</summary>
    public double? InitialEpochs { get; init; }

    /// <summary>Which children each parent yields (default <see cref="MutationSet.Blocks"/>).</summary>
    public MutationSet Mutations { get; init; } = SearchDefaults.Mutations;

    /// <summary>
    /// A control, not a search: every parent yields as many unchanged copies (each trained with its own data order) as
    /// the relaxation search would yield children, selected and trained the same way, so that the search's gain over
    /// training one all-top-group network with restarts and selection can be told apart.
    /// </summary>
    public bool CopyOnly { get; init; }

    /// <summary>Epochs the best network trains after the last generation (0: none, the paper's behaviour).</summary>
    public double FinalEpochs { get; init; }

    /// <summary>Select survivors on the Pareto front of (validation error, parameter count) instead of by accuracy alone.</summary>
    public bool ParetoSelection { get; init; }

    /// <summary>
    /// Breiman's one-standard-error rule in every ranking the search makes (survivors, parents' order, the winner):
    /// the candidates whose validation accuracy is within one binomial standard error of the best,
    /// <c>sqrt(a (1 - a) / n)</c> for the best accuracy <c>a</c> on <c>n</c> validation images, come first, fewest
    /// parameters first (with equal scalar widths, the more symmetric first), then the others by accuracy. A
    /// relaxation then has to buy more accuracy than the validation split can tell from noise. Among candidates of
    /// equal size (the copy-only control) the order is the accuracy ranking's. Ignored with
    /// <see cref="ParetoSelection"/>, which has its own order.
    /// </summary>
    public bool SimplestWithinStandardError { get; init; } = SearchDefaults.SimplestWithinStandardError;

    /// <summary>Optimiser and batch settings for every candidate.</summary>
    public TrainingOptions Training { get; init; } = new();

    /// <summary>Seed of weight initialisation and data order.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Candidates trained at once (speed only: results do not depend on it).</summary>
    public int Workers { get; init; } = SearchDefaults.Workers;

    /// <summary>libtorch intra-op threads each candidate trains with (results depend on it: libtorch's reductions split by thread).</summary>
    public int ThreadsPerWorker { get; init; } = SearchDefaults.ThreadsPerWorker;

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(TopGroup, nameof(TopGroup));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(PopulationSize, nameof(PopulationSize));
        ArgumentOutOfRangeException.ThrowIfNegative(Generations, nameof(Generations));
        if (!(EpochsPerGeneration > 0) || double.IsInfinity(EpochsPerGeneration))
        {
            throw new ArgumentOutOfRangeException(nameof(EpochsPerGeneration), EpochsPerGeneration, "Must be positive.");
        }

        if (InitialEpochs is { } initial && (!(initial > 0) || double.IsInfinity(initial)))
        {
            throw new ArgumentOutOfRangeException(nameof(InitialEpochs), initial, "Must be positive (or null for one generation's worth).");
        }

        if (!(FinalEpochs >= 0) || double.IsInfinity(FinalEpochs))
        {
            throw new ArgumentOutOfRangeException(nameof(FinalEpochs), FinalEpochs, "Must be zero or positive.");
        }

        if (!Enum.IsDefined(Mutations))
        {
            throw new ArgumentOutOfRangeException(nameof(Mutations), Mutations, "Must be Paper, Blocks or Suffixes.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Workers, nameof(Workers));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ThreadsPerWorker, nameof(ThreadsPerWorker));
        Training.Validate();
    }
}
