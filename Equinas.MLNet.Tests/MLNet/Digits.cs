using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>A row as a user's ModelInput class would hold it: a 1 x 28 x 28 image (ExtractPixels layout) and its digit.</summary>
public sealed class DigitRow
{
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    public string Digit { get; set; } = "";
}

/// <summary>Scores as a user's ModelOutput class would hold them.</summary>
public sealed class DigitPrediction
{
    public float[] Score { get; set; } = [];

    public string PredictedDigit { get; set; } = "";
}

/// <summary>The MNIST digits shipped in data/mnist-digits.bin.gz, read once per test process.</summary>
internal static class Digits
{
    private static readonly Lazy<(byte[] Labels, byte[] Splits, byte[] Pixels)> Data = new(Load);

    public const int Size = 28;

    /// <summary>Rows of the given split (0 train, 1 validation, 2 test) whose digit is in <paramref name="classes"/>, at most <paramref name="take"/>, pixels in [0, 1].</summary>
    public static List<DigitRow> Rows(int split, int take, params int[] classes)
    {
        var (labels, splits, pixels) = Data.Value;
        var rows = new List<DigitRow>();
        for (int i = 0; i < labels.Length && rows.Count < take; i++)
        {
            if (splits[i] != split || (classes.Length > 0 && !classes.Contains(labels[i])))
            {
                continue;
            }

            var features = new float[Size * Size];
            for (int p = 0; p < features.Length; p++)
            {
                features[p] = pixels[(i * Size * Size) + p] / 255f;
            }

            rows.Add(new DigitRow { Features = features, Digit = labels[i].ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }

        return rows;
    }

    /// <summary>The pipeline prefix every test uses: the digit mapped to a key column "Label".</summary>
    public static IEstimator<ITransformer> MapLabel(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label", nameof(DigitRow.Digit));

    /// <summary>Raw 8-bit pixels of one image (row-major 28 x 28) of the given split and position among that split's rows.</summary>
    public static byte[] RawImage(int split, int index)
    {
        var (_, splits, pixels) = Data.Value;
        int seen = 0;
        for (int i = 0; i < splits.Length; i++)
        {
            if (splits[i] == split && seen++ == index)
            {
                return pixels.AsSpan(i * Size * Size, Size * Size).ToArray();
            }
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }

    private static (byte[], byte[], byte[]) Load()
    {
        string? path = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "data", "mnist-digits.bin.gz");
            if (File.Exists(candidate))
            {
                path = candidate;
                break;
            }
        }

        if (path is null)
        {
            throw new FileNotFoundException("data/mnist-digits.bin.gz not found above the test output folder.");
        }

        using var reader = new BinaryReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        if (new string(reader.ReadChars(8)) != "EQDIGIT1")
        {
            throw new InvalidDataException("Unexpected header.");
        }

        int count = reader.ReadInt32(), h = reader.ReadInt32(), w = reader.ReadInt32();
        if (h != Size || w != Size)
        {
            throw new InvalidDataException($"Expected {Size} x {Size} digits.");
        }

        return (reader.ReadBytes(count), reader.ReadBytes(count), reader.ReadBytes(count * h * w));
    }
}
