using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search;

/// <summary>The default pooling chosen from the input size: the same as before up to 48 pixels, more on larger images, exact on the grid.</summary>
public sealed class PoolingDefaultsTests : TorchTestBase
{
    [Theory]
    [InlineData(5, 14, new[] { 1, 3 }, 4)]
    [InlineData(5, 28, new[] { 1, 3 }, 7)]
    [InlineData(5, 32, new[] { 1, 3 }, 8)]
    [InlineData(5, 48, new[] { 1, 3 }, 12)]
    [InlineData(5, 64, new[] { 0, 1, 3 }, 8)]
    [InlineData(5, 96, new[] { 0, 1, 3 }, 12)]
    [InlineData(5, 128, new[] { 0, 1, 2, 3 }, 8)]
    [InlineData(5, 1000, new[] { 0, 1, 2, 3 }, 63)]
    [InlineData(3, 28, new[] { 0 }, 14)]
    [InlineData(3, 48, new[] { 0 }, 24)]
    [InlineData(3, 64, new[] { 0, 1 }, 16)]
    [InlineData(1, 96, new int[0], 96)]
    [InlineData(8, 96, new[] { 0, 2, 5 }, 12)]
    public void The_default_pooling_depends_on_the_size_only_above_48_pixels(int layers, int size, int[] expected, int last)
    {
        var pooling = SearchDefaults.Pooling(layers, size);
        Assert.Equal(expected, pooling);
        Assert.Equal(pooling.Distinct().Count(), pooling.Length);
        Assert.All(pooling, p => Assert.InRange(p, 0, Math.Max(0, layers - 2)));
        int after = size;
        foreach (var _ in pooling)
        {
            after = (after + 1) / 2;
        }

        Assert.Equal(last, after);
        if (size <= 48)
        {
            Assert.Equal(SearchDefaults.Pooling(layers), pooling);
        }
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(96)]
    [InlineData(33)]
    public void A_D4_network_with_the_default_pooling_for_its_size_is_exactly_invariant(int size)
    {
        using var scope = NewDisposeScope();
        var spec = NetworkSpec.FromChannels(3, NetworkPresets.Uniform(SymmetryGroup.D4, 5), [8, 8, 8, 16, 16], 3, SearchDefaults.Pooling(5, size), 4, 8);
        using var net = new GroupCnn(spec);
        net.eval();
        using var noGrad = torch.no_grad();
        var images = torch.rand(2, 3, size, size);
        var reference = net.call(images);
        foreach (var g in D4Element.All)
        {
            var moved = net.call(TensorAction.ActOnImage(images, g));
            double error = (moved - reference).abs().max().item<float>() / Math.Max(1e-12, reference.abs().max().item<float>());
            Assert.True(error < 1e-5, $"{size} px, element {g}: relative error {error:E2}");
        }
    }
}
