#nullable enable
namespace Equinas.MLNet.Search.Evolution;

/// <summary>One candidate of one generation, as the search history records it.</summary>
/// <param name="Generation">0 for the initial network, then 1, 2, ...</param>
/// <param name="Id">Unique id within the search.</param>
/// <param name="ParentId">The candidate it was made from, or null for the initial network.</param>
/// <param name="Change">"initial", "copy" or "relax layer i to H" (0-based layer).</param>
/// <param name="Groups">Per-layer group names.</param>
/// <param name="Parameters">Trainable scalars.</param>
/// <param name="ValidationAccuracy">Accuracy on the validation set after this generation's training.</param>
/// <param name="ValidationLoss">Mean cross-entropy on the validation set.</param>
/// <param name="TrainLoss">Mean training loss over this generation's batches.</param>
/// <param name="Survived">Whether it was selected as a parent for the next generation.</param>
internal sealed record CandidateRecord(
    int Generation, int Id, int? ParentId, string Change, IReadOnlyList<string> Groups, long Parameters,
    double ValidationAccuracy, double ValidationLoss, double TrainLoss, bool Survived);

/// <summary>A generation's candidates and its cost.</summary>
/// <param name="Generation">0 for the initial network.</param>
/// <param name="Candidates">Every candidate trained in this generation.</param>
/// <param name="Elapsed">Wall-clock time of the generation.</param>
internal sealed record GenerationRecord(int Generation, IReadOnlyList<CandidateRecord> Candidates, TimeSpan Elapsed)
{
    /// <summary>The best candidate by validation accuracy.</summary>
    public CandidateRecord Best => Candidates.OrderByDescending(c => c.ValidationAccuracy).ThenBy(c => c.ValidationLoss).First();
}

/// <summary>Where the time of a search went.</summary>
/// <param name="Training">Training steps.</param>
/// <param name="Validation">Validation passes.</param>
/// <param name="Morphism">Relaxing and copying networks.</param>
/// <param name="Total">The whole search.</param>
internal sealed record SearchTimes(TimeSpan Training, TimeSpan Validation, TimeSpan Morphism, TimeSpan Total);
