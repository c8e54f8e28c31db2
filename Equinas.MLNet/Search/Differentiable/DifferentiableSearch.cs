#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Differentiable;

/// <summary>One epoch of EquiNAS_D.</summary>
/// <param name="Epoch">Epochs of training data seen (the last may be fractional).</param>
/// <param name="Phase">"search", "fine-tune" or "retrain".</param>
/// <param name="Z">z per layer (in member order) at the end of the epoch.</param>
/// <param name="Train">Loss and accuracy over the epoch's weight-update batches.</param>
/// <param name="Validation">Loss and accuracy on the held-out set after the epoch.</param>
/// <param name="Elapsed">Time since the search started.</param>
internal sealed record DifferentiableEpoch(double Epoch, string Phase, IReadOnlyList<double[]> Z, PassMetrics Train, PassMetrics Validation, TimeSpan Elapsed);

/// <summary>The outcome of EquiNAS_D: the trained mixed network (owned; dispose it) and its history.</summary>
internal sealed class DifferentiableResult : IDisposable
{
    private bool _detached;

    public DifferentiableResult(MixedGroupCnn network, IReadOnlyList<SymmetryGroup> argmaxGroups, IReadOnlyList<DifferentiableEpoch> history, FinalArchitecture final)
    {
        Network = network;
        ArgmaxGroups = argmaxGroups;
        History = history;
        Final = final;
    }

    /// <summary>The network in evaluation mode (mixture kept, or one-hot z frozen after discretisation).</summary>
    public MixedGroupCnn Network { get; }

    /// <summary>Per layer, the member with the largest learned z.</summary>
    public IReadOnlyList<SymmetryGroup> ArgmaxGroups { get; }

    public IReadOnlyList<DifferentiableEpoch> History { get; }

    public FinalArchitecture Final { get; }

    /// <summary>Hands the network to the caller (who then owns it); disposing this result no longer disposes it.</summary>
    public MixedGroupCnn DetachNetwork()
    {
        _detached = true;
        return Network;
    }

    public void Dispose()
    {
        if (!_detached)
        {
            Network.Dispose();
        }
    }
}

/// <summary>
/// EquiNAS_D (method note section 6): every layer is a [G]-mixed layer; each step updates the weights on a training
/// batch with one optimiser and then the architecture logits on a held-out batch (or a second training batch) with
/// another, each with its own zeroed gradients. z per layer is recorded every epoch. At the end the mixture is kept,
/// or each layer is set to its argmax group and the weights fine-tuned or retrained.
/// </summary>
internal sealed class DifferentiableSearch
{
    public DifferentiableSearch(DifferentiableOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public DifferentiableOptions Options { get; }

    /// <summary>Raised after every epoch.</summary>
    public event EventHandler<DifferentiableEpoch>? EpochCompleted;

    /// <summary>Runs the search on <paramref name="train"/>, with <paramref name="heldOut"/> for validation (and the alpha batches by default).</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled (checked before every batch); the network is disposed.</exception>
    public DifferentiableResult Run(NetworkSpec template, ImageDataset train, ImageDataset heldOut, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(heldOut);
        var spec = new MixedNetworkSpec(template, Options.MemberGroups, Options.Initialization, Options.Temperature);
        var watch = Stopwatch.StartNew();
        var history = new List<DifferentiableEpoch>();
        torch.manual_seed(Options.Seed);
        var network = new MixedGroupCnn(spec);
        try
        {
            Search(network, train, heldOut, history, watch, cancellationToken);
            var argmax = network.ArgmaxGroups();
            if (Options.Final != FinalArchitecture.KeepMixture)
            {
                var oneHot = argmax.Select(g => spec.Members.Select(m => m == g ? 1.0 : 0.0).ToArray()).ToArray();
                if (Options.Final == FinalArchitecture.DiscretizeAndRetrain)
                {
                    network.Dispose();
                    torch.manual_seed(Options.Seed + 1);
                    network = new MixedGroupCnn(spec);
                }

                network.FreezeZ(oneHot);
                string phase = Options.Final == FinalArchitecture.DiscretizeAndRetrain ? "retrain" : "fine-tune";
                var trainer = new NetworkTrainer(Options.Training);
                trainer.EpochCompleted += (_, e) => Record(history, new DifferentiableEpoch(e.Epoch, phase, network.Z(), e.Train, e.Validation!.Value, watch.Elapsed));
                trainer.Fit(network, train, heldOut, Options.FinalEpochs, unchecked(Options.Seed * 31 + 7), cancellationToken);
            }

            network.eval();
            return new DifferentiableResult(network, argmax, history, Options.Final);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Search(MixedGroupCnn network, ImageDataset train, ImageDataset heldOut, List<DifferentiableEpoch> history, Stopwatch watch, CancellationToken cancellationToken)
    {
        using var weightOptimizer = Options.Training.CreateOptimizer(network.WeightParameters());
        using var alphaOptimizer = optim.Adam(network.ArchitectureParameters(), Options.ArchitectureLearningRate);
        var sampler = new BatchSampler(train.Count, Options.Training.BatchSize, Options.Seed);
        var alphaSampler = Options.ArchitectureBatches == ArchitectureBatches.HeldOut
            ? new BatchSampler(heldOut.Count, Options.Training.BatchSize, unchecked(Options.Seed + 1_000_003))
            : new BatchSampler(train.Count, Options.Training.BatchSize, unchecked(Options.Seed + 1_000_003));
        var alphaData = Options.ArchitectureBatches == ArchitectureBatches.HeldOut ? heldOut : train;
        int total = sampler.BatchesFor(Options.Epochs);
        int done = 0;
        while (done < total)
        {
            int batches = Math.Min(sampler.BatchesPerEpoch, total - done);
            double lossSum = 0;
            long correct = 0, seen = 0;
            network.train();
            for (int b = 0; b < batches; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();

                // Weights on a training batch.
                var (images, labels) = Batch(train, sampler.Next());
                weightOptimizer.zero_grad();
                var logits = network.call(images);
                var loss = nn.functional.cross_entropy(logits, labels);
                loss.backward();
                weightOptimizer.step();
                lossSum += loss.item<float>() * labels.shape[0];
                correct += logits.argmax(1).eq(labels).sum().item<long>();
                seen += labels.shape[0];

                // Architecture logits on another batch, with their own zeroed gradients.
                var (alphaImages, alphaLabels) = Batch(alphaData, alphaSampler.Next());
                alphaOptimizer.zero_grad();
                nn.functional.cross_entropy(network.call(alphaImages), alphaLabels).backward();
                alphaOptimizer.step();
            }

            done += batches;
            NormCalibration.Recalibrate(network, train, Options.Training.NormCalibrationImages, Options.Training.EvaluationBatchSize);
            var validation = NetworkTrainer.Evaluate(network, heldOut, Options.Training.EvaluationBatchSize, cancellationToken);
            Record(history, new DifferentiableEpoch(sampler.EpochsDrawn, "search", network.Z(), new PassMetrics(lossSum / seen, (double)correct / seen, seen), validation, watch.Elapsed));
        }
    }

    private static (Tensor Images, Tensor Labels) Batch(ImageDataset data, long[] rows)
    {
        var index = torch.tensor(rows, device: data.Images.device);
        return (data.Images.index_select(0, index), data.Labels.index_select(0, index));
    }

    private void Record(List<DifferentiableEpoch> history, DifferentiableEpoch epoch)
    {
        history.Add(epoch);
        EpochCompleted?.Invoke(this, epoch);
    }
}
