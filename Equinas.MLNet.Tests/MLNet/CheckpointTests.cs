using Microsoft.ML;
using Xunit;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary><c>Options.CheckpointDirectory</c> through ML.NET's API: resuming, refusing what does not match, the progress it reports.</summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"equinas-mlnet-checkpoint-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    private static EquivariantImageClassificationTrainer.Options Fixed(string? directory, CancellationToken token = default, IProgress<EquinasProgress>? progress = null)
    {
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 3;
        options.CheckpointDirectory = directory;
        options.CancellationToken = token;
        options.Progress = progress;
        return options;
    }

    private static float[] FitAndScore(MLContext ml, IDataView train, EquivariantImageClassificationTrainer.Options options)
    {
        var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(train);
        try
        {
            var test = ml.Data.LoadFromEnumerable(Digits.Rows(2, 40, 0, 1, 2, 3));
            return ml.Data.CreateEnumerable<ScoreOnly>(model.Transform(test), reuseRowObject: false).SelectMany(p => p.Score).ToArray();
        }
        finally
        {
            EquinasModelParameters.FindIn(model)!.Dispose();
        }
    }

    [Fact]
    public void A_cancelled_fit_continues_from_its_checkpoint_to_the_scores_of_an_uninterrupted_one_and_reports_the_restored_epochs()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Digits.Rows(0, 200, 0, 1, 2, 3));
        var uninterrupted = FitAndScore(ml, train, Fixed(null));

        using (var cancellation = new CancellationTokenSource())
        {
            var progress = new SyncProgress<EquinasProgress>(p =>
            {
                if (p.Step == 2)
                {
                    cancellation.Cancel();
                }
            });
            Assert.ThrowsAny<OperationCanceledException>(() => FitAndScore(ml, train, Fixed(_directory, cancellation.Token, progress)));
        }

        var reports = new List<EquinasProgress>();
        var resumed = FitAndScore(ml, train, Fixed(_directory, progress: new SyncProgress<EquinasProgress>(reports.Add)));
        Assert.Equal(uninterrupted, resumed);
        Assert.Equal([1, 2, 3], reports.Select(r => r.Step));
        Assert.Equal([true, true, false], reports.Select(r => r.Restored));

        // The finished run's folder gives the same model back without training.
        reports.Clear();
        Assert.Equal(uninterrupted, FitAndScore(ml, train, Fixed(_directory, progress: new SyncProgress<EquinasProgress>(reports.Add))));
        Assert.All(reports, r => Assert.True(r.Restored));
    }

    [Fact]
    public void A_checkpoint_of_other_options_or_other_data_is_refused_with_what_differs()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Digits.Rows(0, 120, 0, 1, 2, 3));
        EquivariantImageClassificationTrainer.Options Evolve(Action<EquivariantImageClassificationTrainer.Options>? change = null)
        {
            var options = TrainerTests.Small(SearchMode.Evolutionary);
            options.EpochsPerGeneration = 0.5;
            options.CheckpointDirectory = _directory;
            change?.Invoke(options);
            return options;
        }

        var scores = FitAndScore(ml, train, Evolve(o => o.Workers = 1));

        var error = Assert.ThrowsAny<InvalidOperationException>(() => FitAndScore(ml, train, Evolve(o => { o.Seed = 8; o.LearningRate = 0.002; })));
        Assert.Contains("other options", error.Message, StringComparison.Ordinal);
        Assert.Contains("Seed is 7 in the checkpoint and 8 in this run", error.Message, StringComparison.Ordinal);
        Assert.Contains("LearningRate is 0.001 in the checkpoint and 0.002 in this run", error.Message, StringComparison.Ordinal);
        Assert.Contains(_directory, error.Message, StringComparison.Ordinal);

        var fewer = ml.Data.LoadFromEnumerable(Digits.Rows(0, 110, 0, 1, 2, 3));
        error = Assert.ThrowsAny<InvalidOperationException>(() => FitAndScore(ml, fewer, Evolve()));
        Assert.Contains("other data", error.Message, StringComparison.Ordinal);
        Assert.Contains("DataHash is", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("other options", error.Message, StringComparison.Ordinal);

        // Another worker count is not another option (no result depends on it): the finished search's model comes back.
        Assert.Equal(scores, FitAndScore(ml, train, Evolve(o => o.Workers = 3)));
    }
}
