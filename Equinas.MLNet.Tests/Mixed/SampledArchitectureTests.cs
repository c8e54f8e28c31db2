using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Mixed;

/// <summary>Sampled architectures (straight-through): one member's output in value, gradients to every logit.</summary>
public class SampledArchitectureTests : TorchTestBase
{
    [Fact]
    public void A_sampled_member_computes_that_member_alone_and_every_logit_still_gets_a_gradient()
    {
        using var scope = NewDisposeScope();
        var groups = MixedLayerTests.Parse("C1,C2,C4,D1V,D2VH,D4");
        using var layer = new MixedConv2d(groups, 8, 16, 3, lifting: false);
        layer.train();
        var x = torch.randn([2, 1, 8, 7, 7]);
        for (int m = 0; m < groups.Length; m++)
        {
            layer.SampledMember = m;
            layer.Alpha.grad?.zero_();
            var sampled = layer.call(x);
            using (torch.no_grad())
            {
                var z = torch.zeros(groups.Length);
                z[m] = 1;
                var alone = layer.Forward(x, z);
                Assert.True(RelativeError(sampled, alone) < 1e-6, $"member {groups[m]}");
            }

            sampled.pow(2).mean().backward();
            var grad = layer.Alpha.grad!.data<float>().ToArray();
            Assert.All(grad, v => Assert.True(v != 0 && float.IsFinite(v), $"alpha gradient {v} with {groups[m]} sampled"));
        }
    }

    [Fact]
    public void Argmax_in_evaluation_uses_the_largest_z_member_alone()
    {
        using var scope = NewDisposeScope();
        var groups = MixedLayerTests.Parse("C1,C4,D4");
        using var layer = new MixedConv2d(groups, 8, 16, 3, lifting: false);
        using (torch.no_grad())
        {
            layer.Alpha.copy_(torch.tensor(new[] { 0.1f, 0.9f, 0.3f }));
        }

        layer.eval();
        var x = torch.randn([2, 1, 8, 7, 7]);
        var mixed = layer.call(x);
        layer.ArgmaxInEvaluation = true;
        var argmax = layer.call(x);
        using var noGrad = torch.no_grad();
        var alone = layer.Forward(x, torch.tensor(new[] { 0f, 1f, 0f }));
        Assert.True(RelativeError(argmax, alone) < 1e-6);
        Assert.True(RelativeError(mixed, alone) > 1e-3);
    }

    [Fact]
    public void Sampling_draws_members_in_proportion_to_z()
    {
        using var scope = NewDisposeScope();
        var spec = new MixedNetworkSpec(Equinas.MLNet.Nn.Networks.NetworkSpec.FromChannels(1, Equinas.MLNet.Nn.Networks.NetworkPresets.Uniform(SymmetryGroup.C1, 1), [8], 3, [], 2, 0), MixedLayerTests.Parse("C1,C4,D4"));
        using var network = new MixedGroupCnn(spec);
        using (torch.no_grad())
        {
            network.Blocks[0].Conv.Alpha.copy_(torch.tensor(new[] { 0f, (float)Math.Log(3), -30f }));
        }

        var random = new Random(3);
        var counts = new int[3];
        for (int i = 0; i < 4_000; i++)
        {
            network.Sample(random);
            counts[network.Blocks[0].Conv.SampledMember!.Value]++;
        }

        // z = (0.25, 0.75, ~0).
        Assert.InRange(counts[0], 880, 1_120);
        Assert.InRange(counts[1], 2_880, 3_120);
        Assert.Equal(0, counts[2]);
        network.Sample(null);
        Assert.Null(network.Blocks[0].Conv.SampledMember);
    }
}
