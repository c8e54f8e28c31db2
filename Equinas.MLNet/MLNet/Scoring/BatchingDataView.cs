#nullable enable
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Runtime;

namespace Equinas.MLNet.Scoring;

/// <summary>
/// The input of an <see cref="EquinasPredictionTransformer"/>'s scorer: the same rows and columns as the data it wraps,
/// read a batch at a time. Its cursors (<see cref="BatchCursor"/>) read up to a batch of rows ahead from the input cursor,
/// keep the values of every active column, and serve them row by row, so the model can score the whole batch with one
/// forward pass when the scorer first asks for a score in it.
/// </summary>
/// <remarks>
/// It sits between the data and ML.NET's multiclass scorer, which stays in charge of the output columns (Score with slot
/// names, PredictedLabel with key values). Shuffled cursors read ahead from the shuffled input cursor; a cursor set
/// wraps each input cursor, splitting a single one first so that the scorer does not split ours per row.
/// </remarks>
internal sealed class BatchingDataView : IDataTransform, ITransformCanSaveOnnx
{
    private readonly IHost _host;
    private readonly DataViewSchema.Column? _feature;

    public BatchingDataView(IHostEnvironment env, IDataView source, string featureColumn, EquinasModelParameters model, int batchSize)
    {
        _host = env.Register(nameof(BatchingDataView));
        _host.CheckValue(source, nameof(source));
        _host.CheckParam(batchSize > 0, nameof(batchSize), "Must be positive");
        Source = source;
        Model = model;
        BatchSize = batchSize;
        // A missing or mistyped feature column is reported by ML.NET's scorer when it binds to this view's schema.
        _feature = source.Schema.GetColumnOrNull(featureColumn);
    }

    public IDataView Source { get; }

    public EquinasModelParameters Model { get; }

    public int BatchSize { get; }

    public DataViewSchema Schema => Source.Schema;

    public bool CanShuffle => Source.CanShuffle;

    public long? GetRowCount() => Source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var columns = columnsNeeded.ToArray();
        var input = Source.GetRowCursor(columns, rand);
        return Reads(columns, _feature) ? new BatchCursor(_host, input, this) : input;
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
    {
        var columns = columnsNeeded.ToArray();
        var inputs = Source.GetRowCursorSet(columns, n, rand);
        if (!Reads(columns, _feature))
        {
            return inputs;
        }

        // The scorer splits a single cursor of ours into n per-row cursors when it wants parallel cursors; split the
        // input first instead, so that each of the n cursors it gets still reads batches.
        if (inputs.Length == 1 && n > 1 && (Source.GetRowCount() ?? long.MaxValue) > n)
        {
            inputs = DataViewUtils.CreateSplitCursors(_host, inputs[0], n);
        }

        return inputs.Select(input => (DataViewRowCursor)new BatchCursor(_host, input, this)).ToArray();
    }

    /// <summary>Not supported: this view exists only while data is scored; save the transformer instead.</summary>
    public void Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("The batching view of an Equinas prediction transformer cannot be saved; save the transformer with mlContext.Model.Save.");

    /// <summary>Passes every column through unchanged, so an ONNX export of the scored data sees the scorer directly on its input.</summary>
    public bool CanSaveOnnx(OnnxContext ctx) => true;

    /// <summary>Adds nothing to the ONNX graph: the view changes no column.</summary>
    public void SaveAsOnnx(OnnxContext ctx)
    {
    }

    private static bool Reads(DataViewSchema.Column[] columns, DataViewSchema.Column? feature) =>
        feature is { } f && columns.Any(c => c.Index == f.Index);
}
