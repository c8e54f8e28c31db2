#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Evolution;

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

    /// <summary>Select survivors on the Pareto front of (validation error, parameter count) instead of by accuracy alone.</summary>
    public bool ParetoSelection { get; init; }

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

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Workers, nameof(Workers));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ThreadsPerWorker, nameof(ThreadsPerWorker));
        Training.Validate();
    }
}
