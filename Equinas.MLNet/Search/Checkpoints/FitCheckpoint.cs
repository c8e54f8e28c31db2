#nullable enable
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Checkpoints;

/// <summary>
/// A <see cref="FitState"/> in a checkpoint: its counts and epochs in the owner's JSON state (<see cref="SavedFit"/>),
/// its network, optimiser and architecture-step states as entries under a prefix.
/// </summary>
internal static class FitCheckpoint
{
    /// <summary>The JSON part of a <see cref="FitState"/>.</summary>
    /// <param name="Batches">Weight steps taken.</param>
    /// <param name="Epochs">The epochs finished.</param>
    /// <param name="HasArchitecture">Whether an architecture-step state is among the entries.</param>
    internal sealed record SavedFit(int Batches, IReadOnlyList<EpochMetrics> Epochs, bool HasArchitecture);

    /// <summary>Adds <paramref name="fit"/>'s binary parts to <paramref name="entries"/> under <paramref name="prefix"/> and returns its JSON part.</summary>
    public static SavedFit Add(FitState fit, string prefix, IDictionary<string, byte[]> entries)
    {
        ArgumentNullException.ThrowIfNull(fit);
        ArgumentNullException.ThrowIfNull(entries);
        entries[prefix + ".network"] = fit.Network;
        entries[prefix + ".optimizer"] = fit.Optimizer;
        if (fit.Architecture is { } architecture)
        {
            entries[prefix + ".architecture"] = architecture;
        }

        return new SavedFit(fit.Batches, fit.Epochs, fit.Architecture is not null);
    }

    /// <summary>The <see cref="FitState"/> that <see cref="Add"/> stored under <paramref name="prefix"/>.</summary>
    /// <exception cref="InvalidDataException">An entry is missing.</exception>
    public static FitState Read(Checkpoint checkpoint, string prefix, SavedFit saved)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(saved);
        return new FitState(
            saved.Batches, checkpoint.Entry(prefix + ".network"), checkpoint.Entry(prefix + ".optimizer"),
            saved.HasArchitecture ? checkpoint.Entry(prefix + ".architecture") : null, saved.Epochs);
    }
}
