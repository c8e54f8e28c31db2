using Equinas.Data;
using Microsoft.ML;
using Xunit;

namespace Equinas.MLNet.Orleans.Tests;

/// <summary>The public API: the trainer's <c>Cluster</c> option with an <see cref="EquinasCluster"/> over a client.</summary>
public sealed class TrainerOnClusterTests
{
    private sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    private static readonly Lazy<ShippedDigits> Shipped = new(() => ShippedDigits.Load());

    private static List<DigitRow> Rows(DigitSplit split, int take) =>
        Shipped.Value.Plain(split).Where(d => d.Label < 3).Take(take)
            .Select(d => new DigitRow { Features = (float[])d.Pixels.Clone(), Digit = d.Label.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            .ToList();

    private static EquivariantImageClassificationTrainer.Options Small(CandidateCluster? cluster) => new()
    {
        SearchMode = SearchMode.Evolutionary,
        Channels = [8, 16, 16],
        PopulationSize = 2,
        Generations = 1,
        EpochsPerGeneration = 0.5,
        Seed = 7,
        ThreadsPerWorker = 1,
        Cluster = cluster,
    };

    private static float[] FitAndScore(MLContext ml, IDataView train, EquivariantImageClassificationTrainer.Options options)
    {
        var model = ml.Transforms.Conversion.MapValueToKey("Label", nameof(DigitRow.Digit))
            .Append(ml.MulticlassClassification.Trainers.EquivariantImageClassification(options)).Fit(train);
        try
        {
            var test = ml.Data.LoadFromEnumerable(Rows(DigitSplit.Test, 30));
            return ml.Data.CreateEnumerable<ScoreOnly>(model.Transform(test), reuseRowObject: false).SelectMany(p => p.Score).ToArray();
        }
        finally
        {
            EquinasModelParameters.FindIn(model)!.Dispose();
        }
    }

    [Fact]
    public async Task Fit_with_a_cluster_gives_the_model_of_fit_in_process_and_other_modes_refuse_it()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Rows(DigitSplit.Train, 120));
        var inProcess = FitAndScore(ml, train, Small(null));
        var cluster = await TestClusters.Start(2);
        try
        {
            var candidates = new EquinasCluster(cluster.Client);
            var onCluster = await Task.Run(() => FitAndScore(ml, train, Small(candidates)));
            Assert.Equal(inProcess, onCluster);
            var executor = Assert.Single(candidates.Executors);
            Assert.True(executor.Costs.Count >= 4, $"{executor.Costs.Count} candidates on the cluster");
            Assert.Equal(2, executor.Uploads);

            // Only the evolutionary search trains candidates: elsewhere the option is refused, naming it.
            var fixedMode = Small(candidates);
            fixedMode.SearchMode = SearchMode.Fixed;
            var error = Assert.ThrowsAny<ArgumentException>(() => FitAndScore(ml, train, fixedMode));
            Assert.Contains("Option Cluster must be null unless SearchMode is Evolutionary", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }
}
