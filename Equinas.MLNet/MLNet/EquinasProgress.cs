#nullable enable
namespace Equinas.MLNet;

/// <summary>
/// A progress report of <see cref="EquivariantImageClassificationTrainer"/>, sent to
/// <see cref="EquivariantImageClassificationTrainer.Options.Progress"/> after every generation (evolutionary search)
/// or epoch (differentiable search and fixed training).
/// </summary>
public sealed record EquinasProgress
{
    /// <summary>Gets the search mode that is running.</summary>
    public required SearchMode Mode { get; init; }

    /// <summary>Gets what is being trained: a generation, a search epoch, a retraining epoch or a fixed network's epoch.</summary>
    public required EquinasPhase Phase { get; init; }

    /// <summary>
    /// Gets how many steps (generations, the initial training included, or epochs) are finished: 1 after the first,
    /// <see cref="TotalSteps"/> after the last.
    /// </summary>
    public required int Step { get; init; }

    /// <summary>Gets how many steps the run has in all (generations + 1 for the evolutionary search, else epochs, rounded up).</summary>
    public required int TotalSteps { get; init; }

    /// <summary>Gets, for the evolutionary search, the generation just finished (0 is the initial training, as in <see cref="EquinasCandidate.Generation"/>); otherwise null.</summary>
    public int? Generation { get; init; }

    /// <summary>Gets the mean training loss (cross-entropy) over the step's batches (the best candidate's, for a generation).</summary>
    public required double TrainLoss { get; init; }

    /// <summary>Gets the training accuracy over the step's batches, or <see cref="double.NaN"/> where it is not measured.</summary>
    public required double TrainAccuracy { get; init; }

    /// <summary>Gets the mean cross-entropy on the validation set after the step (the best candidate's, for a generation).</summary>
    public required double ValidationLoss { get; init; }

    /// <summary>Gets the accuracy on the validation set after the step (the best candidate's, for a generation).</summary>
    public required double ValidationAccuracy { get; init; }

    /// <summary>Gets the per-layer groups: the best candidate's, or each mixed layer's largest-z member.</summary>
    public required IReadOnlyList<string> LayerGroups { get; init; }

    /// <summary>Gets, for the differentiable search, the mixture weights z of every layer (member group name to weight); otherwise null.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>>? Z { get; init; }

    /// <summary>
    /// Gets, for the differentiable search, the mass of z on each element of D4 per layer: for element g (named e, r,
    /// r2, r3, f, rf, r2f, r3f; r a quarter turn counter-clockwise, f the left-right mirror), the sum of z over the
    /// members that contain g. The identity always has mass 1; a layer whose mass on g is near 1 keeps g's symmetry
    /// whichever member carries it, so conjugate members (the four reflection groups, the two Klein groups) that split
    /// their weight still read clearly here. Null for other modes and phases.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>>? ElementMass { get; init; }

    /// <summary>Gets the trainable parameters (weights, not architecture logits) of the reported network (for the differentiable search, of the mixed network).</summary>
    public required long Parameters { get; init; }

    /// <summary>Gets the time since training started (data reading included).</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Gets an estimate of the time left, from the average time per step so far.</summary>
    public required TimeSpan Remaining { get; init; }

    /// <summary>
    /// Gets whether the step was read back from a checkpoint (<see cref="EquivariantImageClassificationTrainer.Options.CheckpointDirectory"/>)
    /// rather than trained by this run: a resumed run first reports the steps it continues after.
    /// </summary>
    public bool Restored { get; init; }
}
