using Equinas.Data;
using Xunit;
using Xunit.Abstractions;

namespace Equinas.Cli.Tests;

/// <summary>
/// <c>equinas train</c>, <c>evaluate</c> and <c>predict</c> on a folder as users have it: labels with a space and
/// non-ASCII letters, RGB and grey PNG/JPEG/BMP of several sizes, nested folders, a truncated JPEG and an empty file;
/// <c>--resize</c>, <c>--strict</c> and the warning for labels with too few images.
/// </summary>
[Collection("Console")]
public sealed class ImageFolderCliTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string[] Labels = ["plain", "with space", "ñandú élan"];

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"equinas-cli-folder-{Guid.NewGuid():N}");

    private string _lastOutput = "";

    private int Run(params string[] args)
    {
        (int code, _lastOutput) = CliInProcess.Run(output, args);
        return code;
    }

    /// <summary>The folder: <paramref name="perLabel"/> images per label, a truncated JPEG and an empty PNG.</summary>
    private (string Folder, string Truncated, string Empty) MakeFolder(int perLabel)
    {
        string folder = Path.Combine(_root, "photos");
        (int, int, SyntheticImageFormat, bool)[] kinds =
        [
            (40, 30, SyntheticImageFormat.Png, false),
            (24, 24, SyntheticImageFormat.Jpeg, true),
            (32, 48, SyntheticImageFormat.Bmp, false),
            (20, 20, SyntheticImageFormat.Png, true),
            (50, 50, SyntheticImageFormat.Jpeg, false),
        ];
        SyntheticImageFolder.Write(folder, Labels, perLabel, i => kinds[i % kinds.Length], seed: 3);
        var jpeg = SyntheticImageFolder.Encode(SyntheticImageFolder.Pattern(0, 3, 40, 40, 7), 40, 40, SyntheticImageFormat.Jpeg, grey: false);
        string truncated = Path.Combine(folder, Labels[2], "more", "half.jpg");
        File.WriteAllBytes(truncated, jpeg.AsSpan(0, jpeg.Length / 2).ToArray());
        string empty = Path.Combine(folder, Labels[1], "empty.png");
        File.WriteAllBytes(empty, []);
        return (folder, truncated, empty);
    }

    [Fact]
    public void A_mixed_folder_trains_evaluates_and_predicts_naming_the_unreadable_files()
    {
        var (folder, truncated, empty) = MakeFolder(perLabel: 14);
        string model = Path.Combine(_root, "model.zip");
        Assert.Equal(0, Run("train", "--data", folder, "--mode", "fixed", "--epochs", "1", "--channels", "8,16", "--size", "16", "--rgb", "--resize", "pad", "--out", model));
        Assert.True(File.Exists(model));
        Assert.Contains("(pad)", _lastOutput, StringComparison.Ordinal);
        // Each unreadable file of the training and validation parts is named; the test part's too (when evaluated).
        string all = _lastOutput;
        Assert.Contains($"'{truncated}'", all, StringComparison.Ordinal);
        Assert.Contains($"'{empty}'", all, StringComparison.Ordinal);
        Assert.Contains("unreadable image(s)", all, StringComparison.Ordinal);

        Assert.Equal(0, Run("evaluate", "--model", model, "--data", folder));
        Assert.Contains($"skipping unreadable image '{truncated}'", _lastOutput, StringComparison.Ordinal);
        Assert.Contains($"skipping unreadable image '{empty}'", _lastOutput, StringComparison.Ordinal);
        Assert.Contains("skipped 2 unreadable image(s) of 44", _lastOutput, StringComparison.Ordinal);
        Assert.Contains("ñandú élan", _lastOutput, StringComparison.Ordinal);
        Assert.Contains("with space", _lastOutput, StringComparison.Ordinal);

        Assert.Equal(0, Run("predict", "--model", model, Path.Combine(folder, Labels[2])));
        Assert.Contains($"skipping unreadable image '{truncated}'", _lastOutput, StringComparison.Ordinal);
        Assert.Contains("14 images", _lastOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Strict_reading_stops_with_an_error_naming_the_file()
    {
        var (folder, truncated, empty) = MakeFolder(perLabel: 6);
        string model = Path.Combine(_root, "strict.zip");
        Assert.NotEqual(0, Run("train", "--data", folder, "--mode", "fixed", "--epochs", "1", "--channels", "8,16", "--size", "16", "--strict", "--out", model));
        Assert.False(File.Exists(model));

        // The message the error line shows (Spectre writes it to the console it captured at start-up, not to the test's writer).
        var settings = new TrainSettings { Data = folder, Mode = "fixed", Epochs = 1, Channels = [8, 16], Size = 16, Strict = true, Out = model };
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => Commands.TrainAsync(settings, CancellationToken.None));
        output.WriteLine(error.Message);
        // Whichever of the two bad files the fixed split put in the part read first is named.
        Assert.True(error.Message.Contains($"Cannot read '{empty}'", StringComparison.Ordinal) || error.Message.Contains($"Cannot read '{truncated}'", StringComparison.Ordinal), error.Message);
        Assert.Contains("StrictImageReading is on", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(model));
    }

    [Fact]
    public async Task Labels_with_too_few_images_are_named_and_a_bad_resize_mode_is_refused()
    {
        string folder = Path.Combine(_root, "few");
        SyntheticImageFolder.Write(folder, ["many", "two only"], 6, _ => (20, 20, SyntheticImageFormat.Png, false), seed: 1);
        foreach (var file in Directory.GetFiles(Path.Combine(folder, "two only"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Skip(2))
        {
            File.Delete(file);
        }

        Assert.Equal(0, Run("train", "--data", folder, "--mode", "fixed", "--epochs", "1", "--channels", "8,16", "--size", "16", "--out", Path.Combine(_root, "few.zip")));
        Assert.Contains("warning: --data", _lastOutput, StringComparison.Ordinal);
        Assert.Contains("'two only' (2 image(s)) have too few images for the split", _lastOutput, StringComparison.Ordinal);
        Assert.Contains("needs at least 3; these train only", _lastOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("'many'", _lastOutput, StringComparison.Ordinal);

        Assert.NotEqual(0, Run("train", "--data", folder, "--resize", "squash", "--out", Path.Combine(_root, "bad.zip")));
        var resize = await Assert.ThrowsAsync<ArgumentException>(() => Commands.TrainAsync(new TrainSettings { Data = folder, Resize = "squash" }, CancellationToken.None));
        Assert.Contains("--resize squash: expected stretch, pad or crop", resize.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
