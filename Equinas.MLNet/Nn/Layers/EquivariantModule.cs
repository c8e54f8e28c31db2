#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Nn.Layers;

/// <summary>
/// A module with a declared input and output type: an image (group <c>null</c>) or a feature map over a subgroup of
/// D4 with a number of fields. It can measure its own equivariance error for every element of a group.
/// </summary>
internal abstract class EquivariantModule : nn.Module<Tensor, Tensor>
{
    protected EquivariantModule(string name) : base(name)
    {
    }

    /// <summary>The group of the input feature map, or null when the input is an image.</summary>
    public abstract SymmetryGroup? InputGroup { get; }

    /// <summary>The group of the output feature map, or null when the output is invariant (no group axis).</summary>
    public abstract SymmetryGroup? OutputGroup { get; }

    /// <summary>
    /// For each element g of <paramref name="group"/>, the relative error
    /// <c>max |m(g.x) - g.m(x)| / max |g.m(x)|</c> on <paramref name="input"/> in the module's current mode.
    /// </summary>
    public IReadOnlyDictionary<D4Element, double> CheckEquivariance(Tensor input, SymmetryGroup group)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(group);
        var errors = new Dictionary<D4Element, double>();
        using var noGrad = torch.no_grad();
        foreach (var g in group.Elements)
        {
            using var scope = NewDisposeScope();
            var expected = Act(call(input), g, OutputGroup);
            var actual = call(Act(input, g, InputGroup));
            double scale = Math.Max(expected.abs().max().item<float>(), 1e-12);
            errors[g] = (actual - expected).abs().max().item<float>() / scale;
        }

        return errors;
    }

    private static Tensor Act(Tensor x, D4Element g, SymmetryGroup? group) => group switch
    {
        null when x.dim() == 2 => x.alias(), // invariant output: B x features
        null => TensorAction.ActOnImage(x, g),
        _ => TensorAction.ActOnFeatureMap(x, g, group),
    };

    /// <summary>Throws unless <paramref name="input"/> is a B x fields x |G| x H x W map over <paramref name="group"/>.</summary>
    protected static void CheckFeatureMap(Tensor input, SymmetryGroup group, long fields, string layer)
    {
        if (input.dim() != 5 || input.shape[1] != fields || input.shape[2] != group.Order)
        {
            throw new ArgumentException(
                $"{layer} expects a feature map over {group.Name} of shape B x {fields} x {group.Order} x H x W " +
                $"({fields * group.Order} scalar channels), but found [{string.Join(", ", input.shape)}].");
        }
    }
}
