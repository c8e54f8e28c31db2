#nullable enable
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Runtime;

namespace Equinas.MLNet.Scoring;

/// <summary>
/// The schema-bindable mapper of an <see cref="EquinasPredictionTransformer"/>'s scorer: ML.NET's own wrapper of the
/// model (the Score column from <see cref="IValueMapper"/>, with its annotations), except that a row read from a
/// <see cref="BatchCursor"/> of this model takes its score from the cursor's batch instead of a forward pass of its own.
/// Rows from anywhere else (a PredictionEngine's row, a cursor ML.NET split) keep the per-row path.
/// </summary>
internal sealed class BatchScoringMapper : ISchemaBindableMapper, IBindableCanSaveOnnx
{
    private readonly ISchemaBindableMapper _inner;
    private readonly EquinasModelParameters _model;

    public BatchScoringMapper(ISchemaBindableMapper inner, EquinasModelParameters model)
    {
        _inner = inner;
        _model = model;
    }

    public ISchemaBoundMapper Bind(IHostEnvironment env, RoleMappedSchema schema)
    {
        var bound = _inner.Bind(env, schema);
        return bound is ISchemaBoundRowMapper row
            ? new Bound(this, row)
            : throw new InvalidOperationException($"ML.NET bound the Equinas model to a {bound.GetType().Name}, not a row mapper; this version of ML.NET is not supported.");
    }

    bool ICanSaveOnnx.CanSaveOnnx(OnnxContext ctx) => _inner is ICanSaveOnnx onnx && onnx.CanSaveOnnx(ctx);

    bool IBindableCanSaveOnnx.SaveAsOnnx(OnnxContext ctx, RoleMappedSchema schema, string[] outputNames) =>
        _inner is IBindableCanSaveOnnx onnx && onnx.SaveAsOnnx(ctx, schema, outputNames);

    private sealed class Bound(BatchScoringMapper parent, ISchemaBoundRowMapper inner) : ISchemaBoundRowMapper
    {
        public RoleMappedSchema InputRoleMappedSchema => inner.InputRoleMappedSchema;

        public DataViewSchema OutputSchema => inner.OutputSchema;

        public ISchemaBindableMapper Bindable => parent;

        public DataViewSchema InputSchema => inner.InputSchema;

        public IEnumerable<DataViewSchema.Column> GetDependenciesForNewColumns(IEnumerable<DataViewSchema.Column> dependingColumns) =>
            inner.GetDependenciesForNewColumns(dependingColumns);

        public IEnumerable<KeyValuePair<RoleMappedSchema.ColumnRole, string>> GetInputColumnRoles() => inner.GetInputColumnRoles();

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            var active = activeColumns.ToArray();
            if (input is not BatchCursor batch
                || !ReferenceEquals(batch.Model, parent._model)
                || InputRoleMappedSchema.Feature is not { } feature
                || feature.Index >= input.Schema.Count
                || input.Schema[feature.Index].Name != feature.Name
                || !input.IsColumnActive(input.Schema[feature.Index])
                || !active.Any(c => c.Index == 0))
            {
                return inner.GetRow(input, active);
            }

            int classes = parent._model.ClassCount;
            var column = input.Schema[feature.Index];
            ValueGetter<VBuffer<float>> score = (ref VBuffer<float> value) =>
            {
                var scores = batch.Scores(column);
                var editor = VBufferEditor.Create(ref value, classes);
                scores.CopyTo(editor.Values);
                value = editor.Commit();
            };
            return new SimpleRow(OutputSchema, input, [score]);
        }
    }
}
