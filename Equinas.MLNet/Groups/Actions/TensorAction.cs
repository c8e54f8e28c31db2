#nullable enable
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Groups.Actions;

/// <summary>
/// Exact actions of D4 elements on tensors: images (<c>... x H x W</c>) and group feature maps
/// (<c>B x C x |G| x H x W</c>). They are pixel and channel permutations, so equivariance holds to float rounding.
/// </summary>
internal static class TensorAction
{
    /// <summary>
    /// Acts on the last two (spatial) dimensions: <c>(g . x)(u) = x(g^-1 u)</c>. For <c>r^k f^m</c> this mirrors left
    /// and right when m = 1, then turns k quarter turns counter-clockwise.
    /// </summary>
    /// <param name="input">A tensor with at least two dimensions; the last two are height and width.</param>
    /// <param name="element">The group element.</param>
    /// <returns>A new tensor; the input is not modified.</returns>
    public static Tensor ActOnImage(Tensor input, D4Element element)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() < 2)
        {
            throw new ArgumentException($"Expected a tensor with spatial dimensions (... x H x W), found shape [{string.Join(", ", input.shape)}].", nameof(input));
        }

        using var scope = NewDisposeScope();
        Tensor result = element.Flip ? input.flip(-1) : input.alias();
        if (element.Rotation != 0)
        {
            result = result.rot90(element.Rotation, (-2, -1));
        }

        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Acts on a group feature map <c>B x C x |G| x H x W</c> over <paramref name="group"/>:
    /// <c>(g . f)_c(h, u) = f_c(g^-1 h, g^-1 u)</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not 5-D with |G| on dimension 2, or g is not in G.</exception>
    public static Tensor ActOnFeatureMap(Tensor input, D4Element element, SymmetryGroup group)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(group);
        if (input.dim() != 5 || input.shape[2] != group.Order)
        {
            throw new ArgumentException(
                $"Expected a feature map over {group.Name} of shape B x C x {group.Order} x H x W, found [{string.Join(", ", input.shape)}].",
                nameof(input));
        }

        using var scope = NewDisposeScope();
        var source = PixelAction.GroupAxisSource(element, group).Select(i => (long)i).ToArray();
        var index = torch.tensor(source, device: input.device);
        var permuted = input.index_select(2, index);
        return ActOnImage(permuted, element).MoveToOuterDisposeScope();
    }
}
