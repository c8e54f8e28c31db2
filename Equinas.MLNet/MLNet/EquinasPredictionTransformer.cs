#nullable enable
using Equinas.MLNet;
using Equinas.MLNet.Scoring;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(EquinasPredictionTransformer), null, typeof(SignatureLoadModel),
    "Equinas prediction transformer", EquinasPredictionTransformer.LoaderSignature)]

namespace Equinas.MLNet;

/// <summary>
/// The transformer an <see cref="EquivariantImageClassificationTrainer"/> returns: it adds ML.NET's multiclass
/// <c>Score</c> (softmax probabilities, with the label's key values as slot names) and <c>PredictedLabel</c> (a key
/// with the label's key values) columns, as <see cref="MulticlassPredictionTransformer{TModel}"/> does, but
/// <see cref="Transform"/> scores rows in batches: one forward pass per batch of rows instead of one per row.
/// The trained network is <see cref="PredictionTransformerBase{TModel}.Model"/>.
/// </summary>
/// <remarks>
/// <para>
/// Why a transformer of its own: ML.NET's scorers ask the model for one row at a time, and
/// <see cref="MulticlassPredictionTransformer{TModel}"/> is sealed, with a <c>Transform</c> that cannot be changed. This
/// transformer keeps ML.NET's multiclass scorer for the output columns and puts a view under it whose cursors read a
/// batch of rows ahead from the input cursor; the scorer then takes each row's score from the batch. Shuffled cursors
/// and cursor sets (parallel cursors) read their batches from the input's own cursors.
/// </para>
/// <para>
/// A <see cref="PredictionEngine{TSrc, TDst}"/> made from it scores its single row as before (one forward pass per
/// <c>Predict</c>). Batched and per-row scores agree to float rounding (tested to 1e-6). Models saved by earlier
/// versions of Equinas.MLNet load as <see cref="MulticlassPredictionTransformer{TModel}"/> and score per row;
/// <see cref="EquinasModelParameters.FindIn"/> finds the model in either.
/// </para>
/// </remarks>
public sealed class EquinasPredictionTransformer : SingleFeaturePredictionTransformerBase<EquinasModelParameters>, ITransformer
{
    internal const string LoaderSignature = "EquinasPredXfer";

    /// <summary>The most pixels one scoring batch holds (32 MB of floats): 256 images of 28 x 28, 27 of 3 x 224 x 224.</summary>
    private const int MaxBatchPixels = 8 * 1024 * 1024;

    private const int MaxBatchRows = 256;

    private readonly string? _labelColumn;

    private EquinasPredictionTransformer(IHostEnvironment env, EquinasModelParameters model, DataViewSchema trainSchema, string featureColumn, string? labelColumn)
        : base(Contracts.CheckRef(env, nameof(env)).Register(nameof(EquinasPredictionTransformer)), model, trainSchema, featureColumn)
    {
        _labelColumn = labelColumn;
        BatchSize = DefaultBatchSize(model);
        SetScorer();
    }

    // *** Binary format ***
    // (base) the model (folder Model), the training schema (TrainSchema), id of string: feature column
    // id of string or null: training label column
    private EquinasPredictionTransformer(IHostEnvironment env, ModelLoadContext ctx)
        : base(Contracts.CheckRef(env, nameof(env)).Register(nameof(EquinasPredictionTransformer)), ctx)
    {
        _labelColumn = ctx.LoadStringOrNull();
        BatchSize = DefaultBatchSize(Model);
        SetScorer();
    }

    /// <summary>Rows per forward pass in <see cref="Transform"/>: 256, fewer for large images (at most 8 Mi pixels per batch).</summary>
    internal int BatchSize { get; set; }

    /// <summary>
    /// Scores <paramref name="input"/>: adds <c>Score</c> and <c>PredictedLabel</c>. Rows are scored in batches as a
    /// cursor reaches them (lazily, like every ML.NET transform); the other columns pass through unchanged.
    /// </summary>
    /// <param name="input">Data with the feature column the model was trained on.</param>
    /// <returns>The scored data.</returns>
    public new IDataView Transform(IDataView input)
    {
        Host.CheckValue(input, nameof(input));
        return Scorer.ApplyToData(Host, new BatchingDataView(Host, input, FeatureColumnName, Model, BatchSize));
    }

    internal static EquinasPredictionTransformer Create(IHostEnvironment env, EquinasModelParameters model, DataViewSchema trainSchema, string featureColumn, string? labelColumn) =>
        new(env, model, trainSchema, featureColumn, labelColumn);

    internal static EquinasPredictionTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        env.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel(GetVersionInfo());
        return new EquinasPredictionTransformer(env, ctx);
    }

    /// <inheritdoc/>
    protected override void SaveCore(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.SetVersionInfo(GetVersionInfo());
        base.SaveCore(ctx);
        ctx.SaveStringOrNull(_labelColumn);
    }

    private static int DefaultBatchSize(EquinasModelParameters model) => Math.Clamp(MaxBatchPixels / model.Input.Size, 1, MaxBatchRows);

    private static VersionInfo GetVersionInfo() =>
        new(
            modelSignature: "EQNASPRD",
            verWrittenCur: 0x00010001,
            verReadableCur: 0x00010001,
            verWeCanReadBack: 0x00010001,
            loaderSignature: LoaderSignature,
            loaderAssemblyName: typeof(EquinasPredictionTransformer).Assembly.FullName);

    private void SetScorer()
    {
        var schema = new RoleMappedSchema(TrainSchema, _labelColumn, FeatureColumnName);
        var args = new MulticlassClassificationScorer.Arguments
        {
            ScoreColumnName = DefaultColumnNames.Score,
            PredictedLabelColumnName = DefaultColumnNames.PredictedLabel,
        };
        var bindable = new BatchScoringMapper(BindableMapper, Model);
        Scorer = new MulticlassClassificationScorer(Host, args, new EmptyDataView(Host, TrainSchema), bindable.Bind(Host, schema), schema);
    }
}
