#nullable enable
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Equinas.MLNet.Scoring;

/// <summary>
/// A cursor over a <see cref="BatchingDataView"/>: it reads up to <see cref="BatchingDataView.BatchSize"/> rows ahead
/// from its input cursor, keeps a copy of every active column's value and the row's id and batch, then serves them
/// row by row. <see cref="Scores"/> scores the whole batch with one forward pass the first time a row of it asks.
/// </summary>
/// <remarks>
/// Values are copied out of the input's getters (vectors into buffers of their own, text into strings), so a source
/// that reuses its buffers from row to row cannot change a kept value. Other reference values (images) are kept as the
/// input's getter handed them out. Every active column's getter is called for every row, read or not.
/// </remarks>
internal sealed class BatchCursor : DataViewRowCursor
{
    private static readonly MethodInfo MakeCacheMethod = typeof(BatchCursor).GetMethod(nameof(MakeCache), BindingFlags.NonPublic | BindingFlags.Instance)!;

    private readonly IChannel _ch;
    private readonly DataViewRowCursor _input;
    private readonly BatchingDataView _parent;
    private readonly ColumnCache?[] _caches;
    private readonly ColumnCache[] _active;
    private readonly ValueGetter<DataViewRowId> _inputId;
    private readonly DataViewRowId[] _ids;
    private readonly long[] _batches;
    private int _count;
    private int _slot = -1;
    private long _position = -1;
    private long _firstPosition;
    private bool _done;
    private float[]? _scores;
    private bool _disposed;

    public BatchCursor(IChannelProvider provider, DataViewRowCursor input, BatchingDataView parent)
    {
        _ch = provider.Start(nameof(BatchCursor));
        _input = input;
        _parent = parent;
        int size = parent.BatchSize;
        _caches = new ColumnCache?[input.Schema.Count];
        foreach (var column in input.Schema.Where(c => input.IsColumnActive(c)))
        {
            var type = column.Type;
            var make = MakeCacheMethod.MakeGenericMethod(type.RawType);
            _caches[column.Index] = (ColumnCache)make.Invoke(this, [column, size])!;
        }

        _active = _caches.Where(c => c is not null).ToArray()!;
        _inputId = input.GetIdGetter();
        _ids = new DataViewRowId[size];
        _batches = new long[size];
    }

    public override DataViewSchema Schema => _input.Schema;

    public override long Position => _position;

    public override long Batch => _slot >= 0 && !_done ? _batches[_slot] : 0;

    /// <summary>The model this cursor's view scores for.</summary>
    public EquinasModelParameters Model => _parent.Model;

    public override bool IsColumnActive(DataViewSchema.Column column) => _input.IsColumnActive(column);

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        _ch.Check(column.Index >= 0 && column.Index < _caches.Length && _caches[column.Index] is not null, $"Column '{column.Name}' is not active in this cursor.");
        if (_caches[column.Index] is not ColumnCache<TValue> cache)
        {
            throw _ch.Except($"Invalid TValue in GetGetter for column '{column.Name}': {typeof(TValue)}; the column holds {column.Type.RawType}.");
        }

        return cache.Getter;
    }

    public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId value) =>
    {
        CheckOnRow();
        value = _ids[_slot];
    };

    public override bool MoveNext()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_done)
        {
            return false;
        }

        if (++_slot >= _count)
        {
            Fill();
            if (_count == 0)
            {
                _done = true;
                _position = -1;
                _slot = -1;
                return false;
            }

            _slot = 0;
            _firstPosition = _position + 1;
        }

        _position++;
        return true;
    }

    /// <summary>
    /// The class probabilities of the current row, computed for the whole batch on the first call for a row of it:
    /// the kept values of <paramref name="feature"/> read into one tensor and scored by <see cref="Model"/>.
    /// </summary>
    public ReadOnlySpan<float> Scores(DataViewSchema.Column feature)
    {
        CheckOnRow();
        if (_scores is null)
        {
            if (_caches[feature.Index] is not { } cache)
            {
                throw _ch.Except($"Feature column '{feature.Name}' is not active in the batching cursor.");
            }

            _scores = cache.Score(Model, _count, _firstPosition);
        }

        int classes = Model.ClassCount;
        return _scores.AsSpan(_slot * classes, classes);
    }

    protected override void Dispose(bool disposing)
    {
        if (_disposed)
        {
            return;
        }

        if (disposing)
        {
            _input.Dispose();
            _ch.Dispose();
        }

        _disposed = true;
        base.Dispose(disposing);
    }

    private void Fill()
    {
        _count = 0;
        _scores = null;
        while (_count < _ids.Length && _input.MoveNext())
        {
            foreach (var cache in _active)
            {
                cache.Fill(_count);
            }

            _inputId(ref _ids[_count]);
            _batches[_count] = _input.Batch;
            _count++;
        }
    }

    private void CheckOnRow()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ch.Check(_slot >= 0 && !_done, "The cursor is not on a row: call MoveNext first (and only while it returns true).");
    }

    private ColumnCache MakeCache<T>(DataViewSchema.Column column, int size)
    {
        if (typeof(T).IsGenericType && typeof(T).GetGenericTypeDefinition() == typeof(VBuffer<>))
        {
            var vector = typeof(VectorCache<>).MakeGenericType(typeof(T).GetGenericArguments()[0]);
            return (ColumnCache)Activator.CreateInstance(vector, this, column, size)!;
        }

        return typeof(T) == typeof(ReadOnlyMemory<char>)
            ? new TextCache(this, column, size)
            : new ColumnCache<T>(this, column, size);
    }

    private abstract class ColumnCache
    {
        public abstract void Fill(int slot);

        public abstract float[] Score(EquinasModelParameters model, int count, long firstRow);
    }

    private class ColumnCache<T> : ColumnCache
    {
        private readonly BatchCursor _owner;
        private readonly ValueGetter<T> _source;

        public ColumnCache(BatchCursor owner, DataViewSchema.Column column, int size)
        {
            _owner = owner;
            _source = owner._input.GetGetter<T>(column);
            Values = new T[size];
            Getter = (ref T value) =>
            {
                _owner.CheckOnRow();
                CopyOut(Values[_owner._slot], ref value);
            };
        }

        public ValueGetter<T> Getter { get; }

        protected T[] Values { get; }

        public override void Fill(int slot) => CopyIn(_source, ref Values[slot]);

        public override float[] Score(EquinasModelParameters model, int count, long firstRow) =>
            model.ScoreRows<T>(Values.AsSpan(0, count), firstRow);

        protected virtual void CopyIn(ValueGetter<T> source, ref T kept) => source(ref kept);

        protected virtual void CopyOut(in T kept, ref T value) => value = kept;
    }

    private sealed class VectorCache<TItem>(BatchCursor owner, DataViewSchema.Column column, int size)
        : ColumnCache<VBuffer<TItem>>(owner, column, size)
    {
        private VBuffer<TItem> _scratch;

        protected override void CopyIn(ValueGetter<VBuffer<TItem>> source, ref VBuffer<TItem> kept)
        {
            source(ref _scratch);
            _scratch.CopyTo(ref kept);
        }

        protected override void CopyOut(in VBuffer<TItem> kept, ref VBuffer<TItem> value) => kept.CopyTo(ref value);
    }

    private sealed class TextCache(BatchCursor owner, DataViewSchema.Column column, int size)
        : ColumnCache<ReadOnlyMemory<char>>(owner, column, size)
    {
        protected override void CopyIn(ValueGetter<ReadOnlyMemory<char>> source, ref ReadOnlyMemory<char> kept)
        {
            ReadOnlyMemory<char> value = default;
            source(ref value);
            kept = value.IsEmpty ? ReadOnlyMemory<char>.Empty : value.ToString().AsMemory();
        }
    }
}
