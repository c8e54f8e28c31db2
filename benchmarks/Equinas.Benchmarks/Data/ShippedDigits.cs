using System.IO.Compression;
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
/// The 10,000 MNIST digits shipped in <c>data/mnist-digits.bin.gz</c> (format in <c>tools/make-digits.mjs</c>), with
/// deterministic variants: rotated by a continuous angle (the rotated-MNIST setting) or moved by a random element of a
/// subgroup of D4.
/// </summary>
internal sealed class ShippedDigits
{
    private ShippedDigits(byte[] labels, byte[] splits, byte[] pixels, int height, int width)
    {
        Labels = labels;
        Splits = splits;
        Pixels = pixels;
        Height = height;
        Width = width;
    }

    public byte[] Labels { get; }

    public byte[] Splits { get; }

    public byte[] Pixels { get; }

    public int Height { get; }

    public int Width { get; }

    public int Count => Labels.Length;

    /// <summary>Finds <c>data/mnist-digits.bin.gz</c> in the current directory or one of its parents.</summary>
    public static string FindFile()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "data", "mnist-digits.bin.gz");
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException("data/mnist-digits.bin.gz was not found in the current directory or its parents; run from the repository.");
    }

    /// <summary>Reads and checks the file.</summary>
    /// <exception cref="InvalidDataException">The file is truncated or not in the expected format.</exception>
    public static ShippedDigits Load(string? path = null)
    {
        path ??= FindFile();
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new BinaryReader(gzip);
        var magic = new string(reader.ReadChars(8));
        if (magic != "EQDIGIT1")
        {
            throw new InvalidDataException($"{path}: expected the header 'EQDIGIT1', found '{magic}'.");
        }

        int count = reader.ReadInt32(), height = reader.ReadInt32(), width = reader.ReadInt32();
        if (count <= 0 || height <= 0 || width <= 0)
        {
            throw new InvalidDataException($"{path}: invalid sizes {count} x {height} x {width}.");
        }

        byte[] ReadExactly(int n, string what)
        {
            var bytes = reader.ReadBytes(n);
            return bytes.Length == n ? bytes : throw new InvalidDataException($"{path}: truncated {what}: expected {n} bytes, found {bytes.Length}.");
        }

        var labels = ReadExactly(count, "labels");
        var splits = ReadExactly(count, "split");
        var pixels = ReadExactly(count * height * width, "pixels");
        if (labels.Any(l => l > 9) || splits.Any(s => s > 2))
        {
            throw new InvalidDataException($"{path}: labels must be 0-9 and split codes 0-2.");
        }

        return new ShippedDigits(labels, splits, pixels, height, width);
    }

    /// <summary>The digits of one split as a dataset with pixels scaled to [0, 1], unchanged.</summary>
    public ImageDataset Dataset(DigitSplit split)
    {
        var rows = Enumerable.Range(0, Count).Where(i => Splits[i] == (byte)split).ToArray();
        int size = Height * Width;
        var pixels = new float[rows.Length * size];
        var labels = new long[rows.Length];
        for (int n = 0; n < rows.Length; n++)
        {
            labels[n] = Labels[rows[n]];
            for (int p = 0; p < size; p++)
            {
                pixels[(n * size) + p] = Pixels[(rows[n] * size) + p] / 255f;
            }
        }

        return new ImageDataset(torch.tensor(pixels, [rows.Length, 1, Height, Width]), torch.tensor(labels), 10);
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
