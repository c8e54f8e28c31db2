#nullable enable
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Training;

/// <summary>
/// Images and labels held as tensors: images <c>N x C x H x W</c> float32, labels <c>N</c> int64 in [0, classes).
/// Decoded and normalised once; batches are gathered by index. Owns its tensors.
/// </summary>
internal sealed class ImageDataset : IDisposable
{
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

        if (labels.dim() != 1 || labels.dtype != ScalarType.Int64 || labels.shape[0] != images.shape[0])
        {
            throw new ArgumentException($"Labels must be an int64 vector of {images.shape[0]} entries; found {labels.dtype} [{string.Join(", ", labels.shape)}].", nameof(labels));
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

        Images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        Classes = classes;
    }

    public Tensor Images { get; }

    public Tensor Labels { get; }

    public int Classes { get; }

    public int Count => (int)Images.shape[0];

    public int Channels => (int)Images.shape[1];

    public int Height => (int)Images.shape[2];

    public int Width => (int)Images.shape[3];

    /// <summary>A new dataset holding copies of the given rows.</summary>
    public ImageDataset Subset(IReadOnlyList<long> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        using var scope = NewDisposeScope();
        var (images, labels) = Batch(indices.ToArray());
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), Classes);
    }

    /// <summary>
    /// The images and labels of the given rows, in that order: the one place where batches are gathered. The tensors
    /// belong to the caller's dispose scope.
    /// </summary>
    public (Tensor Images, Tensor Labels) Batch(long[] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        using var scope = NewDisposeScope();
        var index = torch.tensor(rows, device: Images.device);
        return (Images.index_select(0, index).MoveToOuterDisposeScope(), Labels.index_select(0, index).MoveToOuterDisposeScope());
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
        Images.Dispose();
        Labels.Dispose();
    }
}
