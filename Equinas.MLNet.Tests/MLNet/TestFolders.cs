using Equinas.Data;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>One image file and its label, as a user's ModelInput class would hold them.</summary>
public sealed class PathRow
{
    public string ImagePath { get; set; } = "";

    public string Label { get; set; } = "";
}

/// <summary>
/// Image folders the tests build: three labels (one with a space, one with non-ASCII letters), RGB and grey images of
/// several sizes and aspect ratios in PNG, JPEG and BMP, nested folders, and optionally a truncated JPEG and an empty
/// file. Deleted when disposed.
/// </summary>
internal sealed class TestFolder : IDisposable
{
    public static readonly string[] Labels = ["plain", "with space", "ñandú élan"];

    private static readonly (int W, int H, SyntheticImageFormat F, bool Grey)[] Kinds =
    [
        (40, 30, SyntheticImageFormat.Png, false),
        (24, 24, SyntheticImageFormat.Jpeg, true),
        (32, 48, SyntheticImageFormat.Bmp, false),
        (20, 20, SyntheticImageFormat.Png, true),
        (50, 50, SyntheticImageFormat.Jpeg, false),
        (16, 16, SyntheticImageFormat.Png, false),
    ];

    public TestFolder(int perLabel, bool broken, int seed = 1)
    {
        Root = Path.Combine(Path.GetTempPath(), $"equinas-folder-{Guid.NewGuid():N}");
        SyntheticImageFolder.Write(Root, Labels, perLabel, i => Kinds[i % Kinds.Length], seed);
        if (broken)
        {
            // A JPEG cut in half (as a copy interrupted part way) and an empty file.
            var jpeg = SyntheticImageFolder.Encode(SyntheticImageFolder.Pattern(1, 3, 40, 40, 99), 40, 40, SyntheticImageFormat.Jpeg, grey: false);
            Truncated = Path.Combine(Root, Labels[1], "more", "cut in half.jpg");
            File.WriteAllBytes(Truncated, jpeg.AsSpan(0, jpeg.Length / 2).ToArray());
            Empty = Path.Combine(Root, Labels[0], "empty.png");
            File.WriteAllBytes(Empty, []);
        }
    }

    public string Root { get; }

    public string? Truncated { get; }

    public string? Empty { get; }

    /// <summary>Every file under the root with its label (the first folder under the root), sorted by path.</summary>
    public List<PathRow> Rows() =>
        Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(f => new PathRow { ImagePath = f, Label = Path.GetRelativePath(Root, f).Split(Path.DirectorySeparatorChar)[0] })
            .ToList();

    public void Dispose()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
