using System.Globalization;
using Equinas.Data;
using Equinas.MLNet.Groups;

namespace Equinas.Cli;

/// <summary>Which part of a data source to use.</summary>
internal enum DataPart
{
    /// <summary>Every image (image folders only).</summary>
    All,

    /// <summary>The training part.</summary>
    Train,

    /// <summary>The validation part.</summary>
    Validation,

    /// <summary>The test part.</summary>
    Test,
}

/// <summary>
/// A <c>--data</c> value: <c>digits</c>, <c>rotated-digits</c>, <c>augmented-digits:GROUP</c> (the shipped digits,
/// written once as PNG files into a cache folder) or an image folder with one sub-folder per label.
/// </summary>
internal sealed class DataSource
{
    /// <summary>The file extensions read from image folders.</summary>
    public static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".bmp"];

    /// <summary>Seed of the stratified split of image folders (fixed, so that train and evaluate agree).</summary>
    public const int FolderSplitSeed = 1;

    /// <summary>Shares of an image folder held out for validation and for test.</summary>
    public const double FolderValidationShare = 0.15, FolderTestShare = 0.15;

    /// <summary>The fewest images a label of an image folder needs for the split (one each for test, validation and training).</summary>
    public const int MinimumPerLabel = 3;

    private readonly string? _variant;
    private readonly string? _group;
    private readonly string? _folder;

    private DataSource(string description, string? variant, string? group, string? folder)
    {
        Description = description;
        _variant = variant;
        _group = group;
        _folder = folder;
    }

    /// <summary>Gets the source as the user gave it, normalised.</summary>
    public string Description { get; }

    /// <summary>Gets whether this is one of the shipped digit sets.</summary>
    public bool IsDigits => _variant is not null;

    /// <summary>Parses a <c>--data</c> value.</summary>
    public static DataSource Parse(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        string lower = value.Trim().ToLowerInvariant();
        if (lower is "digits" or "rotated-digits")
        {
            return new DataSource(lower, lower == "digits" ? "plain" : "rotated", null, null);
        }

        if (lower.StartsWith("augmented-digits", StringComparison.Ordinal))
        {
            int colon = value.IndexOf(':', StringComparison.Ordinal);
            string group = colon < 0 ? "D4" : value[(colon + 1)..].Trim();
            if (!SymmetryGroup.TryParse(group, out var parsed))
            {
                throw new ArgumentException($"--data {value}: unknown group '{group}'; expected one of {string.Join(", ", SymmetryGroup.All.Select(g => g.Name))}.");
            }

            return new DataSource($"augmented-digits:{parsed.Name}", "augmented", parsed.Name, null);
        }

        var folder = Path.GetFullPath(value);
        if (!Directory.Exists(folder))
        {
            throw new ArgumentException($"--data {value}: expected digits, rotated-digits, augmented-digits:GROUP or an existing image folder; '{folder}' does not exist.");
        }

        return new DataSource(folder, null, null, folder);
    }

    /// <summary>The rows of one part: for digits, the shipped split; for folders, the fixed-seed stratified split.</summary>
    public IReadOnlyList<ImageInput> Rows(DataPart part) => _variant is not null ? DigitRows(part) : FolderRows(part);

    /// <summary>
    /// For an image folder, the labels with fewer than <see cref="MinimumPerLabel"/> images, with their counts: the split
    /// gives them no validation and no test image (all their images train); empty for the digits.
    /// </summary>
    public IReadOnlyList<(string Label, int Images)> LabelsTooSmallForTheSplit() =>
        _folder is null
            ? []
            : ScanFolder(_folder).GroupBy(r => r.Label, StringComparer.Ordinal).Where(g => g.Count() < MinimumPerLabel).Select(g => (g.Key, g.Count())).ToList();

    /// <summary>The warning for <see cref="LabelsTooSmallForTheSplit"/> (null when there are none).</summary>
    public string? TooSmallWarning()
    {
        var few = LabelsTooSmallForTheSplit();
        return few.Count == 0
            ? null
            : $"--data {_folder}: label(s) {string.Join(", ", few.Select(f => string.Create(CultureInfo.InvariantCulture, $"'{f.Label}' ({f.Images} image(s))")))} have too few images for the split: each label's images are split into test ({Commands.Pct(FolderTestShare, "F0")}), validation ({Commands.Pct(FolderValidationShare, "F0")}) and training, one at least each, which needs at least {MinimumPerLabel}; these train only, and neither validation nor the test measures them. Add images to those sub-folders.";
    }

    /// <summary>Every image under <paramref name="folder"/> with its label sub-folder's name, sorted.</summary>
    public static List<ImageInput> ScanFolder(string folder)
    {
        var rows = new List<ImageInput>();
        foreach (var labelDir in Directory.GetDirectories(folder).OrderBy(d => d, StringComparer.Ordinal))
        {
            string label = Path.GetFileName(labelDir);
            rows.AddRange(ImagesIn(labelDir, recursive: true).Select(f => new ImageInput { ImagePath = f, Label = label }));
        }

        return rows;
    }

    /// <summary>The image files in a folder, sorted.</summary>
    public static IEnumerable<string> ImagesIn(string folder, bool recursive) =>
        Directory.EnumerateFiles(folder, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => f, StringComparer.Ordinal);

    /// <summary>The digits of one split as images (for export-digits).</summary>
    public IReadOnlyList<DigitImage> Digits(DigitSplit split)
    {
        var digits = ShippedDigits.Load();
        int offset = (int)split + 1;
        return _variant switch
        {
            "plain" => digits.Plain(split),
            "rotated" => digits.Rotated(split, seed: 100 + offset),
            "augmented" => digits.Augmented(split, _group!, seed: 200 + offset),
            _ => throw new InvalidOperationException("Not a digits source."),
        };
    }

    private List<ImageInput> FolderRows(DataPart part)
    {
        var all = ScanFolder(_folder!);
        if (all.Count == 0)
        {
            throw new ArgumentException($"--data {_folder}: no images ({string.Join(", ", ImageExtensions)}) found in label sub-folders.");
        }

        if (part == DataPart.All)
        {
            return all;
        }

        // Stratified: every label is shuffled with a fixed seed and cut into test, validation and train shares.
        var chosen = new List<ImageInput>();
        foreach (var group in all.GroupBy(r => r.Label, StringComparer.Ordinal))
        {
            var items = group.ToArray();
            var random = new Random(FolderSplitSeed + StableHash(group.Key));
            random.Shuffle(items);
            int n = items.Length;
            int test = n >= 3 ? Math.Max(1, (int)Math.Round(n * FolderTestShare)) : 0;
            int validation = n >= 3 ? Math.Max(1, (int)Math.Round(n * FolderValidationShare)) : 0;
            var (start, count) = part switch
            {
                DataPart.Test => (0, test),
                DataPart.Validation => (test, validation),
                _ => (test + validation, n - test - validation),
            };
            chosen.AddRange(items.Skip(start).Take(count));
        }

        return chosen.OrderBy(r => r.ImagePath, StringComparer.Ordinal).ToList();
    }

    private List<ImageInput> DigitRows(DataPart part)
    {
        var split = part switch
        {
            DataPart.Train => DigitSplit.Train,
            DataPart.Validation => DigitSplit.Validation,
            DataPart.Test => DigitSplit.Test,
            _ => throw new ArgumentException("The shipped digits have train, validation and test parts; 'all' is for image folders."),
        };
        string folder = DigitCache.Folder(Description, split, () => Digits(split));
        return ScanFolder(folder);
    }

    private static int StableHash(string text)
    {
        unchecked
        {
            int hash = 17;
            foreach (char c in text)
            {
                hash = (hash * 31) + c;
            }

            return hash & 0x7FFFFFFF;
        }
    }
}

/// <summary>
/// The shipped digits written once as PNG image folders (one per variant and split) under
/// <c>$EQUINAS_CACHE</c> or the temp folder, so that the digits go through the same image-path pipeline as user data.
/// </summary>
internal static class DigitCache
{
    /// <summary>Gets the cache root.</summary>
    public static string Root => Environment.GetEnvironmentVariable("EQUINAS_CACHE") is { Length: > 0 } root
        ? root
        : Path.Combine(Path.GetTempPath(), "equinas-cli-cache");

    /// <summary>The folder of one variant and split, written first (atomically, by renaming a finished folder) if missing.</summary>
    public static string Folder(string description, DigitSplit split, Func<IEnumerable<DigitImage>> digits)
    {
        string name = description.Replace(':', '-') + "-" + split.ToString().ToLowerInvariant();
        string folder = Path.Combine(Root, "v1", name);
        if (Directory.Exists(folder))
        {
            return folder;
        }

        string temp = folder + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        if (Directory.Exists(temp))
        {
            Directory.Delete(temp, recursive: true);
        }

        ShippedDigits.WriteImageFolder(digits(), temp);
        try
        {
            Directory.Move(temp, folder);
        }
        catch (IOException) when (Directory.Exists(folder))
        {
            // Another process finished the same folder first.
            Directory.Delete(temp, recursive: true);
        }

        return folder;
    }
}
