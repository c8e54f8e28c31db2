using System.Globalization;
using SkiaSharp;

namespace Equinas.Data;

/// <summary>The file formats <see cref="SyntheticImageFolder"/> writes.</summary>
public enum SyntheticImageFormat
{
    /// <summary>PNG (lossless; 8-bit grey or RGB).</summary>
    Png,

    /// <summary>JPEG (quality 90; 8-bit grey or RGB).</summary>
    Jpeg,

    /// <summary>Windows BMP, 24-bit, bottom-up (written here: Skia decodes BMP but does not encode it).</summary>
    Bmp,
}

/// <summary>
/// Image folders as users have them, made for tests and benchmarks: one sub-folder per label, images of a class told
/// apart by colour (a disc of the class's hue at a random place and size on a noisy background, so that the class does
/// not depend on position, rotation or mirroring), any size, RGB or grey, PNG, JPEG or BMP.
/// </summary>
public static class SyntheticImageFolder
{
    /// <summary>One image of class <paramref name="label"/> of <paramref name="classes"/> as interleaved RGBA bytes.</summary>
    /// <param name="label">The class (0-based).</param>
    /// <param name="classes">The class count (the hues are spread over them).</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="seed">Seed of the disc's place and size and of the noise.</param>
    /// <returns>width x height x 4 bytes, rows top to bottom.</returns>
    public static byte[] Pattern(int label, int classes, int width, int height, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        var random = new Random(seed);
        var (r, g, b) = Hue((double)label / classes);
        double radius = Math.Min(width, height) * (0.2 + (0.15 * random.NextDouble()));
        double cx = radius + (random.NextDouble() * Math.Max(0, width - (2 * radius)));
        double cy = radius + (random.NextDouble() * Math.Max(0, height - (2 * radius)));
        var pixels = new byte[width * height * 4];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int p = ((y * width) + x) * 4;
                bool inside = ((x - cx) * (x - cx)) + ((y - cy) * (y - cy)) <= radius * radius;
                int noise = random.Next(0, 48);
                pixels[p] = (byte)(inside ? r : noise);
                pixels[p + 1] = (byte)(inside ? g : noise);
                pixels[p + 2] = (byte)(inside ? b : noise);
                pixels[p + 3] = 255;
            }
        }

        return pixels;
    }

    /// <summary>Encodes interleaved RGBA bytes (alpha ignored) as a file of the given format, RGB or grey.</summary>
    /// <param name="rgba">width x height x 4 bytes.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="format">The file format.</param>
    /// <param name="grey">Write one grey channel (luminance) instead of RGB; BMP stores it as equal R, G and B.</param>
    /// <returns>The file's bytes.</returns>
    public static byte[] Encode(byte[] rgba, int width, int height, SyntheticImageFormat format, bool grey)
    {
        ArgumentNullException.ThrowIfNull(rgba);
        if (rgba.Length != width * height * 4)
        {
            throw new ArgumentException($"Expected {width * height * 4} bytes for {width} x {height} RGBA; found {rgba.Length}.", nameof(rgba));
        }

        if (grey)
        {
            rgba = (byte[])rgba.Clone();
            for (int p = 0; p < rgba.Length; p += 4)
            {
                byte v = (byte)Math.Round((0.299 * rgba[p]) + (0.587 * rgba[p + 1]) + (0.114 * rgba[p + 2]));
                rgba[p] = rgba[p + 1] = rgba[p + 2] = v;
            }
        }

        if (format == SyntheticImageFormat.Bmp)
        {
            return EncodeBmp(rgba, width, height);
        }

        var info = grey
            ? new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque)
            : new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var bytes = grey ? Enumerable.Range(0, width * height).Select(i => rgba[i * 4]).ToArray() : rgba;
        int rowBytes = grey ? width : width * 4;
        for (int y = 0; y < height; y++)
        {
            System.Runtime.InteropServices.Marshal.Copy(bytes, y * rowBytes, bitmap.GetPixels() + (y * bitmap.RowBytes), rowBytes);
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format == SyntheticImageFormat.Png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }

    /// <summary>
    /// Writes <paramref name="perLabel"/> images per label into <c>folder/label/</c> (every third one into a nested
    /// sub-folder <c>more/</c>), each with the size, format and colour mode <paramref name="choose"/> gives for its
    /// running index; files are written atomically (temp + rename). Returns the paths with their labels, in order.
    /// </summary>
    /// <param name="folder">The folder to write into (created).</param>
    /// <param name="labels">The label names (sub-folder names; spaces and non-ASCII letters are fine).</param>
    /// <param name="perLabel">Images per label.</param>
    /// <param name="choose">Width, height, format and grey for the image with this running index.</param>
    /// <param name="seed">Seed of the images.</param>
    /// <returns>(path, label) of every file written.</returns>
    public static IReadOnlyList<(string Path, string Label)> Write(
        string folder, IReadOnlyList<string> labels, int perLabel, Func<int, (int Width, int Height, SyntheticImageFormat Format, bool Grey)> choose, int seed)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(choose);
        var written = new List<(string, string)>();
        int index = 0;
        for (int k = 0; k < labels.Count; k++)
        {
            for (int i = 0; i < perLabel; i++, index++)
            {
                var (w, h, format, grey) = choose(index);
                string directory = Path.Combine(folder, labels[k], i % 3 == 2 ? "more" : "");
                Directory.CreateDirectory(directory);
                string extension = format switch { SyntheticImageFormat.Png => ".png", SyntheticImageFormat.Jpeg => ".jpg", _ => ".bmp" };
                string path = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"img{index:D6}{extension}"));
                WriteAtomically(path, Encode(Pattern(k, labels.Count, w, h, seed + index), w, h, format, grey));
                written.Add((path, labels[k]));
            }
        }

        return written;
    }

    /// <summary>Writes a file through a temp file and a rename, so that a reader never sees half of it.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="bytes">Its content.</param>
    public static void WriteAtomically(string path, byte[] bytes)
    {
        string temp = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }

    private static (int R, int G, int B) Hue(double h)
    {
        double x = (h - Math.Floor(h)) * 6;
        int sector = (int)x;
        double f = x - sector;
        int up = (int)Math.Round(255 * f), down = (int)Math.Round(255 * (1 - f));
        return sector switch
        {
            0 => (255, up, 0),
            1 => (down, 255, 0),
            2 => (0, 255, up),
            3 => (0, down, 255),
            4 => (up, 0, 255),
            _ => (255, 0, down),
        };
    }

    private static byte[] EncodeBmp(byte[] rgba, int width, int height)
    {
        int rowBytes = ((width * 3) + 3) & ~3;
        int pixelBytes = rowBytes * height;
        var file = new byte[54 + pixelBytes];
        file[0] = (byte)'B';
        file[1] = (byte)'M';
        BitConverter.TryWriteBytes(file.AsSpan(2), file.Length);
        BitConverter.TryWriteBytes(file.AsSpan(10), 54);
        BitConverter.TryWriteBytes(file.AsSpan(14), 40);
        BitConverter.TryWriteBytes(file.AsSpan(18), width);
        BitConverter.TryWriteBytes(file.AsSpan(22), height);
        BitConverter.TryWriteBytes(file.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(file.AsSpan(28), (short)24);
        BitConverter.TryWriteBytes(file.AsSpan(34), pixelBytes);
        for (int y = 0; y < height; y++)
        {
            int row = 54 + ((height - 1 - y) * rowBytes);
            for (int x = 0; x < width; x++)
            {
                int p = ((y * width) + x) * 4;
                file[row + (x * 3)] = rgba[p + 2];
                file[row + (x * 3) + 1] = rgba[p + 1];
                file[row + (x * 3) + 2] = rgba[p];
            }
        }

        return file;
    }
}
