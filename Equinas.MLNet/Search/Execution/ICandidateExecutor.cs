#nullable enable
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Execution;

/// <summary>One candidate of a generation to train.</summary>
/// <param name="Id">The candidate's id in the search (outcomes come back in job order, whatever the finishing order).</param>
/// <param name="Network">Its network: architecture and inherited weights; nothing about it is random.</param>
/// <param name="Epochs">Epochs to train (fractions allowed).</param>
/// <param name="Seed">The seed of its data order: its only randomness, its own.</param>
internal sealed record CandidateJob(int Id, GroupCnn Network, double Epochs, int Seed);

/// <summary>A trained and evaluated candidate.</summary>
/// <param name="Id">The job's id.</param>
/// <param name="Network">The trained network: the job's own, trained in place, or a new one (an executor that trains
/// elsewhere rebuilds it from what comes back; the job's network is then disposed by the executor).</param>
/// <param name="Epochs">The epochs it trained; the last one holds the validation metrics.</param>
internal sealed record CandidateOutcome(int Id, GroupCnn Network, IReadOnlyList<EpochMetrics> Epochs)
{
    /// <summary>The last epoch, with the norm statistics re-estimated and the validation metrics.</summary>
    public EpochMetrics Last => Epochs[^1];
}

/// <summary>A generation's candidates and what they train on.</summary>
/// <param name="Jobs">The candidates, in id order.</param>
/// <param name="Train">Training images.</param>
/// <param name="Validation">Validation images (every candidate is evaluated on them after training).</param>
/// <param name="Training">Optimiser, batch and norm-calibration settings.</param>
internal sealed record CandidateBatch(IReadOnlyList<CandidateJob> Jobs, ImageDataset Train, ImageDataset Validation, TrainingOptions Training);

/// <summary>
/// Runs a generation's candidates: jobs in, trained networks and metrics out. The one interface through which the
/// evolutionary search trains candidates: in this process (<see cref="InProcessExecutor"/>) or, later, elsewhere.
/// </summary>
/// <remarks>
/// The contract every executor keeps: each job is trained as <see cref="CandidateTraining.Train"/> trains it, with
/// libtorch set to the executor's intra-op thread count, so that its outcome is the same, bit for bit, whatever else
/// runs at the same time and in whatever order the jobs finish (libtorch's results depend on its intra-op thread
/// count, so the count is part of the contract; the number of jobs run at once is not). Outcomes come back in job
/// order. On an exception (the token cancelled, a job failed) the jobs' networks stay the caller's to dispose, and
/// anything the executor built is disposed.
/// </remarks>
internal interface ICandidateExecutor
{
    /// <summary>The libtorch intra-op threads each job trains with (part of what its result depends on).</summary>
    int ThreadsPerJob { get; }

    /// <summary>
    /// Trains and evaluates every job of <paramref name="batch"/>; calls <paramref name="finished"/> once per job as it
    /// finishes (from any thread, one call at a time, never after cancellation) and returns the outcomes in job order.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled; every job stops within one batch.</exception>
    IReadOnlyList<CandidateOutcome> Execute(CandidateBatch batch, Action<CandidateOutcome>? finished, CancellationToken cancellationToken);
}

/// <summary>How one candidate job is trained, by every executor.</summary>
internal static class CandidateTraining
{
    /// <summary>
    /// Trains the job's network in place with a new optimiser for its epochs and seed, re-estimates the norm statistics
    /// and evaluates it once at the end (earlier epochs are not evaluated: nothing reads them, and skipping them changes
    /// no bit of the result; see <see cref="NetworkTrainer.Fit"/>). A process's first job trains alone
    /// (<see cref="FirstTraining"/>).
    /// </summary>
    public static CandidateOutcome Train(CandidateJob job, CandidateBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(batch);
        var epochs = FirstTraining.Process.Run(() => new NetworkTrainer(batch.Training).Fit(job.Network, batch.Train, batch.Validation, job.Epochs, job.Seed, cancellationToken, evaluateEveryEpoch: false));
        return new CandidateOutcome(job.Id, job.Network, epochs);
    }
}
