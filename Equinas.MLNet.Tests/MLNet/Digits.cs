using Microsoft.ML;
using Microsoft.ML.Data;
using DigitRow = Equinas.Data.DigitRow;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>Scores as a user's ModelOutput class would hold them.</summary>
public sealed class DigitPrediction
{
    public float[] Score { get; set; } = [];

    public string PredictedDigit { get; set; } = "";
}

/// <summary>The shipped MNIST digits (Equinas.Data), read once per test process, as test rows.</summary>
internal static class Digits
{
    private static readonly Lazy<Equinas.Data.ShippedDigits> Data = new(() => Equinas.Data.ShippedDigits.Load());

    // Each split converted once per process: the tests ask for small parts of the same splits many times.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, IReadOnlyList<Equinas.Data.DigitImage>> Splits = new();

    public const int Size = 28;

    /// <summary>Rows of the given split (0 train, 1 validation, 2 test) whose digit is in <paramref name="classes"/>, at most <paramref name="take"/>, pixels in [0, 1].</summary>
    public static List<DigitRow> Rows(int split, int take, params int[] classes) =>
        Splits.GetOrAdd(split, k => Data.Value.Plain((Equinas.Data.DigitSplit)k))
            .Where(d => classes.Length == 0 || classes.Contains(d.Label))
            .Take(take)
            .Select(d => new DigitRow { Features = (float[])d.Pixels.Clone(), Digit = d.Label.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            .ToList();

    /// <summary>The pipeline prefix every test uses: the digit mapped to a key column "Label".</summary>
    public static IEstimator<ITransformer> MapLabel(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label", nameof(DigitRow.Digit));
}
