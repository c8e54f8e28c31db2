using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;
using DigitRow = Equinas.Data.DigitRow;
using Xunit.Abstractions;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>The trainers through ML.NET's public API only, on real digits: training, evaluation, saving and loading, invariance, threads.</summary>
public sealed class TrainerTests(ITestOutputHelper output)
{
    internal static EquivariantImageClassificationTrainer.Options Small(SearchMode mode) => new()
    {
        SearchMode = mode,
        Channels = [8, 16, 16],
        Epochs = 2,
        PopulationSize = 2,
        Generations = 1,
        EpochsPerGeneration = 1,
        ArchitectureLearningRate = 0.05,
        Seed = 7,
    };

    [Theory]
    [InlineData(SearchMode.Fixed)]
    [InlineData(SearchMode.Evolutionary)]
    [InlineData(SearchMode.Differentiable)]
    public void Each_mode_trains_evaluates_saves_and_loads_with_bit_identical_scores(SearchMode mode)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Digits.Rows(0, 400, 0, 1, 2, 3));
        var test = ml.Data.LoadFromEnumerable(Digits.Rows(2, 120, 0, 1, 2, 3));
        var reports = new List<EquinasProgress>();
        var options = Small(mode);
        options.Progress = new SyncProgress<EquinasProgress>(reports.Add);
        var pipeline = Digits.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel"));
        var model = pipeline.Fit(train);

        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        output.WriteLine($"{mode}: accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
        Assert.True(double.IsFinite(metrics.LogLoss) && metrics.LogLoss > 0, $"log-loss {metrics.LogLoss}");
        Assert.True(metrics.MicroAccuracy > 0.5, $"accuracy {metrics.MicroAccuracy} on 4 classes");

        var scores = ml.Data.CreateEnumerable<DigitPrediction>(scored, reuseRowObject: false).ToList();
        Assert.All(scores, s => Assert.Equal(1.0, s.Score.Sum(), 4));
        Assert.All(scores, s => Assert.Contains(s.PredictedDigit, new[] { "0", "1", "2", "3" }));

        var parameters = FindModel(model);
        Assert.NotNull(parameters);
        Assert.Equal(3, parameters.LayerGroups.Count);
        Assert.Equal(4, parameters.ClassCount);
        Assert.Equal((1, 28, 28), parameters.InputShape);
        Assert.True(parameters.ParameterCount > 0);
        Assert.Equal(mode, parameters.History.Mode);
        Assert.NotEmpty(reports);
        switch (mode)
        {
            case SearchMode.Evolutionary:
                Assert.Contains(parameters.History.Candidates, c => c.Generation == 1);
                Assert.Equal(2, reports.Count);
                Assert.Equal([1, 2], reports.Select(r => r.Step));
                Assert.Equal([0, 1], reports.Select(r => r.Generation!.Value));
                Assert.All(reports, r => Assert.Equal(2, r.TotalSteps));
                break;
            case SearchMode.Differentiable:
                Assert.Equal(2, parameters.History.Epochs.Count);
                Assert.All(parameters.History.Epochs, e => Assert.Equal(3, e.Z!.Count));
                Assert.All(parameters.History.Epochs[0].Z!, layer => Assert.Equal(1.0, layer.Values.Sum(), 6));
                Assert.NotNull(reports[^1].Z);
                break;
            default:
                Assert.All(parameters.LayerGroups, g => Assert.Equal("D4", g));
                Assert.Equal(2, parameters.History.Epochs.Count);
                break;
        }

        var path = Path.Combine(Path.GetTempPath(), $"equinas-{mode}-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, train.Schema, path);
            var fresh = new MLContext(seed: 99);
            var loaded = fresh.Model.Load(path, out var inputSchema);
            Assert.NotNull(inputSchema.GetColumnOrNull(nameof(DigitRow.Features)));
            var reloaded = fresh.Data.CreateEnumerable<DigitPrediction>(loaded.Transform(fresh.Data.LoadFromEnumerable(Digits.Rows(2, 120, 0, 1, 2, 3))), reuseRowObject: false).ToList();
            Assert.Equal(scores.Count, reloaded.Count);
            for (int i = 0; i < scores.Count; i++)
            {
                Assert.Equal(scores[i].Score, reloaded[i].Score);
                Assert.Equal(scores[i].PredictedDigit, reloaded[i].PredictedDigit);
            }

            var loadedParameters = FindModel(loaded)!;
            Assert.Equal(parameters.LayerGroups, loadedParameters.LayerGroups);
            Assert.Equal(parameters.History.Candidates.Count, loadedParameters.History.Candidates.Count);
            Assert.Equal(parameters.History.Epochs.Count, loadedParameters.History.Epochs.Count);
            Assert.Equal(parameters.History.Timings, loadedParameters.History.Timings);
            Assert.Equal(parameters.History.Settings, loadedParameters.History.Settings);
            Assert.Equal("7", loadedParameters.History.Settings!["Seed"]);
            Assert.Equal("8,16,16", loadedParameters.History.Settings["Channels"]);
            Assert.All(reports, r => Assert.True(r.Parameters > 0));
            Assert.True(loadedParameters.History.Timings!["total"] >= loadedParameters.History.Timings["data"]);
            (loaded as IDisposable)?.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_differentiable_search_can_retrain_its_chosen_architecture_as_an_ordinary_G_CNN()
    {
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Differentiable);
        options.Epochs = 1;
        options.RetrainEpochs = 1;
        var data = ml.Data.LoadFromEnumerable(Digits.Rows(0, 300, 0, 1, 2));
        var mixture = FindModel(Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquinasDifferentiable(new EquivariantImageClassificationTrainer.Options { Channels = [8, 16, 16], Epochs = 1, Seed = 7 })).Fit(data))!;
        var model = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(data);
        var retrained = FindModel(model)!;

        Assert.True(mixture.IsMixed);
        Assert.False(retrained.IsMixed);
        Assert.Null(retrained.Z);
        Assert.True(retrained.ParameterCount < mixture.ParameterCount, $"{retrained.ParameterCount} vs {mixture.ParameterCount}");
        Assert.Equal([EquinasPhase.Search, EquinasPhase.Retrain], retrained.History.Epochs.Select(e => e.Phase));
        var groups = retrained.LayerGroups.Select(Equinas.MLNet.Groups.SymmetryGroup.Parse).ToArray();
        for (int i = 1; i < groups.Length; i++)
        {
            Assert.True(groups[i].IsSubgroupOf(groups[i - 1]), string.Join("-", retrained.LayerGroups));
        }

        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(Digits.Rows(2, 90, 0, 1, 2))));
        Assert.True(double.IsFinite(metrics.LogLoss));
        mixture.Dispose();
        retrained.Dispose();
    }

    [Theory]
    [InlineData(MixtureStart.TopGroup)]
    [InlineData(MixtureStart.Uniform)]
    public void The_differentiable_search_starts_z_where_the_option_says_and_records_it(MixtureStart start)
    {
        // A learning rate of z so small that after a short epoch z is where it started, to float rounding.
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Differentiable);
        options.Epochs = 0.25;
        options.ArchitectureLearningRate = 1e-12;
        options.MixtureStart = start;
        var data = ml.Data.LoadFromEnumerable(Digits.Rows(0, 120, 0, 1, 2));
        using var parameters = FindModel(Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(data))!;

        var z = Assert.Single(parameters.History.Epochs).Z!;
        Assert.Equal(3, z.Count);
        // D4 has 10 subgroups; the top-group start gives D4 logit 0 and the 9 others -2.
        double top = start == MixtureStart.TopGroup ? 1 / (1 + (9 * Math.Exp(-2))) : 0.1;
        double other = start == MixtureStart.TopGroup ? Math.Exp(-2) / (1 + (9 * Math.Exp(-2))) : 0.1;
        foreach (var layer in z)
        {
            Assert.Equal(10, layer.Count);
            Assert.Equal(top, layer["D4"], 6);
            Assert.All(layer.Where(p => p.Key != "D4"), p => Assert.Equal(other, p.Value, 6));
        }

        // The setting is recorded (and so part of a checkpoint's identity) only when not uniform: checkpoints written
        // before the option existed, which started uniform, still resume as uniform searches.
        var settings = parameters.History.Settings!;
        Assert.Equal(start != MixtureStart.Uniform, settings.ContainsKey(nameof(MixtureStart)));
        if (start == MixtureStart.TopGroup)
        {
            Assert.Equal("TopGroup", settings[nameof(MixtureStart)]);
            Assert.All(parameters.LayerGroups, g => Assert.Equal("D4", g));
        }

        Assert.Equal(MixtureStart.TopGroup, new EquivariantImageClassificationTrainer.Options().MixtureStart);
        // The trainer hands the option to the engine by value.
        Assert.Equal((int)Equinas.MLNet.Mixed.AlphaInitialization.Uniform, (int)MixtureStart.Uniform);
        Assert.Equal((int)Equinas.MLNet.Mixed.AlphaInitialization.PreferLargest, (int)MixtureStart.TopGroup);
        var error = Assert.ThrowsAny<ArgumentException>(() => new EquivariantImageClassificationTrainer.Options { MixtureStart = (MixtureStart)5 }.Validate());
        Assert.Contains(nameof(MixtureStart), error.Message, StringComparison.Ordinal);
        Assert.Contains("TopGroup or Uniform", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_fixed_all_D4_model_gives_the_same_scores_for_an_image_and_its_eight_transformed_copies()
    {
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Fixed);
        options.Epochs = 1;
        var model = Digits.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel"))
            .Fit(ml.Data.LoadFromEnumerable(Digits.Rows(0, 200, 0, 1, 2, 6, 9)));
        using var engine = ml.Model.CreatePredictionEngine<DigitRow, DigitPrediction>(model);
        foreach (var image in Digits.Rows(2, 3, 6, 9))
        {
            var reference = engine.Predict(image).Score;
            foreach (var transformed in EightTransforms(image.Features))
            {
                var score = engine.Predict(new DigitRow { Features = transformed }).Score;
                for (int c = 0; c < reference.Length; c++)
                {
                    Assert.Equal(reference[c], score[c], 1e-5);
                }
            }
        }
    }

    [Fact]
    public void Eight_threads_predicting_on_one_loaded_model_agree_with_one_thread()
    {
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Differentiable);
        options.Epochs = 1;
        var model = Digits.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedDigit", "PredictedLabel"))
            .Fit(ml.Data.LoadFromEnumerable(Digits.Rows(0, 200, 0, 1, 2)));
        var path = Path.Combine(Path.GetTempPath(), $"equinas-threads-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, null, path);
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(path, out _);
            var images = Digits.Rows(2, 40, 0, 1, 2);
            float[][] expected;
            using (var single = fresh.Model.CreatePredictionEngine<DigitRow, DigitPrediction>(loaded, new PredictionEngineOptions { OwnsTransformer = false }))
            {
                expected = images.Select(i => single.Predict(i).Score).ToArray();
            }

            var results = new ConcurrentBag<(int Index, float[] Score)>();
            var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
            {
                using var engine = fresh.Model.CreatePredictionEngine<DigitRow, DigitPrediction>(loaded, new PredictionEngineOptions { OwnsTransformer = false });
                for (int k = 0; k < images.Count; k++)
                {
                    int i = (k + (t * 5)) % images.Count;
                    results.Add((i, engine.Predict(images[i]).Score));
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());

            Assert.Equal(8 * images.Count, results.Count);
            Assert.All(results, r => Assert.Equal(expected[r.Index], r.Score));

            // A shared transformer used from several threads at once.
            var shared = Enumerable.Range(0, 4).AsParallel().WithDegreeOfParallelism(4).Select(_ =>
                fresh.Data.CreateEnumerable<DigitPrediction>(loaded.Transform(fresh.Data.LoadFromEnumerable(images)), false).Select(p => p.Score).ToArray()).ToList();
            // Transform scores in batches: the same bits on every thread, and the per-row scores to float rounding.
            Assert.All(shared, s => Assert.Equal(shared[0], s));
            for (int i = 0; i < expected.Length; i++)
            {
                for (int c = 0; c < expected[i].Length; c++)
                {
                    Assert.True(Math.Abs(expected[i][c] - shared[0][i][c]) <= 1e-6, $"image {i} class {c}: {shared[0][i][c]} batched, {expected[i][c]} per row");
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Disposing_a_model_twice_is_harmless_and_later_use_fails_clearly()
    {
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Fixed);
        options.Epochs = 0.5;
        var model = Digits.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options))
            .Fit(ml.Data.LoadFromEnumerable(Digits.Rows(0, 100, 0, 1)));
        var parameters = FindModel(model)!;
        var engine = ml.Model.CreatePredictionEngine<DigitRow, DigitPrediction>(model);
        Assert.Equal(2, engine.Predict(Digits.Rows(2, 1, 0)[0]).Score.Length);
        engine.Dispose();   // owns the transformer: disposes the model
        parameters.Dispose();
        parameters.Dispose();
        var again = ml.Model.CreatePredictionEngine<DigitRow, DigitPrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        var error = Assert.Throws<ObjectDisposedException>(() => again.Predict(Digits.Rows(2, 1, 0)[0]));
        Assert.Contains(nameof(EquinasModelParameters), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cancellation_stops_a_search_within_one_batch_and_leaves_no_model()
    {
        var ml = new MLContext(seed: 1);
        using var cancellation = new CancellationTokenSource();
        var options = Small(SearchMode.Differentiable);
        options.Epochs = 200;
        options.CancellationToken = cancellation.Token;
        var started = new ManualResetEventSlim();
        ml.Log += (_, e) =>
        {
            if (e.Message.Contains("training on", StringComparison.Ordinal))
            {
                started.Set();
            }
        };
        var trainer = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options));
        var data = ml.Data.LoadFromEnumerable(Digits.Rows(0, 1000, 0, 1, 2));
        var watch = new System.Diagnostics.Stopwatch();
        var fit = Task.Run(() => trainer.Fit(data));
        Assert.True(started.Wait(TimeSpan.FromMinutes(2)));
        Thread.Sleep(500);
        watch.Start();
        cancellation.Cancel();
        var error = Assert.ThrowsAny<OperationCanceledException>(() => fit.GetAwaiter().GetResult());
        watch.Stop();
        output.WriteLine($"stopped {watch.ElapsedMilliseconds} ms after cancellation");

        // One batch of 64 through this mixed network takes well under a second here; 200 epochs would take minutes.
        Assert.True(watch.ElapsedMilliseconds < 3000, $"took {watch.ElapsedMilliseconds} ms to stop");
        Assert.NotNull(error);
    }

    [Fact]
    public void MLContext_cancellation_also_stops_training()
    {
        // MLContext.CancelExecution is internal to ML.NET (tools such as Model Builder call it); reached by reflection here.
        var cancel = typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic);
        Assert.NotNull(cancel);
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Fixed);
        options.Epochs = 200;
        var started = new ManualResetEventSlim();
        ml.Log += (_, e) =>
        {
            if (e.Message.Contains("training on", StringComparison.Ordinal))
            {
                started.Set();
            }
        };
        var data = ml.Data.LoadFromEnumerable(Digits.Rows(0, 1000, 0, 1, 2));
        var fit = Task.Run(() => Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(data));
        Assert.True(started.Wait(TimeSpan.FromMinutes(2)));
        Thread.Sleep(300);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        cancel.Invoke(ml, null);
        Assert.ThrowsAny<OperationCanceledException>(() => fit.GetAwaiter().GetResult());
        output.WriteLine($"stopped {watch.ElapsedMilliseconds} ms after MLContext cancelled");
        Assert.True(watch.ElapsedMilliseconds < 3000, $"took {watch.ElapsedMilliseconds} ms to stop");
    }

    [Fact]
    public void Cross_validation_works_unchanged()
    {
        var ml = new MLContext(seed: 1);
        var options = Small(SearchMode.Fixed);
        options.Epochs = 1;
        var pipeline = Digits.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options));
        var folds = ml.MulticlassClassification.CrossValidate(ml.Data.LoadFromEnumerable(Digits.Rows(0, 200, 0, 1)), pipeline, numberOfFolds: 2);
        Assert.Equal(2, folds.Count);
        Assert.All(folds, f => Assert.True(double.IsFinite(f.Metrics.LogLoss)));
        foreach (var fold in folds)
        {
            (fold.Model as IDisposable)?.Dispose();
        }
    }

    internal static EquinasModelParameters? FindModel(ITransformer model) => EquinasModelParameters.FindIn(model);

    /// <summary>The 8 images r^k f^m x of a 28 x 28 image (row-major), identity included.</summary>
    internal static IEnumerable<float[]> EightTransforms(float[] image)
    {
        const int n = Digits.Size;
        for (int m = 0; m < 2; m++)
        {
            var current = m == 0 ? image : Mirror(image);
            for (int k = 0; k < 4; k++)
            {
                yield return current;
                current = RotateQuarter(current);
            }
        }

        static float[] Mirror(float[] x)
        {
            var y = new float[x.Length];
            for (int r = 0; r < n; r++)
            {
                for (int c = 0; c < n; c++)
                {
                    y[(r * n) + c] = x[(r * n) + (n - 1 - c)];
                }
            }

            return y;
        }

        static float[] RotateQuarter(float[] x)
        {
            var y = new float[x.Length];
            for (int r = 0; r < n; r++)
            {
                for (int c = 0; c < n; c++)
                {
                    y[(r * n) + c] = x[(c * n) + (n - 1 - r)];
                }
            }

            return y;
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports synchronously on the training thread (unlike <see cref="Progress{T}"/>).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
