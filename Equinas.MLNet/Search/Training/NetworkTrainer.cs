#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Training;

/// <summary>Loss and accuracy over a pass of batches.</summary>
/// <param name="Loss">Mean cross-entropy per image.</param>
/// <param name="Accuracy">Fraction of images classified correctly.</param>
/// <param name="Images">Images seen.</param>
internal readonly record struct PassMetrics(double Loss, double Accuracy, long Images);

/// <summary>What one (possibly fractional) epoch of training produced.</summary>
/// <param name="Epoch">Epochs of data seen so far, e.g. 1, 2, 2.5.</param>
/// <param name="Train">Training loss and accuracy over this epoch's batches (in training mode, as they were seen).</param>
/// <param name="Validation">Validation loss and accuracy after the epoch, when a validation set was given.</param>
/// <param name="Elapsed">Time since training started.</param>
/// <param name="TrainingTime">Time of this epoch's steps.</param>
/// <param name="ValidationTime">Time of this epoch's validation pass.</param>
/// <param name="CalibrationTime">Time of the norm re-estimation before the validation pass.</param>
internal sealed record EpochMetrics(double Epoch, PassMetrics Train, PassMetrics? Validation, TimeSpan Elapsed, TimeSpan TrainingTime = default, TimeSpan ValidationTime = default, TimeSpan CalibrationTime = default);

/// <summary>
/// Everything a checkpoint needs to continue a <see cref="NetworkTrainer.Fit"/> bit for bit: the network's state
/// (weights and norm statistics), the weight optimiser's state, the architecture step's state, how many weight steps
/// were taken (the data order is replayed from the seed) and the epochs so far.
/// </summary>
/// <param name="Batches">Weight steps taken.</param>
/// <param name="Network">The network's state (TorchSharp's module format).</param>
/// <param name="Optimizer">The weight optimiser's state (TorchSharp's optimiser format).</param>
/// <param name="Architecture">The architecture step's state, or null when there is none.</param>
/// <param name="Epochs">The epochs finished so far.</param>
internal sealed record FitState(int Batches, byte[] Network, byte[] Optimizer, byte[]? Architecture, IReadOnlyList<EpochMetrics> Epochs);

/// <summary>
/// A second step after every weight step: the differentiable search's update of the architecture weights. Called
/// inside the weight step's dispose scope, in training mode.
/// </summary>
internal interface IArchitectureStep
{
    /// <summary>Called before every weight step (for example to sample the architecture the step trains).</summary>
    void BeforeWeightStep(EquivariantNetwork network);

    /// <summary>Updates the architecture weights of <paramref name="network"/> once.</summary>
    void Step(EquivariantNetwork network);

    /// <summary>The step's own state (its optimiser, its data order) for a checkpoint; null when it keeps none.</summary>
    byte[]? SaveState() => null;

    /// <summary>Restores what <see cref="SaveState"/> returned, after the network's state is restored.</summary>
    void LoadState(byte[] state) => throw new NotSupportedException($"{GetType().Name} keeps no state to restore.");
}

/// <summary>
/// The one training loop of the engine, used by every mode that trains: mini-batches from a seeded
/// <see cref="BatchSampler"/>, one dispose scope per step, cancellation checked before every batch, an optional
/// architecture step after every weight step, batch-norm statistics re-estimated and the network evaluated (in
/// evaluation mode, without gradients) after every epoch, and an <see cref="EpochCompleted"/> event per epoch.
/// </summary>
internal sealed class NetworkTrainer
{
    public NetworkTrainer(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public TrainingOptions Options { get; }

    /// <summary>Raised after every epoch of <see cref="Fit"/> (the last one may be fractional).</summary>
    public event EventHandler<EpochMetrics>? EpochCompleted;

    /// <summary>
    /// Raised after <see cref="EpochCompleted"/> with the state to continue from (pass it to a later <see cref="Fit"/>
    /// as <c>resume</c>); the state is only gathered when someone listens.
    /// </summary>
    public event EventHandler<FitState>? StateSaved;

    /// <summary>
    /// One training step on one batch: forward, cross-entropy, backward, optimiser step. Returns the batch's summed loss
    /// and correct count. The caller owns the dispose scope.
    /// </summary>
    public static (double LossSum, long Correct, long Count) Step(EquivariantNetwork network, optim.Optimizer optimizer, Tensor images, Tensor labels)
    {
        var (loss, correct) = StepOnDevice(network, optimizer, images, labels);
        long n = labels.shape[0];
        return (loss.item<float>() * n, correct.item<long>(), n);
    }

    /// <summary>
    /// <see cref="Step"/> up to reading its results back: the batch's mean loss and correct count as tensors on the
    /// network's device (in the caller's dispose scope). The meta-device tests stop here: meta tensors hold no values.
    /// </summary>
    public static (Tensor Loss, Tensor Correct) StepOnDevice(EquivariantNetwork network, optim.Optimizer optimizer, Tensor images, Tensor labels)
    {
        optimizer.zero_grad();
        var logits = network.call(images);
        var loss = nn.functional.cross_entropy(logits, labels);
        loss.backward();
        optimizer.step();
        return (loss, logits.argmax(1).eq(labels).sum());
    }

    /// <summary>
    /// Trains <paramref name="network"/> for <paramref name="batches"/> mini-batches drawn from <paramref name="sampler"/>
    /// (each followed by <paramref name="architecture"/>'s step when given) and returns the loss and accuracy over them.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled (checked before every batch).</exception>
    public static PassMetrics TrainBatches(
        EquivariantNetwork network, optim.Optimizer optimizer, ImageDataset data, BatchSampler sampler, int batches,
        CancellationToken cancellationToken, IArchitectureStep? architecture = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(sampler);
        network.train();
        var device = network.Device;
        double lossSum = 0;
        long correct = 0, seen = 0;
        for (int b = 0; b < batches; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (images, labels) = data.Batch(sampler.Next(), device);
            architecture?.BeforeWeightStep(network);
            var (loss, right, n) = Step(network, optimizer, images, labels);
            lossSum += loss;
            correct += right;
            seen += n;
            architecture?.Step(network);
        }

        return new PassMetrics(seen == 0 ? double.NaN : lossSum / seen, seen == 0 ? double.NaN : (double)correct / seen, seen);
    }

    /// <summary>Loss and accuracy of <paramref name="network"/> on <paramref name="data"/> in evaluation mode.</summary>
    /// <remarks>The network is left in evaluation mode.</remarks>
    public static PassMetrics Evaluate(EquivariantNetwork network, ImageDataset data, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(data);
        network.eval();
        var device = network.Device;
        using var noGrad = torch.no_grad();
        double lossSum = 0;
        long correct = 0;
        for (long start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            long end = Math.Min(start + batchSize, data.Count);
            var logits = network.call(ImageDataset.To(data.Slice(start, end - start), device));
            var labels = ImageDataset.To(data.Labels.narrow(0, start, end - start), device);
            lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(labels).sum().item<long>();
        }

        return new PassMetrics(lossSum / data.Count, (double)correct / data.Count, data.Count);
    }

    /// <summary>Evaluates with this trainer's evaluation batch size.</summary>
    public PassMetrics Evaluate(EquivariantNetwork network, ImageDataset data, CancellationToken cancellationToken) =>
        Evaluate(network, data, Options.EvaluationBatchSize, cancellationToken);

    /// <summary>
    /// Trains <paramref name="network"/>'s weights for <paramref name="epochs"/> epochs (fractional allowed) with a new
    /// optimiser, with <paramref name="architecture"/>'s step after every weight step when given, evaluating on
    /// <paramref name="validation"/> after each epoch when given (or, with <paramref name="evaluateEveryEpoch"/> false,
    /// after the last one only), and raising <see cref="EpochCompleted"/> and <see cref="StateSaved"/>.
    /// </summary>
    /// <remarks>
    /// With <c>resume</c>, a state that <see cref="StateSaved"/> gave for this network, data, seed and options, the
    /// network, the optimisers and the data order are restored and training continues after its last epoch, so that
    /// the result is the same, bit for bit, as one uninterrupted call. The epochs it holds are returned too, but not
    /// raised again.
    /// Skipping the evaluation of the earlier epochs changes nothing but those epochs' validation records: the norm
    /// statistics are re-estimated from scratch before every evaluation (training mode never reads them) and the
    /// evaluation changes no weight, so the final weights and metrics are the same bit for bit.
    /// </remarks>
    public IReadOnlyList<EpochMetrics> Fit(
        EquivariantNetwork network, ImageDataset train, ImageDataset? validation, double epochs, int seed,
        CancellationToken cancellationToken, IArchitectureStep? architecture = null, bool evaluateEveryEpoch = true, FitState? resume = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(train);
        var sampler = new BatchSampler(train.Count, Options.BatchSize, seed);
        int total = sampler.BatchesFor(epochs);
        using var optimizer = Options.CreateOptimizer(network.WeightParameters());
        var history = new List<EpochMetrics>();
        var watch = Stopwatch.StartNew();
        var elapsedBefore = TimeSpan.Zero;
        int done = 0;
        if (resume is not null)
        {
            if (resume.Batches > total)
            {
                throw new ArgumentException($"The state to resume from has {resume.Batches} weight steps, more than the {total} of this training.", nameof(resume));
            }

            TrainingState.LoadNetwork(network, resume.Network);
            TrainingState.LoadOptimizer(optimizer, resume.Optimizer);
            if (resume.Architecture is { } state)
            {
                (architecture ?? throw new ArgumentException("The state to resume from has an architecture step's state, but no architecture step was given.", nameof(resume))).LoadState(state);
            }

            sampler.Skip(resume.Batches);
            done = resume.Batches;
            history.AddRange(resume.Epochs);
            elapsedBefore = resume.Epochs.Count > 0 ? resume.Epochs[^1].Elapsed : TimeSpan.Zero;
        }

        while (done < total)
        {
            var epochWatch = Stopwatch.StartNew();
            int batches = Math.Min(sampler.BatchesPerEpoch, total - done);
            var trainMetrics = TrainBatches(network, optimizer, train, sampler, batches, cancellationToken, architecture);
            done += batches;
            var trainingTime = epochWatch.Elapsed;
            PassMetrics? validationMetrics = null;
            TimeSpan calibrationTime = default, validationTime = default;
            if (evaluateEveryEpoch || done == total)
            {
                epochWatch.Restart();
                NormCalibration.Recalibrate(network, train, Options.NormCalibrationImages, Options.EvaluationBatchSize);
                calibrationTime = epochWatch.Elapsed;
                epochWatch.Restart();
                validationMetrics = validation is null ? null : Evaluate(network, validation, cancellationToken);
                validationTime = epochWatch.Elapsed;
            }

            var metrics = new EpochMetrics(sampler.EpochsDrawn, trainMetrics, validationMetrics, elapsedBefore + watch.Elapsed, trainingTime, validationTime, calibrationTime);
            history.Add(metrics);
            EpochCompleted?.Invoke(this, metrics);
            if (StateSaved is { } saved)
            {
                saved(this, new FitState(done, TrainingState.SaveNetwork(network), TrainingState.SaveOptimizer(optimizer), architecture?.SaveState(), history.ToArray()));
            }
        }

        return history;
    }
}
