#nullable enable
namespace Equinas.MLNet;

/// <summary>The record of how a model's architecture was found, saved with the model.</summary>
public sealed record EquinasHistory
{
    /// <summary>Gets the search mode that produced the model.</summary>
    public required SearchMode Mode { get; init; }

    /// <summary>Gets the top group the search started from (or the groups were bounded by).</summary>
    public required string TopGroup { get; init; }

    /// <summary>Gets every candidate the evolutionary search trained, generation by generation (empty for the other modes).</summary>
    public required IReadOnlyList<EquinasCandidate> Candidates { get; init; }

    /// <summary>Gets one entry per epoch of the differentiable search or fixed training (empty for the evolutionary search).</summary>
    public required IReadOnlyList<EquinasEpoch> Epochs { get; init; }

    /// <summary>Gets the wall-clock time of the whole training, data reading included.</summary>
    public required TimeSpan TrainingTime { get; init; }

    /// <summary>
    /// Gets where the time went: "data" (reading, checking and normalising the images), "training" (weight and
    /// architecture updates), "validation" (validation passes, with the batch-norm re-estimation before them),
    /// "morphism" (relaxing and copying networks) and "total"; the differentiable search and fixed training report
    /// "data" and "total" only.
    /// </summary>
    public IReadOnlyDictionary<string, TimeSpan>? Timings { get; init; }

    /// <summary>
    /// Gets the settings the model was trained with (option name to value as invariant text: search mode, group,
    /// channels, kernel, pooling, batch size, learning rate, the seed actually used, the budget of the mode, and the
    /// numbers of training and validation images).
    /// </summary>
    public IReadOnlyDictionary<string, string>? Settings { get; init; }
}

/// <summary>One candidate network of one generation of the evolutionary search.</summary>
public sealed record EquinasCandidate
{
    /// <summary>Gets the generation (0 for the initial network).</summary>
    public required int Generation { get; init; }

    /// <summary>Gets the candidate's id, unique within the search.</summary>
    public required int Id { get; init; }

    /// <summary>Gets the id of the candidate it was made from, or null for the initial network.</summary>
    public int? ParentId { get; init; }

    /// <summary>Gets how it was made from its parent.</summary>
    public required EquinasChange Change { get; init; }

    /// <summary>Gets the layer (0-based) that was relaxed, for <see cref="EquinasChange.Relax"/> (the first one for <see cref="EquinasChange.RelaxFrom"/>); otherwise null.</summary>
    public int? RelaxedLayer { get; init; }

    /// <summary>Gets the group the layer was relaxed to, for <see cref="EquinasChange.Relax"/> and <see cref="EquinasChange.RelaxFrom"/>; otherwise null.</summary>
    public string? RelaxedTo { get; init; }

    /// <summary>Gets the change as text for tables and logs: "initial", "copy", "final", "relax layer i to H" or "relax layers i.. to H".</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string ChangeText => Change switch
    {
        EquinasChange.Relax => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"relax layer {RelaxedLayer} to {RelaxedTo}"),
        EquinasChange.RelaxFrom => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"relax layers {RelaxedLayer}.. to {RelaxedTo}"),
        _ => Change.ToString().ToLowerInvariant(),
    };

    /// <summary>Gets its per-layer groups.</summary>
    public required IReadOnlyList<string> LayerGroups { get; init; }

    /// <summary>Gets its trainable parameters.</summary>
    public required long Parameters { get; init; }

    /// <summary>Gets its validation accuracy after the generation's training.</summary>
    public required double ValidationAccuracy { get; init; }

    /// <summary>Gets its mean validation cross-entropy after the generation's training.</summary>
    public required double ValidationLoss { get; init; }

    /// <summary>Gets its mean training loss over the generation's batches.</summary>
    public required double TrainLoss { get; init; }

    /// <summary>Gets whether it was kept as a parent of the next generation.</summary>
    public required bool Survived { get; init; }
}

/// <summary>One epoch of the differentiable search or of fixed training.</summary>
public sealed record EquinasEpoch
{
    /// <summary>Gets the epochs of training data seen so far (the last may be fractional).</summary>
    public required double Epoch { get; init; }

    /// <summary>Gets what was trained: <see cref="EquinasPhase.Search"/> or <see cref="EquinasPhase.Retrain"/> (differentiable), or <see cref="EquinasPhase.Training"/> (fixed).</summary>
    public required EquinasPhase Phase { get; init; }

    /// <summary>Gets the mixture weights z per layer (member group name to weight), or null for fixed training.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>>? Z { get; init; }

    /// <summary>
    /// Gets, for the differentiable search, the mass of z on each element of D4 per layer: for element g (named e, r,
    /// r2, r3, f, rf, r2f, r3f; r a quarter turn counter-clockwise, f the left-right mirror), the sum of z over the
    /// members that contain g. The identity always has mass 1; a layer whose mass on g is near 1 keeps g's symmetry
    /// whichever member carries it, so conjugate members (the four reflection groups, the two Klein groups) that split
    /// their weight still read clearly here. Null for other modes and phases.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>>? ElementMass { get; init; }

    /// <summary>Gets the mean training loss over the epoch.</summary>
    public required double TrainLoss { get; init; }

    /// <summary>Gets the training accuracy over the epoch.</summary>
    public required double TrainAccuracy { get; init; }

    /// <summary>Gets the validation cross-entropy after the epoch.</summary>
    public required double ValidationLoss { get; init; }

    /// <summary>Gets the validation accuracy after the epoch.</summary>
    public required double ValidationAccuracy { get; init; }
}
