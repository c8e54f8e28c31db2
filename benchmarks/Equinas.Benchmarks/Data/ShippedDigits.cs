using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.Benchmarks.Data;

/// <summary>Which part of the shipped digits' fixed split.</summary>
internal enum DigitSplit
{
    Train = 0,
    Validation = 1,
    Test = 2,
}

/// <summary>
/// The shipped digits (read by Equinas.Data) as engine datasets, with the variants the experiments use: rotated by a
/// continuous angle with libtorch's bilinear sampler (the rotated-MNIST setting of the recorded results) or moved by a
/// random element of a subgroup of D4.
/// </summary>
internal sealed class ShippedDigits
{
    private readonly Equinas.Data.ShippedDigits _digits;

    private ShippedDigits(Equinas.Data.ShippedDigits digits)
    {
        _digits = digits;
    }

    public int Height => Equinas.Data.ShippedDigits.Size;

    public int Width => Equinas.Data.ShippedDigits.Size;

    /// <summary>Reads the digits embedded in Equinas.Data.</summary>
    public static ShippedDigits Load() => new(Equinas.Data.ShippedDigits.Load());

    /// <summary>The digits of one split as a dataset with pixels scaled to [0, 1], unchanged.</summary>
    public ImageDataset Dataset(DigitSplit split)
    {
        var digits = _digits.Plain((Equinas.Data.DigitSplit)split);
        var pixels = digits.SelectMany(d => d.Pixels).ToArray();
        var labels = digits.Select(d => (long)d.Label).ToArray();
        return new ImageDataset(torch.tensor(pixels, [digits.Count, 1, Height, Width]), torch.tensor(labels), 10);
    }

    /// <summary>
    /// One split with every digit rotated about the image centre by an angle drawn uniformly from [0, 360) degrees
    /// (bilinear interpolation, zero outside the image), from a seeded generator.
    /// </summary>
    public ImageDataset Rotated(DigitSplit split, int seed)
    {
        using var plain = Dataset(split);
        var random = new Random(seed);
        var angles = Enumerable.Range(0, plain.Count).Select(_ => random.NextDouble() * 2 * Math.PI).ToArray();
        using var scope = NewDisposeScope();
        var theta = torch.zeros(plain.Count, 2, 3);
        var cos = torch.tensor(angles.Select(a => (float)Math.Cos(a)).ToArray());
        var sin = torch.tensor(angles.Select(a => (float)Math.Sin(a)).ToArray());
        // Sampling grid: output point u reads input point R^-1 u (normalised coordinates, y down).
        theta[.., 0, 0] = cos;
        theta[.., 0, 1] = -sin;
        theta[.., 1, 0] = sin;
        theta[.., 1, 1] = cos;
        var grid = nn.functional.affine_grid(theta, [plain.Count, 1, Height, Width], align_corners: false);
        var rotated = nn.functional.grid_sample(plain.Images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
        return new ImageDataset(rotated.MoveToOuterDisposeScope(), plain.Labels.clone().MoveToOuterDisposeScope(), 10);
    }

    /// <summary>One split with every digit moved by an element of <paramref name="group"/> drawn uniformly (seeded).</summary>
    public ImageDataset Augmented(DigitSplit split, SymmetryGroup group, int seed)
    {
        using var plain = Dataset(split);
        var random = new Random(seed);
        using var scope = NewDisposeScope();
        var moved = Enumerable.Range(0, plain.Count)
            .Select(i => TensorAction.ActOnImage(plain.Images[i], group.Elements[random.Next(group.Order)]))
            .ToArray();
        return new ImageDataset(torch.stack(moved).MoveToOuterDisposeScope(), plain.Labels.clone().MoveToOuterDisposeScope(), 10);
    }
}
