#nullable enable
using TorchSharp;

namespace Equinas.MLNet.Search.Execution;

/// <summary>
/// The libtorch intra-op thread count a training runs with. A training's bits depend on it (libtorch splits its
/// reductions by thread), so it is chosen once per run, recorded in checkpoints, and set on the thread that trains.
/// </summary>
internal static class TrainingThreads
{
    /// <summary>
    /// The count a run uses: <paramref name="requested"/>, else for the evolutionary search's candidates the default
    /// per worker (<see cref="SearchDefaults.ThreadsPerWorker"/>), else (one network at a time) libtorch's current count.
    /// </summary>
    public static int Resolve(int? requested, bool candidates) =>
        requested ?? (candidates ? SearchDefaults.ThreadsPerWorker : torch.get_num_threads());

    /// <summary>
    /// Sets the calling thread's count to <paramref name="threads"/> until the result is disposed (libtorch's OpenMP
    /// count belongs to the calling thread; the default for new threads is restored too).
    /// </summary>
    public static IDisposable Use(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        int before = torch.get_num_threads();
        if (before == threads)
        {
            return Restore.None;
        }

        torch.set_num_threads(threads);
        return new Restore(before);
    }

    private sealed class Restore(int threads) : IDisposable
    {
        public static readonly IDisposable None = new Restore(0);

        public void Dispose()
        {
            if (threads > 0)
            {
                torch.set_num_threads(threads);
            }
        }
    }
}
