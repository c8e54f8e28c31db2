#nullable enable
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using TorchSharp;

namespace Equinas.MLNet.Search.Execution;

/// <summary>
/// Trains a generation's candidates concurrently in this process: <see cref="Workers"/> dedicated threads take the
/// jobs in id order, each training with <see cref="ThreadsPerJob"/> libtorch intra-op threads.
/// </summary>
/// <remarks>
/// Why the results do not depend on the worker count or the finishing order: a candidate's network comes from the
/// morphism (no random draws), its data order from its own seeded sampler, and weight initialisation, the one use of
/// libtorch's process-wide generator, happens under <see cref="Nn.Networks.SeededInit"/>'s lock before any job
/// starts. libtorch's thread count is process-wide in name only: its OpenMP pool takes the count of the thread that
/// calls (<c>torch.set_num_threads</c> sets it for the calling thread and as the default for threads that have not yet
/// run parallel work), so every worker sets it on itself, and the default is put back when the generation ends.
/// Measured on this engine: two one-thread trainings side by side give the same bits as one alone; one training on two
/// threads gives other bits than on one (reductions split differently), hence the fixed count per job.
/// <para>
/// The first batch a process trains starts with its first job alone, the rest joining when it ends: a search resumed
/// from a checkpoint in a fresh process, whose first generation started two jobs at once, got another validation loss
/// in one of them (a few units in the 7th digit) in 1 of 30 runs on an idle two-core machine (2026-12-02; never in 54
/// runs where the process had trained one job alone first). libtorch (or MKL, oneDNN) evidently initialises some
/// process-wide state at first use that two threads arriving together can see half made; which state was not found.
/// </para>
/// </remarks>
internal sealed class InProcessExecutor : ICandidateExecutor
{
    public InProcessExecutor(int workers, int threadsPerJob)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadsPerJob);
        Workers = workers;
        ThreadsPerJob = threadsPerJob;
    }

    /// <summary>Set once a job has trained in this process (see the remarks).</summary>
    private static int s_warm;

    /// <summary>Makes the next batch train as a fresh process's first one does (for tests).</summary>
    internal static void ForgetWarmUp() => Volatile.Write(ref s_warm, 0);

    /// <summary>Jobs trained at once (at most one per job).</summary>
    public int Workers { get; }

    /// <inheritdoc/>
    public int ThreadsPerJob { get; }

    /// <inheritdoc/>
    public IReadOnlyList<CandidateOutcome> Execute(CandidateBatch batch, Action<CandidateOutcome>? finished, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var jobs = batch.Jobs;
        cancellationToken.ThrowIfCancellationRequested();
        if (jobs.Count == 0)
        {
            return [];
        }

        var outcomes = new CandidateOutcome?[jobs.Count];
        var errors = new ConcurrentQueue<Exception>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var report = new object();
        int next = -1;
        int defaultThreads = torch.get_num_threads();

        void Work(int limit)
        {
            try
            {
                torch.set_num_threads(ThreadsPerJob);
                int index;
                while (!stop.IsCancellationRequested && (index = Interlocked.Increment(ref next)) < limit)
                {
                    var outcome = CandidateTraining.Train(jobs[index], batch, stop.Token);
                    outcomes[index] = outcome;
                    if (finished is not null)
                    {
                        lock (report)
                        {
                            stop.Token.ThrowIfCancellationRequested();
                            finished(outcome);
                        }
                    }
                }
            }
            catch (Exception e)
            {
                errors.Enqueue(e);
                stop.Cancel();
            }
        }

        void Run(int count, int limit)
        {
            var threads = Enumerable.Range(0, count)
                .Select(w => new Thread(() => Work(limit)) { IsBackground = true, Name = $"Equinas candidate worker {w}" })
                .ToArray();
            try
            {
                foreach (var thread in threads)
                {
                    thread.Start();
                }
            }
            catch
            {
                stop.Cancel();
                throw;
            }
            finally
            {
                foreach (var thread in threads.Where(t => t.ThreadState != ThreadState.Unstarted))
                {
                    thread.Join();
                }

                // The workers changed the default for threads that start later; this thread's own count is unchanged.
                torch.set_num_threads(defaultThreads);
            }
        }

        int workers = Math.Min(Workers, jobs.Count), start = 0;
        if (workers > 1 && Volatile.Read(ref s_warm) == 0)
        {
            // A fresh process: its first job trains alone (see the remarks). Its worker's last increment went past
            // the limit, so the count is put back to "job 0 taken".
            Run(1, 1);
            next = 0;
            start = 1;
        }

        if (errors.IsEmpty && !stop.IsCancellationRequested && start < jobs.Count)
        {
            Run(Math.Min(workers, jobs.Count - start), jobs.Count);
        }

        if (outcomes.Any(o => o is not null))
        {
            Volatile.Write(ref s_warm, 1);
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (!errors.IsEmpty)
        {
            var first = errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors.First();
            ExceptionDispatchInfo.Capture(first).Throw();
        }

        return outcomes.Select(o => o!).ToArray();
    }
}
