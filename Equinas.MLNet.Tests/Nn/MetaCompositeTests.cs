using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Nn;

/// <summary>
/// The meta-device stand-ins (<see cref="MetaComposite"/>) against the libtorch ops they replace, on the CPU: values
/// and gradients to float rounding (double: 1e-12, float: 1e-5 relative), for the shapes, paddings and strides the
/// engine uses and more; and <see cref="DeviceOps"/> on the CPU is the real op, bit for bit.
/// </summary>
public sealed class MetaCompositeTests : TorchTestBase
{
    private static readonly Device Meta = new(DeviceType.META);

    public static TheoryData<bool> Precisions() => new() { true, false };

    private static double Tolerance(bool dbl) => dbl ? 1e-12 : 1e-5;

    private static ScalarType Type(bool dbl) => dbl ? ScalarType.Float64 : ScalarType.Float32;

    [Theory]
    [MemberData(nameof(Precisions))]
    public void Conv2d_matches_libtorch_in_values_and_gradients(bool dbl)
    {
        int cases = 0;
        foreach (long k in new long[] { 1, 3, 5 })
        {
            foreach (var (h, w) in new (long, long)[] { (7, 7), (8, 8), (7, 10), (5, 6) })
            {
                foreach (long padding in new long[] { 0, k / 2, 2 })
                {
                    foreach (long stride in new long[] { 1, 2 })
                    {
                        foreach (bool withBias in new[] { true, false })
                        {
                            if (h + (2 * padding) < k)
                            {
                                continue;
                            }

                            using var scope = NewDisposeScope();
                            var type = Type(dbl);
                            var input = torch.randn([3, 4, h, w], type);
                            var weight = torch.randn([6, 4, k, k], type);
                            var bias = withBias ? torch.randn([6], type) : null;
                            var (expected, expectedGrads, actual, actualGrads) = Compare(
                                ps => nn.functional.conv2d(ps[0], ps[1], ps.Length > 2 ? ps[2] : null, strides: [stride, stride], padding: [padding, padding]),
                                ps => MetaComposite.Conv2d(ps[0], ps[1], ps.Length > 2 ? ps[2] : null, stride, padding),
                                input, weight, bias);
                            string where = $"k {k}, {h}x{w}, padding {padding}, stride {stride}, bias {withBias}";
                            Assert.Equal(expected.shape, actual.shape);
                            AssertClose(actual, expected, Tolerance(dbl), where);
                            for (int i = 0; i < expectedGrads.Length; i++)
                            {
                                AssertClose(actualGrads[i], expectedGrads[i], Tolerance(dbl), $"{where}, gradient {i}");
                            }

                            cases++;
                        }
                    }
                }
            }
        }

        Assert.True(cases > 100, $"only {cases} cases ran");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(-1)]
    [InlineData(-3)]
    public void Index_select_matches_libtorch_in_values_and_gradients(long dim)
    {
        using var scope = NewDisposeScope();
        var input = torch.randn([4, 5, 6, 3], ScalarType.Float64);
        long size = input.shape[dim < 0 ? dim + 4 : dim];
        // A permutation of the dimension, then repeats (a gather, as the filter expansion's index is).
        var rows = Enumerable.Range(0, (int)size).Reverse().Concat([0, 0, (int)size - 1]).Select(i => (long)i).ToArray();
        var index = torch.tensor(rows);
        var (expected, expectedGrads, actual, actualGrads) = Compare(ps => ps[0].index_select(dim, index), ps => MetaComposite.IndexSelect(ps[0], dim, index), input);
        Assert.True(BitEqual(actual, expected), $"dim {dim}: values differ");
        AssertClose(actualGrads[0], expectedGrads[0], 1e-12, $"dim {dim}: gradient");
    }

    [Fact]
    public void Relu_matches_libtorch_bit_for_bit_with_zeros_in_the_input()
    {
        using var scope = NewDisposeScope();
        var input = torch.randn([5, 7]);
        input[0] = torch.zeros([7]);
        var (expected, expectedGrads, actual, actualGrads) = Compare(ps => nn.functional.relu(ps[0]), ps => MetaComposite.Relu(ps[0]), input);
        Assert.True(BitEqual(actual, expected));
        Assert.True(BitEqual(actualGrads[0], expectedGrads[0]));
    }

    [Theory]
    [MemberData(nameof(Precisions))]
    public void Clamp_min_matches_libtorch_as_the_mixed_layer_uses_it(bool dbl)
    {
        using var scope = NewDisposeScope();
        var input = torch.randn([6, 2, 8, 3, 3], Type(dbl));
        var (expected, expectedGrads, actual, actualGrads) = Compare(
            ps => ps[0].norm().clamp_min(1e-12).reciprocal() * ps[0],
            ps => MetaComposite.ClampMin(ps[0].norm(), 1e-12).reciprocal() * ps[0],
            input);
        AssertClose(actual, expected, Tolerance(dbl), "values");
        AssertClose(actualGrads[0], expectedGrads[0], Tolerance(dbl), "gradient");

        // Clamped entries (below the minimum) and free ones (above it), values and gradients.
        var values = torch.tensor(new[] { -2.0, -0.5, 0.25, 0.5, 3.0 }, Type(dbl));
        var (clamped, clampedGrads, thresholded, thresholdedGrads) = Compare(ps => ps[0].clamp_min(0.3), ps => MetaComposite.ClampMin(ps[0], 0.3), values);
        Assert.True(BitEqual(thresholded, clamped));
        Assert.True(BitEqual(thresholdedGrads[0], clampedGrads[0]));
    }

    public static TheoryData<bool, double?> NormCases() => new()
    {
        { false, 0.1 },
        { true, 0.1 },
        { true, 0.3 },
        { false, null },
        { true, null },
    };

    [Theory]
    [MemberData(nameof(NormCases))]
    public void Batch_norm_matches_the_module_in_training_and_evaluation_with_its_running_statistics(bool sequence, double? momentum)
    {
        using var scope = NewDisposeScope();
        const int channels = 5;
        using var real = MakeNorm(channels, momentum);
        using var composite = MakeNorm(channels, momentum);
        composite.load_state_dict(real.state_dict());
        for (int step = 0; step < 4; step++)
        {
            // Not centred, so that the running statistics move.
            var input = (torch.randn(sequence ? [6, channels, 7] : [6, channels]) * 3) + 1.5;
            var upstream = torch.randn(input.shape);
            real.train();
            composite.train();
            var (expected, expectedGrads) = NormGradients(real, real.call, input, upstream);
            var (actual, actualGrads) = NormGradients(composite, x => MetaComposite.BatchNorm(composite, x), input, upstream);
            AssertClose(actual, expected, 1e-5, $"step {step}: training output");
            string[] names = ["input", "weight", "bias"];
            for (int i = 0; i < 3; i++)
            {
                AssertClose(actualGrads[i], expectedGrads[i], 1e-5, $"step {step}: gradient of the {names[i]}");
            }

            AssertClose(composite.running_mean!, real.running_mean!, 1e-6, $"step {step}: running mean");
            AssertClose(composite.running_var!, real.running_var!, 1e-6, $"step {step}: running variance");
            Assert.Equal(real.num_batches_tracked!.item<long>(), composite.num_batches_tracked!.item<long>());

            real.eval();
            composite.eval();
            using var noGrad = torch.no_grad();
            AssertClose(MetaComposite.BatchNorm(composite, input), real.call(input), 1e-5, $"step {step}: evaluation output");
        }
    }

    [Fact]
    public void The_device_ops_are_the_libtorch_ops_on_the_cpu()
    {
        using var scope = NewDisposeScope();
        var input = torch.randn([2, 3, 7, 7]);
        var weight = torch.randn([4, 3, 3, 3]);
        var bias = torch.randn([4]);
        Assert.True(BitEqual(DeviceOps.Conv2d(input, weight, bias, 1), nn.functional.conv2d(input, weight, bias, padding: [1, 1])));
        var index = torch.tensor(new long[] { 2, 0, 1, 1 });
        Assert.True(BitEqual(DeviceOps.IndexSelect(input, 1, index), input.index_select(1, index)));
        Assert.True(BitEqual(DeviceOps.Relu(input), nn.functional.relu(input)));
        Assert.True(BitEqual(DeviceOps.ClampMin(input, 0.2), input.clamp_min(0.2)));
        using var norm = MakeNorm(3, 0.1);
        var flat = input.reshape(2, 3, -1);
        var expected = norm.call(flat);
        norm.reset_running_stats();
        Assert.True(BitEqual(DeviceOps.BatchNorm(norm, flat), expected));
    }

    [Fact]
    public void The_meta_convolution_refuses_operands_on_another_device_as_conv2d_does_on_cuda()
    {
        using var scope = NewDisposeScope();
        var images = torch.zeros([2, 3, 7, 7], device: Meta);
        var weight = torch.zeros([4, 3, 3, 3], device: Meta);
        Assert.Equal(DeviceType.META, DeviceOps.Conv2d(images, weight, torch.zeros([4], device: Meta), 1).device_type);
        var cpuWeight = Assert.Throws<InvalidOperationException>(() => DeviceOps.Conv2d(images, torch.zeros([4, 3, 3, 3]), null, 1));
        Assert.Contains("meta and cpu", cpuWeight.Message, StringComparison.Ordinal);
        var cpuBias = Assert.Throws<InvalidOperationException>(() => DeviceOps.Conv2d(images, weight, torch.zeros([4]), 1));
        Assert.Contains("meta and cpu", cpuBias.Message, StringComparison.Ordinal);
        // The gather stand-in compares the index's device itself.
        var index = Assert.ThrowsAny<Exception>(() => DeviceOps.IndexSelect(images, 1, torch.tensor(new long[] { 0, 2 })));
        Assert.Contains("device", index.Message, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The norm's output and the gradients of its input, weight and bias.</summary>
    private static (Tensor Output, Tensor[] Gradients) NormGradients(BatchNorm1d norm, Func<Tensor, Tensor> forward, Tensor input, Tensor upstream)
    {
        norm.zero_grad();
        var leaf = input.detach().clone().requires_grad_(true);
        var output = forward(leaf);
        output.backward([upstream]);
        return (output.detach(), [leaf.grad!.clone(), norm.weight!.grad!.clone(), norm.bias!.grad!.clone()]);
    }

    private static BatchNorm1d MakeNorm(int channels, double? momentum)
    {
        var norm = nn.BatchNorm1d(channels, momentum: 0.1);
        norm.momentum = momentum;
        using var noGrad = torch.no_grad();
        norm.weight!.copy_(torch.rand(channels) + 0.5);
        norm.bias!.copy_(torch.randn(channels));
        return norm;
    }

    /// <summary>
    /// Both functions on copies of the same operands, with the same random upstream gradient: their outputs and the
    /// gradients of each operand.
    /// </summary>
    private static (Tensor Expected, Tensor[] ExpectedGrads, Tensor Actual, Tensor[] ActualGrads) Compare(
        Func<Tensor[], Tensor> real, Func<Tensor[], Tensor> composite, params Tensor?[] operands)
    {
        var given = operands.Where(o => o is not null).Select(o => o!).ToArray();
        Tensor upstream;
        using (torch.no_grad())
        {
            upstream = torch.randn(real(given).shape, given[0].dtype);
        }

        var (expected, expectedGrads) = WithGradients(real, upstream, given);
        var (actual, actualGrads) = WithGradients(composite, upstream, given);
        return (expected, expectedGrads, actual, actualGrads);
    }

    private static (Tensor Output, Tensor[] Gradients) WithGradients(Func<Tensor[], Tensor> f, Tensor upstream, Tensor[] operands)
    {
        var leaves = operands.Select(o => o.detach().clone().requires_grad_(true)).ToArray();
        var output = f(leaves);
        output.backward([upstream]);
        return (output.detach(), leaves.Select(l => l.grad!.clone()).ToArray());
    }

    private static void AssertClose(Tensor actual, Tensor expected, double tolerance, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var a = actual.to(ScalarType.Float64);
        var e = expected.to(ScalarType.Float64);
        double error = (a - e).abs().max().item<double>() / Math.Max(e.abs().max().item<double>(), 1e-300);
        Assert.True(error <= tolerance, $"{what}: relative error {error:E2} (tolerance {tolerance:E0})");
    }
}
