#nullable enable
namespace Equinas.MLNet;

/// <summary>
/// What the invariant classification head reads from each field of the last conv layer. Every choice keeps the network
/// exactly invariant to its last layer's group and keeps the evolutionary search's relaxation exact (the relaxed
/// network computes what its parent did). The choice is saved with the model.
/// </summary>
public enum HeadPoolingMode
{
    /// <summary>
    /// One feature per field: the mean over the field's group channels and over the image plane (the paper's head,
    /// the default, and what models saved before this option existed do).
    /// </summary>
    Mean = 0,

    /// <summary>
    /// Two features per field: that mean, and the mean over the field's group channels of each channel's maximum over
    /// the plane. Doubles what the head reads (an all-D4 network of the default widths reads 40 features for 10
    /// classes instead of 20); measured on the shipped digits in docs/results/head-pooling.md.
    /// </summary>
    MeanAndMax = 1,
}
