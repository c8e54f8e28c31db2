#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// Batch normalisation shared over the group axis: one mean, variance, scale and shift per field, with statistics
/// over the batch, the group axis and space. A group element permutes exactly the values each statistic averages, so
/// the layer is equivariant in training mode (batch statistics) and in evaluation mode (running statistics).
/// </summary>
internal sealed class GroupBatchNorm : EquivariantModule
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly BatchNorm1d norm;
#pragma warning restore IDE1006

    public GroupBatchNorm(int fields, SymmetryGroup group, double eps = 1e-5, double momentum = 0.1)
        : base(nameof(GroupBatchNorm))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fields);
        Group = group ?? throw new ArgumentNullException(nameof(group));
        Fields = fields;
        norm = nn.BatchNorm1d(fields, eps, momentum);
        RegisterComponents();
    }

    public SymmetryGroup Group { get; }

    public int Fields { get; }

    /// <summary>The underlying normalisation over <c>B x F x (|G| H W)</c> (its buffers and affine parameters).</summary>
    public BatchNorm1d Inner => norm;

    public override SymmetryGroup? InputGroup => Group;

    public override SymmetryGroup? OutputGroup => Group;

    public override Tensor forward(Tensor input)
    {
        CheckFeatureMap(input, Group, Fields, nameof(GroupBatchNorm));
        using var scope = NewDisposeScope();
        var flat = input.reshape(input.shape[0], Fields, -1);
        return DeviceOps.BatchNorm(norm, flat).view(input.shape).MoveToOuterDisposeScope();
    }
}
