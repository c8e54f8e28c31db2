using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Mixed;

public class MixedLayerTests : TorchTestBase
{
    public static TheoryData<string> MemberSets() =>
    [
        "C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4", // every subgroup of D4; G0 = C1, T = D4
        "C1,C2,C4,D1V,D2VH,D4", // the authors' six groups
        "C2,C4", // G0 = C2, T = C4
        "D1V,D2VH", // G0 = D1V, T = D2VH
        "C4,D2DA,D4", // G0 = C2
        "D1D,D1A", // G0 = C1, T = D2DA: the top group is not a member
        "D4", // a single member
    ];

    internal static SymmetryGroup[] Parse(string members) => members.Split(',').Select(SymmetryGroup.Parse).ToArray();

    /// <summary>A common-layout map over T read as a map over the member H (the restriction T -> H, eq. 3).</summary>
    internal static Tensor Restrict(Tensor x, SymmetryGroup top, SymmetryGroup member) => GroupRestriction.Functional(x, top, member);

    /// <summary>A map over H put back at H's channels of the common layout (the inverse of <see cref="Restrict"/>).</summary>
    internal static Tensor Unrestrict(Tensor xH, SymmetryGroup top, SymmetryGroup member)
    {
        long b = xH.shape[0], channels = xH.shape[1] * xH.shape[2], h = xH.shape[3], w = xH.shape[4];
        var forward = MixedLayout.MemberChannels(member, top, (int)(channels / top.Order));
        var inverse = new long[forward.Length];
        for (int i = 0; i < forward.Length; i++)
        {
            inverse[forward[i]] = i;
        }

        return xH.reshape(b, channels, h, w).index_select(1, torch.tensor(inverse)).view(b, channels / top.Order, top.Order, h, w);
    }

    /// <summary>Member m as a separate fixed layer of its normalised kernel, without bias, read through the restriction.</summary>
    private static Tensor SeparateMember(MixedConv2d layer, int m, Tensor input)
    {
        var g = layer.Members[m];
        var kernel = layer.MemberKernel(m);
        var output = layer.IsLifting
            ? LiftingConv2d.Functional(input, kernel, null, g)
            : GroupConv2d.Functional(Restrict(input, layer.Top, g), kernel, null, g);
        return Unrestrict(output, layer.Top, g);
    }

    private static Tensor Input(MixedConv2d layer, int size, int batch = 3) =>
        layer.IsLifting
            ? torch.randn([batch, layer.InChannels, size, size])
            : torch.randn([batch, layer.InChannels / layer.Top.Order, layer.Top.Order, size, size]);

    private static Tensor OneHot(int count, int m)
    {
        var z = torch.zeros(count);
        z[m] = 1;
        return z;
    }

    [Fact]
    public void Member_channels_are_the_restriction_and_the_top_member_expands_like_the_fixed_layer()
    {
        using var scope = NewDisposeScope();
        foreach (var top in SymmetryGroup.All)
        {
            foreach (var member in top.Subgroups())
            {
                var x = torch.randn([2, 3, top.Order, 4, 4]);
                var byIndex = x.reshape(2, 3 * top.Order, 4, 4)
                    .index_select(1, torch.tensor(MixedLayout.MemberChannels(member, top, 3)))
                    .view(2, -1, member.Order, 4, 4);
                Assert.True(BitEqual(byIndex, Restrict(x, top, member)), $"{member} in {top}");
                Assert.True(BitEqual(Unrestrict(byIndex, top, member), x), $"{member} in {top}: round trip");
            }

            // The top group's own member needs no reordering: the same filter as the fixed layer's expansion.
            var w = torch.randn([2, 3, top.Order, 3, 3]);
            Assert.True(BitEqual(MixedLayout.Expand(w, top, top, lifting: false, inputs: 3), GroupConv2d.ExpandFilter(w, top)), $"{top} group");
            var wl = torch.randn([2, 3, 3, 3]);
            Assert.True(BitEqual(MixedLayout.Expand(wl, top, top, lifting: true, inputs: 3), LiftingConv2d.ExpandFilter(wl, top)), $"{top} lifting");
        }
    }

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void One_hot_member_is_the_fixed_layer_of_its_normalised_kernel_read_through_the_restriction(string members)
    {
        using var scope = NewDisposeScope();
        var groups = Parse(members);
        foreach (bool lifting in new[] { true, false })
        {
            using var layer = new MixedConv2d(groups, lifting ? 2 : 16, 16, kernelSize: 3, lifting);
            var x = Input(layer, 7);
            for (int m = 0; m < groups.Length; m++)
            {
                var g = groups[m];
                var expected = layer.IsLifting
                    ? LiftingConv2d.Functional(x, layer.MemberKernel(m), null, g)
                    : GroupConv2d.Functional(Restrict(x, layer.Top, g), layer.MemberKernel(m), null, g);
                double error = RelativeError(Restrict(layer.Forward(x, OneHot(groups.Length, m)), layer.Top, g), expected);
                Assert.True(error < 1e-5, $"[{members}] one-hot {g}, lifting={lifting}: {error:E2}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void Mixed_layer_is_the_z_weighted_sum_of_its_members_computed_as_one_convolution(string members)
    {
        using var scope = NewDisposeScope();
        var groups = Parse(members);
        foreach (bool lifting in new[] { true, false })
        {
            using var layer = new MixedConv2d(groups, lifting ? 2 : 16, 16, kernelSize: 3, lifting);
            using (torch.no_grad())
            {
                layer.Alpha.normal_();
            }

            var x = Input(layer, 7);
            var z = layer.Z();

            // Eq. 10: the weighted sum of the separate member layers.
            Tensor expected = torch.zeros(1);
            Tensor summedFilters = torch.zeros(1);
            for (int m = 0; m < groups.Length; m++)
            {
                expected = expected + (SeparateMember(layer, m, x) * z[m]);
                summedFilters = summedFilters + (layer.MemberFilter(m) * z[m]);
            }

            var actual = layer.Forward(x, z);
            double error = RelativeError(actual, expected);
            Assert.True(error < 1e-5, $"[{members}] lifting={lifting}: relative error {error:E2}");

            // Eq. 11: one convolution with the summed filter.
            var filter = layer.MixedFilter(z);
            Assert.True(RelativeError(filter, summedFilters) < 1e-6);
            var flat = lifting ? x : x.reshape(x.shape[0], -1, x.shape[3], x.shape[4]);
            var once = nn.functional.conv2d(flat, filter, padding: [1, 1]).view(actual.shape);
            Assert.True(BitEqual(once, actual), $"[{members}] lifting={lifting}: not one convolution");
        }
    }

    [Theory]
    [MemberData(nameof(MemberSets))]
    public void One_hot_z_gives_a_layer_equivariant_to_its_member_on_the_common_layout(string members)
    {
        using var scope = NewDisposeScope();
        var groups = Parse(members);
        foreach (bool lifting in new[] { true, false })
        {
            using var layer = new MixedConv2d(groups, lifting ? 2 : 16, 16, kernelSize: 3, lifting);
            var top = layer.Top;
            for (int m = 0; m < groups.Length; m++)
            {
                var g = groups[m];
                var z = OneHot(groups.Length, m);
                foreach (int size in new[] { 7, 8 })
                {
                    var x = Input(layer, size, 2);
                    var reference = layer.Forward(x, z);
                    foreach (var e in top.Elements)
                    {
                        // Every member is acted on by the same permutation: T's action on the common layout.
                        var moved = lifting ? TensorAction.ActOnImage(x, e) : TensorAction.ActOnFeatureMap(x, e, top);
                        double error = RelativeError(layer.Forward(moved, z), TensorAction.ActOnFeatureMap(reference, e, top));
                        if (g.Contains(e))
                        {
                            Assert.True(error < 1e-5, $"[{members}] one-hot {g}, lifting={lifting}, size {size}, element {e}: {error:E2}");
                        }
                        else
                        {
                            Assert.True(error > 1e-3, $"[{members}] one-hot {g}, lifting={lifting}, size {size}: equivariant to {e}, outside {g}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Scaling_a_raw_kernel_changes_nothing_every_member_filter_has_the_same_norm_and_z_does_matter()
    {
        using var scope = NewDisposeScope();
        var groups = Parse("C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4");
        foreach (bool lifting in new[] { true, false })
        {
            using var layer = new MixedConv2d(groups, lifting ? 3 : 16, 24, kernelSize: 3, lifting);
            for (int m = 0; m < groups.Length; m++)
            {
                double norm = layer.MemberFilter(m).norm().item<float>();
                Assert.Equal(Math.Sqrt(2.0 * 24), norm, 3);
                Assert.Equal(layer.KernelNorm(m), layer.MemberKernel(m).norm().item<float>(), 3);
            }

            using (torch.no_grad())
            {
                layer.Alpha.normal_();
            }

            var x = Input(layer, 7);
            var before = layer.Forward(x, null);
            using (torch.no_grad())
            {
                layer.Weights[3].mul_(7.5f);
                layer.Weights[9].mul_(0.02f);
            }

            Assert.True(RelativeError(layer.Forward(x, null), before) < 1e-5, "the raw kernels' norms must not matter");
            using (torch.no_grad())
            {
                layer.Alpha[2].add_(1.0f);
            }

            Assert.True(RelativeError(layer.Forward(x, null), before) > 1e-3, "z must matter");
        }
    }

    [Fact]
    public void Gradients_reach_every_architecture_logit()
    {
        using var scope = NewDisposeScope();
        var groups = Parse("C1,C2,C4,D1V,D2VH,D4");
        using var layer = new MixedConv2d(groups, 8, 16, 3, lifting: false);
        var loss = layer.call(torch.randn([2, 1, 8, 6, 6])).pow(2).mean();
        loss.backward();
        var grad = layer.Alpha.grad!;
        Assert.Equal(groups.Length, grad.shape[0]);
        Assert.All(grad.data<float>().ToArray(), v => Assert.True(v != 0 && float.IsFinite(v), $"alpha gradient {v}"));
        Assert.All(layer.Weights, w => Assert.True(w.grad is not null && w.grad.abs().sum().item<float>() > 0));
    }

    [Fact]
    public void Cached_inference_equals_the_training_path_and_is_refreshed_after_training()
    {
        using var scope = NewDisposeScope();
        var groups = Parse("C1,C2,C4,D1V,D2VH,D4");
        using var layer = new MixedConv2d(groups, 8, 16, 3, lifting: false);
        var x = torch.randn([2, 1, 8, 6, 6]);
        layer.eval();
        using (torch.no_grad())
        {
            Assert.False(layer.IsCached);
            var cached = layer.call(x);
            Assert.True(layer.IsCached);
            var direct = layer.Forward(x, layer.Z());
            Assert.True(BitEqual(cached, direct));
            Assert.True(BitEqual(layer.call(x), cached)); // served from the cache
            layer.train();
            Assert.False(layer.IsCached);
            Assert.True(BitEqual(layer.call(x), cached), "training mode computes the same filter");
            layer.eval();
        }

        layer.train();
        using (var optimizer = optim.SGD(layer.parameters(), 0.5))
        {
            layer.call(x).pow(2).mean().backward();
            optimizer.step();
        }

        layer.eval();
        using (torch.no_grad())
        {
            Assert.True(BitEqual(layer.call(x), layer.Forward(x, layer.Z())), "the cache must not outlive a training step");
            var frozen = torch.tensor(new float[] { 0, 0, 1, 0, 0, 0 });
            layer.FrozenZ = frozen;
            frozen.Dispose(); // the layer keeps its own copy
            Assert.False(layer.IsCached);
            Assert.True(BitEqual(layer.call(x), layer.Forward(x, torch.tensor(new float[] { 0, 0, 1, 0, 0, 0 }))));
        }
    }

    [Fact]
    public void Concurrent_evaluation_forwards_build_one_cache_and_agree()
    {
        using var scope = NewDisposeScope();
        var groups = Parse("C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4");
        using var layer = new MixedConv2d(groups, 16, 32, 3, lifting: false);
        var x = torch.randn([2, 2, 8, 9, 9]);
        Tensor expected;
        using (torch.no_grad())
        {
            expected = layer.Forward(x, layer.Z());
        }

        layer.eval();
        for (int trial = 0; trial < 3; trial++)
        {
            layer.InvalidateCache();
            var results = new bool[8];
            using var start = new Barrier(results.Length);
            var threads = Enumerable.Range(0, results.Length).Select(i => new Thread(() =>
            {
                using var threadScope = NewDisposeScope();
                using var noGrad = torch.no_grad();
                start.SignalAndWait();
                results[i] = BitEqual(layer.call(x), expected);
            })).ToArray();
            foreach (var t in threads)
            {
                t.Start();
            }

            foreach (var t in threads)
            {
                t.Join();
            }

            Assert.All(results, Assert.True);
            Assert.True(layer.IsCached);
        }
    }

    [Fact]
    public void Mixed_norm_is_the_top_group_norm_and_commutes_with_the_top_group_in_both_modes()
    {
        using var scope = NewDisposeScope();
        var members = Parse("C1,C2,C4,D1V,D1D,D1H,D1A,D2VH,D2DA,D4");
        var top = SymmetryGroup.D4;
        using var mixed = new MixedBatchNorm(members, 32);
        using var fixedNorm = new GroupBatchNorm(4, top);
        using (torch.no_grad())
        {
            mixed.Inner.weight!.normal_();
            mixed.Inner.bias!.normal_();
            fixedNorm.Inner.weight!.copy_(mixed.Inner.weight);
            fixedNorm.Inner.bias!.copy_(mixed.Inner.bias);
        }

        var y = (torch.randn([4, 4, 8, 5, 5]) * 2) + 1;
        for (int step = 0; step < 3; step++)
        {
            Assert.True(RelativeError(mixed.call(y), fixedNorm.call(y)) < 1e-5, "training mode");
        }

        void CheckEquivariance(string mode)
        {
            var reference = mixed.call(y);
            foreach (var e in top.Elements)
            {
                double error = RelativeError(mixed.call(TensorAction.ActOnFeatureMap(y, e, top)), TensorAction.ActOnFeatureMap(reference, e, top));
                Assert.True(error < 1e-5, $"{mode}, element {e}: {error:E2}");
            }
        }

        mixed.eval();
        fixedNorm.eval();
        Assert.True(RelativeError(mixed.call(y), fixedNorm.call(y)) < 1e-5, "evaluation mode");
        mixed.train();
        CheckEquivariance("training mode");
        mixed.eval();
        CheckEquivariance("evaluation mode");

        // Reset and a cumulative average (what norm calibration uses).
        mixed.ResetRunningStats();
        Assert.True(BitEqual(mixed.Inner.running_mean!, torch.zeros(4)));
        Assert.True(BitEqual(mixed.Inner.running_var!, torch.ones(4)));
        mixed.Momentum = null;
        mixed.train();
        var a = torch.randn([4, 4, 8, 5, 5]) + 3;
        var b = torch.randn([4, 4, 8, 5, 5]) - 1;
        using (torch.no_grad())
        {
            mixed.call(a);
            mixed.call(b);
        }

        var expectedMean = (a.mean([0, 2, 3, 4]) + b.mean([0, 2, 3, 4])) / 2;
        Assert.True(RelativeError(mixed.Inner.running_mean!, expectedMean) < 1e-5);
    }

    [Fact]
    public void Widths_that_the_top_group_cannot_split_are_rejected()
    {
        var error = Assert.Throws<ArgumentException>(() => new MixedConv2d(Parse("C1,D4"), 8, 12, 3, lifting: false));
        Assert.Contains("12 scalar channels cannot be split into fields over D4", error.Message, StringComparison.Ordinal);

        // C4 and D2VH need 8 channels per field: their top group is D4, which is not a member.
        var join = Assert.Throws<ArgumentException>(() => new MixedConv2d(Parse("C4,D2VH"), 8, 12, 3, lifting: true));
        Assert.Contains("fields over D4", join.Message, StringComparison.Ordinal);
    }
}
