#nullable enable
using Orleans.Concurrency;
namespace Equinas.MLNet.Orleans;

/// <summary>
/// One training slot of a worker silo: trains candidates one at a time. Its key is
/// <c>{silo address}/{slot}</c> and it is always activated on that silo (<see cref="SiloPinnedPlacement"/>), so that
/// the driver chooses where every candidate runs and the silo's dataset cache serves all of its slots.
/// </summary>
internal interface ICandidateWorkerGrain : IGrainWithStringKey
{
    /// <summary>What the silo offers: its training slots and cores. Answers while the slot trains (the driver's liveness probe).</summary>
    [AlwaysInterleave]
    Task<WorkerDescription> Describe();

    /// <summary>Whether the silo holds the dataset with this content hash (then nothing needs uploading).</summary>
    [AlwaysInterleave]
    Task<bool> HasDataset(string hash);

    /// <summary>
    /// Stores chunk <paramref name="index"/> of <paramref name="count"/> of the dataset with content hash
    /// <paramref name="hash"/>; the last chunk completes it (the hash is checked, then the data are decoded once).
    /// </summary>
    [ResponseTimeout("00:05:00")]
    Task UploadDatasetChunk(string hash, int index, int count, byte[] chunk);

    /// <summary>
    /// Trains and evaluates one candidate on a dataset the silo holds. The driver bounds every call by a timeout sized to
    /// the candidate's work (<see cref="ClusterExecutionOptions.TimeoutPerStep"/>); the interface's own bound only has
    /// to exceed it.
    /// </summary>
    /// <param name="payload">The candidate.</param>
    /// <param name="call">The driver's id of this call (unique per attempt), which <see cref="Status"/> reports.</param>
    /// <param name="cancellationToken">Cancelled by the driver when it abandons the call.</param>
    [ResponseTimeout("7.00:00:00")]
    Task<TrainedCandidate> Train(CandidatePayload payload, long call, CancellationToken cancellationToken);

    /// <summary>
    /// The call the slot trains and the last one it finished: the driver's probe, answered while the slot trains. A call
    /// the driver waits on that the slot neither trains nor finished never arrived (its message was lost with a silo);
    /// one it finished lost its answer, which <see cref="Result"/> then hands over.
    /// </summary>
    [AlwaysInterleave]
    Task<SlotStatus> Status();

    /// <summary>The result of call <paramref name="call"/> if it is the last the slot finished; otherwise null.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:05:00")]
    Task<TrainedCandidate?> Result(long call);
}

/// <summary>What a slot is doing, for the driver's probe.</summary>
/// <param name="Training">The call it trains now (0: none).</param>
/// <param name="Finished">The last call it finished and still holds the result of (0: none).</param>
[GenerateSerializer]
[Immutable]
internal sealed record SlotStatus([property: Id(0)] long Training, [property: Id(1)] long Finished);

/// <summary>A worker silo's capacity.</summary>
/// <param name="Slots">Candidates it trains at once.</param>
/// <param name="Cores">Its processor count.</param>
/// <param name="Machine">Its machine name (for logs).</param>
[GenerateSerializer]
[Immutable]
internal sealed record WorkerDescription([property: Id(0)] int Slots, [property: Id(1)] int Cores, [property: Id(2)] string Machine);

/// <summary>The optimiser and batch settings of a candidate's training (the engine's <c>TrainingOptions</c>).</summary>
[GenerateSerializer]
[Immutable]
internal sealed record TrainingSettings(
    [property: Id(0)] int Optimizer,
    [property: Id(1)] double LearningRate,
    [property: Id(2)] double Momentum,
    [property: Id(3)] double WeightDecay,
    [property: Id(4)] int BatchSize,
    [property: Id(5)] int EvaluationBatchSize,
    [property: Id(6)] int NormCalibrationImages);

/// <summary>One candidate as it travels: its network as bytes, its epochs, seed and thread count, and the dataset's hash.</summary>
/// <param name="Id">The candidate's id in the search.</param>
/// <param name="Architecture">The network description (the engine's stored format).</param>
/// <param name="Weights">The network's weights (TorchSharp's format).</param>
/// <param name="Epochs">Epochs to train.</param>
/// <param name="Seed">The seed of its data order.</param>
/// <param name="Threads">libtorch intra-op threads to train with (part of what the result depends on).</param>
/// <param name="Dataset">Content hash of the training and validation data (uploaded to the silo beforehand).</param>
/// <param name="Training">Optimiser and batch settings.</param>
[GenerateSerializer]
[Immutable]
internal sealed record CandidatePayload(
    [property: Id(0)] int Id,
    [property: Id(1)] byte[] Architecture,
    [property: Id(2)] byte[] Weights,
    [property: Id(3)] double Epochs,
    [property: Id(4)] int Seed,
    [property: Id(5)] int Threads,
    [property: Id(6)] string Dataset,
    [property: Id(7)] TrainingSettings Training);

/// <summary>One epoch's metrics as they travel (the engine's <c>EpochMetrics</c>, times in ticks).</summary>
[GenerateSerializer]
[Immutable]
internal sealed record EpochRecord(
    [property: Id(0)] double Epoch,
    [property: Id(1)] double TrainLoss,
    [property: Id(2)] double TrainAccuracy,
    [property: Id(3)] long TrainImages,
    [property: Id(4)] bool Validated,
    [property: Id(5)] double ValidationLoss,
    [property: Id(6)] double ValidationAccuracy,
    [property: Id(7)] long ValidationImages,
    [property: Id(8)] long ElapsedTicks,
    [property: Id(9)] long TrainingTicks,
    [property: Id(10)] long ValidationTicks,
    [property: Id(11)] long CalibrationTicks);

/// <summary>A trained candidate as it comes back: its weights as bytes and its epochs.</summary>
/// <param name="Id">The candidate's id.</param>
/// <param name="Weights">The trained weights (the architecture is unchanged).</param>
/// <param name="Epochs">Its epochs; the last holds the validation metrics.</param>
/// <param name="WorkerTicks">Time the worker spent on the call, decoding and encoding included.</param>
/// <param name="Worker">The silo that trained it.</param>
[GenerateSerializer]
[Immutable]
internal sealed record TrainedCandidate(
    [property: Id(0)] int Id,
    [property: Id(1)] byte[] Weights,
    [property: Id(2)] EpochRecord[] Epochs,
    [property: Id(3)] long WorkerTicks,
    [property: Id(4)] string Worker);
