#nullable enable
namespace Equinas.MLNet.Search.Execution;

/// <summary>
/// Lets a process's first candidate training run alone: trainings that arrive while it runs wait for it to end, and
/// from then on every training runs at once with the others.
/// </summary>
/// <remarks>
/// Why: a search resumed from a checkpoint in a fresh process, whose first generation started two candidates at once
/// on two workers, got another validation loss in one of them (a few units in the 7th digit) in 1 of 30
/// killed-and-resumed runs on an idle two-core machine (2026-12-02), and never in 54 runs where the process had first
/// trained one candidate alone (a fresh search's generation 0). With the first job trained alone, 0 of 45 resumed runs
/// differed. libtorch, MKL or oneDNN evidently set up some process-wide state at first use that two threads arriving
/// together can race on; which state was not identified. A worker silo's slots are covered too: they train through
/// <see cref="CandidateTraining.Train"/>. The cost is one candidate's training without company, once per process.
/// </remarks>
internal sealed class FirstTraining
{
    private readonly object _gate = new();
    private volatile bool _done;

    /// <summary>Gets the gate every candidate training of this process goes through.</summary>
    public static FirstTraining Process { get; } = new();

    /// <summary>Gets whether a training has completed through this gate.</summary>
    public bool Done => _done;

    /// <summary>Runs <paramref name="training"/>, alone if no training has completed through this gate yet.</summary>
    public T Run<T>(Func<T> training)
    {
        ArgumentNullException.ThrowIfNull(training);
        if (!_done)
        {
            lock (_gate)
            {
                if (!_done)
                {
                    // A failed first training leaves the gate closed for the next one.
                    var result = training();
                    _done = true;
                    return result;
                }
            }
        }

        return training();
    }

    /// <summary>Makes the next training run as a fresh process's first one does (for tests).</summary>
    internal void Forget() => _done = false;
}
