using Microsoft.ML;
using Xunit;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>Models and trainings used from several threads at once, through the public API.</summary>
public sealed class ConcurrencyTests
{
    private sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    [Fact]
    public void Disposing_a_model_while_eight_threads_predict_ends_every_prediction_cleanly()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Digits.Rows(0, 120, 0, 1));
        var options = TrainerTests.Small(SearchMode.Fixed);
        options.Epochs = 0.5;
        var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(train);
        var parameters = EquinasModelParameters.FindIn(model)!;
        var rows = Digits.Rows(2, 8, 0, 1);
        int predictions = 0, disposedErrors = 0;
        using var started = new CountdownEvent(8);
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            var engine = ml.Model.CreatePredictionEngine<Equinas.Data.DigitRow, ScoreOnly>(model, new PredictionEngineOptions { OwnsTransformer = false });
            started.Signal();
            try
            {
                for (int i = 0; i < 2_000; i++)
                {
                    engine.Predict(rows[i % rows.Count]);
                    Interlocked.Increment(ref predictions);
                }
            }
            catch (ObjectDisposedException)
            {
                Interlocked.Increment(ref disposedErrors);
            }
            catch (InvalidOperationException e) when (e.InnerException is ObjectDisposedException || e.GetBaseException() is ObjectDisposedException)
            {
                Interlocked.Increment(ref disposedErrors);
            }
        })).ToArray();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        started.Wait();
        Thread.Sleep(50);
        parameters.Dispose();
        foreach (var thread in threads)
        {
            thread.Join();
        }

        // Every thread either finished or stopped with ObjectDisposedException (no crash, no other error), and
        // the model refuses work afterwards.
        Assert.True(predictions > 0, "no prediction ran before the dispose");
        Assert.True(disposedErrors > 0, $"all {predictions} predictions finished before the dispose: the race was not exercised");
        var late = ml.Model.CreatePredictionEngine<Equinas.Data.DigitRow, ScoreOnly>(model, new PredictionEngineOptions { OwnsTransformer = false });
        var error = Record.Exception(() => late.Predict(rows[0]));
        Assert.True(error is ObjectDisposedException || error?.GetBaseException() is ObjectDisposedException, $"got {error}");
        parameters.Dispose();
    }

    [Fact]
    public async Task One_fit_is_deterministic_whatever_else_trains_at_the_same_time()
    {
        static float[] Scores(MLContext ml, ITransformer model)
        {
            var test = ml.Data.LoadFromEnumerable(Digits.Rows(2, 16, 0, 1, 2));
            return ml.Data.CreateEnumerable<ScoreOnly>(model.Transform(test), reuseRowObject: false).SelectMany(s => s.Score).ToArray();
        }

        float[] FitOnce(int seed)
        {
            var ml = new MLContext(seed: 1);
            var options = TrainerTests.Small(SearchMode.Fixed);
            options.Epochs = 0.5;
            options.Seed = seed;
            var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
                .Fit(ml.Data.LoadFromEnumerable(Digits.Rows(0, 150, 0, 1, 2)));
            var scores = Scores(ml, model);
            EquinasModelParameters.FindIn(model)!.Dispose();
            return scores;
        }

        var alone = FitOnce(11);
        // The same training while four others (other seeds) build and train networks on other threads.
        var others = Enumerable.Range(0, 4).Select(i => Task.Run(() => FitOnce(100 + i))).ToArray();
        var together = FitOnce(11);
        await Task.WhenAll(others);
        Assert.Equal(alone, together);
    }
}
