#nullable enable
using Equinas.MLNet.Search.Training;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Equinas.MLNet.Input;

/// <summary>
/// Raw images and labels read from an <see cref="IDataView"/>: either <c>N x C x H x W</c> planar floats in memory, or,
/// for data larger than the memory bound, each row's source (its encoded bytes, or its raw pixels) in a scratch file to
/// be decoded on demand; key labels either way.
/// </summary>
internal sealed class RawImages : IDisposable
{
    /// <summary>Gets the raw pixels when held in memory (null when spilled).</summary>
    public float[]? Pixels { get; init; }

    /// <summary>Gets the scratch file with one record per image when spilled (null when held in memory).</summary>
    public SpillFile? Spill { get; set; }

    public required long[] Labels { get; init; }

    public required int Count { get; init; }

    /// <summary>Gets the data view's row of every image (for messages when an image is decoded again).</summary>
    public required long[] Rows { get; init; }

    /// <summary>Rows skipped because their label key was missing.</summary>
    public required long SkippedMissingLabels { get; init; }

    /// <summary>Rows skipped because their image did not decode, with the file (or row) and why.</summary>
    public required IReadOnlyList<(string Name, string Reason)> Unreadable { get; init; }

    /// <summary>The per-channel sums of the raw images read (the training data's normalisation).</summary>
    public required InputSpec.NormalizationSums Sums { get; init; }

    /// <summary>Bytes of decoded floats this holds in memory (0 when spilled).</summary>
    public long HeldBytes => Pixels is null ? 0 : (long)Pixels.Length * sizeof(float);

    /// <summary>
    /// Normalises with <paramref name="spec"/> and hands the rows to an <see cref="ImageDataset"/> (tensors owned by it):
    /// held in memory as one tensor, or, when spilled, decoded on demand through <paramref name="cache"/> (the scratch
    /// file then belongs to the dataset).
    /// </summary>
    public ImageDataset ToDataset(InputSpec spec, int classes, DecodedImageCache cache)
    {
        using var scope = torch.NewDisposeScope();
        var labels = torch.tensor(Labels.AsSpan(0, Count).ToArray());
        if (Spill is { } spill)
        {
            var rows = Rows;
            void Decode(int index, Span<float> destination)
            {
                int length = spill.LengthOf(index);
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    spill.Read(index, buffer);
                    DatasetReader.DecodeRecord(spec, buffer.AsSpan(0, length), destination, rows[index]);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }

                spec.Normalize(destination);
            }

            var source = new LazyImageSource(Count, spec.Channels, spec.Height, spec.Width, Decode, cache, spill);
            Spill = null;
            try
            {
                return new ImageDataset(source, Enumerable.Range(0, Count).ToArray(), labels.MoveToOuterDisposeScope(), classes);
            }
            finally
            {
                source.Release();
            }
        }

        var pixels = Pixels!.Length == Count * spec.Size ? Pixels : Pixels.AsSpan(0, Count * spec.Size).ToArray();
        spec.Normalize(pixels);
        var images = torch.tensor(pixels, [Count, spec.Channels, spec.Height, spec.Width]);
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), classes);
    }

    public void Dispose() => Spill?.Dispose();
}

/// <summary>How <see cref="DatasetReader.Read(IDataView, InputSpec, string, Action, ReadSettings)"/> treats unreadable images, names files, bounds memory and reports.</summary>
/// <param name="Strict">Throw at the first image that does not decode (else skip it with a warning).</param>
/// <param name="PathColumn">A text column holding each row's file path, used to name files in messages (null: rows are named by position).</param>
/// <param name="MemoryBytes">The most bytes of decoded images to hold in memory; larger data is spilled to a scratch file.</param>
/// <param name="Role">"training data" or "validation data", for messages.</param>
/// <param name="Warning">Receives each warning.</param>
/// <param name="Info">Receives progress lines.</param>
internal sealed record ReadSettings(bool Strict, string? PathColumn, long MemoryBytes, string Role, Action<string> Warning, Action<string> Info)
{
    /// <summary>Settings of a quiet, lenient, unbounded read (tests).</summary>
    public static ReadSettings Default { get; } = new(false, null, long.MaxValue, "data", _ => { }, _ => { });
}

/// <summary>
/// Reads the feature and label columns of a data view once, into memory, checking every row. Every error names the
/// column, the row, what was expected and what was found.
/// </summary>
internal static class DatasetReader
{
    /// <summary>
    /// The label column's class count (its key cardinality), or an exception naming what is wrong; with
    /// <paramref name="requireTwo"/> false only the column and its type are checked.
    /// </summary>
    public static int ClassCount(DataViewSchema schema, string labelColumn, string role, bool requireTwo = true)
    {
        if (!schema.TryGetColumnIndex(labelColumn, out int index))
        {
            throw new ArgumentOutOfRangeException(
                nameof(labelColumn),
                $"Label column '{labelColumn}' was not found in the {role}; the data has columns {InputSpec.Describe(schema)}. Set LabelColumnName, or map the label to a key with MapValueToKey.");
        }

        var type = schema[index].Type;
        if (type is not KeyDataViewType key)
        {
            throw new ArgumentException(
                $"Label column '{labelColumn}' has type {type}; expected a key type. Convert it with mlContext.Transforms.Conversion.MapValueToKey(\"{labelColumn}\").");
        }

        if (requireTwo && key.Count < 2)
        {
            throw new ArgumentException($"Label column '{labelColumn}' has {key.Count} class(es); classification needs at least 2.");
        }

        if (key.Count > 1_000_000)
        {
            throw new ArgumentException($"Label column '{labelColumn}' has {key.Count} classes; at most 1,000,000 are supported.");
        }

        return (int)key.Count;
    }

    /// <summary>The label column's key values as text, or null when it has none.</summary>
    public static string[]? KeyNames(DataViewSchema schema, string labelColumn)
    {
        var column = schema[labelColumn];
        if (!column.HasKeyValues())
        {
            return null;
        }

        VBuffer<ReadOnlyMemory<char>> values = default;
        try
        {
            column.GetKeyValues(ref values);
        }
        catch (InvalidOperationException)
        {
            return null;
        }

        return values.DenseValues().Select(v => v.ToString()).ToArray();
    }

    /// <summary>Reads every row with <see cref="ReadSettings.Default"/>.</summary>
    public static RawImages Read(IDataView data, InputSpec spec, string labelColumn, Action checkAlive) =>
        Read(data, spec, labelColumn, checkAlive, ReadSettings.Default);

    /// <summary>
    /// Reads every row, skipping rows whose label is missing (key 0) and, unless strict, rows whose image does not
    /// decode (each named in a warning); checks cancellation every 256 rows and reports progress every 2 seconds.
    /// Raw pixels are held in memory up to <see cref="ReadSettings.MemoryBytes"/>; beyond it every row's source (the
    /// encoded bytes, or the raw pixels of pixel columns) goes to a scratch file instead, to be decoded on demand.
    /// </summary>
    public static RawImages Read(IDataView data, InputSpec spec, string labelColumn, Action checkAlive, ReadSettings settings)
    {
        var schema = data.Schema;
        var featureCol = schema[spec.Column];
        var labelCol = schema[labelColumn];
        DataViewSchema.Column? pathCol = null;
        if (settings.PathColumn is { } pathName)
        {
            if (!schema.TryGetColumnIndex(pathName, out int pathIndex))
            {
                throw new ArgumentOutOfRangeException(nameof(settings), $"Image path column '{pathName}' (ImagePathColumnName) was not found in the {settings.Role}; the data has columns {InputSpec.Describe(schema)}.");
            }

            if (schema[pathIndex].Type is not TextDataViewType)
            {
                throw new ArgumentException($"Image path column '{pathName}' (ImagePathColumnName) has type {schema[pathIndex].Type}; expected text (the file path of each row).");
            }

            pathCol = schema[pathIndex];
        }

        var labelGetter = KeyGetter(labelCol, labelColumn);
        DataViewSchema.Column[] active = pathCol is { } p && p.Index != featureCol.Index && p.Index != labelCol.Index ? [featureCol, labelCol, p] : [featureCol, labelCol];
        using var cursor = OpenCursor(data, active, spec.Kind == FeatureKind.Image);
        bool encoded = spec.Kind == FeatureKind.Bytes;
        var reader = encoded ? null : FeatureGetter(cursor, featureCol, spec);
        var bytesGetter = encoded ? cursor.GetGetter<VBuffer<byte>>(featureCol) : null;
        var pathGetter = pathCol is { } pc ? cursor.GetGetter<ReadOnlyMemory<char>>(pc) : null;
        int size = spec.Size;
        long budgetFloats = Math.Max(size, Math.Min(settings.MemoryBytes / sizeof(float), Array.MaxLength));
        long? total = data.GetRowCount();
        long rows = total ?? 1024;
        // A known row count whose images exceed the bound goes to the scratch file from the first row: no buffer of
        // held pixels (up to the bound) is filled only to become garbage when the bound is reached, while the cache
        // fills the same bound again. Rows skipped later can leave data that would have fitted on this path; the
        // batches are the same either way.
        bool spillFromStart = total is { } known && known > budgetFloats / size;
        var pixels = spillFromStart ? [] : new float[Math.Max(size, Math.Min(Math.Min(rows, int.MaxValue / size) * size, budgetFloats / size * size))];
        var kept = encoded && !spillFromStart ? new List<byte[]>() : null;
        long keptBytes = 0;
        SpillFile? spill = null;
        var scratch = new float[size];
        var labels = new List<long>();
        var sourceRows = new List<long>();
        var unreadable = new List<(string, string)>();
        var sums = new InputSpec.NormalizationSums(spec);
        long row = -1, skipped = 0;
        int count = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        try
        {
            if (spillFromStart)
            {
                spill = new SpillFile();
            }

            while (true)
            {
                bool more;
                try
                {
                    more = cursor.MoveNext();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // ML.NET's loaders (LoadImages) decode inside the cursor: a file that fails there ends the whole
                    // cursor, and the consolidator's message names nothing. Say where it happened and what to do.
                    throw new InvalidDataException(
                        $"Reading the {settings.Role} failed after row {row} (column '{spec.Column}'): {Innermost(e).Message} An image that does not load inside ML.NET's cursor stops it; feed encoded bytes (LoadRawImageBytes) instead, so that the trainer decodes each image itself and skips unreadable files with a warning.",
                        e);
                }

                if (!more)
                {
                    break;
                }

                row++;
                if ((row & 255) == 0)
                {
                    checkAlive();
                    if (clock.Elapsed - lastReport >= TimeSpan.FromSeconds(2))
                    {
                        lastReport = clock.Elapsed;
                        settings.Info(Progress(settings.Role, row, total, unreadable.Count, clock.Elapsed));
                    }
                }

                ulong label = labelGetter(cursor);
                if (label == 0)
                {
                    skipped++;
                    continue;
                }

                if (spill is null && (long)(count + 1) * size + (keptBytes / sizeof(float)) > budgetFloats)
                {
                    spill = Spill(pixels, count, size, kept);
                    pixels = [];
                    kept = null;
                    keptBytes = 0;
                    // The held pixels and encoded bytes (up to the bound together) are garbage now. Collect them once,
                    // here, rather than whenever the managed heap next asks for a full collection: by then the image
                    // cache may have filled the bound again, and RSS would hold both.
                    GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
                }

                var destination = spill is null ? GrowFor(ref pixels, count, size, budgetFloats) : scratch.AsSpan();
                VBuffer<byte> value = default;
                try
                {
                    if (bytesGetter is not null)
                    {
                        bytesGetter(ref value);
                        if (!value.IsDense)
                        {
                            value = new VBuffer<byte>(value.Length, value.DenseValues().ToArray());
                        }

                        spec.DecodeEncoded(value.GetValues(), destination, row);
                    }
                    else
                    {
                        reader!(destination, row);
                    }
                }
                catch (Exception e) when (IsUnreadable(e, spec.Kind))
                {
                    string name = Name(pathGetter, row);
                    if (settings.Strict)
                    {
                        throw new InvalidDataException(
                            $"Cannot read {name}: {e.Message} (StrictImageReading is on, so reading stops at the first image that does not decode; turn it off to skip such images with a warning).", e);
                    }

                    unreadable.Add((name, e.Message));
                    settings.Warning($"Skipping {name} of the {settings.Role}: {e.Message}");
                    continue;
                }

                sums.Add(destination);
                if (spill is not null)
                {
                    spill.Append(encoded ? value.GetValues() : System.Runtime.InteropServices.MemoryMarshal.AsBytes((ReadOnlySpan<float>)destination));
                }
                else if (kept is not null)
                {
                    kept.Add(value.GetValues().ToArray());
                    keptBytes += value.Length;
                }

                labels.Add((long)label - 1);
                sourceRows.Add(row);
                count++;
            }

            if (unreadable.Count > 0)
            {
                settings.Warning($"Skipped {unreadable.Count} unreadable image(s) of {row + 1} row(s) in the {settings.Role} (set StrictImageReading to stop at the first instead).");
            }

            if (row >= 255 || spill is not null)
            {
                settings.Info(Progress(settings.Role, row, row + 1, unreadable.Count, clock.Elapsed) + (spill is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; larger than the memory bound, so the images are decoded on demand from a {spill.Length / 1048576.0:F1} MB scratch file")));
            }

            var result = new RawImages
            {
                Pixels = spill is null ? pixels : null,
                Spill = spill,
                Labels = labels.ToArray(),
                Count = count,
                Rows = sourceRows.ToArray(),
                SkippedMissingLabels = skipped,
                Unreadable = unreadable,
                Sums = sums,
            };
            spill = null;
            return result;
        }
        finally
        {
            spill?.Dispose();
        }
    }

    /// <summary>Decodes one scratch-file record (encoded bytes, or raw floats) into raw planar pixels.</summary>
    internal static void DecodeRecord(InputSpec spec, ReadOnlySpan<byte> record, Span<float> destination, long row)
    {
        if (spec.Kind == FeatureKind.Bytes)
        {
            spec.DecodeEncoded(record, destination, row);
        }
        else
        {
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(record).CopyTo(destination);
        }
    }

    private static string Progress(string role, long row, long? total, int unreadable, TimeSpan elapsed)
    {
        long read = row + 1;
        string of = total is { } t ? string.Create(CultureInfo.InvariantCulture, $" of {t:N0}") : "";
        double rate = read / Math.Max(1e-3, elapsed.TotalSeconds);
        return string.Create(CultureInfo.InvariantCulture, $"Reading the {role}: {read:N0}{of} rows, {unreadable} unreadable, {rate:N0} images/s, {elapsed.TotalSeconds:F0} s");
    }

    private static DataViewRowCursor OpenCursor(IDataView data, DataViewSchema.Column[] columns, bool single)
    {
        if (single)
        {
            // One cursor on this thread: an image that fails to load then throws from its getter, for this row only,
            // instead of ending a splitting cursor's worker.
            var set = data.GetRowCursorSet(columns, 1);
            if (set.Length == 1)
            {
                return set[0];
            }

            foreach (var c in set)
            {
                c.Dispose();
            }
        }

        return data.GetRowCursor(columns);
    }

    private static bool IsUnreadable(Exception e, FeatureKind kind) => e switch
    {
        OperationCanceledException => false,
        InvalidDataException => kind is FeatureKind.Bytes or FeatureKind.Image,
        _ => kind == FeatureKind.Image && e is not (OutOfMemoryException or ArgumentException { ParamName: "column" }),
    };

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is { } inner)
        {
            e = inner;
        }

        return e;
    }

    private static string Name(ValueGetter<ReadOnlyMemory<char>>? path, long row)
    {
        if (path is null)
        {
            return string.Create(CultureInfo.InvariantCulture, $"row {row}");
        }

        ReadOnlyMemory<char> value = default;
        path(ref value);
        return string.Create(CultureInfo.InvariantCulture, $"'{value}' (row {row})");
    }

    /// <summary>The span for image <paramref name="count"/>, growing the array (up to the bound) as needed.</summary>
    private static Span<float> GrowFor(ref float[] pixels, int count, int size, long budgetFloats)
    {
        if ((long)(count + 1) * size > pixels.Length)
        {
            Array.Resize(ref pixels, (int)Math.Min(Math.Min(Array.MaxLength, budgetFloats / size * size), Math.Max((long)(count + 1) * size, 2L * pixels.Length)));
        }

        return pixels.AsSpan(count * size, size);
    }

    /// <summary>Moves the rows read so far into a new scratch file (their encoded bytes, or their raw pixels).</summary>
    private static SpillFile Spill(float[] pixels, int count, int size, List<byte[]>? kept)
    {
        var spill = new SpillFile();
        try
        {
            for (int i = 0; i < count; i++)
            {
                spill.Append(kept is not null ? kept[i] : System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels.AsSpan(i * size, size)));
            }

            return spill;
        }
        catch
        {
            spill.Dispose();
            throw;
        }
    }

    /// <summary>A getter of the raw key value (0 = missing) for any key raw type.</summary>
    private static Func<DataViewRow, ulong> KeyGetter(DataViewSchema.Column column, string name)
    {
        var raw = column.Type.RawType;
        if (raw == typeof(uint))
        {
            return Make<uint>(v => v);
        }

        if (raw == typeof(byte))
        {
            return Make<byte>(v => v);
        }

        if (raw == typeof(ushort))
        {
            return Make<ushort>(v => v);
        }

        if (raw == typeof(ulong))
        {
            return Make<ulong>(v => v);
        }

        throw new ArgumentException($"Label column '{name}' is a key over {raw.Name}; expected a key over UInt32, Byte, UInt16 or UInt64.");

        Func<DataViewRow, ulong> Make<T>(Func<T, ulong> widen)
        {
            ValueGetter<T>? getter = null;
            DataViewRow? owner = null;
            return row =>
            {
                if (!ReferenceEquals(owner, row))
                {
                    getter = row.GetGetter<T>(column);
                    owner = row;
                }

                T value = default!;
                getter!(ref value);
                return widen(value);
            };
        }
    }

    /// <summary>A reader that copies the current row's feature value into a span, with the row position for messages.</summary>
    internal static SpanReader FeatureGetter(DataViewRow row, DataViewSchema.Column column, InputSpec spec)
    {
        return spec.Kind switch
        {
            FeatureKind.Pixels or FeatureKind.Flat => Make<VBuffer<float>>(),
            FeatureKind.Image => Make<MLImage>(),
            _ => Make<VBuffer<byte>>(),
        };

        SpanReader Make<T>()
        {
            var getter = row.GetGetter<T>(column);
            var read = spec.ReaderFor<T>();
            T value = default!;
            return (destination, position) =>
            {
                getter(ref value);
                read(value, destination, position);
            };
        }
    }

    /// <summary>Copies one feature value into the span; the long is the row position for messages.</summary>
    internal delegate void SpanReader(Span<float> destination, long row);
}
