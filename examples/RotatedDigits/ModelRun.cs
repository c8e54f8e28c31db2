using Equinas.MLNet;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace RotatedDigits;

/// <summary>One trained pipeline and how it did on the test split.</summary>
internal sealed record ModelRun(
    string Name,
    string Description,
    ITransformer Model,
    EquinasModelParameters Parameters,
    MulticlassClassificationMetrics Metrics,
    TimeSpan TrainingTime)
{
    /// <summary>Gets the validation accuracy of the returned network: the search's best final candidate, or the last epoch's.</summary>
    public double ValidationAccuracy
    {
        get
        {
            var history = Parameters.History;
            if (history.Candidates.Count > 0)
            {
                int last = history.Candidates.Max(c => c.Generation);
                return history.Candidates.Where(c => c.Generation == last).Max(c => c.ValidationAccuracy);
            }

            return history.Epochs.Count > 0 ? history.Epochs[^1].ValidationAccuracy : double.NaN;
        }
    }

    /// <summary>
    /// Finds the Equinas model inside a fitted pipeline: the <see cref="EquinasPredictionTransformer"/> somewhere in the
    /// (possibly nested) transformer chain.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pipeline has no Equinas trainer output.</exception>
    public static EquinasModelParameters FindModel(ITransformer model) =>
        EquinasModelParameters.FindIn(model) ?? throw new InvalidOperationException("The pipeline contains no EquinasPredictionTransformer.");
}
