#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Mixed;

/// <summary>
/// The normalisation of a mixed layer: ONE batch norm shared by all members, over the top group T's fields of the
/// common layout (<see cref="MixedLayout"/>): one mean, variance, scale and shift per T-field, with statistics over
/// the batch, the field's |T| channels and space. It does not depend on z.
/// </summary>
/// <remarks>
/// <para>
/// Why T and not the members' intersection G0: a norm commutes with an element g exactly when g maps every set of
/// channels that shares a statistic and an affine pair onto such a set AND the running statistics and affine
/// parameters agree on the sets it exchanges. g acts on the layout by <c>(c, t) -> (c, g t)</c>. Sets that are whole
/// T-fields are each mapped onto themselves by every element of T, so this norm is T-equivariant in training mode
/// (batch statistics) and in evaluation mode (running statistics), whatever the learned values, and can never break
/// the symmetry of any member or chain. Sets finer than the orbits of a chain's group K (G0's cosets <c>G0 t</c>, single
/// channels for G0 = C1) are exchanged by K, and their separately learned shifts and running means then differ, so a
/// one-hot chain over K would stay exactly K-equivariant only in training mode and only while the affine parameters
/// keep their initial values. The price of sharing over T: with a one-hot z on H &lt; T the norm is coarser than the
/// fixed H network's (one statistic per [T : H] H-fields).
/// </para>
/// <para>
/// One norm for all members keeps z the only per-member scale (a z-weighted mixture of per-member norms would give
/// every member its own affine scale next to z). With z one-hot, a block is the fixed H convolution followed by this
/// norm.
/// </para>
/// </remarks>
internal sealed class MixedBatchNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Field names are state_dict keys (a saved-format contract).
    private readonly BatchNorm1d norm;
#pragma warning restore IDE1006

    public MixedBatchNorm(IReadOnlyList<SymmetryGroup> members, int channels, double eps = 1e-5, double momentum = 0.1)
        : base(nameof(MixedBatchNorm))
    {
        ArgumentNullException.ThrowIfNull(members);
        Members = members.ToArray();
        Top = MixedLayout.TopOf(Members);
        if (channels <= 0 || channels % Top.Order != 0)
        {
            throw new ArgumentException($"The width of {channels} scalar channels cannot be split into fields over {Top.Name} (order {Top.Order}); use a positive multiple of {Top.Order}.", nameof(channels));
        }

        Channels = channels;
        Eps = eps;
        norm = nn.BatchNorm1d(channels / Top.Order, eps, momentum);
        RegisterComponents();
    }

    public IReadOnlyList<SymmetryGroup> Members { get; }

    /// <summary>The group whose fields share statistics (the members' top group).</summary>
    public SymmetryGroup Top { get; }

    public int Channels { get; }

    /// <summary>T-fields: <c>Channels / |T|</c>, one statistic and one affine pair each.</summary>
    public int Fields => Channels / Top.Order;

    public double Eps { get; }

    /// <summary>The underlying normalisation over <c>B x F x (|T| H W)</c> (its buffers and affine parameters).</summary>
    public BatchNorm1d Inner => norm;

    /// <summary>Weight of a new batch in the running statistics; null for a cumulative average (as in BatchNorm).</summary>
    public double? Momentum
    {
        get => norm.momentum;
        set => norm.momentum = value;
    }

    /// <summary>Resets the running statistics to mean 0 and variance 1 (and the count of batches seen).</summary>
    public void ResetRunningStats() => norm.reset_running_stats();

    /// <summary>Normalises <c>B x F x |T| x H x W</c> (the common layout).</summary>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 5 || input.shape[1] != Fields || input.shape[2] != Top.Order)
        {
            throw new ArgumentException($"MixedBatchNorm expects a feature map over {Top.Name} of shape B x {Fields} x {Top.Order} x H x W, but found [{string.Join(", ", input.shape)}].", nameof(input));
        }

        using var scope = NewDisposeScope();
        var flat = input.reshape(input.shape[0], Fields, -1);
        return DeviceOps.BatchNorm(norm, flat).view(input.shape).MoveToOuterDisposeScope();
    }
}
