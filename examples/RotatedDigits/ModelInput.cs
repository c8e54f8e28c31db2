using Microsoft.ML.Data;

namespace RotatedDigits;

/// <summary>One row as Model Builder would generate it: a grey 1 x 28 x 28 image with pixels in [0, 1] and its digit.</summary>
internal sealed class ModelInput
{
    /// <summary>Gets or sets the pixels, row-major (the layout ExtractPixels produces).</summary>
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    /// <summary>Gets or sets the digit as text, "0" to "9".</summary>
    public string Digit { get; set; } = "";
}

/// <summary>What the model outputs per row.</summary>
internal sealed class ModelOutput
{
    /// <summary>Gets or sets the probability of each digit, in the order of the label's keys ("0" to "9").</summary>
    public float[] Score { get; set; } = [];

    /// <summary>Gets or sets the most probable digit.</summary>
    public string PredictedDigit { get; set; } = "";
}

/// <summary>The one-column data view that fixes the label's keys: digits "0" to "9", in that order.</summary>
internal sealed class DigitName
{
    /// <summary>Gets or sets the digit as text.</summary>
    public string Digit { get; set; } = "";
}
