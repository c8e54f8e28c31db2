#nullable enable
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// The engine's calls of the few libtorch ops that have no kernel for the <c>meta</c> device in libtorch's C++ build
/// (TorchSharp 0.107, libtorch 2.10: conv2d, index_select, relu, native_batch_norm, and clamp_min's backward pass,
/// which needs where.self). On every other device each method is the one libtorch op it
/// names, called as before; only on the meta device (shapes without values, where the device plumbing is tested
/// because no CUDA backend can be restored here) it is computed by <see cref="MetaComposite"/> from ops that do have
/// meta kernels, with the same operands, so that a tensor left on another device still fails there.
/// </summary>
internal static class DeviceOps
{
    /// <summary><c>conv2d</c> with stride 1 and the same padding on both sides.</summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias, long padding) =>
        IsMeta(input)
            ? MetaComposite.Conv2d(input, weight, bias, stride: 1, padding)
            : nn.functional.conv2d(input, weight, bias, padding: [padding, padding]);

    /// <summary><c>index_select</c>: the entries of <paramref name="input"/> at <paramref name="index"/> along <paramref name="dim"/>.</summary>
    public static Tensor IndexSelect(Tensor input, long dim, Tensor index) =>
        IsMeta(input) ? MetaComposite.IndexSelect(input, dim, index) : input.index_select(dim, index);

    /// <summary><c>relu</c>.</summary>
    public static Tensor Relu(Tensor input) =>
        IsMeta(input) ? MetaComposite.Relu(input) : nn.functional.relu(input);

    /// <summary>The module's own forward (hooks included), or on meta the same batch norm, running statistics included.</summary>
    public static Tensor BatchNorm(BatchNorm1d norm, Tensor input) =>
        IsMeta(input) ? MetaComposite.BatchNorm(norm, input) : norm.call(input);

    /// <summary><c>clamp_min</c>.</summary>
    public static Tensor ClampMin(Tensor input, double min)
    {
        if (IsMeta(input))
        {
            return MetaComposite.ClampMin(input, min);
        }

        using var bound = min.ToScalar();
        return input.clamp_min(bound);
    }

    private static bool IsMeta(Tensor input) => input.device_type == DeviceType.META;
}

/// <summary>
/// The ops <see cref="DeviceOps"/> routes, built from ops that have meta kernels in libtorch 2.10. Used on the meta
/// device only; tested on the CPU against the real ops (values and gradients to float rounding). The matrix products
/// libtorch runs on meta do not compare devices, so the convolution compares them itself, as conv2d does on CUDA.
/// </summary>
internal static class MetaComposite
{
    /// <summary>
    /// conv2d as a product over an as_strided window view of the zero-padded input: <c>B x C x H x W</c> and
    /// <c>O x C x k x k</c> to <c>B x O x H' x W'</c> with <c>H' = (H + 2 padding - k) / stride + 1</c>.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias, long stride, long padding)
    {
        SameDevice("conv2d", input, weight, bias);
        if (input.dim() != 4 || weight.dim() != 4 || input.shape[1] != weight.shape[1])
        {
            throw new ArgumentException($"conv2d expects input B x C x H x W and weight O x C x kH x kW with the same C, but found [{string.Join(", ", input.shape)}] and [{string.Join(", ", weight.shape)}].");
        }

        using var scope = NewDisposeScope();
        var padded = (padding > 0 ? nn.functional.pad(input, [padding, padding, padding, padding]) : input).contiguous();
        long b = padded.shape[0], c = padded.shape[1], h = padded.shape[2], w = padded.shape[3];
        long kh = weight.shape[2], kw = weight.shape[3];
        long oh = ((h - kh) / stride) + 1, ow = ((w - kw) / stride) + 1;
        var s = padded.stride();
        var windows = padded.as_strided([b, c, oh, ow, kh, kw], [s[0], s[1], s[2] * stride, s[3] * stride, s[2], s[3]], padded.storage_offset());
        var output = torch.einsum("bchwij,ocij->bohw", windows, weight);
        if (bias is not null)
        {
            output = output + bias.view(1, -1, 1, 1);
        }

        return output.MoveToOuterDisposeScope();
    }

    /// <summary>index_select as take_along_dim with the index broadcast over the other dimensions (it checks the index's device).</summary>
    public static Tensor IndexSelect(Tensor input, long dim, Tensor index)
    {
        if (index.dim() != 1)
        {
            throw new ArgumentException($"index_select expects a 1-D index, but found [{string.Join(", ", index.shape)}].", nameof(index));
        }

        long d = dim < 0 ? dim + input.dim() : dim;
        var shape = Enumerable.Repeat(1L, (int)input.dim()).ToArray();
        shape[d] = index.shape[0];
        using var scope = NewDisposeScope();
        return input.take_along_dim(index.view(shape), d).MoveToOuterDisposeScope();
    }

    /// <summary>relu as threshold(x, 0, 0): the same values and the same gradient (zero where x &lt;= 0).</summary>
    public static Tensor Relu(Tensor input) => nn.functional.threshold(input, 0, 0);

    /// <summary>
    /// A BatchNorm1d forward on <c>B x C</c> or <c>B x C x L</c>: in training mode (or without running statistics) the
    /// batch's mean and biased variance normalise, and the running mean and unbiased variance move by the module's
    /// momentum, or by 1 / (batches tracked) when the momentum is null (a cumulative average); in evaluation mode the
    /// running statistics normalise.
    /// </summary>
    public static Tensor BatchNorm(BatchNorm1d norm, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(norm);
        if (input.dim() is not (2 or 3) || input.shape[1] != norm.num_features)
        {
            throw new ArgumentException($"BatchNorm1d expects B x {norm.num_features} or B x {norm.num_features} x L input, but found [{string.Join(", ", input.shape)}].", nameof(input));
        }

        using var scope = NewDisposeScope();
        long[] reduce = input.dim() == 2 ? [0] : [0, 2];
        var statShape = input.dim() == 2 ? new long[] { 1, -1 } : [1, -1, 1];
        var running = norm.running_mean is not null && norm.running_var is not null;
        Tensor mean, variance;
        if (norm.training || !running)
        {
            mean = input.mean(reduce, keepdim: true);
            variance = (input - mean).square().mean(reduce, keepdim: true);
            if (norm.training && norm.track_running_stats && running)
            {
                using var noGrad = torch.no_grad();
                long n = input.numel() / input.shape[1];
                // Every Scalar held for the whole update: an implicit one (tensor * 2.0) can be finalised by the GC
                // while libtorch still reads it (TorchSharp 0.107).
                using var correction = (n / (double)Math.Max(n - 1, 1)).ToScalar();
                using var one = 1.ToScalar();
                var batchMean = mean.detach().view(-1);
                var unbiased = variance.detach().view(-1).mul(correction);
                norm.num_batches_tracked?.add_(one);
                if (norm.momentum is { } m)
                {
                    using var keep = (1 - m).ToScalar();
                    using var take = m.ToScalar();
                    norm.running_mean!.mul_(keep).add_(batchMean, alpha: take);
                    norm.running_var!.mul_(keep).add_(unbiased, alpha: take);
                }
                else
                {
                    // The factor 1 / batches as a tensor on the module's device: no value is read back.
                    var factor = norm.num_batches_tracked!.to(norm.running_mean!.dtype).reciprocal();
                    norm.running_mean!.add_((batchMean - norm.running_mean!) * factor);
                    norm.running_var!.add_((unbiased - norm.running_var!) * factor);
                }
            }
        }
        else
        {
            mean = norm.running_mean!.view(statShape);
            variance = norm.running_var!.view(statShape);
        }

        var output = (input - mean) * (variance + norm.eps).rsqrt();
        if (norm.affine)
        {
            output = (output * norm.weight.view(statShape)) + norm.bias!.view(statShape);
        }

        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// clamp_min as threshold(x, min, min): the same values; the gradient differs only at x == min exactly (zero
    /// here, one for clamp_min).
    /// </summary>
    public static Tensor ClampMin(Tensor input, double min) => nn.functional.threshold(input, min, min);

    private static void SameDevice(string op, Tensor input, params Tensor?[] others)
    {
        foreach (var other in others)
        {
            if (other is not null && (other.device_type != input.device_type || other.device_index != input.device_index))
            {
                throw new InvalidOperationException($"Expected all tensors to be on the same device, but found at least two devices, {input.device} and {other.device} ({op}).");
            }
        }
    }
}
