#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// Stride-2 spatial average pooling of a group feature map that stays exactly equivariant. A window of size k, stride
/// s and padding p on n pixels commutes with every grid symmetry exactly when its windows are symmetric about the
/// centre, i.e. when <c>(n + 2p - k)</c> is divisible by s. The default (<see cref="Window"/> null) picks the window
/// from the size: 3x3 with padding 1 on odd sizes and 2x2 without padding on even sizes, both giving ceil(n / 2)
/// (so 28 -> 14 -> 7 -> 4, all exact). A fixed window is checked on every input and rejected where it is not exact.
/// </summary>
internal sealed class EquivariantPool2d : EquivariantModule
{
    public EquivariantPool2d(SymmetryGroup group, PoolWindow? window = null) : base(nameof(EquivariantPool2d))
    {
        Group = group ?? throw new ArgumentNullException(nameof(group));
        Window = window;
    }

    public SymmetryGroup Group { get; }

    /// <summary>A fixed window, or null for the size-adaptive exact window.</summary>
    public PoolWindow? Window { get; }

    public override SymmetryGroup? InputGroup => Group;

    public override SymmetryGroup? OutputGroup => Group;

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 5 || input.shape[2] != Group.Order)
        {
            throw new ArgumentException($"EquivariantPool2d expects a feature map over {Group.Name} of shape B x C x {Group.Order} x H x W, but found [{string.Join(", ", input.shape)}].", nameof(input));
        }

        return Functional(input, Window);
    }

    /// <summary>The window used for an n-pixel side: the fixed one, or the exact adaptive one.</summary>
    public static PoolWindow WindowFor(long size, PoolWindow? window) =>
        window ?? (size % 2 == 1 ? new PoolWindow(3, 2, 1) : new PoolWindow(2, 2, 0));

    /// <summary>Pools the last two dimensions of any tensor with a leading batch dimension and trailing H x W.</summary>
    public static Tensor Functional(Tensor input, PoolWindow? window)
    {
        using var scope = NewDisposeScope();
        long height = input.shape[^2], width = input.shape[^1];
        var wh = WindowFor(height, window);
        var ww = WindowFor(width, window);
        wh.CheckExact(height, "height");
        ww.CheckExact(width, "width");
        var flat = input.reshape(-1, 1, height, width);
        // Overlapping pads are counted, so every output is an average over the same 9 (or 4) terms: no edge weights.
        var pooled = nn.functional.avg_pool2d(
            flat,
            kernel_size: [wh.Kernel, ww.Kernel],
            stride: [wh.Stride, ww.Stride],
            padding: [wh.Padding, ww.Padding],
            count_include_pad: true);
        var shape = input.shape.ToArray();
        shape[^2] = pooled.shape[2];
        shape[^1] = pooled.shape[3];
        return pooled.view(shape).MoveToOuterDisposeScope();
    }
}

/// <summary>A square pooling window.</summary>
/// <param name="Kernel">Window side in pixels.</param>
/// <param name="Stride">Step between windows.</param>
/// <param name="Padding">Zero padding on each side.</param>
internal sealed record PoolWindow(int Kernel, int Stride, int Padding)
{
    /// <summary>The output side for an n-pixel input.</summary>
    public long OutputSize(long size) => ((size + (2 * Padding) - Kernel) / Stride) + 1;

    /// <summary>Whether the windows are symmetric about the centre of an n-pixel side.</summary>
    public bool IsExact(long size) => (size + (2 * Padding) - Kernel) % Stride == 0;

    /// <summary>Throws when pooling an n-pixel side with this window would break the grid symmetry.</summary>
    public void CheckExact(long size, string dimension)
    {
        if (!IsExact(size))
        {
            throw new ArgumentException(
                $"A {Kernel}x{Kernel} pooling window with stride {Stride} and padding {Padding} is not exactly equivariant on a {dimension} of {size} pixels: " +
                $"(size + 2*padding - kernel) = {size + (2 * Padding) - Kernel} must be divisible by the stride. " +
                "Use the default size-adaptive window, or an input size for which this window is exact.");
        }
    }
}
