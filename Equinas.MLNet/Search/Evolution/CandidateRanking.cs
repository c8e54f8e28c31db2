#nullable enable
namespace Equinas.MLNet.Search.Evolution;

/// <summary>
/// The one order of candidates, used for selection, for the parents' order, for the best of a generation in the
/// history and progress, and for the network a search returns: higher validation accuracy first, then lower
/// validation loss, then fewer parameters, then the earlier id (so ties never depend on the order of evaluation).
/// </summary>
internal static class CandidateRanking
{
    /// <summary>The candidates best first.</summary>
    public static IOrderedEnumerable<T> Rank<T>(IEnumerable<T> candidates, Func<T, (double Accuracy, double Loss, long Parameters, int Id)> key)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(key);
        return candidates
            .OrderByDescending(c => key(c).Accuracy)
            .ThenBy(c => key(c).Loss)
            .ThenBy(c => key(c).Parameters)
            .ThenBy(c => key(c).Id);
    }

    /// <summary>The records best first.</summary>
    public static IOrderedEnumerable<CandidateRecord> Rank(IEnumerable<CandidateRecord> records) =>
        Rank(records, r => (r.ValidationAccuracy, r.ValidationLoss, r.Parameters, r.Id));
}
