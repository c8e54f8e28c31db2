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

    /// <summary>
    /// Breiman's one-standard-error rule on top of <see cref="Rank{T}"/>: the candidates whose accuracy is at least the
    /// best's minus <see cref="StandardError"/> of the best on <paramref name="validationCount"/> images come first,
    /// fewest parameters first (equal sizes in the ranking's order), then the others in the ranking's order.
    /// </summary>
    public static List<T> SimplestWithinStandardError<T>(IEnumerable<T> candidates, Func<T, (double Accuracy, double Loss, long Parameters, int Id)> key, int validationCount)
    {
        var ranked = Rank(candidates, key).ToList();
        if (ranked.Count == 0)
        {
            return ranked;
        }

        double best = key(ranked[0]).Accuracy;
        double threshold = best - StandardError(best, validationCount);
        // OrderBy is stable: candidates of equal size keep the ranking's order.
        return ranked.Where(c => key(c).Accuracy >= threshold).OrderBy(c => key(c).Parameters)
            .Concat(ranked.Where(c => !(key(c).Accuracy >= threshold)))
            .ToList();
    }

    /// <summary>The binomial standard error <c>sqrt(a (1 - a) / n)</c> of an accuracy <paramref name="accuracy"/> measured on <paramref name="count"/> images (0 for none).</summary>
    public static double StandardError(double accuracy, int count)
    {
        double a = Math.Clamp(accuracy, 0, 1);
        return count > 0 ? Math.Sqrt(a * (1 - a) / count) : 0;
    }

    /// <summary>The records best first.</summary>
    public static IOrderedEnumerable<CandidateRecord> Rank(IEnumerable<CandidateRecord> records) =>
        Rank(records, r => (r.ValidationAccuracy, r.ValidationLoss, r.Parameters, r.Id));
}
