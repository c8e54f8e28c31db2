#nullable enable
using Equinas.MLNet.Groups;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>The invariant features the head reads from each field of the last layer.</summary>
internal enum HeadPooling
{
    /// <summary>One per field: the mean over the field's |G| channels and over space (the paper's head). The values match the public <c>HeadPoolingMode</c>.</summary>
    Mean = 0,

    /// <summary>
    /// Two per field: that mean, and the mean over the field's |G| channels of each channel's maximum over space. Both
    /// are means over the group of a per-channel statistic, so a G-field's features are the averages of its H-fields'
    /// features under the restriction G -> H, and the relaxation morphism stays exact; the maximum over the group
    /// (the common G-CNN choice) is not such an average and would not.
    /// </summary>
    MeanAndMax = 1,
}

/// <summary>
/// The invariant classifier head: mean over the group axis (group pooling) and over space gives one invariant value
/// per field (with <see cref="HeadPooling.MeanAndMax"/> also the group mean of each channel's spatial maximum); then
/// Linear -> BatchNorm -> ELU -> Linear (the paper's head), or a single Linear when the hidden width is 0. Every
/// feature is a mean over the group of a per-channel statistic, which keeps the head linear in the fields' group means,
/// as the relaxation morphism relies on.
/// </summary>
internal sealed class InvariantHead : EquivariantModule
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly Linear? hidden;
    private readonly BatchNorm1d? norm;
    private readonly Linear output;
#pragma warning restore IDE1006

    public InvariantHead(int fields, SymmetryGroup group, int hiddenWidth, int classes, HeadPooling pooling = HeadPooling.Mean) : base(nameof(InvariantHead))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fields);
        ArgumentOutOfRangeException.ThrowIfNegative(hiddenWidth);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        Group = group ?? throw new ArgumentNullException(nameof(group));
        Fields = fields;
        HiddenWidth = hiddenWidth;
        Classes = classes;
        Pooling = pooling;
        if (hiddenWidth > 0)
        {
            hidden = nn.Linear(Features, hiddenWidth);
            norm = nn.BatchNorm1d(hiddenWidth);
        }

        output = nn.Linear(hiddenWidth > 0 ? hiddenWidth : Features, classes);
        RegisterComponents();
    }

    public SymmetryGroup Group { get; }

    public int Fields { get; }

    public int HiddenWidth { get; }

    public int Classes { get; }

    /// <summary>What the head reads from each field.</summary>
    public HeadPooling Pooling { get; }

    /// <summary>Invariant features per field: 1, or 2 with <see cref="HeadPooling.MeanAndMax"/>.</summary>
    public static int FeaturesPerField(HeadPooling pooling) => pooling == HeadPooling.MeanAndMax ? 2 : 1;

    /// <summary>
    /// The first linear layer's weight re-read for a head whose every field was split into <paramref name="factor"/>
    /// fields (relaxation: [G : H]; the ONNX export: a field's |G| channels): each block of features (the means, then
    /// the maxima) has every column repeated <paramref name="factor"/> times and divided by it.
    /// </summary>
    public static Tensor SpreadWeight(Tensor weight, HeadPooling pooling, int factor)
    {
        int blocks = FeaturesPerField(pooling);
        return blocks == 1
            ? weight.repeat_interleave(factor, dim: 1) / (double)factor
            : torch.cat(weight.chunk(blocks, dim: 1).Select(w => w.repeat_interleave(factor, dim: 1) / (double)factor).ToArray(), 1);
    }

    /// <summary>Invariant features the first linear layer reads: <see cref="Fields"/> times the features per field, the means first.</summary>
    public int Features => Fields * FeaturesPerField(Pooling);

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

    /// <summary>
    /// Group pooling (mean) then spatial mean: <c>B x F x |G| x H x W</c> to <c>B x F</c>; with
    /// <see cref="HeadPooling.MeanAndMax"/>, <c>B x 2F</c>: those means, then per field the mean over the group of each
    /// channel's maximum over space.
    /// </summary>
    public static Tensor Pool(Tensor input, HeadPooling pooling = HeadPooling.Mean)
    {
        if (pooling == HeadPooling.Mean)
        {
            return GroupPool.Functional(input, GroupPoolMode.Mean).mean([2, 3]);
        }

        using var scope = NewDisposeScope();
        var means = input.mean([2, 3, 4]);
        var maxima = input.amax([3, 4]).mean([2]);
        return torch.cat([means, maxima], 1).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor input)
    {
        CheckFeatureMap(input, Group, Fields, nameof(InvariantHead));
        using var scope = NewDisposeScope();
        var features = Pool(input, Pooling);
        if (hidden is not null)
        {
            features = nn.functional.elu(DeviceOps.BatchNorm(norm!, hidden.call(features)), alpha: 1.0);
        }

        return output.call(features).MoveToOuterDisposeScope();
    }
}
