using System.Globalization;
using Equinas.Data;

namespace RotatedDigits;

/// <summary>
/// The rotated-MNIST setting on the shipped digits (Equinas.Data): every digit of the fixed train/validation/test split
/// rotated by its own angle from U[0, 360), bilinear; one seeded generator per split, derived from the run's seed.
/// </summary>
internal sealed class RotatedMnist
{
    private RotatedMnist(IReadOnlyList<ModelInput> train, IReadOnlyList<ModelInput> validation, IReadOnlyList<ModelInput> test)
    {
        Train = train;
        Validation = validation;
        Test = test;
    }

    /// <summary>Gets where the digits come from, for the report.</summary>
    public static string Source => "data/mnist-digits.bin.gz (embedded in Equinas.Data)";

    public int Height => ShippedDigits.Size;

    public int Width => ShippedDigits.Size;

    /// <summary>Gets the training digits (weights are trained on these).</summary>
    public IReadOnlyList<ModelInput> Train { get; }

    /// <summary>Gets the validation digits (the search selects candidates on these).</summary>
    public IReadOnlyList<ModelInput> Validation { get; }

    /// <summary>Gets the test digits (reported only).</summary>
    public IReadOnlyList<ModelInput> Test { get; }

    /// <summary>Rotates every split; the data depend on <paramref name="seed"/> alone.</summary>
    public static RotatedMnist Load(int seed)
    {
        var digits = ShippedDigits.Load();
        IReadOnlyList<ModelInput> Rows(DigitSplit split) => digits
            .Rotated(split, unchecked((seed * 3) + (int)split))
            .Select(d => new ModelInput { Features = d.Pixels, Digit = d.Label.ToString(CultureInfo.InvariantCulture) })
            .ToArray();
        return new RotatedMnist(Rows(DigitSplit.Train), Rows(DigitSplit.Validation), Rows(DigitSplit.Test));
    }
}
