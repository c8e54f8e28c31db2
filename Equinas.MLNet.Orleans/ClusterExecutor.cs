#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using Orleans.Runtime;

namespace Equinas.MLNet.Orleans;

/// <summary>What one candidate cost on the cluster, for the benchmark and the logs.</summary>
/// <param name="Id">The candidate's id.</param>
/// <param name="Worker">The silo that trained it.</param>
/// <param name="Encode">Driver time to turn its network into bytes.</param>
/// <param name="RoundTrip">The grain call, from sending to receiving the result.</param>
/// <param name="WorkerTime">Time the worker spent on the call (decoding and encoding included).</param>
/// <param name="Training">Its training, norm re-estimation and validation time, as the worker measured it.</param>
/// <param name="Decode">Driver time to rebuild the trained network.</param>
/// <param name="Attempts">Calls made for it (more than one when a worker was lost).</param>
internal sealed record CandidateCost(int Id, string Worker, TimeSpan Encode, TimeSpan RoundTrip, TimeSpan WorkerTime, TimeSpan Training, TimeSpan Decode, int Attempts)
{
    /// <summary>Everything that is not training, as a fraction of the training time.</summary>
    public double OverheadFraction => Training > TimeSpan.Zero ? (Encode + RoundTrip - Training + Decode) / Training : double.NaN;
}

/// <summary>
/// Trains a generation's candidates on the worker silos of an Orleans cluster: the driver side of
/// <see cref="ICandidateExecutor"/>.
/// </summary>
/// <remarks>
/// <para>
/// Every active silo offers its slots (<see cref="EquinasWorkerOptions.Slots"/>); each slot takes the next candidate
/// in id order. The search's data are encoded once (<see cref="DatasetTransfer"/>) and uploaded to a silo only when it
/// does not hold them yet; a candidate travels as its network's bytes, epochs, seed and thread count, and comes back as
/// its trained weights and metrics, from which the network is rebuilt here. The results are those of the in-process
/// executor bit for bit: the worker trains each candidate with <see cref="CandidateTraining.Train"/> on the same bits
/// with the same thread count.
/// </para>
/// <para>
/// Faults: while a generation runs the driver polls the cluster's membership and every slot's <see cref="ICandidateWorkerGrain.Status"/>.
/// The calls of a silo that leaves the membership or stops answering (or fails a call, or exceeds a call's time
/// bound) are abandoned and their candidates go back to the queue, where the other silos' idle slots wait for them
/// (at most <see cref="ClusterExecutionOptions.MaxAttempts"/> calls per candidate); such a silo gets no candidates
/// until it answers a probe again. A call whose message or answer was lost on the way (it travelled through the
/// gateway of a silo that died) is settled from its slot's status: a finished one's result is fetched again, one
/// never received is sent again. Every remote call is bounded. Errors of the training itself (bad data, a bug) are
/// not retried: they fail the generation as they would in process.
/// </para>
/// </remarks>
internal sealed class ClusterExecutor : ICandidateExecutor
{
    private readonly IGrainFactory _grains;
    private readonly ClusterExecutionOptions _options;
    private readonly Action<string>? _log;
    private readonly List<CandidateCost> _costs = [];
    private readonly HashSet<SiloAddress> _excluded = [];
    private (ImageDataset Train, ImageDataset Validation, DatasetTransfer Data)? _dataset;
    // Call ids: unique across drivers too (a slot may still be on a dead driver's call), so they start at random.
    private long _calls = Random.Shared.NextInt64(1, long.MaxValue / 2);

    public ClusterExecutor(IGrainFactory grains, int threadsPerJob, ClusterExecutionOptions? options = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadsPerJob);
        _grains = grains;
        ThreadsPerJob = threadsPerJob;
        _options = options ?? new ClusterExecutionOptions();
        _options.Validate();
        _log = log;
    }

    /// <inheritdoc/>
    public int ThreadsPerJob { get; }

    /// <summary>The cost of every candidate trained so far, in finishing order.</summary>
    public IReadOnlyList<CandidateCost> Costs
    {
        get
        {
            lock (_costs)
            {
                return _costs.ToArray();
            }
        }
    }

    /// <summary>Called before every training call with the silo and the candidate's id (tests use it to stop a silo mid-generation).</summary>
    internal Func<SiloAddress, int, Task>? BeforeCall { get; init; }

    /// <summary>
    /// Sends a training call (default: the grain call itself). Tests replace it to lose a request or an answer, as a
    /// call through the gateway of a silo that dies does.
    /// </summary>
    internal Func<ICandidateWorkerGrain, CandidatePayload, long, CancellationToken, Task<TrainedCandidate>> SendTrain { get; init; } =
        static (grain, payload, call, cancellationToken) => grain.Train(payload, call, cancellationToken);

    /// <summary>Results fetched again from a slot because the call's own answer was lost.</summary>
    public int Refetched { get; private set; }

    /// <summary>Dataset uploads so far (one per silo that did not hold the data).</summary>
    public int Uploads { get; private set; }

    /// <summary>Calls abandoned because their silo was lost, failed or exceeded its time bound.</summary>
    public int Retries { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<CandidateOutcome> Execute(CandidateBatch batch, Action<CandidateOutcome>? finished, CancellationToken cancellationToken) =>
        ExecuteAsync(batch, finished, cancellationToken).GetAwaiter().GetResult();

    internal static TrainingOptions ToOptions(TrainingSettings s) => new()
    {
        Optimizer = (OptimizerKind)s.Optimizer,
        LearningRate = s.LearningRate,
        Momentum = s.Momentum,
        WeightDecay = s.WeightDecay,
        BatchSize = s.BatchSize,
        EvaluationBatchSize = s.EvaluationBatchSize,
        NormCalibrationImages = s.NormCalibrationImages,
    };

    internal static TrainingSettings ToSettings(TrainingOptions o) =>
        new((int)o.Optimizer, o.LearningRate, o.Momentum, o.WeightDecay, o.BatchSize, o.EvaluationBatchSize, o.NormCalibrationImages);

    internal static EpochRecord ToRecord(EpochMetrics e) => new(
        e.Epoch, e.Train.Loss, e.Train.Accuracy, e.Train.Images, e.Validation is not null,
        e.Validation?.Loss ?? 0, e.Validation?.Accuracy ?? 0, e.Validation?.Images ?? 0,
        e.Elapsed.Ticks, e.TrainingTime.Ticks, e.ValidationTime.Ticks, e.CalibrationTime.Ticks);

    internal static EpochMetrics ToMetrics(EpochRecord r) => new(
        r.Epoch, new PassMetrics(r.TrainLoss, r.TrainAccuracy, r.TrainImages),
        r.Validated ? new PassMetrics(r.ValidationLoss, r.ValidationAccuracy, r.ValidationImages) : null,
        TimeSpan.FromTicks(r.ElapsedTicks), TimeSpan.FromTicks(r.TrainingTicks), TimeSpan.FromTicks(r.ValidationTicks), TimeSpan.FromTicks(r.CalibrationTicks));

    private async Task<IReadOnlyList<CandidateOutcome>> ExecuteAsync(CandidateBatch batch, Action<CandidateOutcome>? finished, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        var jobs = batch.Jobs;
        if (jobs.Count == 0)
        {
            return [];
        }

        var data = Dataset(batch.Train, batch.Validation);
        var settings = ToSettings(batch.Training);
        var run = new Run(jobs.Count);
        var payloads = new CandidatePayload[jobs.Count];
        var encode = new TimeSpan[jobs.Count];
        for (int i = 0; i < jobs.Count; i++)
        {
            var watch = Stopwatch.StartNew();
            var (architecture, weights) = NetworkBytes.Save(jobs[i].Network);
            payloads[i] = new CandidatePayload(jobs[i].Id, architecture, weights, jobs[i].Epochs, jobs[i].Seed, ThreadsPerJob, data.Hash, settings);
            encode[i] = watch.Elapsed;
        }

        var bound = CallBound(jobs, batch);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var waitingSince = Stopwatch.StartNew();
            while (run.Remaining > 0)
            {
                stop.Token.ThrowIfCancellationRequested();
                var workers = await Workers(stop.Token).ConfigureAwait(false);
                if (workers.Count == 0)
                {
                    if (waitingSince.Elapsed > _options.WorkerWaitTimeout)
                    {
                        throw new InvalidOperationException(
                            $"No Equinas worker is in the cluster (waited {_options.WorkerWaitTimeout.TotalSeconds:F0} s with {run.Remaining} of {jobs.Count} candidates left). Start workers with 'equinas worker' (or AddEquinasWorker) in the same cluster.");
                    }

                    await Task.Delay(_options.MembershipPollInterval, stop.Token).ConfigureAwait(false);
                    continue;
                }

                waitingSince.Restart();
                using var round = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                var silos = workers.ToDictionary(w => w.Silo, w => (w.Slots, Lost: CancellationTokenSource.CreateLinkedTokenSource(round.Token)));
                var calls = new System.Collections.Concurrent.ConcurrentDictionary<long, Call>();
                try
                {
                    var watchdog = Watch(silos, calls, round.Token);
                    var slots = workers.SelectMany(w => Enumerable.Range(0, w.Slots).Select(s => Slot(w.Silo, s, silos[w.Silo].Lost.Token, data, payloads, encode, jobs, run, finished, bound, stop, calls))).ToArray();
                    await Task.WhenAll(slots).ConfigureAwait(false);
                    await round.CancelAsync().ConfigureAwait(false);
                    await watchdog.ConfigureAwait(false);
                }
                finally
                {
                    foreach (var (_, source) in silos.Values)
                    {
                        source.Dispose();
                    }
                }
            }

            // Delivered outcomes own new networks: the jobs' own are done with.
            for (int i = 0; i < jobs.Count; i++)
            {
                if (!run.Delivered[i])
                {
                    run.Delivered[i] = true;
                    jobs[i].Network.Dispose();
                }
            }

            return run.Outcomes.Select(o => o!).ToArray();
        }
        catch (Exception e)
        {
            // Outcomes not yet handed to the caller are disposed; the jobs' networks of those stay the caller's.
            for (int i = 0; i < jobs.Count; i++)
            {
                if (!run.Delivered[i])
                {
                    run.Outcomes[i]?.Network.Dispose();
                }
            }

            // The first error of a slot, not the cancellation it caused elsewhere.
            if (run.Error is { } error && error != e && !cancellationToken.IsCancellationRequested)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
            }

            throw;
        }
    }

    /// <summary>One slot of one silo: takes candidates until none is left or the silo is lost.</summary>
    private async Task Slot(
        SiloAddress silo, int slot, CancellationToken siloLost, DatasetTransfer data, CandidatePayload[] payloads, TimeSpan[] encode,
        IReadOnlyList<CandidateJob> jobs, Run run, Action<CandidateOutcome>? finished, TimeSpan bound, CancellationTokenSource stop,
        System.Collections.Concurrent.ConcurrentDictionary<long, Call> calls)
    {
        var grain = _grains.GetGrain<ICandidateWorkerGrain>(SiloPinnedPlacement.Key(silo, slot));
        try
        {
            if (slot == 0)
            {
                await EnsureDataset(grain, data, siloLost).ConfigureAwait(false);
            }
            else
            {
                // The other slots wait for slot 0's upload (they find the data through the same silo's cache).
                while (!await Bounded(grain.HasDataset(data.Hash), _options.ProbeTimeout, siloLost).ConfigureAwait(false))
                {
                    await Task.Delay(100, siloLost).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (IsWorkerFault(e, stop.Token))
        {
            _log?.Invoke($"Worker {silo} is not usable ({Brief(e)}); continuing without it.");
            Exclude(silo);
            return;
        }
        catch (Exception e)
        {
            // Not the worker's fault (the data were refused): stop every slot, including those waiting for this upload.
            run.Fail(e, stop);
            return;
        }

        while (true)
        {
            int index;
            try
            {
                // Waits while other slots' candidates are in flight: one of them may come back to the queue.
                index = await run.Next(siloLost).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (siloLost.IsCancellationRequested)
            {
                return;
            }

            if (index < 0)
            {
                return;
            }

            int attempt = run.Attempt(index);
            var watch = Stopwatch.StartNew();
            TrainedCandidate result;
            using var call = new Call(silo, slot, grain, Interlocked.Increment(ref _calls), jobs[index].Id, siloLost);
            calls[call.Id] = call;
            try
            {
                if (BeforeCall is { } before)
                {
                    await before(silo, jobs[index].Id).ConfigureAwait(false);
                }

                call.Abandon.CancelAfter(bound);
                try
                {
                    result = await call.Await(SendTrain(grain, payloads[index], call.Id, call.Abandon.Token)).ConfigureAwait(false);
                }
                catch (DatasetMissingException)
                {
                    // Evicted meanwhile (another search used the worker): upload again, once.
                    await EnsureDataset(grain, data, call.Abandon.Token).ConfigureAwait(false);
                    result = await call.Await(SendTrain(grain, payloads[index], call.Id, call.Abandon.Token)).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (IsWorkerFault(e, stop.Token))
            {
                lock (run)
                {
                    Retries++;
                }

                string why = siloLost.IsCancellationRequested ? "left the cluster" : call.Why ?? (watch.Elapsed >= bound ? $"exceeded the call's bound of {bound.TotalMinutes:F1} min" : $"failed ({Brief(e)})");
                if (attempt >= _options.MaxAttempts)
                {
                    run.Fail(new InvalidOperationException($"Candidate {jobs[index].Id} was sent {attempt} times and its worker {why} every time (MaxAttempts = {_options.MaxAttempts}).", e), stop);
                    return;
                }

                _log?.Invoke($"Worker {silo} {why} while training candidate {jobs[index].Id}; it goes to another worker.");
                run.Return(index);
                if (call.Why is not null && !siloLost.IsCancellationRequested)
                {
                    // The silo answers; only a message was lost: the slot goes on.
                    continue;
                }

                if (!siloLost.IsCancellationRequested)
                {
                    // Failed or too slow: not used again before it answers a probe (the next generation's).
                    Exclude(silo);
                }

                return;
            }
            catch (Exception e)
            {
                run.Fail(e, stop);
                return;
            }
            finally
            {
                calls.TryRemove(call.Id, out _);
            }

            var roundTrip = watch.Elapsed;
            var decodeWatch = Stopwatch.StartNew();
            // The stored network is not disposed: its network becomes the outcome's.
            var network = (GroupCnn)NetworkBytes.Load(payloads[index].Architecture, result.Weights).Network;

            var outcome = new CandidateOutcome(jobs[index].Id, network, result.Epochs.Select(ToMetrics).ToArray());
            var decode = decodeWatch.Elapsed;
            var training = TimeSpan.FromTicks(outcome.Epochs.Sum(e => (e.TrainingTime + e.CalibrationTime + e.ValidationTime).Ticks));
            lock (_costs)
            {
                _costs.Add(new CandidateCost(jobs[index].Id, result.Worker, encode[index], roundTrip, TimeSpan.FromTicks(result.WorkerTicks), training, decode, attempt));
            }

            if (!run.Complete(index, outcome, jobs[index], finished, stop))
            {
                return;
            }
        }
    }

    private async Task EnsureDataset(ICandidateWorkerGrain grain, DatasetTransfer data, CancellationToken cancellationToken)
    {
        if (await Bounded(grain.HasDataset(data.Hash), _options.ProbeTimeout, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        for (int chunk = 0; chunk < data.ChunkCount; chunk++)
        {
            var bytes = data.Chunk(chunk);
            // Sized to its work: the probe bound plus a second per megabyte (transfer, hash check, decoding of the last).
            var bound = _options.ProbeTimeout + TimeSpan.FromSeconds(Math.Ceiling((bytes.Length + (chunk == data.ChunkCount - 1 ? data.Bytes.Length : 0)) / 1e6));
            await Bounded(grain.UploadDatasetChunk(data.Hash, chunk, data.ChunkCount, bytes), bound, cancellationToken).ConfigureAwait(false);
        }

        lock (_costs)
        {
            Uploads++;
        }
    }

    /// <summary>Awaits a remote call for at most <paramref name="bound"/> (then <see cref="TimeoutException"/>) or until cancelled.</summary>
    private static async Task<T> Bounded<T>(Task<T> call, TimeSpan bound, CancellationToken cancellationToken)
    {
        Observe(call);
        return await call.WaitAsync(bound, cancellationToken).ConfigureAwait(false);
    }

    private static async Task Bounded(Task call, TimeSpan bound, CancellationToken cancellationToken)
    {
        Observe(call);
        await call.WaitAsync(bound, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Observes the exception of a call that may be abandoned (so that it is never reported as unobserved).</summary>
    private static void Observe(Task call) =>
        call.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Marks a silo that failed as not to be used until it answers a probe again (or leaves the membership).</summary>
    private void Exclude(SiloAddress silo)
    {
        lock (_excluded)
        {
            _excluded.Add(silo);
        }
    }

    /// <summary>The active silos that run Equinas workers, with their slots; silos that failed are left out until they answer again.</summary>
    private async Task<List<(SiloAddress Silo, int Slots)>> Workers(CancellationToken cancellationToken)
    {
        HashSet<SiloAddress> hosts;
        try
        {
            hosts = await ActiveSilos(_options.ProbeTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsWorkerFault(e, cancellationToken))
        {
            _log?.Invoke($"The cluster's membership could not be read ({Brief(e)}); asking again.");
            return [];
        }

        lock (_excluded)
        {
            // A silo that left the membership never comes back (a restarted worker is a new silo address).
            _excluded.RemoveWhere(s => !hosts.Contains(s));
        }

        // Every silo at once, so that one that does not answer delays the others by one bound, not one each. One that
        // failed before gets the short liveness bound.
        var ordered = hosts.OrderBy(s => s.ToParsableString(), StringComparer.Ordinal).ToArray();
        var answers = await Task.WhenAll(ordered.Select(async silo =>
        {
            bool excluded;
            lock (_excluded)
            {
                excluded = _excluded.Contains(silo);
            }

            try
            {
                var description = await Bounded(_grains.GetGrain<ICandidateWorkerGrain>(SiloPinnedPlacement.Key(silo, 0)).Describe(), excluded ? _options.LivenessTimeout : _options.ProbeTimeout, cancellationToken).ConfigureAwait(false);
                if (excluded)
                {
                    lock (_excluded)
                    {
                        _excluded.Remove(silo);
                    }

                    _log?.Invoke($"Worker {silo} answers again; it gets candidates again.");
                }

                return (silo, description.Slots);
            }
            catch (Exception e) when (IsWorkerFault(e, cancellationToken))
            {
                if (!excluded)
                {
                    _log?.Invoke($"Silo {silo} did not answer as an Equinas worker ({Brief(e)}); left out until it answers.");
                    Exclude(silo);
                }

                return (silo, Slots: 0);
            }
        })).ConfigureAwait(false);
        return answers.Where(a => a.Slots > 0).ToList();
    }

    private async Task<HashSet<SiloAddress>> ActiveSilos(TimeSpan bound, CancellationToken cancellationToken)
    {
        var hosts = await Bounded(_grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true), bound, cancellationToken).ConfigureAwait(false);
        return hosts.Where(h => h.Value == SiloStatus.Active).Select(h => h.Key).ToHashSet();
    }

    /// <summary>
    /// Until <paramref name="cancellationToken"/> is cancelled: cancels the calls of every silo that leaves the cluster
    /// or stops answering, and settles calls whose message or answer was lost (a silo that forwarded them died): a slot
    /// that finished the call hands its result over, one that never received it has its candidate re-queued.
    /// </summary>
    private async Task Watch(Dictionary<SiloAddress, (int Slots, CancellationTokenSource Lost)> silos, System.Collections.Concurrent.ConcurrentDictionary<long, Call> calls, CancellationToken cancellationToken)
    {
        var misses = new Dictionary<SiloAddress, int>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(_options.MembershipPollInterval, cancellationToken).ConfigureAwait(false);
                // Membership and every slot's status at once, each within the liveness bound.
                var membership = ActiveSilos(_options.LivenessTimeout, cancellationToken);
                var watched = silos.Where(s => !s.Value.Lost.IsCancellationRequested).ToArray();
                var probes = await Task.WhenAll(watched.Select(async s =>
                    (s.Key, Statuses: await Task.WhenAll(Enumerable.Range(0, s.Value.Slots).Select(slot => Probe(s.Key, slot, cancellationToken))).ConfigureAwait(false)))).ConfigureAwait(false);
                HashSet<SiloAddress>? active = null;
                try
                {
                    active = await membership.ConfigureAwait(false);
                }
                catch (Exception e) when (IsWorkerFault(e, cancellationToken))
                {
                    // The silo that answered membership queries may be the one that died; the probes still count, and
                    // membership is asked again next time.
                }

                foreach (var (silo, statuses) in probes)
                {
                    var lost = silos[silo].Lost;
                    if (active is not null && !active.Contains(silo))
                    {
                        _log?.Invoke($"Worker {silo} left the cluster.");
                        await lost.CancelAsync().ConfigureAwait(false);
                        continue;
                    }

                    // A process that was killed stays in the membership until the others vote it dead (tens of seconds):
                    // the direct probe notices sooner. Two misses in a row.
                    if (statuses.All(s => s is null))
                    {
                        misses[silo] = misses.GetValueOrDefault(silo) + 1;
                        if (misses[silo] >= 2)
                        {
                            _log?.Invoke($"Worker {silo} does not answer.");
                            Exclude(silo);
                            await lost.CancelAsync().ConfigureAwait(false);
                        }

                        continue;
                    }

                    misses[silo] = 0;
                    foreach (var call in calls.Values.Where(c => c.Silo.Equals(silo)))
                    {
                        await Settle(call, statuses[call.Slot], cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A slot's status, or null when it does not answer within the liveness bound.</summary>
    private async Task<SlotStatus?> Probe(SiloAddress silo, int slot, CancellationToken cancellationToken)
    {
        try
        {
            return await Bounded(_grains.GetGrain<ICandidateWorkerGrain>(SiloPinnedPlacement.Key(silo, slot)).Status(), _options.LivenessTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsWorkerFault(e, cancellationToken))
        {
            return null;
        }
    }

    /// <summary>Compares a call the driver waits on with what its slot reports (twice in a row before acting).</summary>
    private async Task Settle(Call call, SlotStatus? status, CancellationToken cancellationToken)
    {
        try
        {
            await SettleNow(call, status, cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // The call ended (and its slot disposed it) while it was being looked at: nothing to settle.
        }
    }

    private async Task SettleNow(Call call, SlotStatus? status, CancellationToken cancellationToken)
    {
        if (status is null || call.Abandon.IsCancellationRequested || call.Recovered.Task.IsCompleted)
        {
            return;
        }

        if (status.Training == call.Id)
        {
            call.Finished = call.Strays = 0;
        }
        else if (status.Finished == call.Id)
        {
            // Finished, and the answer has not come: after two probes it is taken to be lost and fetched.
            call.Strays = 0;
            if (++call.Finished >= 2)
            {
                try
                {
                    if (await Bounded(call.Grain.Result(call.Id), _options.ProbeTimeout, cancellationToken).ConfigureAwait(false) is { } result
                        && call.Recovered.TrySetResult(result))
                    {
                        lock (_costs)
                        {
                            Refetched++;
                        }

                        _log?.Invoke($"Worker {call.Silo} finished candidate {call.Candidate} but its answer was lost; fetched it again.");
                    }
                }
                catch (Exception e) when (IsWorkerFault(e, cancellationToken))
                {
                    // Tried again at the next probe.
                }
            }
        }
        else if (status.Training != 0 || call.Since.Elapsed <= _options.LivenessTimeout)
        {
            // Busy with another call (one given up, or a dead driver's, whose end this one waits for), or just sent.
            call.Finished = call.Strays = 0;
        }
        else if (++call.Strays >= 2)
        {
            // Idle, without this call's result, long after it was sent: the request was lost.
            call.Why = "never received the call (its message was lost)";
            await call.Abandon.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>An exception's type and the first line of its message, for the log.</summary>
    private static string Brief(Exception e) => $"{e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}";

    /// <summary>
    /// Whether an exception means the worker (its silo, its connection, its time) failed, not the training: a reason to
    /// send the candidate elsewhere. Not when the search itself was cancelled.
    /// </summary>
    private static bool IsWorkerFault(Exception e, CancellationToken search) =>
        !search.IsCancellationRequested && e is OperationCanceledException or TimeoutException or OrleansException;

    /// <summary>A generous bound on one call: a base plus a time per training and evaluation batch.</summary>
    private TimeSpan CallBound(IReadOnlyList<CandidateJob> jobs, CandidateBatch batch)
    {
        var t = batch.Training;
        double epochs = jobs.Max(j => j.Epochs);
        double steps = Math.Ceiling(epochs * batch.Train.Count / t.BatchSize)
            + (Math.Ceiling(epochs) * Math.Ceiling((double)(batch.Validation.Count + Math.Min(t.NormCalibrationImages, batch.Train.Count)) / t.EvaluationBatchSize));
        return _options.CallTimeoutBase + (steps * _options.TimeoutPerStep);
    }

    /// <summary>The encoded data of this search (encoded once; the search passes the same datasets every generation).</summary>
    private DatasetTransfer Dataset(ImageDataset train, ImageDataset validation)
    {
        if (_dataset is { } d && ReferenceEquals(d.Train, train) && ReferenceEquals(d.Validation, validation))
        {
            return d.Data;
        }

        var data = DatasetTransfer.Encode(train, validation);
        _dataset = (train, validation, data);
        return data;
    }

    /// <summary>A training call in flight, as the watchdog sees it.</summary>
    private sealed class Call(SiloAddress silo, int slot, ICandidateWorkerGrain grain, long id, int candidate, CancellationToken siloLost) : IDisposable
    {
        public SiloAddress Silo { get; } = silo;

        public int Slot { get; } = slot;

        public ICandidateWorkerGrain Grain { get; } = grain;

        public long Id { get; } = id;

        public int Candidate { get; } = candidate;

        public Stopwatch Since { get; } = Stopwatch.StartNew();

        /// <summary>Cancelled when the call is given up (its silo lost, its bound exceeded, its message lost).</summary>
        public CancellationTokenSource Abandon { get; } = CancellationTokenSource.CreateLinkedTokenSource(siloLost);

        /// <summary>The result fetched from the slot when the call's own answer was lost.</summary>
        public TaskCompletionSource<TrainedCandidate> Recovered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Why the watchdog gave the call up, when it did.</summary>
        public string? Why { get; set; }

        /// <summary>Probes in a row that found the slot finished with this call (watchdog only).</summary>
        public int Finished { get; set; }

        /// <summary>Probes in a row that found the slot on another call or idle (watchdog only).</summary>
        public int Strays { get; set; }

        /// <summary>The call's answer, or the result fetched when it was lost; cancelled with <see cref="Abandon"/>.</summary>
        public async Task<TrainedCandidate> Await(Task<TrainedCandidate> train)
        {
            Observe(train);
            var first = await Task.WhenAny(train, Recovered.Task).WaitAsync(Abandon.Token).ConfigureAwait(false);
            return await first.ConfigureAwait(false);
        }

        public void Dispose() => Abandon.Dispose();
    }

    /// <summary>One generation's shared state: the queue of candidates, their outcomes and attempts, the first error.</summary>
    private sealed class Run(int count)
    {
        private readonly Queue<int> _queue = new(Enumerable.Range(0, count));
        private readonly int[] _attempts = new int[count];
        private int _done;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CandidateOutcome?[] Outcomes { get; } = new CandidateOutcome?[count];

        public bool[] Delivered { get; } = new bool[count];

        public Exception? Error { get; private set; }

        public int Remaining
        {
            get
            {
                lock (this)
                {
                    if (Error is not null)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(Error).Throw();
                    }

                    return count - _done;
                }
            }
        }

        /// <summary>
        /// The next candidate to train, waiting while the queue is empty but candidates are in flight (one may come
        /// back); -1 when every candidate is done or the generation failed.
        /// </summary>
        public async Task<int> Next(CancellationToken cancellationToken)
        {
            while (true)
            {
                Task changed;
                lock (this)
                {
                    if (Error is not null || _done == count)
                    {
                        return -1;
                    }

                    if (_queue.TryDequeue(out int index))
                    {
                        return index;
                    }

                    changed = _changed.Task;
                }

                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>Wakes the slots waiting in <see cref="Next"/> (called under the lock).</summary>
        private void Pulse()
        {
            var old = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            old.TrySetResult();
        }

        public int Attempt(int index)
        {
            lock (this)
            {
                return ++_attempts[index];
            }
        }

        public void Return(int index)
        {
            lock (this)
            {
                _queue.Enqueue(index);
                Pulse();
            }
        }

        public void Fail(Exception error, CancellationTokenSource stop)
        {
            lock (this)
            {
                Error ??= error;
                Pulse();
            }

            stop.Cancel();
        }

        /// <summary>Records an outcome and hands it to <paramref name="finished"/>; false when the generation stopped.</summary>
        public bool Complete(int index, CandidateOutcome outcome, CandidateJob job, Action<CandidateOutcome>? finished, CancellationTokenSource stop)
        {
            lock (this)
            {
                Outcomes[index] = outcome;
                _done++;
                Pulse();
                if (Error is not null || stop.IsCancellationRequested)
                {
                    return false;
                }

                if (finished is null)
                {
                    return true;
                }

                try
                {
                    // From here the outcome's network is the caller's, and the job's own is done with.
                    Delivered[index] = true;
                    job.Network.Dispose();
                    finished(outcome);
                    return true;
                }
                catch (Exception e)
                {
                    Error ??= e;
                    Pulse();
                    stop.Cancel();
                    return false;
                }
            }
        }
    }
}
