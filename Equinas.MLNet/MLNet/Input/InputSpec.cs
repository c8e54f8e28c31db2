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
        FeatureKind.Image => new ImageDataViewType(TypeShape[0], TypeShape[1]),
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
        int plane = Height * Width;
        var sum = new double[Channels];
        var squares = new double[Channels];
        long images = pixels.Length / Size;
        for (long i = 0; i < images; i++)
        {
            for (int c = 0; c < Channels; c++)
            {
                var span = pixels.Slice((int)(i * Size) + c * plane, plane);
                double s = 0, q = 0;
                foreach (float x in span)
                {
                    s += x;
                    q += (double)x * x;
                }

                sum[c] += s;
                squares[c] += q;
            }
        }

        double count = Math.Max(1.0, (double)images * plane);
        var mean = new float[Channels];
        var std = new float[Channels];
        for (int c = 0; c < Channels; c++)
        {
            double m = sum[c] / count;
            double variance = Math.Max(0, squares[c] / count - m * m);
            double s = Math.Sqrt(variance);
            mean[c] = (float)m;
            std[c] = s > 1e-6 * Math.Max(1, Math.Abs(m)) ? (float)s : 1f;
        }

        return this with { Mean = mean, Std = std };
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

        if (image.Width != Width || image.Height != Height)
        {
            throw new InvalidDataException(
                $"{RowName(row)} of image column '{Column}' is {image.Width} x {image.Height} (width x height); expected {Width} x {Height}. Resize the images with ResizeImages.");
        }

        bool bgra = image.PixelFormat == MLPixelFormat.Bgra32;
        if (!bgra && image.PixelFormat != MLPixelFormat.Rgba32)
        {
            throw new InvalidDataException($"{RowName(row)} of image column '{Column}' has pixel format {image.PixelFormat}; expected Bgra32 or Rgba32.");
        }

        FromInterleaved(image.Pixels, bgra, destination);
    }

    private void ReadBytes(in VBuffer<byte> bytes, Span<float> destination, long row)
    {
        var data = bytes.DenseValues().ToArray();
        using var encoded = data.Length == 0 ? null : SKData.CreateCopy(data);
        using var codec = encoded is null ? null : SKCodec.Create(encoded);
        using var decoded = codec is null ? null : SKBitmap.Decode(codec);
        if (decoded is null)
        {
            string head = Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)));
            throw new InvalidDataException(
                $"{RowName(row)} of feature column '{Column}' holds {data.Length} bytes (starting 0x{head}) that do not decode as an image; expected an encoded PNG, JPEG, BMP, GIF or WEBP image.");
        }

        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var resized = new SKBitmap(info);
        using (var source = decoded.ColorType == SKColorType.Rgba8888 && decoded.AlphaType == SKAlphaType.Unpremul ? null : decoded.Copy(SKColorType.Rgba8888))
        {
            var from = source ?? decoded;
            if (from.Width == Width && from.Height == Height)
            {
                FromInterleaved(from.GetPixelSpan(), bgra: false, destination);
                return;
            }

            if (!from.ScalePixels(resized, SKFilterQuality.High))
            {
                throw new InvalidDataException($"{RowName(row)} of feature column '{Column}': the {from.Width} x {from.Height} image could not be resized to {Width} x {Height}.");
            }
        }

        FromInterleaved(resized.GetPixelSpan(), bgra: false, destination);
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
