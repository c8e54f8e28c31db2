using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using Equinas.MLNet.Tests.Search;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search.Differentiable;

public class DifferentiableSearchTests : TorchTestBase
{
    private static readonly NetworkSpec Template =
        NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 3), [16, 32, 32], 3, [0, 1], classes: 3, headHidden: 0);

    private static DifferentiableOptions Options(double retrainEpochs = 0) => new()
    {
        Epochs = 2.5,
        Training = new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 },
        ArchitectureLearningRate = 0.05,
        RetrainEpochs = retrainEpochs,
        Seed = 3,
        // The mechanics below are checked from the uniform start (the paper's); the default start has its own test.
        Initialization = AlphaInitialization.Uniform,
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
            Assert.All(result.History, e => Assert.Equal(DifferentiablePhase.Search, e.Phase));
            var members = SymmetryGroup.D4.Subgroups();
            var mixed = Assert.IsType<MixedGroupCnn>(result.Network);
            Assert.Equal(members, mixed.Spec.Members);
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
            Assert.Equal(mixed.Z().Select(z => members[Array.IndexOf(z, z.Max())]), result.ArgmaxGroups);
            Assert.Equal(mixed.Z(), result.Z);
            Assert.False(result.Network.training);
            var lines = result.History.Select(e => $"{e.Epoch} {e.Train.Loss:R} {e.Validation.Accuracy:R} {string.Join(",", e.Z.SelectMany(z => z).Select(v => v.ToString("R")))}").ToArray();
            return (mixed.Z(), lines);
        }

        var first = RunOnce();
        var second = RunOnce();
        Assert.Equal(first.Lines, second.Lines);
    }

    [Fact]
    public void Retraining_trains_the_chain_of_argmax_groups_as_a_fixed_network_from_scratch()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var result = new DifferentiableSearch(Options(retrainEpochs: 1) with { Epochs = 1 }).Run(Template, train, heldOut);
        Assert.Equal([DifferentiablePhase.Search, DifferentiablePhase.Retrain], result.History.Select(e => e.Phase));
        var network = Assert.IsType<GroupCnn>(result.Network);
        Assert.Equal(DifferentiableSearch.Chain(result.ArgmaxGroups), result.RetrainedGroups);
        Assert.Equal(result.RetrainedGroups, network.Spec.Groups);
        for (int i = 1; i < network.Spec.Groups.Count; i++)
        {
            Assert.True(network.Spec.Groups[i].IsSubgroupOf(network.Spec.Groups[i - 1]));
        }

        // One-hot z over the chain in the retraining epoch's record, and the retrained network is exactly invariant to
        // its last layer's group.
        var members = SymmetryGroup.D4.Subgroups();
        var z = result.History[^1].Z;
        for (int layer = 0; layer < z.Count; layer++)
        {
            Assert.Equal(1.0, z[layer][members.ToList().IndexOf(result.RetrainedGroups![layer])]);
            Assert.Equal(1.0, z[layer].Sum());
        }

        Assert.Equal(network.ParameterCount, result.History[^1].Parameters);
        using var scope = NewDisposeScope();
        var x = heldOut.Images.narrow(0, 0, 8);
        Assert.All(network.CheckInvariance(x).Values, error => Assert.True(error < 1e-5, $"error {error}"));
    }

    [Fact]
    public void Warm_up_trains_the_weights_with_z_fixed_before_the_search()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var result = new DifferentiableSearch(Options() with { Epochs = 1, WarmupEpochs = 2 }).Run(Template, train, heldOut);
        Assert.Equal([DifferentiablePhase.Warmup, DifferentiablePhase.Warmup, DifferentiablePhase.Search], result.History.Select(e => e.Phase));
        Assert.All(result.History.Take(2), e => Assert.All(e.Z, z => Assert.All(z, v => Assert.Equal(0.1, v, 6))));
        Assert.Contains(result.History[^1].Z.SelectMany(z => z), v => Math.Abs(v - 0.1) > 1e-4);
    }

    [Fact]
    public void By_default_z_starts_at_the_top_group_and_warm_up_keeps_it_there()
    {
        Assert.Equal(AlphaInitialization.PreferLargest, new DifferentiableOptions().Initialization);
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var members = SymmetryGroup.D4.Subgroups();
        using var result = new DifferentiableSearch(Options() with { Initialization = new DifferentiableOptions().Initialization, Epochs = 1, WarmupEpochs = 1 }).Run(Template, train, heldOut);
        // The top group's logit 0 and the 9 others' -2.
        double top = 1 / (1 + (9 * Math.Exp(-2))), other = Math.Exp(-2) * top;
        double Start(int i) => members[i] == SymmetryGroup.D4 ? top : other;
        var warmup = result.History.Single(e => e.Phase == DifferentiablePhase.Warmup);
        Assert.All(warmup.Z, z => Assert.All(z.Select((v, i) => (v, i)), p => Assert.Equal(Start(p.i), p.v, 6)));
        Assert.Contains(result.History[^1].Z.SelectMany(z => z.Select((v, i) => Math.Abs(v - Start(i)))), d => d > 1e-4);
    }

    [Fact]
    public void The_null_control_moves_z_as_far_but_not_as_the_search_does()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var search = new DifferentiableSearch(Options() with { Epochs = 1 }).Run(Template, train, heldOut);
        using var control = new DifferentiableSearch(Options() with { Epochs = 1, ShuffleArchitectureGradients = true }).Run(Template, train, heldOut);
        var a = search.Z.SelectMany(z => z).ToArray();
        var b = control.Z.SelectMany(z => z).ToArray();
        Assert.All(control.Z, z => Assert.Equal(1.0, z.Sum(), 5));
        Assert.Contains(b, v => Math.Abs(v - 0.1) > 1e-3);
        Assert.True(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Fact]
    public void A_search_of_sampled_architectures_keeps_its_largest_z_chain_frozen_and_exactly_invariant()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var result = new DifferentiableSearch(Options() with { Epochs = 1, SampleArchitectures = true }).Run(Template, train, heldOut);
        var mixed = Assert.IsType<MixedGroupCnn>(result.Network);
        var members = mixed.Spec.Members.ToList();
        var frozen = mixed.Z();
        for (int layer = 0; layer < frozen.Length; layer++)
        {
            Assert.Equal(1.0, frozen[layer][members.IndexOf(result.ArgmaxGroups[layer])]);
            Assert.Equal(1.0, frozen[layer].Sum());
        }

        Assert.All(mixed.Blocks, b => Assert.Null(b.Conv.SampledMember));
        var kept = SymmetryGroup.IntersectAll(result.ArgmaxGroups);
        using var scope = NewDisposeScope();
        var x = heldOut.Images.narrow(0, 0, 8);
        foreach (var (element, error) in mixed.CheckEquivariance(x, kept))
        {
            Assert.True(error < 1e-5, $"{element}: {error}");
        }
    }

    [Fact]
    public void The_symmetry_prior_moves_z_towards_larger_groups_in_proportion_to_the_symmetry_each_member_gives_up()
    {
        // The same search with and without the prior, from the same seed: the prior must show in every layer.
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        using var plain = new DifferentiableSearch(Options() with { Epochs = 2 }).Run(Template, train, heldOut);
        using var prior = new DifferentiableSearch(Options() with { Epochs = 2, SymmetryPrior = 1.0 }).Run(Template, train, heldOut);
        var members = SymmetryGroup.All.ToList();
        double Bits(double[] z) => members.Select((m, i) => z[i] * Math.Log2(8.0 / m.Order)).Sum();
        for (int layer = 0; layer < prior.Z.Count; layer++)
        {
            // Every layer gives up less symmetry than without the prior, and D4 gains on C1.
            Assert.True(Bits(prior.Z[layer]) < Bits(plain.Z[layer]) - 0.15, $"layer {layer}: {Bits(prior.Z[layer]):F3} bits against {Bits(plain.Z[layer]):F3}");
            Assert.True(prior.Z[layer][members.IndexOf(SymmetryGroup.D4)] > prior.Z[layer][members.IndexOf(SymmetryGroup.C1)], $"layer {layer}");
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new DifferentiableSearch(new DifferentiableOptions { SymmetryPrior = -0.1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DifferentiableSearch(new DifferentiableOptions { SymmetryPrior = double.NaN }));
    }

    [Fact]
    public void A_sampled_search_keeps_the_norm_statistics_of_its_largest_z_chain()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var options = Options() with { Epochs = 1, SampleArchitectures = true };
        using var result = new DifferentiableSearch(options).Run(Template, train, heldOut);
        var mixed = Assert.IsType<MixedGroupCnn>(result.Network);
        using var scope = NewDisposeScope();
        var x = heldOut.Images.narrow(0, 0, 16);
        mixed.eval();
        using var before = mixed.call(x).detach().clone();
        // Re-estimating on the kept (frozen, one-hot) chain must find the statistics it already has: the search's last
        // re-estimation ran on that chain, not on the chain drawn at the last step.
        NormCalibration.Recalibrate(mixed, train, options.Training.NormCalibrationImages, options.Training.EvaluationBatchSize);
        using var after = mixed.call(x);
        Assert.True(after.allclose(before, rtol: 1e-4, atol: 1e-5), $"largest change {(after - before).abs().max().item<float>()}");
    }

    [Fact]
    public void A_sampled_search_warms_up_on_drawn_chains_with_z_left_alone()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var options = Options() with { Epochs = 0.5, WarmupEpochs = 1, SampleArchitectures = true };
        using var sampled = new DifferentiableSearch(options).Run(Template, train, heldOut);
        using var again = new DifferentiableSearch(options).Run(Template, train, heldOut);
        using var mixed = new DifferentiableSearch(options with { SampleArchitectures = false }).Run(Template, train, heldOut);
        var warmup = sampled.History.Single(e => e.Phase == DifferentiablePhase.Warmup);
        Assert.All(warmup.Z, z => Assert.All(z, v => Assert.Equal(0.1, v, 6)));
        // Reproducible, and not the mixture's warm-up: each weight step trained one drawn chain.
        Assert.Equal(warmup.Train.Loss, again.History.Single(e => e.Phase == DifferentiablePhase.Warmup).Train.Loss);
        Assert.NotEqual(warmup.Train.Loss, mixed.History.Single(e => e.Phase == DifferentiablePhase.Warmup).Train.Loss);
        Assert.All(((MixedGroupCnn)sampled.Network).Blocks, b => Assert.Null(b.Conv.SampledMember));
    }

    [Fact]
    public void Score_function_gradients_move_z_by_the_drawn_chains_losses_and_need_sampling()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var heldOut = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var options = Options() with { Epochs = 1, SampleArchitectures = true, ScoreFunctionGradients = true };
        using var first = new DifferentiableSearch(options).Run(Template, train, heldOut);
        using var again = new DifferentiableSearch(options).Run(Template, train, heldOut);
        using var straight = new DifferentiableSearch(options with { ScoreFunctionGradients = false }).Run(Template, train, heldOut);
        var z = first.Z.SelectMany(v => v).ToArray();
        Assert.Contains(z, v => Math.Abs(v - 0.1) > 1e-3);
        Assert.Equal(z, again.Z.SelectMany(v => v));
        Assert.True(z.Zip(straight.Z.SelectMany(v => v)).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
        var refused = Assert.Throws<ArgumentException>(() => new DifferentiableSearch(new DifferentiableOptions { ScoreFunctionGradients = true }));
        Assert.Contains(nameof(DifferentiableOptions.SampleArchitectures), refused.Message, StringComparison.Ordinal);
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
