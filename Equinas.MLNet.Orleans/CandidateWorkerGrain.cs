#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using Microsoft.Extensions.Options;

namespace Equinas.MLNet.Orleans;

/// <summary>
/// A training slot of a worker silo (see <see cref="ICandidateWorkerGrain"/>). Not reentrant: a slot trains one
/// candidate at a time, on a dedicated thread (never on the grain scheduler), with the libtorch thread count the
/// candidate carries, exactly as <see cref="CandidateTraining.Train"/> trains it in process.
/// </summary>
[SiloPinnedPlacement]
internal sealed class CandidateWorkerGrain(DatasetCache datasets, IOptions<EquinasWorkerOptions> options) : Grain, ICandidateWorkerGrain
{
    public Task<WorkerDescription> Describe() =>
        Task.FromResult(new WorkerDescription(options.Value.Slots, Environment.ProcessorCount, Environment.MachineName));

    public Task<bool> HasDataset(string hash) => Task.FromResult(datasets.Has(hash));

    public Task UploadDatasetChunk(string hash, int index, int count, byte[] chunk) =>
        OnThread(() => datasets.Store(hash, index, count, chunk));

    // The call being trained and the last one finished with its result (read by the interleaved Status and Result;
    // every access is on the grain's scheduler, so no lock).
    private long _training;
    private (long Call, TrainedCandidate Result)? _finished;

    public async Task<TrainedCandidate> Train(CandidatePayload payload, long call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(payload);
        using var lease = datasets.Acquire(payload.Dataset);
        var log = options.Value.Log;
        log?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"candidate {payload.Id}: training {payload.Epochs} epoch(s) on {payload.Threads} thread(s)"));
        _training = call;
        _finished = null;
        TrainedCandidate trained;
        try
        {
            trained = await OnThread(() => TrainNow(payload, lease, RuntimeIdentity, cancellationToken)).ConfigureAwait(true);
        }
        finally
        {
            _training = 0;
        }

        _finished = (call, trained);
        log?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"candidate {payload.Id}: done in {TimeSpan.FromTicks(trained.WorkerTicks).TotalSeconds:F1} s, validation accuracy {trained.Epochs[^1].ValidationAccuracy * 100:F2}%"));
        return trained;
    }

    public Task<SlotStatus> Status() => Task.FromResult(new SlotStatus(_training, _finished?.Call ?? 0));

    public Task<TrainedCandidate?> Result(long call) =>
        Task.FromResult(_finished is { } f && f.Call == call ? f.Result : null);

    /// <summary>Trains one candidate on the calling thread.</summary>
    internal static TrainedCandidate TrainNow(CandidatePayload payload, DatasetCache.Lease data, string worker, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        using var threads = TrainingThreads.Use(payload.Threads);
        using var stored = NetworkBytes.Load(payload.Architecture, payload.Weights);
        if (stored.Network is not GroupCnn network)
        {
            throw new InvalidDataException($"Candidate {payload.Id} is a {stored.Description.Summary()} network; workers train fixed ones.");
        }

        var job = new CandidateJob(payload.Id, network, payload.Epochs, payload.Seed);
        var outcome = CandidateTraining.Train(job, new CandidateBatch([job], data.Train, data.Validation, ClusterExecutor.ToOptions(payload.Training)), cancellationToken);
        var weights = NetworkBytes.Weights(outcome.Network);
        return new TrainedCandidate(payload.Id, weights, outcome.Epochs.Select(ClusterExecutor.ToRecord).ToArray(), watch.Elapsed.Ticks, worker);
    }

    private static Task OnThread(Action work) => OnThread<object?>(() =>
    {
        work();
        return null;
    });

    /// <summary>Runs <paramref name="work"/> on a new dedicated thread (libtorch's thread count belongs to the thread).</summary>
    private static Task<T> OnThread<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (OperationCanceledException e)
            {
                done.SetCanceled(e.CancellationToken);
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "Equinas worker slot",
        };
        thread.Start();
        return done.Task;
    }
}

/// <summary>A network as the two byte arrays of the stored format (architecture, weights).</summary>
internal static class NetworkBytes
{
    public static (byte[] Architecture, byte[] Weights) Save(EquivariantNetwork network)
    {
        using var architecture = new MemoryStream();
        using var weights = new MemoryStream();
        using (var a = new BinaryWriter(architecture, System.Text.Encoding.UTF8, leaveOpen: true))
        using (var w = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            // Not disposed: the network stays the caller's.
            new StoredNetwork(network).Save(a, w);
        }

        return (architecture.ToArray(), weights.ToArray());
    }

    public static byte[] Weights(EquivariantNetwork network)
    {
        using var weights = new MemoryStream();
        using (var w = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            network.save(w);
        }

        return weights.ToArray();
    }

    public static StoredNetwork Load(byte[] architecture, byte[] weights)
    {
        using var a = new BinaryReader(new MemoryStream(architecture, writable: false));
        using var w = new BinaryReader(new MemoryStream(weights, writable: false));
        return StoredNetwork.Load(a, w);
    }
}
