using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>A digit with its row number, for matching rows that arrive shuffled or split over cursors.</summary>
public sealed class IndexedDigit
{
    [VectorType(1, 28, 28)]
    public float[] Features { get; set; } = [];

    public string Digit { get; set; } = "";

    public float Index { get; set; }
}

/// <summary>One trained model (fixed, small, 4 classes) shared by the batched-scoring tests.</summary>
public sealed class BatchedScoringFixture : IDisposable
{
    public BatchedScoringFixture()
    {
        Ml = new MLContext(seed: 1);
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 1;
        var labels = Digits.MapLabel(Ml).Fit(Ml.Data.LoadFromEnumerable(Digits.Rows(0, 200, 0, 1, 2, 3)));
        Labels = labels;
        Scorer = Ml.MulticlassClassification.Trainers.EquivariantImageClassification(options).Fit(labels.Transform(Ml.Data.LoadFromEnumerable(Digits.Rows(0, 200, 0, 1, 2, 3))));
    }

    public MLContext Ml { get; }

    public ITransformer Labels { get; }

    public EquinasPredictionTransformer Scorer { get; }

    /// <summary>
    /// <paramref name="count"/> test digits of classes 0-3 (and a few 4s, whose label is missing for this model's key
    /// mapping), with their row numbers, through the label mapping.
    /// </summary>
    public IDataView Data(int count)
    {
        var rows = Digits.Rows(2, count, 0, 1, 2, 3, 4)
            .Select((r, i) => new IndexedDigit { Features = r.Features, Digit = r.Digit, Index = i })
            .ToList();
        return Labels.Transform(Ml.Data.LoadFromEnumerable(rows));
    }

    public void Dispose() => Scorer.Dispose();
}

/// <summary>
/// <c>Transform</c> scores rows in batches (one forward pass per batch) and gives the per-row path's scores: every batch
/// size including a last partial batch, filtered rows and missing labels, any set of active columns, shuffled cursors
/// and cursor sets; PredictionEngine, saving and loading keep working.
/// </summary>
public sealed class BatchedScoringTests(BatchedScoringFixture fixture) : IClassFixture<BatchedScoringFixture>
{
    private const double Tolerance = 1e-6;

    private MLContext Ml => fixture.Ml;

    private EquinasPredictionTransformer Scorer => fixture.Scorer;

    private EquinasModelParameters Model => Scorer.Model;

    [Theory]
    [InlineData(1, 13)]
    [InlineData(7, 50)]
    [InlineData(16, 48)]
    [InlineData(256, 50)]
    public void Transform_scores_in_batches_with_the_per_row_scores(int batchSize, int rows)
    {
        var data = fixture.Data(rows);
        long before = Model.ForwardCount;
        var perRow = Read(PerRow(data));
        Assert.Equal(rows, Model.ForwardCount - before);

        var batched = WithBatch(batchSize, () =>
        {
            long start = Model.ForwardCount;
            var scored = Read(Scorer.Transform(data));
            AssertBatches(Model.ForwardCount - start, rows, batchSize);
            return scored;
        });
        AssertSame(perRow, batched);
    }

    [Fact]
    public void A_chain_and_Evaluate_use_the_batched_path_and_skip_rows_with_missing_labels_as_before()
    {
        var data = fixture.Data(60);
        var chain = new TransformerChain<ITransformer>(Scorer);
        var metrics = WithBatch(8, () =>
        {
            long start = Model.ForwardCount;
            var m = Ml.MulticlassClassification.Evaluate(((ITransformer)chain).Transform(data));
            AssertBatches(Model.ForwardCount - start, 60, 8);
            return m;
        });
        var perRow = Ml.MulticlassClassification.Evaluate(PerRow(data));
        Assert.True(Math.Abs(perRow.LogLoss - metrics.LogLoss) <= 1e-6, $"log-loss {metrics.LogLoss} batched, {perRow.LogLoss} per row");
        Assert.Equal(perRow.MicroAccuracy, metrics.MicroAccuracy, 12);
        Assert.Equal(perRow.ConfusionMatrix.Counts.Select(r => r.ToArray()), metrics.ConfusionMatrix.Counts.Select(r => r.ToArray()));

        // The 4s have no key in this model's label mapping: their label is missing, and they are scored all the same.
        var labels = Ml.Data.CreateEnumerable<LabelOnly>(data, reuseRowObject: false).Select(r => r.Label).ToArray();
        Assert.Contains(0u, labels);
    }

    [Fact]
    public void Filtered_rows_score_as_on_the_per_row_path()
    {
        var data = Ml.Data.FilterRowsByColumn(fixture.Data(60), nameof(IndexedDigit.Index), lowerBound: 5, upperBound: 41);
        var batched = WithBatch(5, () => Read(Scorer.Transform(data)));
        Assert.Equal(Enumerable.Range(5, 36).Select(i => (float)i), batched.Select(r => r.Index));
        AssertSame(Read(PerRow(data)), batched);
    }

    [Fact]
    public void Only_the_active_columns_are_computed_and_passed_through_columns_are_the_input_values()
    {
        var data = fixture.Data(30);
        var scored = WithBatch(4, () => Scorer.Transform(data));
        var reference = Read(PerRow(data));

        // Only a passed-through column: no forward pass at all.
        long start = Model.ForwardCount;
        var indices = ReadColumn<float>(scored, nameof(IndexedDigit.Index));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (float)i), indices);
        Assert.Equal(0, Model.ForwardCount - start);

        // Only PredictedLabel, only Score: one forward pass per batch of 4 each time.
        start = Model.ForwardCount;
        Assert.Equal(reference.Select(r => r.PredictedLabel), ReadColumn<uint>(scored, "PredictedLabel"));
        AssertBatches(Model.ForwardCount - start, 30, 4);
        start = Model.ForwardCount;
        var scores = ReadColumn<VBuffer<float>>(scored, "Score").Select(v => v.DenseValues().ToArray()).ToArray();
        AssertBatches(Model.ForwardCount - start, 30, 4);
        for (int i = 0; i < scores.Length; i++)
        {
            AssertClose(reference[i].Score, scores[i], $"row {i}");
        }

        // Features passed through next to the score are the input's pixels, row by row.
        var inputPixels = ReadColumn<VBuffer<float>>(data, nameof(IndexedDigit.Features)).Select(v => v.DenseValues().ToArray()).ToArray();
        var outputPixels = ReadColumn<VBuffer<float>>(scored, nameof(IndexedDigit.Features), "Score").Select(v => v.DenseValues().ToArray()).ToArray();
        Assert.Equal(inputPixels, outputPixels);
    }

    [Fact]
    public void Shuffled_cursors_score_each_row_as_the_per_row_path()
    {
        var data = Ml.Data.Cache(fixture.Data(40));
        Assert.True(data.CanShuffle);
        var reference = Read(PerRow(data)).ToDictionary(r => r.Index);
        var scored = WithBatch(6, () => Scorer.Transform(data));
        var rows = ReadRows(scored, c => scored.GetRowCursor(c, new Random(5)));
        Assert.Equal(40, rows.Count);
        Assert.NotEqual(Enumerable.Range(0, 40).Select(i => (float)i), rows.Select(r => r.Index));
        Assert.Equal(40, rows.Select(r => r.Index).Distinct().Count());
        AssertSame(rows.Select(r => reference[r.Index]).ToList(), rows);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cursor_sets_cover_every_row_once_with_the_per_row_scores(bool shuffle)
    {
        var data = Ml.Data.Cache(fixture.Data(45));
        var reference = Read(PerRow(data)).ToDictionary(r => r.Index);
        var scored = WithBatch(4, () => Scorer.Transform(data));
        var columns = Columns(scored);
        var cursors = scored.GetRowCursorSet(columns, 3, shuffle ? new Random(9) : null);
        Assert.True(cursors.Length >= 1);

        // Cursors of a set are read at the same time (a split cursor feeds all of them from one thread).
        var parts = cursors.Select(cursor => Task.Run(() =>
        {
            using (cursor)
            {
                return Drain(cursor);
            }
        })).ToArray();
        var rows = (await Task.WhenAll(parts)).SelectMany(p => p).ToList();
        Assert.Equal(45, rows.Count);
        Assert.Equal(45, rows.Select(r => r.Index).Distinct().Count());
        AssertSame(rows.Select(r => reference[r.Index]).ToList(), rows);
    }

    [Fact]
    public void PredictionEngine_scores_one_row_per_forward_like_Transform()
    {
        var data = fixture.Data(12);
        var batched = WithBatch(5, () => Read(Scorer.Transform(data)));
        var rows = Ml.Data.CreateEnumerable<IndexedDigitWithLabel>(data, reuseRowObject: false).ToList();
        using var engine = Ml.Model.CreatePredictionEngine<IndexedDigitWithLabel, ScoreOnly>(Scorer, new PredictionEngineOptions { OwnsTransformer = false });
        for (int i = 0; i < rows.Count; i++)
        {
            long start = Model.ForwardCount;
            var prediction = engine.Predict(rows[i]);
            Assert.Equal(1, Model.ForwardCount - start);
            AssertClose(batched[i].Score, prediction.Score, $"row {i}");
        }
    }

    [Fact]
    public void A_saved_and_loaded_model_is_an_EquinasPredictionTransformer_that_scores_in_batches()
    {
        var data = fixture.Data(20);
        var chain = new TransformerChain<ITransformer>(fixture.Labels, Scorer);
        string path = Path.Combine(Path.GetTempPath(), $"equinas-batched-{Guid.NewGuid():N}.zip");
        try
        {
            var raw = Ml.Data.LoadFromEnumerable(Digits.Rows(2, 20, 0, 1, 2, 3, 4).Select((r, i) => new IndexedDigit { Features = r.Features, Digit = r.Digit, Index = i }));
            Ml.Model.Save(chain, raw.Schema, path);
            var loaded = Ml.Model.Load(path, out _);
            try
            {
                var transformer = Assert.IsType<EquinasPredictionTransformer>(((TransformerChain<ITransformer>)loaded).Last());
                Assert.Same(transformer.Model, EquinasModelParameters.FindIn(loaded));
                Assert.Equal(Scorer.BatchSize, transformer.BatchSize);
                long start = transformer.Model.ForwardCount;
                var scored = Read(loaded.Transform(raw));
                AssertBatches(transformer.Model.ForwardCount - start, 20, 256);
                AssertSame(Read(Scorer.Transform(data)), scored);
            }
            finally
            {
                (loaded as IDisposable)?.Dispose();
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_default_batch_is_256_rows_of_small_images()
    {
        Assert.Equal(256, Scorer.BatchSize);
    }

    /// <summary>
    /// One forward pass per batch. Where ML.NET reads with parallel cursors (more than two cores), each of them reads
    /// its own batches, so up to one more partial batch per cursor.
    /// </summary>
    private static void AssertBatches(long forwards, int rows, int batchSize)
    {
        int batches = (rows + batchSize - 1) / batchSize;
        Assert.InRange(forwards, batches, batches + Math.Max(0, Environment.ProcessorCount - 2));
    }

    private T WithBatch<T>(int batchSize, Func<T> action)
    {
        // The fixture's transformer is shared by the tests of this class, which xUnit runs one at a time.
        int saved = Scorer.BatchSize;
        Scorer.BatchSize = batchSize;
        try
        {
            return action();
        }
        finally
        {
            Scorer.BatchSize = saved;
        }
    }

    /// <summary>The per-row path: ML.NET's scorer on the data itself (not on the batching view) asks the model row by row.</summary>
    private IDataView PerRow(IDataView data) => ((PredictionTransformerBase<EquinasModelParameters>)Scorer).Transform(data);

    private static List<ScoredRow> Read(IDataView scored) => ReadRows(scored, c => scored.GetRowCursor(c));

    private static DataViewSchema.Column[] Columns(IDataView scored) =>
        [scored.Schema[nameof(IndexedDigit.Index)], scored.Schema["Score"], scored.Schema["PredictedLabel"], scored.Schema["Label"]];

    private static List<ScoredRow> ReadRows(IDataView scored, Func<DataViewSchema.Column[], DataViewRowCursor> open)
    {
        using var cursor = open(Columns(scored));
        return Drain(cursor);
    }

    private static List<ScoredRow> Drain(DataViewRowCursor cursor)
    {
        var schema = cursor.Schema;
        var index = cursor.GetGetter<float>(schema[nameof(IndexedDigit.Index)]);
        var score = cursor.GetGetter<VBuffer<float>>(schema["Score"]);
        var predicted = cursor.GetGetter<uint>(schema["PredictedLabel"]);
        var label = cursor.GetGetter<uint>(schema["Label"]);
        var rows = new List<ScoredRow>();
        float i = 0;
        VBuffer<float> s = default;
        uint p = 0, l = 0;
        while (cursor.MoveNext())
        {
            // Score read twice: the second read must not run another forward pass or change the value.
            score(ref s);
            var first = s.DenseValues().ToArray();
            score(ref s);
            Assert.Equal(first, s.DenseValues().ToArray());
            predicted(ref p);
            index(ref i);
            label(ref l);
            rows.Add(new ScoredRow(i, first, p, l));
        }

        return rows;
    }

    private static List<T> ReadColumn<T>(IDataView data, string name, params string[] alsoActive)
    {
        var column = data.Schema[name];
        using var cursor = data.GetRowCursor([column, .. alsoActive.Select(n => data.Schema[n])]);
        var getter = cursor.GetGetter<T>(column);
        var values = new List<T>();
        while (cursor.MoveNext())
        {
            T value = default!;
            getter(ref value);
            values.Add(value);
        }

        return values;
    }

    private static void AssertSame(IReadOnlyList<ScoredRow> expected, IReadOnlyList<ScoredRow> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int r = 0; r < expected.Count; r++)
        {
            Assert.Equal(expected[r].Index, actual[r].Index);
            Assert.Equal(expected[r].Label, actual[r].Label);
            Assert.Equal(expected[r].PredictedLabel, actual[r].PredictedLabel);
            AssertClose(expected[r].Score, actual[r].Score, $"row {expected[r].Index}");
        }
    }

    private static void AssertClose(float[] expected, float[] actual, string where)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int c = 0; c < expected.Length; c++)
        {
            Assert.True(Math.Abs(expected[c] - actual[c]) <= Tolerance, $"{where}, class {c}: {actual[c]} against {expected[c]} per row");
        }
    }

    private sealed record ScoredRow(float Index, float[] Score, uint PredictedLabel, uint Label);

    private sealed class LabelOnly
    {
        public uint Label { get; set; }
    }

    private sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    private sealed class IndexedDigitWithLabel
    {
        [VectorType(1, 28, 28)]
        public float[] Features { get; set; } = [];

        public string Digit { get; set; } = "";

        public float Index { get; set; }

        [KeyType(4)]
        public uint Label { get; set; }
    }
}
