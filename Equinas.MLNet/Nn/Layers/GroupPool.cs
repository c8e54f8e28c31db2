#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>How <see cref="GroupPool"/> reduces the group axis.</summary>
internal enum GroupPoolMode
{
    /// <summary>The mean over the group: linear, which the relaxation morphism relies on in the head.</summary>
    Mean,

    /// <summary>The maximum over the group.</summary>
    Max,
}

/// <summary>
/// Group pooling: reduces a feature map <c>B x F x |G| x H x W</c> over its group axis to <c>B x F x H x W</c>. Every
/// element permutes the group axis, so the result transforms like an image: <c>pool(g . f) = g . pool(f)</c>.
/// </summary>
internal sealed class GroupPool : EquivariantModule
{
    public GroupPool(SymmetryGroup group, GroupPoolMode mode = GroupPoolMode.Mean) : base(nameof(GroupPool))
    {
        Group = group ?? throw new ArgumentNullException(nameof(group));
        Mode = mode;
    }

    public SymmetryGroup Group { get; }

    public GroupPoolMode Mode { get; }

    public override SymmetryGroup? InputGroup => Group;

    /// <summary>Null: the output has no group axis (it is acted on as an image).</summary>
    public override SymmetryGroup? OutputGroup => null;

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 5 || input.shape[2] != Group.Order)
        {
            throw new ArgumentException($"GroupPool expects a feature map over {Group.Name} of shape B x F x {Group.Order} x H x W, but found [{string.Join(", ", input.shape)}].", nameof(input));
        }

        return Functional(input, Mode);
    }

    /// <summary>The functional form.</summary>
    public static Tensor Functional(Tensor input, GroupPoolMode mode) =>
        mode == GroupPoolMode.Mean ? input.mean([2]) : input.amax([2]);
}
