#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// The invariant classifier head: mean over the group axis (group pooling) and over space gives one invariant value
/// per field; then Linear -> BatchNorm -> ELU -> Linear (the paper's head), or a single Linear when the hidden width
/// is 0. Mean pooling keeps the head linear in the fields, which the relaxation morphism relies on.
/// </summary>
internal sealed class InvariantHead : EquivariantModule
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly Linear? hidden;
    private readonly BatchNorm1d? norm;
    private readonly Linear output;
#pragma warning restore IDE1006

    public InvariantHead(int fields, SymmetryGroup group, int hiddenWidth, int classes) : base(nameof(InvariantHead))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fields);
        ArgumentOutOfRangeException.ThrowIfNegative(hiddenWidth);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        Group = group ?? throw new ArgumentNullException(nameof(group));
        Fields = fields;
        HiddenWidth = hiddenWidth;
        Classes = classes;
        if (hiddenWidth > 0)
        {
            hidden = nn.Linear(fields, hiddenWidth);
            norm = nn.BatchNorm1d(hiddenWidth);
        }

        output = nn.Linear(hiddenWidth > 0 ? hiddenWidth : fields, classes);
        RegisterComponents();
    }

    public SymmetryGroup Group { get; }

    public int Fields { get; }

    public int HiddenWidth { get; }

    public int Classes { get; }

    /// <summary>The first linear layer, which reads the pooled fields.</summary>
    public Linear FirstLinear => hidden ?? output;

    /// <summary>The hidden linear layer, or null when the head is a single linear layer.</summary>
    public Linear? Hidden => hidden;

    /// <summary>The batch norm after the hidden layer, or null.</summary>
    public BatchNorm1d? HiddenNorm => norm;

    /// <summary>The last linear layer (the logits).</summary>
    public Linear Output => output;

    public override SymmetryGroup? InputGroup => Group;

    public override SymmetryGroup? OutputGroup => null;

    /// <summary>Group pooling (mean) then spatial mean: <c>B x F x |G| x H x W</c> to <c>B x F</c>.</summary>
    public static Tensor Pool(Tensor input) => GroupPool.Functional(input, GroupPoolMode.Mean).mean([2, 3]);

    public override Tensor forward(Tensor input)
    {
        CheckFeatureMap(input, Group, Fields, nameof(InvariantHead));
        using var scope = NewDisposeScope();
        var features = Pool(input);
        if (hidden is not null)
        {
            features = nn.functional.elu(DeviceOps.BatchNorm(norm!, hidden.call(features)), alpha: 1.0);
        }

        return output.call(features).MoveToOuterDisposeScope();
    }
}
