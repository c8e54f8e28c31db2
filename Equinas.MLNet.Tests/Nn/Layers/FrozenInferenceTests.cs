using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Nn.Layers;

public sealed class FrozenInferenceTests : TorchTestBase
{
    [Theory]
    [InlineData("D4,D4,C4", 28)]
    [InlineData("D2VH,D1V,C1", 13)]
    public void Frozen_filters_give_the_same_outputs_and_training_mode_drops_them(string groups, int size)
    {
        var spec = NetworkSpec.FromChannels(2, groups.Split(',').Select(SymmetryGroup.Parse).ToArray(), [8, 16, 16], 3, [0], 5, 8);
        using var network = new GroupCnn(spec);
        network.eval();
        using var input = torch.randn(3, 2, size, size);
        using var noGrad = torch.no_grad();
        using var expected = network.call(input);

        network.PrepareForInference();
        using var frozen = network.call(input);
        Assert.True(BitEqual(frozen, expected) || RelativeError(frozen, expected) < 1e-6);
        Assert.All(network.modules().OfType<Equinas.MLNet.Nn.Layers.GroupConv2d>(), c => Assert.True(c.IsFrozen));

        // Training mode drops the frozen filters, so changed weights take effect.
        network.train();
        using (var scope = NewDisposeScope())
        {
            foreach (var (name, p) in network.named_parameters())
            {
                if (name.EndsWith("weight", StringComparison.Ordinal) && p.dim() >= 4)
                {
                    p.add_(0.01f);
                }
            }
        }

        Assert.All(network.modules().OfType<Equinas.MLNet.Nn.Layers.GroupConv2d>(), c => Assert.False(c.IsFrozen));
        network.eval();
        using var changed = network.call(input);
        Assert.False(BitEqual(changed, expected));
        var state = network.state_dict();
        Assert.DoesNotContain(state.Keys, k => k.Contains("frozen", StringComparison.OrdinalIgnoreCase));
    }
}
