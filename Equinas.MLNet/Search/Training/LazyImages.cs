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
/// held, in fixed slots of large native blocks (libtorch CPU tensors of up to 1 GB, kept outside every dispose scope)
/// that are allocated when first needed and reused when an image is evicted. Measured 2026-12-01 (20,000 64 x 64
/// images, 256 MB bound): managed arrays made the collector let about as much garbage again accumulate before a full
/// collection (512 MB of managed heap committed at the peak, 279 MB live), and one native buffer per image, interleaved
/// with the training's short-lived tensors in the allocator's heap, kept about 430 MB of freed memory from being
/// returned; large blocks are mapped apart from that heap and only their written pages are resident.
/// Slots have the size of the first image cached: images of another size (a source of another shape) are decoded on
/// every read and not cached. Thread-safe: decoding runs outside the lock, so concurrent trainings decode in
/// parallel. Slots are freed when their source is released (<see cref="Forget"/>); the blocks when the cache is disposed.
/// </summary>
internal sealed class DecodedImageCache(long capacityBytes) : IDisposable
{
    /// <summary>The most bytes of one block (a span over it must fit in an int).</summary>
    internal const long BlockBytes = 1L << 30;

    private readonly object _gate = new();
    private readonly Dictionary<(int Source, int Index), LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _order = new();
    private readonly List<Tensor> _blocks = [];
    private readonly Stack<int> _free = new();
    private int _slotFloats;
    private int _slots;
    private int _slotsPerBlock;
    private int _slotsMade;
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
                return (long)_entries.Count * _slotFloats * sizeof(float);
            }
        }
    }

    /// <summary>Bytes of the native blocks allocated so far (their pages become resident as slots are written).</summary>
    public long BlockBytesAllocated
    {
        get
        {
            lock (_gate)
            {
                return _blocks.Sum(b => b.NumberOfElements * sizeof(float));
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
                Slot(node.Value.Slot).CopyTo(destination);
                Hits++;
                return;
            }

            Misses++;
        }

        decode(index, destination);
        lock (_gate)
        {
            if (_disposed || _entries.ContainsKey(key) || !Fits(source.Size))
            {
                return;
            }

            int slot;
            if (_free.Count > 0)
            {
                slot = _free.Pop();
            }
            else if (_slotsMade < _slots)
            {
                slot = _slotsMade++;
            }
            else
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _entries.Remove(last.Value.Key);
                slot = last.Value.Slot;
            }

            destination[.._slotFloats].CopyTo(Slot(slot));
            _entries[key] = _order.AddFirst(new Entry(key, slot));
        }
    }

    /// <summary>Drops a released source's images; their slots are free for others.</summary>
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
                    _free.Push(node.Value.Slot);
                }

                node = next;
            }
        }
    }

    /// <summary>Frees the blocks; later reads decode and cache nothing.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var block in _blocks)
            {
                block.Dispose();
            }

            _blocks.Clear();
            _order.Clear();
            _entries.Clear();
            _free.Clear();
        }
    }

    /// <summary>Whether an image of <paramref name="floats"/> floats can be cached; the first one sets the slot size.</summary>
    private bool Fits(int floats)
    {
        if (_slotFloats == 0)
        {
            long bytes = (long)floats * sizeof(float);
            if (floats <= 0 || bytes > CapacityBytes)
            {
                return false;
            }

            _slotFloats = floats;
            _slots = (int)Math.Min(int.MaxValue, CapacityBytes / bytes);
            _slotsPerBlock = (int)Math.Max(1, Math.Min(_slots, BlockBytes / bytes));
        }

        return floats == _slotFloats;
    }

    /// <summary>The floats of slot <paramref name="slot"/>; allocates its block on first use.</summary>
    private Span<float> Slot(int slot)
    {
        int block = slot / _slotsPerBlock;
        while (_blocks.Count <= block)
        {
            int slots = Math.Min(_slotsPerBlock, _slots - (_blocks.Count * _slotsPerBlock));
            // Not in the caller's dispose scope (a training step's): the cache owns it.
            _blocks.Add(torch.empty((long)slots * _slotFloats, ScalarType.Float32).DetachFromDisposeScope());
        }

        var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(_blocks[block].bytes);
        return floats.Slice((slot % _slotsPerBlock) * _slotFloats, _slotFloats);
    }

    private sealed record Entry((int Source, int Index) Key, int Slot);
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
