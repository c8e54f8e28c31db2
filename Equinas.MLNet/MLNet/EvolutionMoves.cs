#nullable enable
namespace Equinas.MLNet;

/// <summary>Which children each survivor of the evolutionary search yields in a generation.</summary>
public enum EvolutionMoves
{
    /// <summary>
    /// The paper's: an unchanged copy, the last layer relaxed to each maximal subgroup of its group, and every layer
    /// whose group is larger than the next layer's relaxed to that group. A layer moves only after every layer behind
    /// it has, one lattice step per generation at the end of the network, so a search of a few generations leaves the
    /// first layers at the top group whatever the data.
    /// </summary>
    Paper,

    /// <summary>
    /// The paper's children and, for the first layer of every run of equal groups, that layer and all later ones
    /// relaxed one lattice step at once (to a maximal subgroup H of its group, later layers to their intersection with
    /// H). All-C1 is 3 generations away instead of 3 + layers - 1; of the 155 chains of groups of a 4-layer network,
    /// 102 are reached within 4 generations (the paper's moves: 52) and every one within 6 (paper: 9). About twice
    /// the paper's candidates per generation.
    /// </summary>
    Blocks,

    /// <summary>
    /// Like <see cref="Blocks"/>, with the suffix relaxed from any layer, not only where a run of equal groups starts:
    /// every chain within 3 generations (the lattice's height), at about three children per layer and survivor (for
    /// clusters and GPUs).
    /// </summary>
    Suffixes,
}
