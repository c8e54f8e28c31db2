#nullable enable
namespace Equinas.MLNet;

/// <summary>What a progress report or a history epoch was training.</summary>
public enum EquinasPhase
{
    /// <summary>A generation of the evolutionary search (generation 0 is the initial network's training).</summary>
    Generation,

    /// <summary>An epoch of the differentiable search (weights and mixture weights z).</summary>
    Search,

    /// <summary>A warm-up epoch before the differentiable search: the mixed network's weights only, z fixed.</summary>
    Warmup,

    /// <summary>An epoch of retraining the differentiable search's chosen groups as an ordinary G-CNN.</summary>
    Retrain,

    /// <summary>An epoch of training a network with fixed per-layer groups.</summary>
    Training,
}

/// <summary>How a candidate of the evolutionary search was made from its parent.</summary>
public enum EquinasChange
{
    /// <summary>The initial network: every layer has the top group.</summary>
    Initial,

    /// <summary>An unchanged copy of its parent, trained further.</summary>
    Copy,

    /// <summary>Its parent with one layer relaxed to a subgroup (see <see cref="EquinasCandidate.RelaxedLayer"/> and <see cref="EquinasCandidate.RelaxedTo"/>).</summary>
    Relax,

    /// <summary>
    /// Its parent with layer <see cref="EquinasCandidate.RelaxedLayer"/> relaxed to <see cref="EquinasCandidate.RelaxedTo"/>
    /// and every later layer to its group's intersection with it (<see cref="EvolutionMoves.Blocks"/>).
    /// </summary>
    RelaxFrom,

    /// <summary>The best network after the last generation, trained further (<see cref="EquivariantImageClassificationTrainer.Options.FinalEpochs"/>).</summary>
    Final,
}
