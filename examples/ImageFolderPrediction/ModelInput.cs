namespace ImageFolderPrediction;

/// <summary>The model's input, as in the training app: an image file (the label is not needed to predict).</summary>
public sealed class ModelInput
{
    /// <summary>Gets or sets the full path of the image file.</summary>
    public string ImagePath { get; set; } = "";

    /// <summary>Gets or sets the label; the saved pipeline has the column, prediction leaves it empty.</summary>
    public string Label { get; set; } = "";
}

/// <summary>What the model predicts for one image.</summary>
public sealed class ModelOutput
{
    /// <summary>Gets or sets the most probable label.</summary>
    public string PredictedLabel { get; set; } = "";

    /// <summary>Gets or sets the probability of every label, in the order of the Score column's slot names.</summary>
    public float[] Score { get; set; } = [];
}
