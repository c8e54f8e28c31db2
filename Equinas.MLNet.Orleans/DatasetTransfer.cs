#nullable enable
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Equinas.MLNet.Search.Training;
using TorchSharp;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// A search's training and validation data as bytes, for the workers: encoded once per search, identified by the
/// SHA-256 of those bytes (so a silo that already holds them is sent nothing) and sent in chunks well below Orleans'
/// message size limit.
/// </summary>
/// <remarks>
/// <code>
/// // *** Binary format (version 1) ***
/// // int32   magic "EQDS" (0x53445145), int32 version
/// // twice (training, then validation):
/// //   int32 count, channels, height, width, classes
/// //   float32[count * channels * height * width]  images, row-major, little-endian
/// //   int64[count]                                 labels
/// </code>
/// The images are the engine's normalised tensors, bit for bit, so a worker trains on exactly what this process would.
/// </remarks>
internal sealed class DatasetTransfer
{
    private const int Magic = 0x53445145;
    private const int Version = 1;

    /// <summary>Bytes per upload call (Orleans' default message body limit is 100 MB).</summary>
    public const int ChunkSize = 8 << 20;

    private DatasetTransfer(byte[] bytes)
    {
        Bytes = bytes;
        Hash = HashOf(bytes);
    }

    public byte[] Bytes { get; }

    /// <summary>The SHA-256 of <see cref="Bytes"/> in lower-case hex.</summary>
    public string Hash { get; }

    public int ChunkCount => Math.Max(1, (Bytes.Length + ChunkSize - 1) / ChunkSize);

    public byte[] Chunk(int index) => Bytes.AsSpan(index * ChunkSize, Math.Min(ChunkSize, Bytes.Length - (index * ChunkSize))).ToArray();

    public static string HashOf(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static DatasetTransfer Encode(ImageDataset train, ImageDataset validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(Version);
            Write(writer, train);
            Write(writer, validation);
        }

        return new DatasetTransfer(stream.ToArray());
    }

    /// <summary>Decodes what <see cref="Encode"/> wrote; the caller owns both datasets.</summary>
    /// <exception cref="InvalidDataException">The bytes are not such a dataset.</exception>
    public static (ImageDataset Train, ImageDataset Validation) Decode(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false));
        try
        {
            if (reader.ReadInt32() != Magic)
            {
                throw new InvalidDataException("The uploaded dataset does not start with the EQDS signature.");
            }

            int version = reader.ReadInt32();
            if (version != Version)
            {
                throw new InvalidDataException($"The uploaded dataset has format version {version}; this worker reads version {Version}. Use the same Equinas.MLNet.Orleans version on the driver and the workers.");
            }

            var train = Read(reader);
            try
            {
                return (train, Read(reader));
            }
            catch
            {
                train.Dispose();
                throw;
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("The uploaded dataset is truncated.", e);
        }
    }

    private static void Write(BinaryWriter writer, ImageDataset data)
    {
        writer.Write(data.Count);
        writer.Write(data.Channels);
        writer.Write(data.Height);
        writer.Write(data.Width);
        writer.Write(data.Classes);
        using var scope = torch.NewDisposeScope();
        writer.Write(MemoryMarshal.AsBytes(data.Images.contiguous().data<float>().ToArray().AsSpan()));
        writer.Write(MemoryMarshal.AsBytes(data.Labels.contiguous().data<long>().ToArray().AsSpan()));
    }

    private static ImageDataset Read(BinaryReader reader)
    {
        int count = reader.ReadInt32(), channels = reader.ReadInt32(), height = reader.ReadInt32(), width = reader.ReadInt32(), classes = reader.ReadInt32();
        if (count < 0 || channels <= 0 || height <= 0 || width <= 0 || classes < 2)
        {
            throw new InvalidDataException($"The uploaded dataset's header is invalid: {count} images of {channels}x{height}x{width}, {classes} classes.");
        }

        var images = new float[checked(count * channels * height * width)];
        var labels = new long[count];
        ReadExactly(reader, MemoryMarshal.AsBytes(images.AsSpan()));
        ReadExactly(reader, MemoryMarshal.AsBytes(labels.AsSpan()));
        return new ImageDataset(torch.tensor(images, [count, channels, height, width]), torch.tensor(labels), classes);
    }

    private static void ReadExactly(BinaryReader reader, Span<byte> target)
    {
        if (reader.Read(target) != target.Length)
        {
            throw new EndOfStreamException();
        }
    }
}
