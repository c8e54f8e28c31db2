using Equinas.MLNet.Groups;
using Equinas.MLNet.Input;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Morphism;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search;

/// <summary>
/// The device plumbing, tested on libtorch's meta device (tensors with shapes and no values; a CPU build has it): no
/// CUDA backend can be restored here. Training steps (forward, loss, backward, optimiser step, the architecture step,
/// norm re-estimation) and batched prediction run there for fixed, relaxed and mixed networks, so that a tensor made
/// on the CPU inside them fails (negative tests below). libtorch's C++ build has no meta kernels for a few of the
/// engine's ops; <see cref="DeviceOps"/> computes those from ops that have them, on meta only (tested against the
/// real ops on the CPU in MetaCompositeTests). What a meta test cannot reach: reading values back (a loss as a
/// number, z, sampling from z, the morphism's value check), and matrix products (mm, linear, einsum) and
/// cross-entropy, whose meta kernels do not compare devices.
/// </summary>
public sealed class MetaDeviceTests
{
    private static readonly Device Meta = new(DeviceType.META);

    private static readonly MLContext Ml = new(seed: 1);

    private const int Size = 9;

    private const int Classes = 4;

    [Fact]
    public void Meta_tensors_refuse_cpu_operands_and_this_libtorch_lacks_some_kernels_the_device_ops_stand_in_for()
    {
        using var scope = NewDisposeScope();
        var a = torch.zeros([3, 4], device: Meta);
        Assert.Equal(DeviceType.META, a.add(torch.zeros([3, 4], device: Meta)).device_type);
        var mixed = Assert.ThrowsAny<Exception>(() => a.add(torch.ones([3, 4])));
        Assert.Contains("device", mixed.Message, StringComparison.OrdinalIgnoreCase);

        // No meta kernel in libtorch's C++ build (why DeviceOps exists); each has a stand-in that runs.
        var images = torch.zeros([2, 1, Size, Size], device: Meta);
        var filter = torch.zeros([8, 1, 3, 3], device: Meta);
        var index = torch.zeros([1], ScalarType.Int64, device: Meta);
        Assert.ThrowsAny<Exception>(() => nn.functional.conv2d(images, filter, padding: [1, 1]));
        Assert.Equal(new long[] { 2, 8, Size, Size }, DeviceOps.Conv2d(images, filter, null, 1).shape);
        Assert.ThrowsAny<Exception>(() => images.index_select(0, index));
        Assert.Equal(new long[] { 1, 1, Size, Size }, DeviceOps.IndexSelect(images, 0, index).shape);
        Assert.ThrowsAny<Exception>(() => nn.functional.relu(images));
        Assert.Equal(DeviceType.META, DeviceOps.Relu(images).device_type);
        using var norm = nn.BatchNorm1d(3);
        norm.to(Meta);
        var features = torch.zeros([2, 3, 5], device: Meta);
        Assert.ThrowsAny<Exception>(() => norm.call(features));
        Assert.Equal(DeviceType.META, DeviceOps.BatchNorm(norm, features).device_type);
        var weight = torch.zeros([4, 3], device: Meta, requires_grad: true);
        Assert.ThrowsAny<Exception>(() => weight.norm().clamp_min(1e-12).backward());
        DeviceOps.ClampMin(weight.norm(), 1e-12).backward();
        Assert.Equal(DeviceType.META, weight.grad!.device_type);

        // What meta cannot show: its matrix products do not compare devices (CUDA's do).
        Assert.Equal(DeviceType.META, a.mm(torch.zeros([4, 2])).device_type);
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

    [Theory]
    [InlineData("D4,D4,D4", 3, false)]
    [InlineData("D4,C4,C1", 3, true)]
    [InlineData("D1V,C1,C1", 5, false)]
    public void Training_steps_of_a_fixed_network_run_on_the_device(string groups, int kernel, bool adam)
    {
        using var network = SeededInit.Create(1, () => new GroupCnn(TrainingSpec(groups, kernel)), Meta);
        Train(network, adam);
        Predict(network);
    }

    [Theory]
    [InlineData("D4,C4,C1", 0, "C4")]
    [InlineData("D4,C4,C1", 1, "C2")]
    [InlineData("D4,D4,D4", 2, "D1V")]
    public void A_network_relaxed_on_the_device_stays_there_and_trains_there(string groups, int layer, string subgroup)
    {
        using var parent = SeededInit.Create(2, () => new GroupCnn(TrainingSpec(groups, 3)), Meta);
        parent.train();
        using var relaxed = RelaxationMorphism.Relax(parent, layer, SymmetryGroup.Parse(subgroup));
        AssertOn(relaxed, "relaxed");
        Assert.Equal(SymmetryGroup.Parse(subgroup), relaxed.Spec.Layers[layer].Group);
        Train(relaxed, adam: false);
        Predict(relaxed);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Weight_and_architecture_steps_of_a_mixed_network_run_on_the_device(bool shuffleGradients, bool adam)
    {
        using var network = SeededInit.Create(1, () => new MixedGroupCnn(MixedSpec()), Meta);
        var options = new DifferentiableOptions
        {
            Training = new TrainingOptions { BatchSize = 4, Optimizer = adam ? OptimizerKind.Adam : OptimizerKind.Sgd },
            ShuffleArchitectureGradients = shuffleGradients,
            SampleArchitectures = false, // sampling draws from z's values, which meta tensors do not have
        };
        using var train = Dataset(12);
        using var heldOut = Dataset(8);
        using var weights = options.Training.CreateOptimizer(network.WeightParameters());
        using var architecture = new DifferentiableSearch.AlphaStep(network, options, train, heldOut);
        var sampler = new BatchSampler(train.Count, 4, seed: 3);
        network.train();
        for (int step = 0; step < 2; step++)
        {
            using var scope = NewDisposeScope();
            var (images, labels) = train.Batch(sampler.Next(), Meta);
            architecture.BeforeWeightStep(network);
            var (loss, correct) = NetworkTrainer.StepOnDevice(network, weights, images, labels);
            AssertResults(loss, correct);
            architecture.Step(network);
            Assert.All(network.ArchitectureParameters(), a => Assert.Equal(DeviceType.META, a.grad!.device_type));
            AssertOn(network, $"after step {step}", gradients: true);
        }

        NormCalibration.Recalibrate(network, train, images: 8, batchSize: 4);
        AssertOn(network, "after the norm re-estimation");
        Predict(network);
    }

    public static TheoryData<string> Kinds() => new() { "fixed", "relaxed", "mixed" };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void The_model_scores_a_batch_of_rows_on_the_device_in_one_forward_pass(string kind)
    {
        // Made on the CPU as a trained network is, then put on the device the model is made for (its constructor
        // runs one forward there).
        EquivariantNetwork network = kind switch
        {
            "fixed" => SeededInit.Create(5, () => new GroupCnn(TrainingSpec("D4,C4,C1", 3)), null),
            "relaxed" => RelaxedOnCpu(),
            _ => SeededInit.Create(5, () => new MixedGroupCnn(MixedSpec()), null),
        };
        var input = new InputSpec { Kind = FeatureKind.Pixels, Column = "Features", Channels = 1, Height = Size, Width = Size, Mean = [0.5f], Std = [0.25f], TypeShape = [1, Size, Size] };
        var history = new EquinasHistory { Mode = SearchMode.Fixed, TopGroup = "D4", Candidates = [], Epochs = [], TrainingTime = TimeSpan.Zero };
        using var model = EquinasModelParameters.Create(Ml, new StoredNetwork(network), input, Classes, history, Meta);
        Assert.Equal(DeviceType.META, model.Device.type);
        var random = new Random(1);
        var rows = Enumerable.Range(0, 5).Select(_ => new VBuffer<float>(Size * Size, Enumerable.Range(0, Size * Size).Select(_ => (float)random.NextDouble()).ToArray())).ToArray();
        var (device, shape) = model.ScoreRows<VBuffer<float>, (DeviceType, long[])>(rows, 0, p => (p.device_type, p.shape));
        Assert.Equal(DeviceType.META, device);
        Assert.Equal(new long[] { 5, Classes }, shape);
        Assert.Equal(1, model.ForwardCount);
    }

    public static TheoryData<string> Mistakes() => new()
    {
        "images left on the cpu",
        "a convolution's weight on the cpu",
        "a norm's statistics on the cpu",
        "a tensor made on the cpu inside the forward",
        "a mixed layer on the cpu",
        "the head's norm on the cpu",
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void A_tensor_on_the_cpu_inside_a_step_on_the_device_fails_it(string mistake)
    {
        using var data = Dataset(8);
        // Made on the CPU, then everything but the module of the mistake put on the device (nothing leaves meta).
        EquivariantNetwork network = mistake == "a mixed layer on the cpu"
            ? SeededInit.Create(1, () => new MixedGroupCnn(MixedSpec()), null)
            : SeededInit.Create(1, () => new GroupCnn(TrainingSpec("D4,C4,C1", 3)), null);
        using (network)
        {
            var fixedNet = network as GroupCnn;
            nn.Module? left = mistake switch
            {
                "a convolution's weight on the cpu" => fixedNet!.Blocks[1].Conv,
                "a norm's statistics on the cpu" => fixedNet!.Blocks[2].Norm,
                "a mixed layer on the cpu" => ((MixedGroupCnn)network).Blocks[1].Conv,
                "the head's norm on the cpu" => fixedNet!.Head.HiddenNorm!,
                _ => null,
            };
            MoveAllBut(network, left);
            Assert.Equal(left is null, network.parameters().Concat(network.buffers()).All(t => t.device_type == DeviceType.META));
            if (mistake == "a tensor made on the cpu inside the forward")
            {
                // Removed with the network.
                fixedNet!.Blocks[1].register_forward_hook((_, _, output) => output + torch.ones(output.shape));
            }

            using var optimizer = new TrainingOptions().CreateOptimizer(network.WeightParameters());
            using var scope = NewDisposeScope();
            network.train();
            var (images, labels) = data.Batch([0, 1, 2, 3], mistake == "images left on the cpu" ? CPU : Meta);
            var error = Assert.ThrowsAny<Exception>(() => NetworkTrainer.StepOnDevice(network, optimizer, images, labels));
            Assert.Contains("cpu", error.Message, StringComparison.OrdinalIgnoreCase);
        }
    }

    /// <summary>Puts every submodule of <paramref name="root"/> on the device except <paramref name="keep"/>.</summary>
    private static void MoveAllBut(nn.Module root, nn.Module? keep)
    {
        foreach (var (_, child) in root.named_children())
        {
            if (ReferenceEquals(child, keep))
            {
                continue;
            }

            if (keep is not null && child.modules().Any(m => ReferenceEquals(m, keep)))
            {
                MoveAllBut(child, keep);
            }
            else
            {
                child.to(Meta);
            }
        }

        Assert.Empty(root.named_parameters(recurse: false));
        Assert.Empty(root.named_buffers(recurse: false));
    }

    private static NetworkSpec TrainingSpec(string groups, int kernel) =>
        NetworkSpec.FromChannels(1, groups.Split(',').Select(SymmetryGroup.Parse).ToArray(), [8, 16, 16], kernel, [0], Classes, 8);

    private static MixedNetworkSpec MixedSpec() =>
        new(NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.D4, 2), [8, 16], 3, [0], Classes, 8), SymmetryGroup.D4.Subgroups());

    private static GroupCnn RelaxedOnCpu()
    {
        using var parent = SeededInit.Create(5, () => new GroupCnn(TrainingSpec("D4,C4,C1", 3)), null);
        return RelaxationMorphism.Relax(parent, 1, SymmetryGroup.C2);
    }

    /// <summary>Two weight steps on device batches, then the norm re-estimation, everything checked to stay on the device.</summary>
    private static void Train(EquivariantNetwork network, bool adam)
    {
        using var data = Dataset(12);
        var options = new TrainingOptions { Optimizer = adam ? OptimizerKind.Adam : OptimizerKind.Sgd };
        using var optimizer = options.CreateOptimizer(network.WeightParameters());
        var sampler = new BatchSampler(data.Count, 4, seed: 2);
        network.train();
        for (int step = 0; step < 2; step++)
        {
            using var scope = NewDisposeScope();
            var (images, labels) = data.Batch(sampler.Next(), Meta);
            var (loss, correct) = NetworkTrainer.StepOnDevice(network, optimizer, images, labels);
            AssertResults(loss, correct);
            AssertOn(network, $"after step {step}", gradients: true);
        }

        NormCalibration.Recalibrate(network, data, images: 8, batchSize: 4);
        AssertOn(network, "after the norm re-estimation");
    }

    /// <summary>An evaluation-mode forward with the inference caches built, as the model predicts.</summary>
    private static void Predict(EquivariantNetwork network)
    {
        network.eval();
        network.PrepareForInference();
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var probabilities = nn.functional.softmax(network.call(torch.zeros([3, 1, Size, Size], device: Meta)), 1);
        Assert.Equal(DeviceType.META, probabilities.device_type);
        Assert.Equal(new long[] { 3, Classes }, probabilities.shape);
        AssertOn(network, "after prediction");
    }

    private static void AssertResults(Tensor loss, Tensor correct)
    {
        Assert.Equal(DeviceType.META, loss.device_type);
        Assert.Empty(loss.shape);
        Assert.Equal(DeviceType.META, correct.device_type);
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

    private static void AssertOn(nn.Module module, string when, bool gradients = false)
    {
        Assert.NotEmpty(module.parameters());
        foreach (var (name, parameter) in module.named_parameters())
        {
            Assert.True(parameter.device_type == DeviceType.META, $"{when}: parameter {name} is on {parameter.device}");
            if (gradients)
            {
                Assert.True(parameter.grad is not null, $"{when}: parameter {name} has no gradient");
                Assert.True(parameter.grad!.device_type == DeviceType.META, $"{when}: the gradient of {name} is on {parameter.grad.device}");
            }
        }

        foreach (var (name, buffer) in module.named_buffers())
        {
            Assert.True(buffer.device_type == DeviceType.META, $"{when}: buffer {name} is on {buffer.device}");
        }
    }
}
