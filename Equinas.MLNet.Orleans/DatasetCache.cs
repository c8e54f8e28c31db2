#nullable enable
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// A worker silo's datasets, by content hash: uploaded in chunks once, decoded once, shared by all of the silo's
/// slots. Keeps the <see cref="Capacity"/> most recently used datasets; one in use by a training is never evicted.
/// </summary>
internal sealed class DatasetCache : IDisposable
{
    private readonly object _lock = new();
    private readonly Dictionary<string, Entry> _ready = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]?[]> _partial = new(StringComparer.Ordinal);
    private long _clock;

    public DatasetCache(int capacity = 2)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
    }

    public int Capacity { get; }

    /// <summary>Complete uploads so far (for tests: the data go to a silo once).</summary>
    public int Uploads { get; private set; }

    public bool Has(string hash)
    {
        lock (_lock)
        {
            return _ready.ContainsKey(hash);
        }
    }

    /// <summary>Stores one chunk; the last one checks the hash and decodes the data.</summary>
    /// <exception cref="InvalidDataException">The assembled bytes do not have the announced hash, or are not a dataset.</exception>
    public void Store(string hash, int index, int count, byte[] chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
        byte[]?[] parts;
        lock (_lock)
        {
            if (_ready.ContainsKey(hash))
            {
                return;
            }

            if (!_partial.TryGetValue(hash, out parts!) || parts.Length != count)
            {
                parts = new byte[count][];
                _partial[hash] = parts;
            }

            parts[index] = chunk;
            if (parts.Any(p => p is null))
            {
                return;
            }

            _partial.Remove(hash);
        }

        var bytes = parts.SelectMany(p => p!).ToArray();
        string actual = DatasetTransfer.HashOf(bytes);
        if (actual != hash)
        {
            throw new InvalidDataException($"The uploaded dataset's SHA-256 is {actual}, not the announced {hash}.");
        }

        var (train, validation) = DatasetTransfer.Decode(bytes);
        lock (_lock)
        {
            if (_ready.ContainsKey(hash))
            {
                train.Dispose();
                validation.Dispose();
                return;
            }

            var entry = new Entry(train, validation) { LastUsed = ++_clock };
            _ready[hash] = entry;
            Uploads++;
            Evict(keep: entry);
        }
    }

    /// <summary>The dataset with this hash for one training; dispose the lease when done.</summary>
    /// <exception cref="DatasetMissingException">The silo does not hold it (never uploaded, or evicted).</exception>
    public Lease Acquire(string hash)
    {
        lock (_lock)
        {
            if (!_ready.TryGetValue(hash, out var entry))
            {
                throw new DatasetMissingException(hash);
            }

            entry.Users++;
            entry.LastUsed = ++_clock;
            return new Lease(this, entry);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var entry in _ready.Values)
            {
                entry.Train.Dispose();
                entry.Validation.Dispose();
            }

            _ready.Clear();
            _partial.Clear();
        }
    }

    private void Release(Entry entry)
    {
        lock (_lock)
        {
            entry.Users--;
            Evict(keep: null);
        }
    }

    /// <summary>Drops the least recently used idle datasets beyond the capacity, never <paramref name="keep"/> (the one just uploaded).</summary>
    private void Evict(Entry? keep)
    {
        while (_ready.Count > Capacity)
        {
            var idle = _ready.Where(p => p.Value.Users == 0 && p.Value != keep).OrderBy(p => p.Value.LastUsed).FirstOrDefault();
            if (idle.Value is null)
            {
                return;
            }

            _ready.Remove(idle.Key);
            idle.Value.Train.Dispose();
            idle.Value.Validation.Dispose();
        }
    }

    internal sealed class Entry(ImageDataset train, ImageDataset validation)
    {
        public ImageDataset Train { get; } = train;

        public ImageDataset Validation { get; } = validation;

        public int Users { get; set; }

        public long LastUsed { get; set; }
    }

    /// <summary>One training's use of a cached dataset.</summary>
    internal sealed class Lease : IDisposable
    {
        private readonly DatasetCache _cache;
        private readonly Entry _entry;
        private int _disposed;

        internal Lease(DatasetCache cache, Entry entry)
        {
            _cache = cache;
            _entry = entry;
        }

        public ImageDataset Train => _entry.Train;

        public ImageDataset Validation => _entry.Validation;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _cache.Release(_entry);
            }
        }
    }
}

/// <summary>A worker was asked to train on a dataset it does not hold; the driver uploads it and tries again.</summary>
[GenerateSerializer]
public sealed class DatasetMissingException : Exception
{
    /// <summary>Creates the exception for the dataset with content hash <paramref name="hash"/>.</summary>
    public DatasetMissingException(string hash)
        : base($"This worker does not hold the dataset {hash} (not uploaded yet, or evicted).")
    {
        Hash = hash;
    }

    /// <summary>Creates the exception with a message.</summary>
    public DatasetMissingException()
    {
        Hash = string.Empty;
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public DatasetMissingException(string message, Exception innerException)
        : base(message, innerException)
    {
        Hash = string.Empty;
    }

    /// <summary>Gets the content hash of the missing dataset.</summary>
    [Id(0)]
    public string Hash { get; }
}
