#nullable enable
namespace Equinas.MLNet;

/// <summary>
/// How the trainer brings an image of another size or aspect ratio to <c>ImageHeight</c> x <c>ImageWidth</c> when it
/// decodes images itself (encoded bytes from LoadRawImageBytes, or an Image column without a fixed size). The choice
/// is saved with the model, so prediction resizes exactly as training did. Images already of the target size are
/// used as they are, whatever the mode.
/// </summary>
public enum ImageResizeMode
{
    /// <summary>
    /// Scale width and height separately to the target size (the aspect ratio is not kept). The default, and what
    /// models saved before this option existed do.
    /// </summary>
    Stretch = 0,

    /// <summary>
    /// Scale the whole image, keeping its aspect ratio, so that it fits inside the target, and centre it; the bands
    /// left over are black (transparent for four channels). Nothing of the image is lost.
    /// </summary>
    Pad = 1,

    /// <summary>
    /// Scale the image, keeping its aspect ratio, so that it covers the target, and keep the centre; the parts beyond
    /// the target on the longer side are cut off. No padding is added.
    /// </summary>
    Crop = 2,
}
