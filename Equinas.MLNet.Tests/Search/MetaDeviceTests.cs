using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search;

/// <summary>
/// The device plumbing, tested on libtorch's meta device (tensors with shapes and no values; a CPU build has it): no
/// CUDA backend can be restored here. An op that mixes a meta tensor with a CPU tensor fails. libtorch's C++ build has
/// no meta kernels for conv2d and index_select (tested below), so a network's forward pass cannot run on meta: what is
/// tested is where networks, their copies, loaded networks, batches and optimiser steps are put, not a forward on
/// another device.
/// </summary>
public sealed class MetaDeviceTests
{
    private static readonly Device Meta = new(DeviceType.META);

    private const int Size = 9;

    private const int Classes = 4;

    [Fact]
    public void Meta_tensors_refuse_cpu_operands_and_have_no_convolution_in_this_libtorch()
    {
        using var scope = NewDisposeScope();
        var a = torch.zeros([3, 4], device: Meta);
        Assert.Equal(DeviceType.META, a.add(torch.zeros([3, 4], device: Meta)).device_type);
        var mixed = Assert.ThrowsAny<Exception>(() => a.add(torch.ones([3, 4])));
        Assert.Contains("device", mixed.Message, StringComparison.OrdinalIgnoreCase);

        // Why the tests below stop before a forward pass: these two have no meta kernel in libtorch's C++ build.
        var images = torch.zeros([2, 1, Size, Size], device: Meta);
        Assert.ThrowsAny<Exception>(() => nn.functional.conv2d(images, torch.zeros([8, 1, 3, 3], device: Meta), padding: [1, 1]));
        Assert.ThrowsAny<Exception>(() => images.index_select(0, torch.zeros([1], ScalarType.Int64, device: Meta)));
    }

    [Theory]
    [InlineData("D4,D4")]
    [InlineData("D4,C4")]
    [InlineData("D1V,C1")]
    public void A_fixed_network_and_its_copy_are_made_on_the_device(string groups)
    {
        using var network = SeededInit.Create(1, () => new GroupCnn(Spec(groups)), Meta);
        AssertOn(network, "made");
        Assert.Equal(DeviceType.META, network.Device.type);
        using var copy = network.Clone();
        AssertOn(copy, "copied");
    }

    [Fact]
    public void A_mixed_network_is_made_on_the_device_with_its_architecture_weights()
    {
        var template = NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 2), [8, 16], 3, [], Classes, 8);
        using var network = SeededInit.Create(1, () => new MixedGroupCnn(new MixedNetworkSpec(template, SymmetryGroup.D4.Subgroups())), Meta);
        AssertOn(network, "made");
        Assert.NotEmpty(network.ArchitectureParameters());
        Assert.All(network.ArchitectureParameters(), a => Assert.Equal(DeviceType.META, a.device_type));
    }

    [Fact]
    public void Seeded_construction_gives_the_same_weights_whatever_the_device()
    {
        // Built on the CPU under the seed, then moved: the CPU copy of a network made for another device holds the
        // weights a CPU network of the same seed has (checked here with the CPU as the target).
        using var first = SeededInit.Create(3, () => new GroupCnn(Spec("D4,C4")), null);
        using var second = SeededInit.Create(3, () => new GroupCnn(Spec("D4,C4")), CPU);
        var a = first.state_dict();
        foreach (var (name, tensor) in second.state_dict())
        {
            Assert.True(tensor.eq(a[name]).all().item<bool>(), $"{name} differs");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_stored_network_saved_on_the_cpu_is_put_on_the_device_chosen_when_it_loads(bool mixed)
    {
        EquivariantNetwork cpu = mixed
            ? SeededInit.Create(4, () => new MixedGroupCnn(new MixedNetworkSpec(NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.C1, 2), [8, 16], 3, [], Classes, 0), [SymmetryGroup.C1, SymmetryGroup.C4, SymmetryGroup.D4])), null)
            : SeededInit.Create(4, () => new GroupCnn(Spec("D4,C4")), null);
        using (cpu)
        {
            if (cpu is MixedGroupCnn m)
            {
                m.FreezeZ(m.Z());
            }

            using var architecture = new MemoryStream();
            using var weights = new MemoryStream();
            using (var a = new BinaryWriter(architecture, System.Text.Encoding.UTF8, leaveOpen: true))
            using (var w = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                new StoredNetwork(cpu).Save(a, w);
            }

            architecture.Position = 0;
            weights.Position = 0;
            using var stored = StoredNetwork.Load(new BinaryReader(architecture), new BinaryReader(weights), Meta);
            AssertOn(stored.Network, "loaded");
            Assert.False(stored.Network.training);
            Assert.Equal(cpu.ParameterCount, stored.Network.ParameterCount);
        }
    }

    [Fact]
    public void Batches_are_gathered_on_the_cpu_and_moved_to_the_device()
    {
        using var data = Dataset(10);
        using var scope = NewDisposeScope();
        var (images, labels) = data.Batch([3, 1, 4], Meta);
        Assert.Equal(DeviceType.META, images.device_type);
        Assert.Equal(DeviceType.META, labels.device_type);
        Assert.Equal(new long[] { 3, 1, Size, Size }, images.shape);
        Assert.Equal(new long[] { 3 }, labels.shape);
        Assert.Equal(DeviceType.CPU, data.Images.device_type);

        // On the data's own device the batch is the plain gather (no copy to move).
        var (cpuImages, _) = data.Batch([3, 1, 4], CPU);
        Assert.True(cpuImages.eq(data.Batch([3, 1, 4]).Images).all().item<bool>());
        var moved = ImageDataset.To(cpuImages, Meta);
        Assert.Equal(DeviceType.META, moved.device_type);
        Assert.Same(moved, ImageDataset.To(moved, Meta));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_optimisers_step_on_the_device(bool adam)
    {
        using var network = SeededInit.Create(1, () => new GroupCnn(Spec("D4,C4")), Meta);
        var options = new TrainingOptions { Optimizer = adam ? OptimizerKind.Adam : OptimizerKind.Sgd };
        using var optimizer = options.CreateOptimizer(network.WeightParameters());
        using var scope = NewDisposeScope();

        // A loss built from ops that meta supports (no convolution), so that every weight gets a gradient there.
        optimizer.zero_grad();
        var loss = network.WeightParameters().Select(p => p.square().sum()).Aggregate((x, y) => x + y);
        loss.backward();
        Assert.All(network.WeightParameters(), p => Assert.Equal(DeviceType.META, p.grad!.device_type));
        optimizer.step();
        AssertOn(network, "after a step");
    }

    private static NetworkSpec Spec(string groups) =>
        NetworkSpec.FromChannels(1, groups.Split(',').Select(SymmetryGroup.Parse).ToArray(), [8, 16], 3, [], Classes, 8);

    /// <summary>Random images and labels on the CPU, where the engine keeps its data.</summary>
    private static ImageDataset Dataset(int count)
    {
        using var scope = NewDisposeScope();
        var images = torch.rand([count, 1, Size, Size]);
        var labels = torch.tensor(Enumerable.Range(0, count).Select(i => (long)(i % Classes)).ToArray());
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), Classes);
    }

    private static void AssertOn(nn.Module module, string when)
    {
        Assert.NotEmpty(module.parameters());
        foreach (var (name, parameter) in module.named_parameters())
        {
            Assert.True(parameter.device_type == DeviceType.META, $"{when}: parameter {name} is on {parameter.device}");
        }

        foreach (var (name, buffer) in module.named_buffers())
        {
            Assert.True(buffer.device_type == DeviceType.META, $"{when}: buffer {name} is on {buffer.device}");
        }
    }
}
