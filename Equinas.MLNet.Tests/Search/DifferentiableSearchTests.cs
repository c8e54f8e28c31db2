using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search;

public class DifferentiableSearchTests : TorchTestBase
{
    private static readonly NetworkSpec Template =
        NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 3), [16, 32, 32], 3, [0, 1], classes: 3, headHidden: 0);

    private static DifferentiableOptions Options(FinalArchitecture final = FinalArchitecture.KeepMixture) => new()
    {
        Epochs = 2.5,
        Training = new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 },
        ArchitectureLearningRate = 0.05,
        Final = final,
        FinalEpochs = 1,
        Seed = 3,
    };

    [Fact]
    public void Search_learns_z_per_layer_records_it_per_epoch_and_repeats_for_a_seed()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);

        (double[][] FinalZ, string[] Lines) RunOnce()
        {
            var search = new DifferentiableSearch(Options());
            int events = 0;
            search.EpochCompleted += (_, _) => events++;
            using var result = search.Run(Template, train, heldOut);
            Assert.Equal(3, events);
            Assert.Equal([1, 2, 2.5], result.History.Select(e => e.Epoch));
            Assert.All(result.History, e => Assert.Equal("search", e.Phase));
            var members = SymmetryGroup.D4.Subgroups();
            Assert.Equal(members, result.Network.Spec.Members);
            foreach (var epoch in result.History)
            {
                Assert.Equal(3, epoch.Z.Count);
                Assert.All(epoch.Z, z =>
                {
                    Assert.Equal(10, z.Length);
                    Assert.Equal(1.0, z.Sum(), 5);
                });
            }

            // The logits moved away from uniform.
            Assert.Contains(result.History[^1].Z.SelectMany(z => z), v => Math.Abs(v - 0.1) > 1e-3);
            Assert.Equal(result.Network.Z().Select(z => members[Array.IndexOf(z, z.Max())]), result.ArgmaxGroups);
            Assert.False(result.Network.training);
            var lines = result.History.Select(e => $"{e.Epoch} {e.Train.Loss:R} {e.Validation.Accuracy:R} {string.Join(",", e.Z.SelectMany(z => z).Select(v => v.ToString("R")))}").ToArray();
            return (result.Network.Z(), lines);
        }

        var first = RunOnce();
        var second = RunOnce();
        Assert.Equal(first.Lines, second.Lines);
    }

    [Theory]
    [InlineData(true, "fine-tune")]
    [InlineData(false, "retrain")]
    public void Discretising_freezes_the_argmax_groups_and_trains_on(bool fineTune, string phase)
    {
        var final = fineTune ? FinalArchitecture.DiscretizeAndFineTune : FinalArchitecture.DiscretizeAndRetrain;
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var result = new DifferentiableSearch(Options(final) with { Epochs = 1 }).Run(Template, train, heldOut);
        Assert.Equal(["search", phase], result.History.Select(e => e.Phase));
        var members = result.Network.Spec.Members;
        var z = result.Network.Z();
        for (int layer = 0; layer < z.Length; layer++)
        {
            Assert.Equal(1.0, z[layer][members.ToList().IndexOf(result.ArgmaxGroups[layer])]);
            Assert.Equal(1.0, z[layer].Sum());
        }

        // One-hot: the network is exactly invariant to the intersection of the chosen groups' elements it keeps
        // in every layer.
        var kept = SymmetryGroup.IntersectAll(result.ArgmaxGroups);
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = heldOut.Images.narrow(0, 0, 8);
        var reference = result.Network.call(x);
        foreach (var e in kept.Elements)
        {
            Assert.True(RelativeError(result.Network.call(Equinas.MLNet.Groups.Actions.TensorAction.ActOnImage(x, e)), reference) < 1e-5);
        }
    }

    [Fact]
    public void Cancellation_stops_the_search()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var cancellation = new CancellationTokenSource();
        var search = new DifferentiableSearch(Options() with { Epochs = 20 });
        int epochs = 0;
        search.EpochCompleted += (_, _) =>
        {
            if (++epochs == 1)
            {
                cancellation.Cancel();
            }
        };
        Assert.ThrowsAny<OperationCanceledException>(() => search.Run(Template, train, heldOut, cancellation.Token));
        Assert.Equal(1, epochs);
    }

    [Fact]
    public void Invalid_options_are_rejected()
    {
        var notSub = Assert.Throws<ArgumentException>(() => new DifferentiableSearch(new DifferentiableOptions { TopGroup = SymmetryGroup.C4, Members = [SymmetryGroup.D1V] }));
        Assert.Contains("subgroups of C4", notSub.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DifferentiableSearch(new DifferentiableOptions { ArchitectureLearningRate = 0 }));
    }
}
