#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search.Differentiable;

/// <summary>What an epoch of EquiNAS_D trained.</summary>
internal enum DifferentiablePhase
{
    /// <summary>Warm-up before the search: the mixed network's weights only, z fixed.</summary>
    Warmup,

    /// <summary>The search: weights and architecture logits of the mixed network.</summary>
    Search,

    /// <summary>The chosen groups retrained from scratch as an ordinary G-CNN.</summary>
    Retrain,
}

/// <summary>One epoch of EquiNAS_D.</summary>
/// <param name="Epoch">Epochs of training data seen in this phase (the last may be fractional).</param>
/// <param name="Phase">Search or retraining.</param>
/// <param name="Z">z per layer (in member order) at the end of the epoch; for retraining, one-hot on the chosen groups.</param>
/// <param name="Train">Loss and accuracy over the epoch's weight-update batches.</param>
/// <param name="Validation">Loss and accuracy on the held-out set after the epoch.</param>
/// <param name="Elapsed">Time since the search started.</param>
/// <param name="Parameters">Trainable weights of the network this epoch trained (architecture logits excluded).</param>
internal sealed record DifferentiableEpoch(double Epoch, DifferentiablePhase Phase, IReadOnlyList<double[]> Z, PassMetrics Train, PassMetrics Validation, TimeSpan Elapsed, long Parameters);

/// <summary>The outcome of EquiNAS_D: the trained network (owned; dispose it or take it) and its history.</summary>
internal sealed class DifferentiableResult : IDisposable
{
    private EquivariantNetwork? _network;

    public DifferentiableResult(EquivariantNetwork network, IReadOnlyList<SymmetryGroup> members, IReadOnlyList<double[]> z, IReadOnlyList<SymmetryGroup> argmaxGroups, IReadOnlyList<SymmetryGroup>? retrainedGroups, IReadOnlyList<DifferentiableEpoch> history)
    {
        _network = network;
        Members = members;
        Z = z;
        ArgmaxGroups = argmaxGroups;
        RetrainedGroups = retrainedGroups;
        History = history;
    }

    /// <summary>The network in evaluation mode: the mixed network, or the retrained G-CNN.</summary>
    public EquivariantNetwork Network => _network ?? throw new ObjectDisposedException(nameof(DifferentiableResult), "The network was taken or disposed.");

    /// <summary>The groups every mixed layer mixed, in the order of <see cref="Z"/>.</summary>
    public IReadOnlyList<SymmetryGroup> Members { get; }

    /// <summary>The learned z per layer at the end of the search.</summary>
    public IReadOnlyList<double[]> Z { get; }

    /// <summary>Per layer, the member with the largest learned z.</summary>
    public IReadOnlyList<SymmetryGroup> ArgmaxGroups { get; }

    /// <summary>The chain of groups the retrained G-CNN has, or null when the mixture was kept.</summary>
    public IReadOnlyList<SymmetryGroup>? RetrainedGroups { get; }

    public IReadOnlyList<DifferentiableEpoch> History { get; }

    /// <summary>Hands the network to the caller, who then owns it.</summary>
    public EquivariantNetwork TakeNetwork()
    {
        var network = Network;
        _network = null;
        return network;
    }

    public void Dispose()
    {
        _network?.Dispose();
        _network = null;
    }
}

/// <summary>
/// EquiNAS_D (method note section 6): every layer is a [G]-mixed layer; the shared training loop updates the weights on
/// a training batch and then, as its architecture step, the architecture logits on a held-out batch (or a second
/// training batch) with their own optimiser and zeroed gradients. z per layer is recorded every epoch. At the end the
/// mixture is kept, or (with <see cref="DifferentiableOptions.RetrainEpochs"/>) the largest-z groups, made a chain, are
/// retrained from scratch as an ordinary G-CNN.
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

    /// <summary>Where the state after every epoch is written and a run resumes from (bit for bit); null for none.</summary>
    public CheckpointStore? Checkpoints { get; init; }

    /// <summary>Raised after every epoch of the search and of retraining.</summary>
    public event EventHandler<DifferentiableEpoch>? EpochCompleted;

    /// <summary>Raised once, before training, when the run continues from a checkpoint: the epochs read back.</summary>
    public event EventHandler<IReadOnlyList<DifferentiableEpoch>>? Resumed;

    /// <summary>
    /// The chosen groups made a chain, each layer's group inside the previous layer's, as a G-CNN needs: layer i gets
    /// the intersection of its choice with layer i-1's chain group.
    /// </summary>
    public static IReadOnlyList<SymmetryGroup> Chain(IReadOnlyList<SymmetryGroup> chosen)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        var chain = new SymmetryGroup[chosen.Count];
        for (int i = 0; i < chain.Length; i++)
        {
            chain[i] = i == 0 ? chosen[0] : chosen[i].Intersect(chain[i - 1]);
        }

        return chain;
    }

    /// <summary>Runs the search on <paramref name="train"/>, with <paramref name="heldOut"/> for validation (and the alpha batches by default).</summary>
    /// <exception cref="OperationCanceledException">The token was cancelled (checked before every batch); every network is disposed.</exception>
    public DifferentiableResult Run(NetworkSpec template, ImageDataset train, ImageDataset heldOut, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(heldOut);
        var spec = new MixedNetworkSpec(template, Options.MemberGroups, Options.Initialization, Options.Temperature);
        var watch = Stopwatch.StartNew();
        var checkpoint = new DifferentiableCheckpoint(Checkpoints);
        var history = new List<DifferentiableEpoch>(checkpoint.History);
        if (history.Count > 0)
        {
            Resumed?.Invoke(this, history.ToArray());
        }

        var network = SeededInit.Create(Options.Seed, () => new MixedGroupCnn(spec), Options.Training.Device);
        try
        {
            // Warm-up is not checkpointed: a resumed search restores the network (and its history) from the checkpoint.
            if (Options.WarmupEpochs > 0 && checkpoint.Search is null && checkpoint.Retrain is null)
            {
                var warmup = new NetworkTrainer(Options.Training);
                warmup.EpochCompleted += (_, e) => Record(history, new DifferentiableEpoch(e.Epoch, DifferentiablePhase.Warmup, network.Z(), e.Train, e.Validation!.Value, watch.Elapsed, network.ParameterCount));
                // A search of sampled chains warms up on chains drawn from the initial z (uniform by default), so that
                // every member's weights have been trained as part of a chain before the chains are compared.
                using var draws = Options.SampleArchitectures ? new WarmupDraws(Options.Seed) : null;
                warmup.Fit(network, train, heldOut, Options.WarmupEpochs, unchecked(Options.Seed + 2), cancellationToken, draws);
                network.Sample(null);
            }

            network.UseArgmaxInEvaluation(Options.SampleArchitectures);
            using (var architecture = new AlphaStep(network, Options, train, heldOut))
            {
                var trainer = new NetworkTrainer(Options.Training);
                trainer.EpochCompleted += (_, e) => Record(history, new DifferentiableEpoch(e.Epoch, DifferentiablePhase.Search, network.Z(), e.Train, e.Validation!.Value, watch.Elapsed, network.ParameterCount));
                trainer.StateSaved += (_, fit) => checkpoint.SaveSearch(history, fit);
                trainer.Fit(network, train, heldOut, Options.Epochs, Options.Seed, cancellationToken, architecture, resume: checkpoint.Search);
                network.Sample(null);
            }

            network.UseArgmaxInEvaluation(false);
            var z = network.Z();
            var argmax = network.ArgmaxGroups();
            if (Options.SampleArchitectures)
            {
                // A network trained on sampled chains is its largest-z chain: frozen one-hot, so that it is stored so.
                network.FreezeZ(argmax.Select(g => spec.Members.Select(m => m == g ? 1.0 : 0.0).ToArray()).ToArray());
            }

            if (Options.RetrainEpochs <= 0)
            {
                network.eval();
                return new DifferentiableResult(network, spec.Members, z, argmax, null, history);
            }

            network.Dispose();
            var chain = Chain(argmax);
            var retrained = SeededInit.Create(unchecked(Options.Seed + 1), () => new GroupCnn(template.WithGroups(chain)), Options.Training.Device);
            try
            {
                var oneHot = chain.Select(g => spec.Members.Select(m => m == g ? 1.0 : 0.0).ToArray()).ToArray();
                var trainer = new NetworkTrainer(Options.Training);
                trainer.EpochCompleted += (_, e) => Record(history, new DifferentiableEpoch(e.Epoch, DifferentiablePhase.Retrain, oneHot, e.Train, e.Validation!.Value, watch.Elapsed, retrained.ParameterCount));
                trainer.StateSaved += (_, fit) => checkpoint.SaveRetrain(history, fit);
                trainer.Fit(retrained, train, heldOut, Options.RetrainEpochs, unchecked(Options.Seed + 1), cancellationToken, resume: checkpoint.Retrain);
                retrained.PrepareForInference();
                return new DifferentiableResult(retrained, spec.Members, z, argmax, chain, history);
            }
            catch
            {
                retrained.Dispose();
                throw;
            }
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Record(List<DifferentiableEpoch> history, DifferentiableEpoch epoch)
    {
        history.Add(epoch);
        EpochCompleted?.Invoke(this, epoch);
    }

    /// <summary>Warm-up of a sampled search: draws a chain from z before every weight step and leaves z alone.</summary>
    private sealed class WarmupDraws(int seed) : IArchitectureStep, IDisposable
    {
        private long _steps;

        public void BeforeWeightStep(EquivariantNetwork network) =>
            ((MixedGroupCnn)network).Sample(new Random(unchecked((int)(((seed * 1_000_003L) + 5_000_011 + _steps++) % int.MaxValue))));

        public void Step(EquivariantNetwork network)
        {
        }

        public void Dispose()
        {
        }
    }

    /// <summary>The architecture step: one Adam update of the logits on a held-out (or second training) batch.</summary>
    internal sealed class AlphaStep : IArchitectureStep, IDisposable
    {
        private readonly optim.Optimizer _optimizer;
        private readonly BatchSampler _batches;
        private readonly ImageDataset _data;
        private readonly Parameter[] _alphas;
        private readonly int _seed;
        private readonly bool _shuffle;
        private readonly bool _sample;
        private readonly double _prior;
        private readonly MixedConv2d[] _convs;
        private readonly float[][] _bits;
        private readonly bool _scoreFunction;
        private double _baseline = double.NaN;

        public AlphaStep(MixedGroupCnn network, DifferentiableOptions options, ImageDataset train, ImageDataset heldOut)
        {
            _data = options.ArchitectureBatches == ArchitectureBatches.HeldOut ? heldOut : train;
            _batches = new BatchSampler(_data.Count, options.Training.BatchSize, unchecked(options.Seed + 1_000_003));
            _alphas = network.ArchitectureParameters().ToArray();
            _optimizer = optim.Adam(_alphas, options.ArchitectureLearningRate);
            _seed = options.Seed;
            _shuffle = options.ShuffleArchitectureGradients;
            _sample = options.SampleArchitectures;
            _prior = options.SymmetryPrior;
            _scoreFunction = options.ScoreFunctionGradients;
            _convs = network.Blocks.Select(b => b.Conv).ToArray();
            _bits = _convs.Select(c => c.Members.Select(m => (float)Math.Log2((double)c.Top.Order / m.Order)).ToArray()).ToArray();
        }

        public void BeforeWeightStep(EquivariantNetwork network)
        {
            if (_sample)
            {
                // A generator per step, derived from the seed and the step: nothing to checkpoint, and a resumed search
                // draws what an uninterrupted one draws.
                ((MixedGroupCnn)network).Sample(StepRandom(9_000_011, 0));
            }
        }

        public void Step(EquivariantNetwork network)
        {
            if (_sample)
            {
                ((MixedGroupCnn)network).Sample(StepRandom(9_000_011, 1));
            }

            var shuffle = _shuffle ? StepRandom(7_000_001, 0) : null;
            var (images, labels) = _data.Batch(_batches.Next(), network.Device);
            _optimizer.zero_grad();
            Tensor loss;
            if (_scoreFunction)
            {
                double chainLoss;
                using (torch.no_grad())
                {
                    chainLoss = nn.functional.cross_entropy(network.call(images), labels).item<float>();
                }

                double advantage = double.IsNaN(_baseline) ? 0 : chainLoss - _baseline;
                _baseline = double.IsNaN(_baseline) ? chainLoss : (0.9 * _baseline) + (0.1 * chainLoss);
                loss = torch.zeros(1, device: network.Device).sum();
                using var weight = advantage.ToScalar();
                foreach (var conv in _convs)
                {
                    // d log z_picked / d alpha: a chain that did worse than usual loses probability, a better one gains.
                    var logZ = nn.functional.log_softmax(conv.Logits(), 0);
                    loss = loss + logZ[conv.SampledMember!.Value].mul(weight);
                }
            }
            else
            {
                loss = nn.functional.cross_entropy(network.call(images), labels);
            }

            if (_prior > 0)
            {
                using var prior = _prior.ToScalar();
                for (int i = 0; i < _convs.Length; i++)
                {
                    loss = loss + (_convs[i].Z() * torch.tensor(_bits[i], device: loss.device)).sum().mul(prior);
                }
            }

            loss.backward();
            if (shuffle is not null)
            {
                using var noGrad = torch.no_grad();
                foreach (var alpha in _alphas)
                {
                    var order = Enumerable.Range(0, (int)alpha.shape[0]).Select(i => (long)i).ToArray();
                    shuffle.Shuffle(order);
                    var grad = alpha.grad!;
                    grad.copy_(DeviceOps.IndexSelect(grad, 0, torch.tensor(order, device: grad.device)));
                }
            }

            _optimizer.step();
        }

        /// <summary>The batches drawn (the order is replayed from the seed) and the logits' optimiser.</summary>
        public byte[] SaveState() => _scoreFunction
            ? [.. BitConverter.GetBytes(_batches.BatchesDrawn), .. BitConverter.GetBytes(_baseline), .. TrainingState.SaveOptimizer(_optimizer)]
            : [.. BitConverter.GetBytes(_batches.BatchesDrawn), .. TrainingState.SaveOptimizer(_optimizer)];

        public void LoadState(byte[] state)
        {
            _batches.Skip(BitConverter.ToInt64(state, 0) - _batches.BatchesDrawn);
            int offset = sizeof(long);
            if (_scoreFunction)
            {
                _baseline = BitConverter.ToDouble(state, offset);
                offset += sizeof(double);
            }

            TrainingState.LoadOptimizer(_optimizer, state[offset..]);
        }

        public void Dispose() => _optimizer.Dispose();

        /// <summary>The generator of this step's draws of one kind: from the seed, the kind and the steps taken.</summary>
        private Random StepRandom(int kind, int part) =>
            new(unchecked((int)(((_seed * 1_000_003L) + kind + (_batches.BatchesDrawn * 2) + part) % int.MaxValue)));
    }
}
