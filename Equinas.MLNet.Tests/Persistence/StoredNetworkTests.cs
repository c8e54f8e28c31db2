using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Persistence;

public class StoredNetworkTests : TorchTestBase
{
    private static (MemoryStream Architecture, MemoryStream Weights) Save(StoredNetwork network)
    {
        var architecture = new MemoryStream();
        var weights = new MemoryStream();
        using (var a = new BinaryWriter(architecture, System.Text.Encoding.UTF8, leaveOpen: true))
        using (var w = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            network.Save(a, w);
        }

        architecture.Position = 0;
        weights.Position = 0;
        return (architecture, weights);
    }

    private static StoredNetwork Load(MemoryStream architecture, MemoryStream weights)
    {
        using var a = new BinaryReader(architecture, System.Text.Encoding.UTF8, leaveOpen: true);
        using var w = new BinaryReader(weights, System.Text.Encoding.UTF8, leaveOpen: true);
        return StoredNetwork.Load(a, w);
    }

    private static void Perturb(nn.Module<Tensor, Tensor> network)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        network.train();
        network.call(torch.rand(4, 1, 12, 12)); // moves the running statistics
        foreach (var p in network.parameters())
        {
            p.add_(torch.randn_like(p) * 0.1);
        }

        network.eval();
    }

    [Fact]
    public void Fixed_network_round_trips_bit_exactly()
    {
        using var scope = NewDisposeScope();
        var spec = NetworkSpec.FromChannels(1, [SymmetryGroup.D4, SymmetryGroup.C4, SymmetryGroup.D1H.Intersect(SymmetryGroup.C4)], [16, 16, 32], 3, [0], 4, 8);
        using var original = new StoredNetwork(new GroupCnn(spec));
        Perturb(original.Network);
        var (architecture, weights) = Save(original);
        using var loaded = Load(architecture, weights);
        Assert.Equal(original.Description.Summary(), loaded.Description.Summary());
        Assert.Equal(original.Network.ParameterCount, loaded.Network.ParameterCount);
        var x = torch.rand(3, 1, 12, 12);
        using var noGrad = torch.no_grad();
        Assert.True(BitEqual(original.Network.call(x), loaded.Network.call(x)));
    }

    [Fact]
    public void Networks_with_the_mean_and_max_head_round_trip_bit_exactly_and_say_so_in_their_description()
    {
        using var scope = NewDisposeScope();
        var spec = NetworkSpec.FromChannels(1, [SymmetryGroup.D4, SymmetryGroup.C4], [16, 16], 3, [0], 4, 8) with { HeadPooling = HeadPooling.MeanAndMax };
        var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 2), [16, 32], 3, [0], 4, 0) with { HeadPooling = HeadPooling.MeanAndMax };
        foreach (EquivariantNetwork network in new EquivariantNetwork[] { new GroupCnn(spec), new MixedGroupCnn(new MixedNetworkSpec(template, SymmetryGroup.D4.Subgroups())) })
        {
            using var original = new StoredNetwork(network);
            Assert.Equal("MeanAndMax", original.Description.HeadPooling);
            Perturb(original.Network);
            var (architecture, weights) = Save(original);
            using var loaded = Load(architecture, weights);
            Assert.Equal(HeadPooling.MeanAndMax, loaded.Network.Architecture.HeadPooling);
            var x = torch.rand(3, 1, 12, 12);
            using var noGrad = torch.no_grad();
            Assert.True(BitEqual(original.Network.call(x), loaded.Network.call(x)), network.Kind.ToString());
        }

        // The default head writes no field, so descriptions saved before it existed read as the mean head.
        using var plain = new StoredNetwork(new GroupCnn(spec with { HeadPooling = HeadPooling.Mean }));
        Assert.Null(plain.Description.HeadPooling);
        var unknown = plain.Description with { HeadPooling = "Median" };
        var error = Assert.Throws<InvalidDataException>(() => unknown.Build());
        Assert.Contains("'Median'", error.Message);
        Assert.Contains("MeanAndMax", error.Message);
    }

    [Fact]
    public void Mixed_network_round_trips_with_its_logits_or_frozen_z()
    {
        using var scope = NewDisposeScope();
        var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 2), [16, 32], 3, [0], 4, 0);
        foreach (bool freeze in new[] { false, true })
        {
            var net = new MixedGroupCnn(new MixedNetworkSpec(template, SymmetryGroup.D4.Subgroups(), AlphaInitialization.PreferLargest, 0.5));
            using (torch.no_grad())
            {
                foreach (var alpha in net.ArchitectureParameters())
                {
                    alpha.normal_();
                }
            }

            if (freeze)
            {
                net.FreezeZ([Enumerable.Range(0, 10).Select(i => i == 6 ? 1.0 : 0.0).ToArray(), Enumerable.Range(0, 10).Select(i => i == 1 ? 1.0 : 0.0).ToArray()]);
            }

            using var original = new StoredNetwork(net);
            Perturb(original.Network);
            var (architecture, weights) = Save(original);
            using var loaded = Load(architecture, weights);
            var x = torch.rand(3, 1, 12, 12);
            using var noGrad = torch.no_grad();
            Assert.True(BitEqual(original.Network.call(x), loaded.Network.call(x)), $"freeze={freeze}");
            Assert.Equal(((MixedGroupCnn)original.Network).Z(), ((MixedGroupCnn)loaded.Network).Z());
        }
    }

    [Fact]
    public void Damaged_descriptions_and_weights_are_reported()
    {
        using var scope = NewDisposeScope();
        using var original = new StoredNetwork(new GroupCnn(NetworkPresets.Small()));
        var (architecture, weights) = Save(original);
        weights.SetLength(weights.Length / 2);
        var truncated = Assert.Throws<InvalidDataException>(() => Load(architecture, weights));
        Assert.Contains("do not fit the stored architecture", truncated.Message, StringComparison.Ordinal);

        var bad = new MemoryStream();
        using (var w = new BinaryWriter(bad, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write("{\"Kind\":\"fixed\",\"InputChannels\":1,\"Groups\":[\"C4\",\"D4\"],\"Widths\":[2,2],\"KernelSize\":3,\"PoolAfter\":[],\"Classes\":3,\"HeadHidden\":0}");
        }

        bad.Position = 0;
        var inconsistent = Assert.Throws<InvalidDataException>(() => Load(bad, new MemoryStream()));
        Assert.Contains("not a subgroup", inconsistent.Message, StringComparison.Ordinal);
    }
}
