#nullable enable
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Differentiable;

/// <summary>
/// The checkpoints of one EquiNAS_D run: after every epoch of the search, the search's <see cref="FitState"/>; after
/// every epoch of retraining, the search's final state too (so that its z and chosen groups come back exactly) and the
/// retraining's. Read once when made: <see cref="Search"/> and <see cref="Retrain"/> are where the two phases resume.
/// </summary>
internal sealed class DifferentiableCheckpoint
{
    /// <summary>The kind recorded in this search's checkpoints.</summary>
    public const string Kind = "epoch";

    private readonly CheckpointStore? _store;

    /// <summary>Reads the newest checkpoint of <paramref name="store"/>, if any.</summary>
    public DifferentiableCheckpoint(CheckpointStore? store)
    {
        _store = store;
        if (store?.Latest() is not { } checkpoint)
        {
            return;
        }

        var state = checkpoint.State<State>();
        History = state.History;
        Search = FitCheckpoint.Read(checkpoint, "search", state.Search);
        Retrain = state.Retrain is null ? null : FitCheckpoint.Read(checkpoint, "retrain", state.Retrain);
    }

    /// <summary>The epochs recorded so far (empty for a fresh run).</summary>
    public IReadOnlyList<DifferentiableEpoch> History { get; } = [];

    /// <summary>Where the search resumes (null: from the start).</summary>
    public FitState? Search { get; private set; }

    /// <summary>Where retraining resumes (null: from the start).</summary>
    public FitState? Retrain { get; }

    /// <summary>Writes the state after a search epoch.</summary>
    public void SaveSearch(IReadOnlyList<DifferentiableEpoch> history, FitState search)
    {
        Search = search;
        Save(history, search, null);
    }

    /// <summary>Writes the state after a retraining epoch (with the search's final state).</summary>
    public void SaveRetrain(IReadOnlyList<DifferentiableEpoch> history, FitState retrain) =>
        Save(history, Search ?? throw new InvalidOperationException("Retraining checkpoints need the search's final state."), retrain);

    private void Save(IReadOnlyList<DifferentiableEpoch> history, FitState search, FitState? retrain)
    {
        if (_store is null)
        {
            return;
        }

        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var state = new State(history.ToArray(), FitCheckpoint.Add(search, "search", entries), retrain is null ? null : FitCheckpoint.Add(retrain, "retrain", entries));
        _store.Save(history.Count, Kind, state, entries);
    }

    private sealed record State(IReadOnlyList<DifferentiableEpoch> History, FitCheckpoint.SavedFit Search, FitCheckpoint.SavedFit? Retrain);
}
