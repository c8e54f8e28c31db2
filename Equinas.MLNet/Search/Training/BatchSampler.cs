#nullable enable
namespace Equinas.MLNet.Search.Training;

/// <summary>
/// Mini-batch indices over N rows, reshuffled at the start of every epoch from a seeded generator, so that training
/// for fractional epochs continues where it stopped and the same seed gives the same order. The last batch of an
/// epoch may be smaller.
/// </summary>
internal sealed class BatchSampler
{
    private readonly int _count;
    private readonly int _batchSize;
    private readonly Random _random;
    private readonly long[] _order;
    private int _position;
    private long _batchesDrawn;

    public BatchSampler(int count, int batchSize, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _count = count;
        _batchSize = batchSize;
        _random = new Random(seed);
        _order = Enumerable.Range(0, count).Select(i => (long)i).ToArray();
        _position = count; // shuffle before the first batch
    }

    /// <summary>Batches in one pass over the data.</summary>
    public int BatchesPerEpoch => (_count + _batchSize - 1) / _batchSize;

    /// <summary>Epochs of data drawn so far (fractional).</summary>
    public double EpochsDrawn => (double)_batchesDrawn / BatchesPerEpoch;

    /// <summary>Batches drawn so far: with the seed, all that is needed to bring a new sampler to the same place (<see cref="Skip"/>).</summary>
    public long BatchesDrawn => _batchesDrawn;

    /// <summary>The number of batches that makes up <paramref name="epochs"/> (at least one).</summary>
    public int BatchesFor(double epochs)
    {
        if (!(epochs > 0) || double.IsInfinity(epochs))
        {
            throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "Must be positive.");
        }

        return Math.Max(1, (int)Math.Round(epochs * BatchesPerEpoch));
    }

    /// <summary>Raised after each batch is drawn (lets tests and progress displays follow the loop).</summary>
    public event Action? BatchDrawn;

    /// <summary>The row indices of the next batch.</summary>
    public long[] Next()
    {
        int size = Advance();
        var batch = _order.AsSpan(_position - size, size).ToArray();
        BatchDrawn?.Invoke();
        return batch;
    }

    /// <summary>
    /// Draws <paramref name="batches"/> batches without returning them (the same shuffles as <see cref="Next"/>), so that
    /// a sampler made with the same seed continues exactly where one that drew them stopped: how a training resumed from
    /// a checkpoint gets its data order back.
    /// </summary>
    public void Skip(long batches)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batches);
        for (long b = 0; b < batches; b++)
        {
            Advance();
        }
    }

    private int Advance()
    {
        if (_position >= _count)
        {
            _random.Shuffle(_order);
            _position = 0;
        }

        int size = Math.Min(_batchSize, _count - _position);
        _position += size;
        _batchesDrawn++;
        return size;
    }
}
