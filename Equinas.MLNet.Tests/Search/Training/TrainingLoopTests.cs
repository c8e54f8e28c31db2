using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using Equinas.MLNet.Tests.Search;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search.Training;

public class TrainingLoopTests : TorchTestBase
{
    private static NetworkSpec TinySpec(SymmetryGroup group, int headHidden = 0) =>
        NetworkSpec.FromChannels(1, NetworkPresets.Uniform(group, 3), [16, 32, 32], 3, [0, 1], classes: 3, headHidden: headHidden);

    [Fact]
    public void Sampler_visits_every_row_once_per_epoch_and_repeats_for_a_seed()
    {
        var a = new BatchSampler(10, 4, seed: 3);
        var b = new BatchSampler(10, 4, seed: 3);
        Assert.Equal(3, a.BatchesPerEpoch);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var rows = new List<long>();
            for (int i = 0; i < a.BatchesPerEpoch; i++)
            {
                var batch = a.Next();
                Assert.Equal(batch, b.Next());
                rows.AddRange(batch);
            }

            Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), rows.Order());
        }

        Assert.Equal(3.0, a.EpochsDrawn);
        Assert.Equal(1, a.BatchesFor(0.25));
        Assert.Equal(2, a.BatchesFor(0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.BatchesFor(0));
    }

    [Fact]
    public void Fit_learns_reports_fractional_epochs_and_is_deterministic()
    {
        using var train = SyntheticData.Motifs(192, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var trainer = new NetworkTrainer(new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 });
        var events = new List<EpochMetrics>();
        trainer.EpochCompleted += (_, e) => events.Add(e);

        float[] RunOnce()
        {
            torch.manual_seed(5);
            using var net = new GroupCnn(TinySpec(SymmetryGroup.D4));
            trainer.Fit(net, train, validation, epochs: 6.5, seed: 9, CancellationToken.None);
            return net.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
        }

        var first = RunOnce();
        Assert.Equal(7, events.Count);
        Assert.Equal([1, 2, 3, 4, 5, 6, 6.5], events.Select(e => e.Epoch));
        Assert.True(events[^1].Train.Loss < events[0].Train.Loss, $"training loss {events[0].Train.Loss} -> {events[^1].Train.Loss}");
        Assert.True(events[^1].Validation!.Value.Accuracy > 0.7, $"validation accuracy {events[^1].Validation!.Value.Accuracy}");
        Assert.Equal(48, events[^1].Validation!.Value.Images);

        var second = RunOnce();
        Assert.Equal(first, second);
    }

    [Fact]
    public void Training_stops_within_one_batch_of_cancellation()
    {
        using var train = SyntheticData.Motifs(64, 3, 12, seed: 1);
        using var net = new GroupCnn(TinySpec(SymmetryGroup.C4));
        using var optimizer = new TrainingOptions().CreateOptimizer(net.parameters());
        using var cancellation = new CancellationTokenSource();
        var sampler = new BatchSampler(train.Count, 8, seed: 1);
        int batchesBefore = 0;
        sampler.BatchDrawn += () =>
        {
            if (++batchesBefore == 3)
            {
                cancellation.Cancel();
            }
        };
        Assert.Throws<OperationCanceledException>(() =>
            NetworkTrainer.TrainBatches(net, optimizer, train, sampler, 100, cancellation.Token));
        Assert.Equal(3, batchesBefore);
        Assert.Equal(3.0 / 8, sampler.EpochsDrawn);
    }

    [Fact]
    public void Dataset_checks_its_tensors_and_splits_by_class()
    {
        var wrongType = Assert.Throws<ArgumentException>(() => new ImageDataset(torch.zeros(4, 1, 5, 5, dtype: ScalarType.Float64), torch.zeros(4, dtype: ScalarType.Int64), 2));
        Assert.Contains("float32 tensor N x C x H x W", wrongType.Message, StringComparison.Ordinal);
        var badLabel = Assert.Throws<ArgumentException>(() => new ImageDataset(torch.zeros(2, 1, 5, 5), torch.tensor(new long[] { 0, 3 }), 3));
        Assert.Contains("[0, 3)", badLabel.Message, StringComparison.Ordinal);

        using var data = SyntheticData.Motifs(100, 4, 8, seed: 3);
        var (train, validation) = data.Split(0.2, seed: 1);
        using (train)
        using (validation)
        {
            Assert.Equal(80, train.Count);
            Assert.Equal(20, validation.Count);
            var counts = validation.Labels.bincount(null).data<long>().ToArray();
            Assert.All(counts, c => Assert.Equal(5, c));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Norm_calibration_makes_evaluation_match_the_batch_statistics(bool mixed)
    {
        using var data = SyntheticData.Motifs(64, 3, 12, seed: 4);
        var spec = TinySpec(SymmetryGroup.D4, headHidden: 8);
        nn.Module<Tensor, Tensor> net = mixed
            ? new Equinas.MLNet.Mixed.MixedGroupCnn(new Equinas.MLNet.Mixed.MixedNetworkSpec(spec, SymmetryGroup.D4.Subgroups()))
            : new GroupCnn(spec);
        using (net)
        {
            using var scope = NewDisposeScope();
            using (torch.no_grad())
            {
                foreach (var p in net.parameters())
                {
                    p.add_(torch.randn_like(p) * 0.3);
                }
            }

            net.eval();
            var stale = net.call(data.Images);
            net.train();
            Tensor batchStatistics;
            using (torch.no_grad())
            {
                batchStatistics = net.call(data.Images);
            }

            NormCalibration.Recalibrate(net, data, images: 64, batchSize: 64);
            Assert.True(net.training, "the mode is restored");
            net.eval();
            var calibrated = net.call(data.Images);
            double before = RelativeError(stale, batchStatistics), after = RelativeError(calibrated, batchStatistics);
            Assert.True(after < 0.05 && after < before / 4, $"relative error to batch statistics: {before:F3} before, {after:F3} after");
            Assert.All(net.modules().OfType<TorchSharp.Modules.BatchNorm1d>(), n => Assert.Equal(0.1, n.momentum));
        }
    }
}
