#nullable enable
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Training;

/// <summary>
/// Images and labels: images <c>N x C x H x W</c> float32, labels <c>N</c> int64 in [0, classes). Either held as one
/// tensor (decoded and normalised once) or decoded on demand from a <see cref="LazyImageSource"/> through its bounded
/// cache, for data larger than memory; both give the same batches, bit for bit. Batches are gathered by index. Owns
/// its tensors (and its share of a lazy source).
/// </summary>
internal sealed class ImageDataset : IDisposable
{
    private readonly Tensor? _images;
    private readonly LazyImageSource? _lazy;
    private readonly int[]? _rows;
    private readonly int _count, _channels, _height, _width;

    /// <summary>Takes ownership of the tensors after checking their shapes, types and label range.</summary>
    /// <exception cref="ArgumentException">Shapes, types or labels are not as described.</exception>
    public ImageDataset(Tensor images, Tensor labels, int classes)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        if (images.dim() != 4 || images.dtype != ScalarType.Float32)
        {
            throw new ArgumentException($"Images must be a float32 tensor N x C x H x W; found {images.dtype} [{string.Join(", ", images.shape)}].", nameof(images));
        }

        CheckLabels(labels, images.shape[0], classes);
        _images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        Classes = classes;
        _count = (int)images.shape[0];
        _channels = (int)images.shape[1];
        _height = (int)images.shape[2];
        _width = (int)images.shape[3];
    }

    /// <summary>
    /// A dataset over rows <paramref name="rows"/> of a lazy source (a new reference to it is taken), with their labels
    /// (ownership taken).
    /// </summary>
    public ImageDataset(LazyImageSource source, int[] rows, Tensor labels, int classes)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        if (rows.Any(r => r < 0 || r >= source.Count))
        {
            throw new ArgumentException($"Rows must lie in [0, {source.Count}).", nameof(rows));
        }

        CheckLabels(labels, rows.Length, classes);
        _lazy = source.AddReference();
        _rows = rows;
        Labels = labels.DetachFromDisposeScope();
        Classes = classes;
        _count = rows.Length;
        _channels = source.Channels;
        _height = source.Height;
        _width = source.Width;
    }

    /// <summary>Gets the images as one tensor; only for datasets held in memory (<see cref="IsLazy"/> false).</summary>
    /// <exception cref="InvalidOperationException">The images are decoded on demand.</exception>
    public Tensor Images => _images ?? throw new InvalidOperationException("This dataset decodes its images on demand (it is larger than the image cache); gather them with Batch or Slice.");

    public Tensor Labels { get; }

    public int Classes { get; }

    /// <summary>Gets whether the images are decoded on demand rather than held as one tensor.</summary>
    public bool IsLazy => _lazy is not null;

    /// <summary>Gets the cache a lazy dataset reads through (null when held in memory).</summary>
    public DecodedImageCache? Cache => _lazy?.Cache;

    public int Count => _count;

    public int Channels => _channels;

    public int Height => _height;

    public int Width => _width;

    /// <summary>A new dataset holding copies of the given rows (a lazy dataset shares its source instead).</summary>
    public ImageDataset Subset(IReadOnlyList<long> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        using var scope = NewDisposeScope();
        var rows = indices.ToArray();
        if (_lazy is not null)
        {
            var labels = Labels.index_select(0, torch.tensor(rows));
            return new ImageDataset(_lazy, rows.Select(r => _rows![r]).ToArray(), labels.MoveToOuterDisposeScope(), Classes);
        }

        var (images, labelsCopy) = Batch(rows);
        return new ImageDataset(images.MoveToOuterDisposeScope(), labelsCopy.MoveToOuterDisposeScope(), Classes);
    }

    /// <summary>
    /// The images and labels of the given rows, in that order: the one place where batches are gathered. The tensors
    /// belong to the caller's dispose scope.
    /// </summary>
    public (Tensor Images, Tensor Labels) Batch(long[] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        using var scope = NewDisposeScope();
        var index = torch.tensor(rows, device: Labels.device);
        return (Gather(rows).MoveToOuterDisposeScope(), Labels.index_select(0, index).MoveToOuterDisposeScope());
    }

    /// <summary>The images of the given rows, in that order (the caller's dispose scope).</summary>
    public Tensor Gather(long[] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (_images is not null)
        {
            using var scope = NewDisposeScope();
            var index = torch.tensor(rows, device: _images.device);
            return _images.index_select(0, index).MoveToOuterDisposeScope();
        }

        // Decoded straight into the new tensor's native memory: no managed buffer per batch.
        int size = _lazy!.Size;
        var images = torch.empty([rows.Length, _channels, _height, _width], ScalarType.Float32);
        var pixels = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(images.bytes);
        for (int i = 0; i < rows.Length; i++)
        {
            _lazy.Read(_rows![checked((int)rows[i])], pixels.Slice(i * size, size));
        }

        return images;
    }

    /// <summary>The images of rows [start, start + count) (a view when held in memory; the caller's dispose scope).</summary>
    public Tensor Slice(long start, long count)
    {
        if (_images is not null)
        {
            return _images.narrow(0, start, count);
        }

        var rows = new long[count];
        for (long i = 0; i < count; i++)
        {
            rows[i] = start + i;
        }

        return Gather(rows);
    }

    /// <summary>Appends every pixel (in row order) to <paramref name="hash"/>: the same bytes whether held in memory or lazily.</summary>
    /// <remarks>
    /// In chunks of 256 images, each hashed from the tensor's own memory: no managed copy of the set (in memory) or of
    /// a chunk (decoded on demand).
    /// </remarks>
    public void AppendPixels(System.Security.Cryptography.IncrementalHash hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        const int Chunk = 256;
        for (int start = 0; start < _count; start += Chunk)
        {
            using var scope = NewDisposeScope();
            var part = Slice(start, Math.Min(Chunk, _count - start)).contiguous();
            hash.AppendData(part.bytes);
        }
    }

    /// <summary>
    /// <see cref="Batch(long[])"/> moved to <paramref name="device"/>: gathered where the data is (the CPU), then copied
    /// over. The tensors belong to the caller's dispose scope.
    /// </summary>
    public (Tensor Images, Tensor Labels) Batch(long[] rows, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var scope = NewDisposeScope();
        var (images, labels) = Batch(rows);
        return (To(images, device).MoveToOuterDisposeScope(), To(labels, device).MoveToOuterDisposeScope());
    }

    /// <summary><paramref name="tensor"/> on <paramref name="device"/>: itself when it is there already, else a copy.</summary>
    public static Tensor To(Tensor tensor, Device device)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(device);
        return tensor.device_type == device.type && (device.index < 0 || tensor.device_index == device.index) ? tensor : tensor.to(device);
    }

    /// <summary>
    /// Splits off a validation part of <paramref name="validationFraction"/> of the rows, stratified by class so that
    /// every class keeps its share, with a seeded shuffle. Both parts are new datasets.
    /// </summary>
    public (ImageDataset Train, ImageDataset Validation) Split(double validationFraction, int seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "Must be strictly between 0 and 1.");
        }

        var labels = Labels.data<long>().ToArray();
        var random = new Random(seed);
        var train = new List<long>();
        var validation = new List<long>();
        foreach (var group in Enumerable.Range(0, labels.Length).GroupBy(i => labels[i]).OrderBy(g => g.Key))
        {
            var rows = group.Select(i => (long)i).ToArray();
            random.Shuffle(rows);
            int take = (int)Math.Round(rows.Length * validationFraction);
            validation.AddRange(rows.Take(take));
            train.AddRange(rows.Skip(take));
        }

        if (train.Count == 0 || validation.Count == 0)
        {
            throw new ArgumentException($"A validation fraction of {validationFraction} leaves {train.Count} training and {validation.Count} validation rows out of {Count}; both need at least one.");
        }

        train.Sort();
        validation.Sort();
        return (Subset(train), Subset(validation));
    }

    public void Dispose()
    {
        _images?.Dispose();
        Labels.Dispose();
        _lazy?.Release();
    }

    private static void CheckLabels(Tensor labels, long count, int classes)
    {
        if (labels.dim() != 1 || labels.dtype != ScalarType.Int64 || labels.shape[0] != count)
        {
            throw new ArgumentException($"Labels must be an int64 vector of {count} entries; found {labels.dtype} [{string.Join(", ", labels.shape)}].", nameof(labels));
        }

        if (labels.numel() > 0)
        {
            // The reductions are temporaries: freed here, not by the finalizer.
            using var check = NewDisposeScope();
            long min = labels.min().item<long>(), max = labels.max().item<long>();
            if (min < 0 || max >= classes)
            {
                throw new ArgumentException($"Labels must lie in [0, {classes}); found [{min}, {max}].", nameof(labels));
            }
        }
    }
}
