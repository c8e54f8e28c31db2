#nullable enable
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Equinas.MLNet.Input;

/// <summary>Raw images and labels read from an <see cref="IDataView"/>: <c>N x C x H x W</c> planar floats and key labels.</summary>
internal sealed class RawImages
{
    public required float[] Pixels { get; init; }

    public required long[] Labels { get; init; }

    public required int Count { get; init; }

    /// <summary>Rows skipped because their label key was missing.</summary>
    public required long SkippedMissingLabels { get; init; }

    /// <summary>
    /// Normalises with <paramref name="spec"/> and hands the rows to an <see cref="ImageDataset"/> (tensors owned by it).
    /// </summary>
    public ImageDataset ToDataset(InputSpec spec, int classes)
    {
        var pixels = Pixels.Length == Count * spec.Size ? Pixels : Pixels.AsSpan(0, Count * spec.Size).ToArray();
        spec.Normalize(pixels);
        using var scope = torch.NewDisposeScope();
        var images = torch.tensor(pixels, [Count, spec.Channels, spec.Height, spec.Width]);
        var labels = torch.tensor(Labels.AsSpan(0, Count).ToArray());
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), classes);
    }
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

    /// <summary>Reads every row, skipping rows whose label is missing (key 0); checks cancellation every 256 rows.</summary>
    public static RawImages Read(IDataView data, InputSpec spec, string labelColumn, Action checkAlive)
    {
        var schema = data.Schema;
        var featureCol = schema[spec.Column];
        var labelCol = schema[labelColumn];
        var labelGetter = KeyGetter(labelCol, labelColumn);
        using var cursor = data.GetRowCursor([featureCol, labelCol]);
        var reader = FeatureGetter(cursor, featureCol, spec);
        int size = spec.Size;
        long rows = data.GetRowCount() ?? 1024;
        var pixels = new float[Math.Max(size, (int)Math.Min(rows, int.MaxValue / size) * size)];
        var labels = new List<long>();
        long row = -1, skipped = 0;
        int count = 0;
        while (cursor.MoveNext())
        {
            row++;
            if ((row & 255) == 0)
            {
                checkAlive();
            }

            ulong label = labelGetter(cursor);
            if (label == 0)
            {
                skipped++;
                continue;
            }

            if ((long)(count + 1) * size > Array.MaxLength)
            {
                throw new InvalidOperationException($"The data holds more than {Array.MaxLength / size} images of {spec.Shape}, more than fits in memory at once.");
            }

            if ((count + 1) * size > pixels.Length)
            {
                Array.Resize(ref pixels, (int)Math.Min(Array.MaxLength, 2L * pixels.Length));
            }

            reader(pixels.AsSpan(count * size, size), row);
            labels.Add((long)label - 1);
            count++;
        }

        return new RawImages { Pixels = pixels, Labels = labels.ToArray(), Count = count, SkippedMissingLabels = skipped };
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
