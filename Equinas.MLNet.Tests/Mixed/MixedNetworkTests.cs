using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Mixed;

public class MixedNetworkTests : TorchTestBase
{
    public static TheoryData<string> MemberSets() =>
    [
        "C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4", // G0 = C1: invariant to the identity only
        "C2,C4,D2VH,D2DA,D4", // G0 = C2
        "C4,D4", // G0 = C4
        "D1V,D2VH,D4", // G0 = D1V
        "D1H,D2VH", // G0 = D1H, top D2VH
        "C2,C4", // G0 = C2, top C4
        "D1D,D1A", // G0 = C1, top D2DA (not a member)
    ];

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void Any_z_gives_a_network_invariant_exactly_to_the_intersection_of_all_members(string members)
    {
        using var scope = NewDisposeScope();
        var groups = MixedLayerTests.Parse(members);
        using var net = MixedChainTests.Network([16, 16, 32], [0, 1], groups);
        using (torch.no_grad())
        {
            foreach (var alpha in net.ArchitectureParameters())
            {
                alpha.normal_(0, 0.7);
            }
        }

        Assert.All(net.Z(), z => Assert.True(z.Max() < 0.9, "z must be a real mixture"));
        foreach (int size in new[] { 9, 10 })
        {
            MixedChainTests.AssertInvariantExactlyTo(net, SymmetryGroup.IntersectAll(groups), size, $"random z over [{members}]");
        }
    }

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void With_the_mean_and_max_head_any_z_gives_a_network_invariant_exactly_to_the_intersection(string members)
    {
        using var scope = NewDisposeScope();
        var groups = MixedLayerTests.Parse(members);
        using var net = MixedChainTests.Network([16, 16, 32], [0, 1], groups, HeadPooling.MeanAndMax);
        using (torch.no_grad())
        {
            foreach (var alpha in net.ArchitectureParameters())
            {
                alpha.normal_(0, 0.7);
            }
        }

        Assert.Equal(2 * 32 / MixedLayout.TopOf(groups).Order, net.HeadFeatures);
        foreach (int size in new[] { 9, 10 })
        {
            MixedChainTests.AssertInvariantExactlyTo(net, SymmetryGroup.IntersectAll(groups), size, $"random z over [{members}], mean-and-max head");
        }
    }

    [Fact]
    public void Raw_kernel_scale_is_not_a_parameter_of_the_network_but_z_is()
    {
        using var scope = NewDisposeScope();
        using var net = MixedChainTests.Network([16, 16, 32], [0]);
        using (torch.no_grad())
        {
            foreach (var alpha in net.ArchitectureParameters())
            {
                alpha.normal_();
            }
        }

        MixedChainTests.Calibrate(net, 9);
        net.eval();
        var x = torch.rand(4, 1, 9, 9);
        using var noGrad = torch.no_grad();
        var before = net.call(x);
        foreach (var block in net.Blocks)
        {
            block.Conv.Weights[4].mul_(3.7f);
            block.Conv.Weights[0].mul_(0.25f);
            block.Conv.InvalidateCache();
        }

        Assert.True(RelativeError(net.call(x), before) < 1e-5, "scaling raw kernels by positive constants must not change the output");
        net.Blocks[1].Conv.Alpha[6].add_(2.0f);
        net.Blocks[1].Conv.InvalidateCache();
        Assert.True(RelativeError(net.call(x), before) > 1e-3, "changing z must change the output");
    }

    [Fact]
    public void The_head_reads_the_same_number_of_features_whatever_z()
    {
        using var scope = NewDisposeScope();
        using var net = MixedChainTests.Network([16, 32], [0]);
        Assert.Equal(32 / 8, net.HeadFeatures);
        var x = torch.rand(2, 1, 9, 9);
        foreach (var g in SymmetryGroup.All)
        {
            net.FreezeZ([Onehot(g), Onehot(g)]);
            using var noGrad = torch.no_grad();
            Assert.Equal([2L, 5L], net.call(x).shape);
        }
    }

    [Fact]
    public void Freezing_z_leaves_no_native_tensor_behind()
    {
        using var net = MixedChainTests.Network([16, 32], [0]);
        var uniform = Enumerable.Repeat(0.1, 10).ToArray();
        net.FreezeZ([uniform, uniform]);
        net.FreezeZ(null);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        net.FreezeZ([uniform, uniform]);
        Assert.Equal(before + 2, DisposeScopeManager.Statistics.ThreadTotalLiveCount); // the two layers' copies
        net.FreezeZ([Onehot(SymmetryGroup.C2), Onehot(SymmetryGroup.D4)]);
        Assert.Equal(before + 2, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        _ = net.Z();
        Assert.Equal(before + 2, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        net.FreezeZ(null);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Throws<ArgumentException>(() => net.FreezeZ([uniform]));
    }

    private static double[] Onehot(SymmetryGroup g) => SymmetryGroup.All.Select(m => m == g ? 1.0 : 0.0).ToArray();
}
