using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Training;
using Equinas.MLNet.Tests.Search.Execution;
using Equinas.MLNet.Groups;
using TorchSharp;
using Xunit;

namespace Equinas.MLNet.Tests.Search.Checkpoints;

/// <summary>Searches stopped after a checkpoint and continued from it, against uninterrupted runs.</summary>
public sealed class ResumeTests : TorchTestBase, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"equinas-resume-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    internal static CheckpointIdentity Identity(ImageDataset train, ImageDataset validation, string settings = "test") =>
        new(CheckpointIdentity.DescribeData(train, validation), new Dictionary<string, string> { ["Settings"] = settings });

    [Fact]
    public void An_evolutionary_search_stopped_mid_generation_continues_to_the_uninterrupted_result()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var options = CandidateExecutorTests.Budget(workers: 2) with { Generations = 3 };
        (string[] History, float[] Weights) uninterrupted;
        using (var result = new EvolutionarySearch(options).Run(CandidateExecutorTests.Template, train, validation))
        {
            uninterrupted = CandidateExecutorTests.Outcome(result);
        }

        // Stopped in generation 2, after its first candidate: generations 0 and 1 are in the checkpoint.
        long liveBefore = LiveNetworksSettled();
        using (var store = new CheckpointStore(_directory, Identity(train, validation)))
        using (var cancellation = new CancellationTokenSource())
        {
            var search = new EvolutionarySearch(options) { Checkpoints = store };
            search.CandidateEvaluated += (_, c) =>
            {
                if (c.Generation == 2)
                {
                    cancellation.Cancel();
                }
            };
            Assert.ThrowsAny<OperationCanceledException>(() => search.Run(CandidateExecutorTests.Template, train, validation, cancellation.Token));
            Assert.Equal(2, store.Writes);
        }

        Assert.Equal(liveBefore, GroupCnn.LiveInstances);
        // Continued with another worker count: the count is not part of the result.
        using (var store = new CheckpointStore(_directory, Identity(train, validation)))
        {
            var search = new EvolutionarySearch(options with { Workers = 3 }) { Checkpoints = store };
            IReadOnlyList<GenerationRecord>? restored = null;
            search.Resumed += (_, h) => restored = h;
            using var result = search.Run(CandidateExecutorTests.Template, train, validation);
            Assert.Equal([0, 1], restored!.Select(g => g.Generation));
            Assert.Equal(uninterrupted.History, CandidateExecutorTests.Outcome(result).History);
            Assert.Equal(uninterrupted.Weights, CandidateExecutorTests.Outcome(result).Weights);
            Assert.Equal(2, store.Writes); // generations 2 and 3
        }

        // A run over a finished search's checkpoint trains nothing and returns the same network.
        using (var store = new CheckpointStore(_directory, Identity(train, validation)))
        {
            var search = new EvolutionarySearch(options) { Checkpoints = store };
            int trained = 0;
            search.CandidateEvaluated += (_, _) => trained++;
            using var result = search.Run(CandidateExecutorTests.Template, train, validation);
            Assert.Equal(0, trained);
            Assert.Equal(uninterrupted.Weights, CandidateExecutorTests.Outcome(result).Weights);
        }
    }

    private static readonly NetworkSpec MixedTemplate =
        NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 3), [8, 16, 16], 3, [0, 1], classes: 3, headHidden: 0);

    private static DifferentiableOptions Differentiable(double epochs, double retrain) => new()
    {
        Epochs = epochs,
        Training = new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 },
        ArchitectureLearningRate = 0.05,
        RetrainEpochs = retrain,
        Seed = 3,
    };

    [Theory]
    [InlineData(1.5, 0.0, 1)]   // stopped after search epoch 1 of 1.5
    [InlineData(1.0, 1.5, 2)]   // stopped after retraining epoch 1 of 1.5
    public void A_differentiable_search_stopped_after_an_epoch_continues_to_the_uninterrupted_result(double epochs, double retrain, int stopAfter)
    {
        using var train = SyntheticData.Motifs(64, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        static (string[] Lines, float[] Weights) Outcome(DifferentiableResult result) =>
            (result.History.Select(e => $"{e.Phase} {e.Epoch} {e.Train.Loss:R} {e.Validation.Accuracy:R} {e.Validation.Loss:R} {string.Join(",", e.Z.SelectMany(z => z).Select(v => v.ToString("R")))}").ToArray(),
             result.Network.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray());

        (string[] Lines, float[] Weights) uninterrupted;
        using (var result = new DifferentiableSearch(Differentiable(epochs, retrain)).Run(MixedTemplate, train, heldOut))
        {
            uninterrupted = Outcome(result);
        }

        using (var store = new CheckpointStore(_directory, Identity(train, heldOut)))
        using (var cancellation = new CancellationTokenSource())
        {
            var search = new DifferentiableSearch(Differentiable(epochs, retrain)) { Checkpoints = store };
            int done = 0;
            search.EpochCompleted += (_, _) =>
            {
                if (++done == stopAfter)
                {
                    cancellation.Cancel();
                }
            };
            Assert.ThrowsAny<OperationCanceledException>(() => search.Run(MixedTemplate, train, heldOut, cancellation.Token));
            Assert.Equal(stopAfter, store.Writes);
        }

        using (var store = new CheckpointStore(_directory, Identity(train, heldOut)))
        {
            var search = new DifferentiableSearch(Differentiable(epochs, retrain)) { Checkpoints = store };
            int restored = 0;
            search.Resumed += (_, h) => restored = h.Count;
            using var result = search.Run(MixedTemplate, train, heldOut);
            Assert.Equal(stopAfter, restored);
            var resumed = Outcome(result);
            Assert.Equal(uninterrupted.Lines, resumed.Lines);
            Assert.Equal(uninterrupted.Weights, resumed.Weights);
        }
    }

    [Fact]
    public void A_resumed_fit_continues_the_optimiser_and_the_data_order_bit_for_bit()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        var trainer = new NetworkTrainer(new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 });
        float[] Weights(EquivariantNetwork n) => n.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
        using var whole = SeededInit.Create(5, () => new GroupCnn(CandidateExecutorTests.Template));
        trainer.Fit(whole, train, null, 3.5, seed: 9, CancellationToken.None);

        var second = new NetworkTrainer(trainer.Options);
        FitState? afterTwo = null;
        second.StateSaved += (_, s) => afterTwo ??= s.Epochs.Count == 2 ? s : null;
        using (var first = SeededInit.Create(5, () => new GroupCnn(CandidateExecutorTests.Template)))
        {
            second.Fit(first, train, null, 3.5, seed: 9, CancellationToken.None);
        }

        // A different network object, fresh weights: the state brings everything back.
        using var resumed = SeededInit.Create(77, () => new GroupCnn(CandidateExecutorTests.Template));
        var epochs = new NetworkTrainer(trainer.Options).Fit(resumed, train, null, 3.5, seed: 9, CancellationToken.None, resume: afterTwo);
        Assert.Equal([1, 2, 3, 3.5], epochs.Select(e => e.Epoch));
        Assert.Equal(Weights(whole), Weights(resumed));
    }
}
