#nullable enable
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Training;

/// <summary>Writes image <paramref name="index"/> (normalised, C x H x W planar) into <paramref name="destination"/>.</summary>
internal delegate void ImageDecoder(int index, Span<float> destination);

/// <summary>
/// Images that are not held in memory: a count, a shape, and a decoder that writes image <c>i</c> (normalised,
/// C x H x W planar) into a span, read through a <see cref="DecodedImageCache"/>. Shared by the datasets cut from it
/// (a training and a validation split); released when the last one is disposed.
/// </summary>
internal sealed class LazyImageSource
{
    private static int s_nextId;
    private readonly ImageDecoder _decode;
    private readonly IDisposable? _resources;
    private int _references = 1;

    /// <param name="count">Images in the source.</param>
    /// <param name="channels">C.</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="decode">Writes image i (0-based), normalised, into a span of C·H·W floats; thread-safe.</param>
    /// <param name="cache">The cache of decoded images (may be shared with other sources).</param>
    /// <param name="resources">Released with the source (the file holding the encoded images).</param>
    public LazyImageSource(int count, int channels, int height, int width, ImageDecoder decode, DecodedImageCache cache, IDisposable? resources)
    {
        ArgumentNullException.ThrowIfNull(decode);
        ArgumentNullException.ThrowIfNull(cache);
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        _decode = decode;
        Cache = cache;
        _resources = resources;
        Id = Interlocked.Increment(ref s_nextId);
    }

    public int Id { get; }

    public int Count { get; }

    public int Channels { get; }

    public int Height { get; }

    public int Width { get; }

    public int Size => Channels * Height * Width;

    public DecodedImageCache Cache { get; }

    /// <summary>Image <paramref name="index"/> into <paramref name="destination"/>: from the cache, or decoded (and cached).</summary>
    public void Read(int index, Span<float> destination)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _references) <= 0, this);
        Cache.Read(this, index, destination, _decode);
    }

    /// <summary>Another dataset shares the source.</summary>
    public LazyImageSource AddReference()
    {
        Interlocked.Increment(ref _references);
        return this;
    }

    /// <summary>A dataset no longer uses the source; the last one releases its resources.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            Cache.Forget(this);
            _resources?.Dispose();
        }
    }
}

/// <summary>
/// A bounded, least-recently-used cache of decoded images, in bytes of floats: at most <see cref="CapacityBytes"/> are
/// held, in buffers that are reused when an image is evicted (so the cache allocates no more than its capacity).
/// The buffers are native (libtorch CPU tensors kept outside every dispose scope), not managed arrays: a managed cache
/// of the bound's size made the garbage collector let about as much garbage again accumulate before a full collection
/// (the budget of the oldest generation follows its live size), so that RSS held the bound about twice.
/// Thread-safe: decoding runs outside the lock, so concurrent trainings decode in parallel. The buffers are freed when
/// their source is released (<see cref="Forget"/>) or the cache disposed.
/// </summary>
internal sealed class DecodedImageCache(long capacityBytes) : IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<(int Source, int Index), LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _order = new();
    private long _heldBytes;
    private bool _disposed;

    /// <summary>The most bytes of decoded images held.</summary>
    public long CapacityBytes { get; } = Math.Max(0, capacityBytes);

    /// <summary>Bytes held now.</summary>
    public long HeldBytes
    {
        get
        {
            lock (_gate)
            {
                return _heldBytes;
            }
        }
    }

    /// <summary>Reads served from the cache.</summary>
    public long Hits { get; private set; }

    /// <summary>Reads that decoded.</summary>
    public long Misses { get; private set; }

    public void Read(LazyImageSource source, int index, Span<float> destination, ImageDecoder decode)
    {
        var key = (source.Id, index);
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                Floats(node.Value.Data)[..source.Size].CopyTo(destination);
                Hits++;
                return;
            }

            Misses++;
        }

        decode(index, destination);
        long bytes = (long)source.Size * sizeof(float);
        if (bytes > CapacityBytes)
        {
            return;
        }

        lock (_gate)
        {
            if (_disposed || _entries.ContainsKey(key))
            {
                return;
            }

            Tensor? buffer = null;
            while (_heldBytes + bytes > CapacityBytes && _order.Last is { } last)
            {
                _order.RemoveLast();
                _entries.Remove(last.Value.Key);
                _heldBytes -= last.Value.Data.NumberOfElements * sizeof(float);
                if (buffer is null && last.Value.Data.NumberOfElements == source.Size)
                {
                    buffer = last.Value.Data;
                    _heldBytes += bytes;
                }
                else
                {
                    last.Value.Data.Dispose();
                }
            }

            if (buffer is null)
            {
                // Not in the caller's dispose scope (a training step's): the cache owns it.
                buffer = torch.empty(source.Size, ScalarType.Float32).DetachFromDisposeScope();
                _heldBytes += bytes;
            }

            destination.CopyTo(Floats(buffer));
            _entries[key] = _order.AddFirst(new Entry(key, buffer));
        }
    }

    /// <summary>Drops a released source's images and frees their buffers.</summary>
    public void Forget(LazyImageSource source)
    {
        lock (_gate)
        {
            for (var node = _order.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Key.Source == source.Id)
                {
                    _order.Remove(node);
                    _entries.Remove(node.Value.Key);
                    _heldBytes -= node.Value.Data.NumberOfElements * sizeof(float);
                    node.Value.Data.Dispose();
                }

                node = next;
            }
        }
    }

    /// <summary>Frees every buffer; later reads decode and cache nothing.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var entry in _order)
            {
                entry.Data.Dispose();
            }

            _order.Clear();
            _entries.Clear();
            _heldBytes = 0;
        }
    }

    private static Span<float> Floats(Tensor buffer) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(buffer.bytes);

    private sealed record Entry((int Source, int Index) Key, Tensor Data);
}

/// <summary>
/// A scratch file of variable-length records (the encoded images of a data set too large to decode into memory),
/// appended while the data is read once and then read by index from any thread. Deleted when disposed (or when the
/// process ends: it is opened delete-on-close).
/// </summary>
internal sealed class SpillFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly List<long> _offsets = [];
    private readonly List<int> _lengths = [];
    private long _length;

    /// <summary>Creates the file in <paramref name="directory"/> (default: the temp folder).</summary>
    public SpillFile(string? directory = null)
    {
        Path = System.IO.Path.Combine(directory ?? System.IO.Path.GetTempPath(), string.Create(CultureInfo.InvariantCulture, $"equinas-images-{Environment.ProcessId}-{Guid.NewGuid():N}.bin"));
        _handle = File.OpenHandle(Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
    }

    public string Path { get; }

    public int Count => _offsets.Count;

    /// <summary>Bytes written.</summary>
    public long Length => _length;

    /// <summary>Appends one record (one writer at a time, before any read).</summary>
    public void Append(ReadOnlySpan<byte> record)
    {
        RandomAccess.Write(_handle, record, _length);
        _offsets.Add(_length);
        _lengths.Add(record.Length);
        _length += record.Length;
    }

    /// <summary>The length of record <paramref name="index"/> in bytes.</summary>
    public int LengthOf(int index) => _lengths[index];

    /// <summary>Record <paramref name="index"/>; thread-safe once writing is done.</summary>
    public byte[] Read(int index)
    {
        var buffer = new byte[_lengths[index]];
        Read(index, buffer);
        return buffer;
    }

    /// <summary>Reads record <paramref name="index"/> into the start of <paramref name="buffer"/> (at least <see cref="LengthOf"/> bytes); thread-safe once writing is done.</summary>
    public void Read(int index, Span<byte> buffer)
    {
        buffer = buffer[.._lengths[index]];
        long offset = _offsets[index];
        int done = 0;
        while (done < buffer.Length)
        {
            int read = RandomAccess.Read(_handle, buffer[done..], offset + done);
            if (read <= 0)
            {
                throw new IOException($"The scratch file '{Path}' ended early at record {index}: it was changed or truncated while training.");
            }

            done += read;
        }
    }

    public void Dispose() => _handle.Dispose();
}
