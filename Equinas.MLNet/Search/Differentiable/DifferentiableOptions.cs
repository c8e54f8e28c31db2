#nullable enable
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Differentiable;

/// <summary>Where the batches for the architecture (alpha) updates come from.</summary>
internal enum ArchitectureBatches
{
    /// <summary>A held-out split, never used for weight updates (the DARTS choice; the default).</summary>
    HeldOut,

    /// <summary>A second batch of the training data (what the EquiNAS authors' code does).</summary>
    SecondTrainingBatch,
}

/// <summary>
/// Settings of EquiNAS_D. The paper's rotated-MNIST runs: every layer mixed over C1, C2, C4, D1, D2, D4; Adam for the
/// weights (lr 0.01) and for the alphas (lr 0.01); 100 epochs.
/// </summary>
internal sealed record DifferentiableOptions
{
    /// <summary>The top group; the default member set is every subgroup of it.</summary>
    public SymmetryGroup TopGroup { get; init; } = SymmetryGroup.D4;

    /// <summary>The groups each layer mixes; null for every subgroup of <see cref="TopGroup"/>.</summary>
    public IReadOnlyList<SymmetryGroup>? Members { get; init; }

    /// <summary>Where every layer's z starts (<see cref="SearchDefaults.MixtureStart"/> by default).</summary>
    public AlphaInitialization Initialization { get; init; } = SearchDefaults.MixtureStart;

    public double Temperature { get; init; } = 1.0;

    /// <summary>Epochs of the search (fractions allowed).</summary>
    public double Epochs { get; init; } = SearchDefaults.Epochs;

    /// <summary>Optimiser settings of the weights.</summary>
    public TrainingOptions Training { get; init; } = new();

    /// <summary>Adam learning rate of the architecture logits.</summary>
    public double ArchitectureLearningRate { get; init; } = SearchDefaults.ArchitectureLearningRate;

    public ArchitectureBatches ArchitectureBatches { get; init; } = ArchitectureBatches.HeldOut;

    public int Seed { get; init; } = 1;

    /// <summary>
    /// Epochs of retraining the largest-z groups, made a chain (<see cref="DifferentiableSearch.Chain"/>), from scratch
    /// as an ordinary G-CNN after the search (the authors' "retrain"); 0 keeps the mixture.
    /// </summary>
    public double RetrainEpochs { get; init; }

    /// <summary>
    /// Epochs that train the weights only (z stays uniform, or at its initialisation) before the search starts, so
    /// that the members' kernels carry some signal before z is moved by their differences. 0 starts at once.
    /// </summary>
    public double WarmupEpochs { get; init; } = SearchDefaults.WarmupEpochs;

    /// <summary>
    /// The null control (the authors' random-z baseline): after every architecture backward pass, each layer's alpha
    /// gradient is permuted across members by a fresh seeded permutation, so z moves by as much as in the search but
    /// without the members' identity. What such a run reports is what noise alone produces.
    /// </summary>
    public bool ShuffleArchitectureGradients { get; init; }

    /// <summary>
    /// Train sampled architectures instead of the mixture (straight-through Gumbel, as GDAS does): every weight step
    /// and every architecture step draws one member per layer from z and trains that chain alone (exactly equivariant
    /// to the intersection of its groups), with the gradient reaching alpha through the softmax. A member whose
    /// symmetry the labels do not have then loses whenever it is drawn, which the relaxed mixture hides: downstream
    /// normalisation rescales a small z. Evaluation uses each layer's largest-z member; the kept model is that chain.
    /// </summary>
    public bool SampleArchitectures { get; init; } = SearchDefaults.SampleArchitectures;

    /// <summary>
    /// Weight of a prior towards symmetry in the architecture loss: every architecture step adds
    /// <c>SymmetryPrior * sum over layers of sum over members H of z_H * log2(|T| / |H|)</c> (T the top group), the
    /// expected bits of symmetry each layer gives up. The labels' loss then has to pay for every symmetry broken, so a
    /// search keeps the most symmetry the data allow instead of drifting to the members with the most free weights.
    /// 0 (no prior) is the paper's search.
    /// </summary>
    public double SymmetryPrior { get; init; } = SearchDefaults.SymmetryPrior;

    /// <summary>
    /// With <see cref="SampleArchitectures"/>: move alpha by the score-function (REINFORCE) gradient of the sampled
    /// chain's held-out loss, <c>(loss - baseline) * d log p(chain) / d alpha</c> with a moving-average baseline, instead
    /// of the straight-through gradient. The straight-through gradient of a member that was not drawn is the first-order
    /// effect of adding a little of its filter, which says little about how the chain made of it would do; the score
    /// function compares the drawn chains themselves, at the price of more variance.
    /// </summary>
    public bool ScoreFunctionGradients { get; init; }

    /// <summary>The member set in use.</summary>
    public IReadOnlyList<SymmetryGroup> MemberGroups => Members ?? TopGroup.Subgroups();

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(TopGroup, nameof(TopGroup));
        if (Members is { } members && (members.Count == 0 || members.Any(m => !m.IsSubgroupOf(TopGroup)) || members.Distinct().Count() != members.Count))
        {
            throw new ArgumentException($"Members must be distinct subgroups of {TopGroup.Name}; found [{string.Join(", ", members.Select(m => m.Name))}].", nameof(Members));
        }

        if (!(Epochs > 0) || double.IsInfinity(Epochs))
        {
            throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Must be positive.");
        }

        if (!(ArchitectureLearningRate > 0) || double.IsInfinity(ArchitectureLearningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(ArchitectureLearningRate), ArchitectureLearningRate, "Must be positive.");
        }

        if (!(WarmupEpochs >= 0) || double.IsInfinity(WarmupEpochs))
        {
            throw new ArgumentOutOfRangeException(nameof(WarmupEpochs), WarmupEpochs, "Must be zero or positive.");
        }

        if (!(RetrainEpochs >= 0) || double.IsInfinity(RetrainEpochs))
        {
            throw new ArgumentOutOfRangeException(nameof(RetrainEpochs), RetrainEpochs, "Must be zero or positive.");
        }

        if (ScoreFunctionGradients && !SampleArchitectures)
        {
            throw new ArgumentException($"{nameof(ScoreFunctionGradients)} needs {nameof(SampleArchitectures)}: the score function is the gradient of a drawn chain's probability.", nameof(ScoreFunctionGradients));
        }

        if (!(SymmetryPrior >= 0) || double.IsInfinity(SymmetryPrior))
        {
            throw new ArgumentOutOfRangeException(nameof(SymmetryPrior), SymmetryPrior, "Must be zero or positive.");
        }

        if (!(Temperature > 0) || double.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Must be positive.");
        }

        Training.Validate();
    }
}
