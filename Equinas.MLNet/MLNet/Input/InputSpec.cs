#nullable enable
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using SkiaSharp;

namespace Equinas.MLNet.Input;

/// <summary>The kinds of feature column the trainer accepts.</summary>
internal enum FeatureKind
{
    /// <summary><c>Vector&lt;Single, C, H, W&gt;</c> (or <c>H, W</c>) as ExtractPixels makes it: planar, dimensions in the type.</summary>
    Pixels = 0,

    /// <summary>A vector of C·H·W singles without dimensions; the shape comes from the options.</summary>
    Flat = 1,

    /// <summary>An image column (<see cref="MLImage"/>) as LoadImages/ResizeImages make it.</summary>
    Image = 2,

    /// <summary>Encoded image bytes (<c>Vector&lt;Byte&gt;</c> from LoadRawImageBytes), decoded and resized to H x W.</summary>
    Bytes = 3,
}

/// <summary>
/// How a feature value becomes the network's input: where the pixels come from, the image shape C x H x W, and the
/// per-channel normalisation computed on the training data. The same spec is used in training and prediction, and it
/// is saved with the model, so that prediction repeats exactly the preprocessing training used.
/// </summary>
internal sealed record InputSpec
{
    /// <summary>Copies one feature value into planar floats; <c>row</c> is the row position for messages (-1: unknown).</summary>
    public delegate void ValueReader<T>(in T value, Span<float> destination, long row);

    public required FeatureKind Kind { get; init; }

    /// <summary>The feature column's name at training time (for messages).</summary>
    public required string Column { get; init; }

    public required int Channels { get; init; }

    public required int Height { get; init; }

    public required int Width { get; init; }

    /// <summary>
    /// How images of another size are brought to H x W when the trainer decodes them (encoded bytes, an Image column
    /// without a fixed size). Saved with the model; models saved before it existed read as <see cref="ImageResizeMode.Stretch"/>,
    /// what they did.
    /// </summary>
    public ImageResizeMode Resize { get; init; } = ImageResizeMode.Stretch;

    /// <summary>Per-channel mean of the raw training pixels (subtracted before the network).</summary>
    public float[] Mean { get; init; } = [];

    /// <summary>Per-channel standard deviation of the raw training pixels (divided by; 1 for a constant channel).</summary>
    public float[] Std { get; init; } = [];

    /// <summary>
    /// The feature column type's shape at training time: the vector dimensions (Pixels), the vector size (Flat, 0 for
    /// unknown), the image height and width (Image, 0 for unknown) or the byte vector size (Bytes).
    /// </summary>
    public int[] TypeShape { get; init; } = [];

    /// <summary>The feature column type training saw, rebuilt from <see cref="TypeShape"/>.</summary>
    public DataViewType ColumnType() => Kind switch
    {
        FeatureKind.Pixels or FeatureKind.Flat => new VectorDataViewType(NumberDataViewType.Single, TypeShape),
        FeatureKind.Image => TypeShape is [> 0, > 0] ? new ImageDataViewType(TypeShape[0], TypeShape[1]) : new ImageDataViewType(),
        FeatureKind.Bytes => new VectorDataViewType(NumberDataViewType.Byte, TypeShape),
        _ => throw new InvalidDataException($"Unknown feature kind {Kind}."),
    };

    /// <summary>Values per image.</summary>
    public int Size => Channels * Height * Width;

    /// <summary>"C x H x W" for messages.</summary>
    public string Shape => string.Create(CultureInfo.InvariantCulture, $"{Channels} x {Height} x {Width}");

    /// <summary>
    /// Works out the input spec from the feature column's type and the options, or throws an
    /// <see cref="ArgumentException"/> naming the column, what was expected and what was found.
    /// </summary>
    public static InputSpec Resolve(DataViewSchema schema, string column, int? height, int? width, int? channels)
    {
        if (!schema.TryGetColumnIndex(column, out int index))
        {
            throw new ArgumentOutOfRangeException(
                nameof(column),
                $"Feature column '{column}' was not found; the data has columns {Describe(schema)}. Set FeatureColumnName to the column holding the images.");
        }

        var type = schema[index].Type;
        string expected = "Vector<Single, C, H, W> (ExtractPixels), a Vector<Single> of C*H*W values with ImageHeight, ImageWidth and ImageChannels set, an Image column (LoadImages), or a Vector<Byte> of encoded image bytes (LoadRawImageBytes)";
        switch (type)
        {
            case VectorDataViewType { ItemType: NumberDataViewType n } v when n.RawType == typeof(float):
            {
                var dims = v.Dimensions;
                if (dims.Length is 2 or 3 && dims.All(d => d > 0))
                {
                    int c = dims.Length == 3 ? dims[0] : 1, h = dims[^2], w = dims[^1];
                    CheckOption(column, "ImageChannels", channels, c, type);
                    CheckOption(column, "ImageHeight", height, h, type);
                    CheckOption(column, "ImageWidth", width, w, type);
                    return new InputSpec { Kind = FeatureKind.Pixels, Column = column, Channels = c, Height = h, Width = w, TypeShape = dims.ToArray() };
                }

                if (height is null || width is null)
                {
                    throw new ArgumentException(
                        $"Feature column '{column}' is {type} without image dimensions; set ImageHeight and ImageWidth (and ImageChannels if not 1) so that its values can be read as C x H x W images, or produce the column with ExtractPixels, which records them.");
                }

                int cc = channels ?? 1;
                CheckPositive(column, height.Value, width.Value, cc);
                if (v.Size > 0 && v.Size != cc * height.Value * width.Value)
                {
                    throw new ArgumentException(
                        $"Feature column '{column}' holds {v.Size} values per row but ImageChannels x ImageHeight x ImageWidth = {cc} x {height} x {width} = {cc * height.Value * width.Value}.");
                }

                return new InputSpec { Kind = FeatureKind.Flat, Column = column, Channels = cc, Height = height.Value, Width = width.Value, TypeShape = [v.Size] };
            }

            case ImageDataViewType image:
            {
                int h = image.Height > 0 ? image.Height : height ?? 0;
                int w = image.Width > 0 ? image.Width : width ?? 0;
                if (image.Height > 0)
                {
                    CheckOption(column, "ImageHeight", height, image.Height, type);
                    CheckOption(column, "ImageWidth", width, image.Width, type);
                }

                if (h <= 0 || w <= 0)
                {
                    throw new ArgumentException(
                        $"Image column '{column}' has no fixed size ({type}); resize the images with ResizeImages or set ImageHeight and ImageWidth.");
                }

                int c = channels ?? 3;
                CheckPositive(column, h, w, c);
                CheckImageChannels(column, c);
                return new InputSpec { Kind = FeatureKind.Image, Column = column, Channels = c, Height = h, Width = w, TypeShape = [image.Height, image.Width] };
            }

            case VectorDataViewType { ItemType: NumberDataViewType n } bytesType when n.RawType == typeof(byte):
            {
                if (height is null || width is null)
                {
                    throw new ArgumentException(
                        $"Feature column '{column}' holds encoded image bytes ({type}); set ImageHeight and ImageWidth, the size the images are resized to.");
                }

                int c = channels ?? 3;
                CheckPositive(column, height.Value, width.Value, c);
                CheckImageChannels(column, c);
                return new InputSpec { Kind = FeatureKind.Bytes, Column = column, Channels = c, Height = height.Value, Width = width.Value, TypeShape = [bytesType.Size] };
            }

            default:
                throw new ArgumentException($"Feature column '{column}' has type {type}; expected {expected}.");
        }
    }

    /// <summary>A copy with the normalisation computed from raw training pixels (<c>N x C x H x W</c>, row-major).</summary>
    public InputSpec WithNormalization(ReadOnlySpan<float> pixels)
    {
        var sums = new NormalizationSums(this);
        for (int offset = 0; offset + Size <= pixels.Length; offset += Size)
        {
            sums.Add(pixels.Slice(offset, Size));
        }

        return sums.Apply();
    }

    /// <summary>
    /// The running per-channel sums behind <see cref="WithNormalization"/>, fed one raw image at a time (so that data
    /// read lazily gets the same statistics, bit for bit, as data held in memory).
    /// </summary>
    internal sealed class NormalizationSums(InputSpec spec)
    {
        private readonly double[] _sum = new double[spec.Channels];
        private readonly double[] _squares = new double[spec.Channels];
        private long _images;

        /// <summary>Adds one raw image (C x H x W planar).</summary>
        public void Add(ReadOnlySpan<float> image)
        {
            int plane = spec.Height * spec.Width;
            for (int c = 0; c < spec.Channels; c++)
            {
                var span = image.Slice(c * plane, plane);
                double s = 0, q = 0;
                foreach (float x in span)
                {
                    s += x;
                    q += (double)x * x;
                }

                _sum[c] += s;
                _squares[c] += q;
            }

            _images++;
        }

        /// <summary>The spec with the mean and standard deviation of the images added.</summary>
        public InputSpec Apply()
        {
            int plane = spec.Height * spec.Width;
            double count = Math.Max(1.0, (double)_images * plane);
            var mean = new float[spec.Channels];
            var std = new float[spec.Channels];
            for (int c = 0; c < spec.Channels; c++)
            {
                double m = _sum[c] / count;
                double variance = Math.Max(0, _squares[c] / count - m * m);
                double s = Math.Sqrt(variance);
                mean[c] = (float)m;
                std[c] = s > 1e-6 * Math.Max(1, Math.Abs(m)) ? (float)s : 1f;
            }

            return spec with { Mean = mean, Std = std };
        }
    }

    /// <summary>Normalises raw pixels of whole images in place with <see cref="Mean"/> and <see cref="Std"/>.</summary>
    public void Normalize(Span<float> pixels)
    {
        int plane = Height * Width;
        for (int offset = 0; offset + Size <= pixels.Length; offset += Size)
        {
            for (int c = 0; c < Channels; c++)
            {
                var span = pixels.Slice(offset + c * plane, plane);
                float m = Mean[c], inv = 1f / Std[c];
                for (int i = 0; i < span.Length; i++)
                {
                    span[i] = (span[i] - m) * inv;
                }
            }
        }
    }

    /// <summary>Checks that a feature column at prediction or validation time has the type this spec was made for.</summary>
    public void CheckColumn(DataViewSchema schema, string column, string role)
    {
        if (!schema.TryGetColumnIndex(column, out int index))
        {
            throw new ArgumentOutOfRangeException(nameof(column), $"Feature column '{column}' was not found in the {role}; the data has columns {Describe(schema)}.");
        }

        var found = Resolve(schema, column, Kind is FeatureKind.Pixels ? null : Height, Kind is FeatureKind.Pixels ? null : Width, Kind is FeatureKind.Pixels ? null : Channels);
        if (found.Kind != Kind || found.Size != Size || found.Channels != Channels || (Kind != FeatureKind.Flat && (found.Height != Height || found.Width != Width)))
        {
            throw new ArgumentException(
                $"Feature column '{column}' in the {role} has type {schema[index].Type} ({found.Kind}, {found.Shape}); the model was trained on {Kind} images of {Shape} from column '{Column}'.");
        }
    }

    /// <summary>The CLR type of this kind's column values (what an ML.NET getter delivers).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Type RawType => Kind switch
    {
        FeatureKind.Pixels or FeatureKind.Flat => typeof(VBuffer<float>),
        FeatureKind.Image => typeof(MLImage),
        _ => typeof(VBuffer<byte>),
    };

    /// <summary>
    /// The reader for this kind's values of type <typeparamref name="T"/>, chosen once: it copies one value into a span
    /// of C·H·W floats (planar), checking its size and that every value is finite, or that it decodes.
    /// </summary>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is not <see cref="RawType"/>.</exception>
    public ValueReader<T> ReaderFor<T>()
    {
        if (typeof(T) != RawType)
        {
            throw new ArgumentException($"Feature column '{Column}' must hold {ColumnType()} values ({RawType.Name}); found {typeof(T).Name}.");
        }

        Delegate reader = Kind switch
        {
            FeatureKind.Pixels or FeatureKind.Flat => (ValueReader<VBuffer<float>>)ReadVector,
            FeatureKind.Image => (ValueReader<MLImage>)ReadImage,
            _ => (ValueReader<VBuffer<byte>>)ReadBytes,
        };
        return (ValueReader<T>)reader;
    }

    private void ReadVector(in VBuffer<float> vector, Span<float> destination, long row)
    {
        if (vector.Length != Size)
        {
            throw new InvalidDataException($"{RowName(row)} of feature column '{Column}' holds {vector.Length} values; expected {Size} ({Shape}).");
        }

        var values = vector.GetValues();
        if (vector.IsDense)
        {
            values.CopyTo(destination);
        }
        else
        {
            destination.Clear();
            var indices = vector.GetIndices();
            for (int i = 0; i < indices.Length; i++)
            {
                destination[indices[i]] = values[i];
            }
        }

        for (int i = 0; i < Size; i++)
        {
            if (!float.IsFinite(destination[i]))
            {
                int plane = Height * Width;
                throw new InvalidDataException(
                    $"{RowName(row)} of feature column '{Column}' holds {destination[i].ToString(CultureInfo.InvariantCulture)} at channel {i / plane}, y {i % plane / Width}, x {i % Width}; expected finite pixel values.");
            }
        }
    }

    private void ReadImage(in MLImage image, Span<float> destination, long row)
    {
        if (image is null)
        {
            throw new InvalidDataException($"{RowName(row)} of feature column '{Column}' holds no image (null).");
        }

        bool bgra = image.PixelFormat == MLPixelFormat.Bgra32;
        if (!bgra && image.PixelFormat != MLPixelFormat.Rgba32)
        {
            throw new InvalidDataException($"{RowName(row)} of image column '{Column}' has pixel format {image.PixelFormat}; expected Bgra32 or Rgba32.");
        }

        if (image.Width == Width && image.Height == Height)
        {
            FromInterleaved(image.Pixels, bgra, destination);
            return;
        }

        // A column whose type fixes the size must hold images of that size; one without a fixed size (LoadImages
        // without ResizeImages) is resized by the resize mode, as encoded bytes are.
        if (TypeShape is [> 0, > 0])
        {
            throw new InvalidDataException(
                $"{RowName(row)} of image column '{Column}' is {image.Width} x {image.Height} (width x height); expected {Width} x {Height}. Resize the images with ResizeImages.");
        }

        var info = new SKImageInfo(image.Width, image.Height, bgra ? SKColorType.Bgra8888 : SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var pixels = image.Pixels;
        int rowBytes = image.Width * 4;
        for (int y = 0; y < image.Height; y++)
        {
            System.Runtime.InteropServices.Marshal.Copy(pixels.Slice(y * rowBytes, rowBytes).ToArray(), 0, bitmap.GetPixels() + (y * bitmap.RowBytes), rowBytes);
        }

        using var rgba = bgra ? bitmap.Copy(SKColorType.Rgba8888) : null;
        FromBitmap(rgba ?? bitmap, destination, row);
    }

    private void ReadBytes(in VBuffer<byte> bytes, Span<float> destination, long row)
    {
        if (bytes.IsDense)
        {
            DecodeEncoded(bytes.GetValues(), destination, row);
        }
        else
        {
            DecodeEncoded(bytes.DenseValues().ToArray(), destination, row);
        }
    }

    /// <summary>
    /// Decodes one encoded image (PNG, JPEG, BMP, GIF, WEBP; grey or colour) and brings it to H x W with
    /// <see cref="Resize"/>, as planar raw pixels (0-255); throws <see cref="InvalidDataException"/> naming the row
    /// when the bytes do not decode (empty, truncated, not an image).
    /// </summary>
    internal void DecodeEncoded(ReadOnlySpan<byte> data, Span<float> destination, long row)
    {
        using var encoded = data.Length == 0 ? null : SKData.CreateCopy(data);
        using var codec = encoded is null ? null : SKCodec.Create(encoded);
        using var decoded = codec is null ? null : Decode(codec);
        if (decoded is null)
        {
            string head = Convert.ToHexString(data[..Math.Min(8, data.Length)]);
            string what = data.Length == 0 ? "0 bytes (an empty file?)" : $"{data.Length} bytes (starting 0x{head})";
            throw new InvalidDataException(
                $"{RowName(row)} of feature column '{Column}' holds {what} that do not decode as an image; expected an encoded PNG, JPEG, BMP, GIF or WEBP image.");
        }

        using var source = decoded.ColorType == SKColorType.Rgba8888 && decoded.AlphaType == SKAlphaType.Unpremul ? null : decoded.Copy(SKColorType.Rgba8888);
        FromBitmap(source ?? decoded, destination, row);
    }

    /// <summary>
    /// Decodes every pixel or nothing: Skia fills the rows a truncated file lacks and reports it as incomplete input,
    /// which this treats as unreadable (a half-grey image is not the picture the user has).
    /// </summary>
    private static SKBitmap? Decode(SKCodec codec)
    {
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (info.Width <= 0 || info.Height <= 0)
        {
            return null;
        }

        var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
        {
            bitmap.Dispose();
            return null;
        }

        return bitmap;
    }

    /// <summary>An RGBA bitmap (8-bit, unpremultiplied) of any size to H x W planar raw pixels, by <see cref="Resize"/>.</summary>
    private void FromBitmap(SKBitmap from, Span<float> destination, long row)
    {
        int w = from.Width, h = from.Height;
        if (w == Width && h == Height)
        {
            if (from.RowBytes == w * 4)
            {
                FromInterleaved(from.GetPixelSpan(), bgra: false, destination);
            }
            else
            {
                FromInterleaved(Tight(from), bgra: false, destination);
            }

            return;
        }

        switch (Resize)
        {
            case ImageResizeMode.Pad:
            {
                double s = Math.Min((double)Width / w, (double)Height / h);
                int tw = Math.Clamp((int)Math.Round(w * s), 1, Width), th = Math.Clamp((int)Math.Round(h * s), 1, Height);
                using var scaled = Scale(from, tw, th, row);
                var fitted = Tight(scaled ?? from);
                var canvas = new byte[Width * Height * 4];
                int x0 = (Width - tw) / 2, y0 = (Height - th) / 2;
                for (int y = 0; y < th; y++)
                {
                    fitted.AsSpan(y * tw * 4, tw * 4).CopyTo(canvas.AsSpan((((y0 + y) * Width) + x0) * 4));
                }

                FromInterleaved(canvas, bgra: false, destination);
                return;
            }

            case ImageResizeMode.Crop:
            {
                double s = Math.Max((double)Width / w, (double)Height / h);
                int cw = Math.Clamp((int)Math.Round(Width / s), 1, w), ch = Math.Clamp((int)Math.Round(Height / s), 1, h);
                int x0 = (w - cw) / 2, y0 = (h - ch) / 2;
                var all = Tight(from);
                using var centre = new SKBitmap(new SKImageInfo(cw, ch, SKColorType.Rgba8888, SKAlphaType.Unpremul));
                var crop = new byte[cw * ch * 4];
                for (int y = 0; y < ch; y++)
                {
                    all.AsSpan((((y0 + y) * w) + x0) * 4, cw * 4).CopyTo(crop.AsSpan(y * cw * 4));
                }

                CopyInto(centre, crop);
                using var scaled = Scale(centre, Width, Height, row);
                FromInterleaved(Tight(scaled ?? centre), bgra: false, destination);
                return;
            }

            default:
            {
                using var scaled = Scale(from, Width, Height, row)!;
                FromInterleaved(scaled.GetPixelSpan(), bgra: false, destination);
                return;
            }
        }
    }

    /// <summary>A resized copy (Skia's high-quality filter), or null when the size is already right.</summary>
    private SKBitmap? Scale(SKBitmap from, int width, int height, long row)
    {
        if (from.Width == width && from.Height == height)
        {
            return null;
        }

        var resized = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!from.ScalePixels(resized, SKFilterQuality.High))
        {
            resized.Dispose();
            throw new InvalidDataException($"{RowName(row)} of feature column '{Column}': the {from.Width} x {from.Height} image could not be resized to {width} x {height}.");
        }

        return resized;
    }

    /// <summary>The bitmap's pixels without row padding (width x 4 bytes per row).</summary>
    private static byte[] Tight(SKBitmap bitmap)
    {
        int rowBytes = bitmap.Width * 4;
        var all = bitmap.GetPixelSpan();
        if (bitmap.RowBytes == rowBytes)
        {
            return all.Slice(0, rowBytes * bitmap.Height).ToArray();
        }

        var tight = new byte[rowBytes * bitmap.Height];
        for (int y = 0; y < bitmap.Height; y++)
        {
            all.Slice(y * bitmap.RowBytes, rowBytes).CopyTo(tight.AsSpan(y * rowBytes));
        }

        return tight;
    }

    private static void CopyInto(SKBitmap bitmap, byte[] tight)
    {
        int rowBytes = bitmap.Width * 4;
        for (int y = 0; y < bitmap.Height; y++)
        {
            System.Runtime.InteropServices.Marshal.Copy(tight, y * rowBytes, bitmap.GetPixels() + (y * bitmap.RowBytes), rowBytes);
        }
    }

    /// <summary>Interleaved 8-bit RGBA or BGRA to planar channels: 1 = luminance, 3 = R, G, B, 4 = R, G, B, A (0-255).</summary>
    private void FromInterleaved(ReadOnlySpan<byte> pixels, bool bgra, Span<float> destination)
    {
        int plane = Height * Width;
        int r = bgra ? 2 : 0, b = bgra ? 0 : 2;
        for (int p = 0; p < plane; p++)
        {
            var px = pixels.Slice(p * 4, 4);
            if (Channels == 1)
            {
                destination[p] = (0.299f * px[r]) + (0.587f * px[1]) + (0.114f * px[b]);
            }
            else
            {
                destination[p] = px[r];
                destination[plane + p] = px[1];
                destination[(2 * plane) + p] = px[b];
                if (Channels == 4)
                {
                    destination[(3 * plane) + p] = px[3];
                }
            }
        }
    }

    private static void CheckOption(string column, string name, int? option, int fromType, DataViewType type)
    {
        if (option is { } value && value != fromType)
        {
            throw new ArgumentException($"{name} is {value} but feature column '{column}' has type {type}, which gives {fromType}; leave {name} unset or make them agree.");
        }
    }

    private static void CheckPositive(string column, int height, int width, int channels)
    {
        if (height <= 0 || width <= 0 || channels <= 0)
        {
            throw new ArgumentException($"Images of feature column '{column}' must have positive ImageChannels, ImageHeight and ImageWidth; found {channels} x {height} x {width}.");
        }
    }

    private static void CheckImageChannels(string column, int channels)
    {
        if (channels is not (1 or 3 or 4))
        {
            throw new ArgumentException($"ImageChannels for image column '{column}' must be 1 (grey), 3 (RGB) or 4 (RGBA); found {channels}.");
        }
    }

    private static string RowName(long row) => row >= 0 ? string.Create(CultureInfo.InvariantCulture, $"Row {row}") : "A row";

    internal static string Describe(DataViewSchema schema) =>
        "[" + string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}' ({c.Type})")) + "]";
}
