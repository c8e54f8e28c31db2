#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Morphism;

/// <summary>
/// The equivariance relaxation morphism (paper section 3.1, eqs. 3-9): re-parameterises a layer over G as a layer over
/// a subgroup H without changing the function the network computes (exactly, in evaluation mode). The relaxed layer
/// has <c>|R| = [G : H]</c> times as many fields over H; its kernel is initialised so that it still computes the
/// G-equivariant map, and training may then break G but not H.
/// </summary>
/// <remarks>
/// <para>
/// Every lifting or group convolution is an ordinary conv2d with an expanded filter over the scalar channels. The
/// morphism works at that level: the relaxed layer's output channels are the old ones re-read through the restriction
/// G to H (eq. 3: <c>f~_(d,t)(h) = f_d(h t)</c>), its input channels are the previous layer's output re-read through
/// the restriction to H instead of G, so the relaxed expanded filter is the old one with rows and columns permuted.
/// That filter is H-structured, and the H-kernel is read off its identity block (eq. 4:
/// <c>psi~_(d,t),(c,s)(h) = psi_d,c(t^-1 h s)</c>); re-expanding it reproduces the filter bit for bit, which is checked.
/// </para>
/// <para>
/// The same re-reading fixes the rest of the network: the bias and the group-shared normalisation of field d are
/// copied to every field (d, t); the next layer's filter gets its columns permuted (its group, a subgroup of H, and its
/// width are unchanged); and when the relaxed layer is the last, the head's first linear layer reads the mean over G
/// of field d as the mean of the |R| means over H of the fields (d, t), so its column d is split into |R| columns
/// divided by |R|. Groups stay monotone with depth: the layer after the relaxed one must have a subgroup of H.
/// </para>
/// </remarks>
internal static class RelaxationMorphism
{
    /// <summary>
    /// A new network equal to <paramref name="network"/> except that layer <paramref name="layer"/> is relaxed from its
    /// group G to <paramref name="subgroup"/>, computing the same function in evaluation mode. The source network is
    /// not modified; the new one is in the same training/evaluation mode.
    /// </summary>
    /// <exception cref="ArgumentException">The layer index is out of range, the subgroup is not a subgroup of the
    /// layer's group, or the next layer's group is not a subgroup of it.</exception>
    public static GroupCnn Relax(GroupCnn network, int layer, SymmetryGroup subgroup)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(subgroup);
        var spec = network.Spec;
        var newSpec = RelaxedSpec(spec, layer, subgroup);
        var g = spec.Layers[layer].Group;
        int fields = spec.Layers[layer].Fields;
        int r = g.IndexOf(subgroup);

        // Made on the parent's device: every tensor below is read from the parent and written into the child.
        var result = SeededInit.Overwritten(() => new GroupCnn(newSpec), network.Device);
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = torch.no_grad();
            var overrides = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
            var oldBlock = network.Blocks[layer];
            var newBlock = result.Blocks[layer];

            // Relaxed convolution: rows re-read through G -> H, columns through the previous layer's restriction to H.
            var outRows = RestrictionScalarIndex(g, subgroup, fields);
            long[]? inColumns = null;
            if (layer > 0)
            {
                var previous = spec.Layers[layer - 1];
                inColumns = Compose(
                    Invert(RestrictionScalarIndex(previous.Group, g, previous.Fields)),
                    RestrictionScalarIndex(previous.Group, subgroup, previous.Fields));
            }

            var (weight, bias) = ConvParameters(oldBlock.Conv);
            overrides[ConvParameters(newBlock.Conv).Weight] = Reexpress(oldBlock.Conv, weight, subgroup, outRows, inColumns);
            if (bias is not null)
            {
                overrides[ConvParameters(newBlock.Conv).Bias!] = bias.repeat_interleave(r);
            }

            // Group-shared normalisation: field (d, t) takes the statistics and affine parameters of field d.
            var oldNorm = oldBlock.Norm.Inner;
            var newNorm = newBlock.Norm.Inner;
            overrides[newNorm.weight!] = oldNorm.weight!.repeat_interleave(r);
            overrides[newNorm.bias!] = oldNorm.bias!.repeat_interleave(r);
            overrides[newNorm.running_mean!] = oldNorm.running_mean!.repeat_interleave(r);
            overrides[newNorm.running_var!] = oldNorm.running_var!.repeat_interleave(r);

            if (layer + 1 < spec.Layers.Count)
            {
                // The next layer reads the relaxed output through H -> G' instead of G -> G': permute its columns.
                var next = spec.Layers[layer + 1];
                var oldIn = RestrictionScalarIndex(g, next.Group, fields);
                var newIn = Compose(outRows, RestrictionScalarIndex(subgroup, next.Group, fields * r));
                var columns = Compose(Invert(oldIn), newIn);
                var nextConv = network.Blocks[layer + 1].Conv;
                overrides[ConvParameters(result.Blocks[layer + 1].Conv).Weight] =
                    Reexpress(nextConv, ConvParameters(nextConv).Weight, next.Group, rows: null, columns);
            }
            else
            {
                // Every head feature is a mean over the group of a per-channel statistic (the spatial mean, and with
                // MeanAndMax the spatial maximum): mean over G of s_d = mean over t of (mean over H of s_(d,t)). Each
                // block of features (the means, then the maxima) is re-read field by field.
                overrides[result.Head.FirstLinear.weight!] = InvariantHead.SpreadWeight(network.Head.FirstLinear.weight!, spec.HeadPooling, r);
            }

            CopyState(network, result, overrides);
        }
        catch
        {
            result.Dispose();
            throw;
        }

        if (network.training)
        {
            result.train();
        }
        else
        {
            result.eval();
        }

        return result;
    }

    /// <summary>The architecture after relaxing layer <paramref name="layer"/> to <paramref name="subgroup"/>.</summary>
    public static NetworkSpec RelaxedSpec(NetworkSpec spec, int layer, SymmetryGroup subgroup)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(subgroup);
        if (layer < 0 || layer >= spec.Layers.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"The network has {spec.Layers.Count} layers (0-based indices).");
        }

        var g = spec.Layers[layer].Group;
        if (!subgroup.IsSubgroupOf(g) || subgroup == g)
        {
            throw new ArgumentException($"Layer {layer} can only be relaxed to a proper subgroup of its group {g.Name}; {subgroup.Name} is not one.", nameof(subgroup));
        }

        if (layer + 1 < spec.Layers.Count && !spec.Layers[layer + 1].Group.IsSubgroupOf(subgroup))
        {
            throw new ArgumentException(
                $"Relaxing layer {layer} to {subgroup.Name} would put it below layer {layer + 1}'s group {spec.Layers[layer + 1].Group.Name}; groups must shrink with depth.",
                nameof(subgroup));
        }

        var layers = spec.Layers.ToArray();
        layers[layer] = new LayerSpec(subgroup, layers[layer].Fields * g.IndexOf(subgroup));
        return spec.WithLayers(layers);
    }

    /// <summary>
    /// For the scalar channels of a feature map over <paramref name="to"/> obtained by restricting one over
    /// <paramref name="from"/> with <paramref name="fields"/> fields: the scalar channel of the source each one reads.
    /// </summary>
    internal static long[] RestrictionScalarIndex(SymmetryGroup from, SymmetryGroup to, int fields)
    {
        var index = GroupRestriction.Index(from, to); // (s, i) -> position of h_i s in `from`
        var result = new long[fields * from.Order];
        for (int c = 0; c < fields; c++)
        {
            for (int j = 0; j < index.Length; j++)
            {
                result[(c * from.Order) + j] = (c * from.Order) + index[j];
            }
        }

        return result;
    }

    private static long[] Invert(long[] permutation)
    {
        var inverse = new long[permutation.Length];
        for (int i = 0; i < permutation.Length; i++)
        {
            inverse[permutation[i]] = i;
        }

        return inverse;
    }

    /// <summary><c>result[j] = first[second[j]]</c>: gather by <paramref name="second"/> after <paramref name="first"/>.</summary>
    private static long[] Compose(long[] first, long[] second) => second.Select(j => first[j]).ToArray();

    private static (Tensor Weight, Tensor? Bias) ConvParameters(EquivariantModule conv) => conv switch
    {
        LiftingConv2d l => (l.Weight, l.Bias),
        GroupConv2d g => (g.Weight, g.Bias),
        _ => throw new InvalidOperationException($"Unexpected conv module {conv.GetType().Name}."),
    };

    /// <summary>
    /// Permutes the rows (output scalar channels) and columns (input scalar channels) of the layer's expanded filter
    /// and reads off the kernel over <paramref name="target"/>, checking that re-expanding it gives the same filter.
    /// For a permutation p, new channel j is old channel p[j].
    /// </summary>
    private static Tensor Reexpress(EquivariantModule conv, Tensor weight, SymmetryGroup target, long[]? rows, long[]? columns)
    {
        bool lifting = conv is LiftingConv2d;
        var source = conv is LiftingConv2d l ? l.Group : ((GroupConv2d)conv).Group;
        var filter = lifting ? LiftingConv2d.ExpandFilter(weight, source) : GroupConv2d.ExpandFilter(weight, source);
        if (rows is not null)
        {
            filter = DeviceOps.IndexSelect(filter, 0, torch.tensor(rows, device: filter.device));
        }

        if (columns is not null)
        {
            filter = DeviceOps.IndexSelect(filter, 1, torch.tensor(columns, device: filter.device));
        }

        long k = filter.shape[2];
        long outFields = filter.shape[0] / target.Order;
        long inScalar = filter.shape[1];
        // Block (d, e): the output rows of the identity element hold the kernel itself.
        var identityRows = filter.view(outFields, target.Order, inScalar, k, k).select(1, 0);
        var kernel = lifting
            ? identityRows.contiguous()
            : identityRows.reshape(outFields, inScalar / target.Order, target.Order, k, k).contiguous();
        var check = lifting ? LiftingConv2d.ExpandFilter(kernel, target) : GroupConv2d.ExpandFilter(kernel, target);
        // On the meta device (shapes without values, where the device plumbing is tested) only the shape can be compared.
        bool values = filter.device_type != DeviceType.META;
        if (!check.shape.SequenceEqual(filter.shape) || (values && !check.eq(filter).all().item<bool>()))
        {
            throw new InvalidOperationException($"Internal error: the relaxed filter is not {target.Name}-structured.");
        }

        return kernel;
    }

    /// <summary>Copies every parameter and buffer from <paramref name="source"/>, or its override, into <paramref name="target"/>.</summary>
    private static void CopyState(GroupCnn source, GroupCnn target, Dictionary<Tensor, Tensor> overrides)
    {
        var sourceState = source.state_dict();
        foreach (var (name, tensor) in target.state_dict())
        {
            var value = overrides.TryGetValue(tensor, out var replacement) ? replacement : sourceState[name];
            if (!value.shape.SequenceEqual(tensor.shape))
            {
                throw new InvalidOperationException($"Internal error: '{name}' has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", tensor.shape)}].");
            }

            tensor.copy_(value);
        }
    }
}
