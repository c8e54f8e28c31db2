namespace ImageFolderTraining;

/// <summary>One image file and its label (the name of the sub-folder it is in), as Model Builder's ModelInput.</summary>
public sealed class ModelInput
{
    /// <summary>Gets or sets the full path of the image file.</summary>
    public string ImagePath { get; set; } = "";

    /// <summary>Gets or sets the label: the name of the image's sub-folder.</summary>
    public string Label { get; set; } = "";
}

/// <summary>What the model predicts for one image, as Model Builder's ModelOutput.</summary>
public sealed class ModelOutput
{
    /// <summary>Gets or sets the most probable label.</summary>
    public string PredictedLabel { get; set; } = "";

    /// <summary>Gets or sets the probability of every label, in the order of the Score column's slot names.</summary>
    public float[] Score { get; set; } = [];
}
