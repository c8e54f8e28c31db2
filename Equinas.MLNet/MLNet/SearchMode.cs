#nullable enable
namespace Equinas.MLNet;

/// <summary>How <see cref="EquivariantImageClassificationTrainer"/> chooses each layer's symmetry group.</summary>
public enum SearchMode
{
    /// <summary>
    /// EquiNAS_E: start with every layer equivariant to the top group and evolve a population, relaxing layers to
    /// subgroups with the function-preserving equivariance relaxation morphism. The result is an ordinary G-CNN with
    /// one group per layer.
    /// </summary>
    Evolutionary,

    /// <summary>
    /// EquiNAS_D: every layer is a [G]-mixed layer (a learned, weighted sum of layers constrained to each subgroup of
    /// the top group) and the mixture weights z are trained with the network weights by gradient descent.
    /// </summary>
    Differentiable,

    /// <summary>
    /// No search: train one network whose per-layer groups are given by
    /// <see cref="EquivariantImageClassificationTrainer.Options.LayerGroups"/> (or the top group in every layer).
    /// </summary>
    Fixed,
}
