#nullable enable
using System.Text.Json.Serialization;

namespace Equinas.MLNet.Search.Evolution;

/// <summary>How a candidate was made.</summary>
internal enum ChangeKind
{
    /// <summary>The initial network, every layer with the top group.</summary>
    Initial,

    /// <summary>An unchanged copy of its parent.</summary>
    Copy,

    /// <summary>Its parent with one layer relaxed to a subgroup by the morphism.</summary>
    Relax,

    /// <summary>
    /// Its parent with layer <see cref="CandidateChange.Layer"/> relaxed to a maximal subgroup H of its group and every
    /// later layer to its group's intersection with H (the morphism applied from the last layer back).
    /// </summary>
    RelaxFrom,

    /// <summary>The search's best network after the last generation, trained further for the final epochs.</summary>
    Final,
}

/// <summary>How a candidate was made from its parent.</summary>
/// <param name="Kind">Initial network, copy or relaxation.</param>
/// <param name="Layer">The relaxed layer (0-based), for <see cref="ChangeKind.Relax"/>; the first relaxed layer for <see cref="ChangeKind.RelaxFrom"/>.</param>
/// <param name="Group">The group the layer was relaxed to, for <see cref="ChangeKind.Relax"/> and <see cref="ChangeKind.RelaxFrom"/>.</param>
internal readonly record struct CandidateChange(ChangeKind Kind, int? Layer = null, string? Group = null)
{
    /// <summary>"initial", "copy", "final", "relax layer i to H" or "relax layers i.. to H".</summary>
    public override string ToString() => Kind switch
    {
        ChangeKind.Relax => $"relax layer {Layer} to {Group}",
        ChangeKind.RelaxFrom => $"relax layers {Layer}.. to {Group}",
        _ => Kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>One candidate of one generation, as the search history records it.</summary>
/// <param name="Generation">0 for the initial network, then 1, 2, ...</param>
/// <param name="Id">Unique id within the search.</param>
/// <param name="ParentId">The candidate it was made from, or null for the initial network.</param>
/// <param name="Change">How it was made from its parent.</param>
/// <param name="Groups">Per-layer group names.</param>
/// <param name="Parameters">Trainable scalars.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation set after this generation's training.</param>
/// <param name="ValidationLoss">Mean cross-entropy on the validation set.</param>
/// <param name="TrainLoss">Mean training loss over this generation's batches.</param>
/// <param name="Survived">Whether it was selected as a parent for the next generation.</param>
internal sealed record CandidateRecord(
    int Generation, int Id, int? ParentId, CandidateChange Change, IReadOnlyList<string> Groups, long Parameters,
    double ValidationAccuracy, double ValidationLoss, double TrainLoss, bool Survived);

/// <summary>A generation's candidates and its cost.</summary>
/// <param name="Generation">0 for the initial network.</param>
/// <param name="Candidates">Every candidate trained in this generation.</param>
/// <param name="Elapsed">Wall-clock time of the generation.</param>
internal sealed record GenerationRecord(int Generation, IReadOnlyList<CandidateRecord> Candidates, TimeSpan Elapsed)
{
    /// <summary>The best candidate (<see cref="CandidateRanking"/>).</summary>
    [JsonIgnore]
    public CandidateRecord Best => CandidateRanking.Rank(Candidates).First();
}

/// <summary>
/// Where the time of a search went. Training, calibration and validation are summed over candidates, so with several
/// workers they add up to more than the wall-clock total.
/// </summary>
/// <param name="Training">Training steps.</param>
/// <param name="Validation">Validation passes.</param>
/// <param name="Morphism">Relaxing and copying networks.</param>
/// <param name="Total">The whole search, wall clock (a resumed search: the runs before it included).</param>
/// <param name="Calibration">Norm re-estimation before validation.</param>
/// <param name="Checkpoints">Writing checkpoints.</param>
internal sealed record SearchTimes(TimeSpan Training, TimeSpan Validation, TimeSpan Morphism, TimeSpan Total, TimeSpan Calibration = default, TimeSpan Checkpoints = default);
