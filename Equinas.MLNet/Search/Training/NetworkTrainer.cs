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
/// <param name="TrainingTime">Time of this epoch's steps and the norm re-estimation.</param>
/// <param name="ValidationTime">Time of this epoch's validation pass.</param>
internal sealed record EpochMetrics(double Epoch, PassMetrics Train, PassMetrics? Validation, TimeSpan Elapsed, TimeSpan TrainingTime = default, TimeSpan ValidationTime = default);

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
    /// One training step on one batch: forward, cross-entropy, backward, optimiser step. Returns the batch's summed loss
    /// and correct count. The caller owns the dispose scope.
    /// </summary>
    public static (double LossSum, long Correct, long Count) Step(EquivariantNetwork network, optim.Optimizer optimizer, Tensor images, Tensor labels)
    {
        optimizer.zero_grad();
        var logits = network.call(images);
        var loss = nn.functional.cross_entropy(logits, labels);
        loss.backward();
        optimizer.step();
        long n = labels.shape[0];
        return (loss.item<float>() * n, logits.argmax(1).eq(labels).sum().item<long>(), n);
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
        double lossSum = 0;
        long correct = 0, seen = 0;
        for (int b = 0; b < batches; b++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (images, labels) = data.Batch(sampler.Next());
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
        using var noGrad = torch.no_grad();
        double lossSum = 0;
        long correct = 0;
        for (long start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            long end = Math.Min(start + batchSize, data.Count);
            var logits = network.call(data.Images.narrow(0, start, end - start));
            var labels = data.Labels.narrow(0, start, end - start);
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
    /// <paramref name="validation"/> after each epoch when given, and raising <see cref="EpochCompleted"/>.
    /// </summary>
    public IReadOnlyList<EpochMetrics> Fit(
        EquivariantNetwork network, ImageDataset train, ImageDataset? validation, double epochs, int seed,
        CancellationToken cancellationToken, IArchitectureStep? architecture = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(train);
        var sampler = new BatchSampler(train.Count, Options.BatchSize, seed);
        int total = sampler.BatchesFor(epochs);
        using var optimizer = Options.CreateOptimizer(network.WeightParameters());
        var history = new List<EpochMetrics>();
        var watch = Stopwatch.StartNew();
        int done = 0;
        while (done < total)
        {
            var epochWatch = Stopwatch.StartNew();
            int batches = Math.Min(sampler.BatchesPerEpoch, total - done);
            var trainMetrics = TrainBatches(network, optimizer, train, sampler, batches, cancellationToken, architecture);
            done += batches;
            NormCalibration.Recalibrate(network, train, Options.NormCalibrationImages, Options.EvaluationBatchSize);
            var trainingTime = epochWatch.Elapsed;
            epochWatch.Restart();
            PassMetrics? validationMetrics = validation is null ? null : Evaluate(network, validation, cancellationToken);
            var metrics = new EpochMetrics(sampler.EpochsDrawn, trainMetrics, validationMetrics, watch.Elapsed, trainingTime, epochWatch.Elapsed);
            history.Add(metrics);
            EpochCompleted?.Invoke(this, metrics);
        }

        return history;
    }
}
