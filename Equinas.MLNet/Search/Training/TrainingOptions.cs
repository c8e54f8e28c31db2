#nullable enable
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Training;

/// <summary>The optimisers the training loop offers.</summary>
internal enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with optional momentum (the paper's EquiNAS_E runs use plain SGD, lr 0.1).</summary>
    Sgd,

    /// <summary>Adam (the paper's EquiNAS_D runs).</summary>
    Adam,
}

/// <summary>Settings of the shared training loop.</summary>
internal sealed record TrainingOptions
{
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;

    public double LearningRate { get; init; } = SearchDefaults.LearningRate;

    /// <summary>Momentum for SGD (ignored by Adam).</summary>
    public double Momentum { get; init; } = 0.9;

    public double WeightDecay { get; init; }

    public int BatchSize { get; init; } = SearchDefaults.BatchSize;

    /// <summary>Batch size for evaluation (no gradients, so larger batches are cheap).</summary>
    public int EvaluationBatchSize { get; init; } = 256;

    /// <summary>
    /// Training images used to re-estimate the normalisation statistics with the final weights before every
    /// evaluation (0 turns it off); see <see cref="NormCalibration"/>.
    /// </summary>
    public int NormCalibrationImages { get; init; } = 1024;

    /// <summary>
    /// The device networks are made on and trained on (null: the CPU). The data stays on the CPU; each batch is moved to
    /// the network's device.
    /// </summary>
    public Device? Device { get; init; }

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    public void Validate()
    {
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "Must be positive.");
        }

        if (!(Momentum >= 0 && Momentum < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Must be in [0, 1).");
        }

        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay))
        {
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "Must be non-negative.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(EvaluationBatchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(NormCalibrationImages);
    }

    /// <summary>A new optimiser over the given parameters (all of them: a relaxed layer is trained from its first step).</summary>
    public optim.Optimizer CreateOptimizer(IEnumerable<Parameter> parameters) => Optimizer switch
    {
        OptimizerKind.Sgd => optim.SGD(parameters, LearningRate, Momentum, weight_decay: WeightDecay),
        OptimizerKind.Adam => optim.Adam(parameters, LearningRate, weight_decay: WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(Optimizer), Optimizer, "Unknown optimizer."),
    };
}
