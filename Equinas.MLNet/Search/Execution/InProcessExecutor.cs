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
/// threads gives other bits than on one (reductions split differently), hence the fixed count per job. A process's
/// first job trains alone (<see cref="FirstTraining"/>): two jobs starting together as a process's first training
/// once gave other bits.
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

        void Work()
        {
            try
            {
                torch.set_num_threads(ThreadsPerJob);
                int index;
                while (!stop.IsCancellationRequested && (index = Interlocked.Increment(ref next)) < jobs.Count)
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

        var threads = Enumerable.Range(0, Math.Min(Workers, jobs.Count))
            .Select(w => new Thread(Work) { IsBackground = true, Name = $"Equinas candidate worker {w}" })
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

        cancellationToken.ThrowIfCancellationRequested();
        if (!errors.IsEmpty)
        {
            var first = errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors.First();
            ExceptionDispatchInfo.Capture(first).Throw();
        }

        return outcomes.Select(o => o!).ToArray();
    }
}
