using System.Diagnostics;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Training;

namespace Equinas.Benchmarks;

/// <summary>A fixed network (every layer one group) trained and tested as a baseline for the searches.</summary>
/// <param name="Architecture">Per-layer groups, e.g. "D4-D4-D4-D4-D4".</param>
/// <param name="Parameters">Trainable scalars.</param>
/// <param name="ValidationAccuracy">After the last epoch.</param>
/// <param name="TestAccuracy">On the test set.</param>
/// <param name="Seconds">Wall-clock of training and testing.</param>
internal sealed record FixedBaseline(string Architecture, long Parameters, double ValidationAccuracy, double TestAccuracy, double Seconds)
{
    /// <summary>Trains <paramref name="template"/> with every layer <paramref name="group"/> for <paramref name="epochs"/> epochs.</summary>
    public static FixedBaseline Train(
        NetworkSpec template, SymmetryGroup group, ImageDataset train, ImageDataset validation, ImageDataset test,
        double epochs, TrainingOptions training, int seed) =>
        Train(template, NetworkPresets.Uniform(group, template.Layers.Count), train, validation, test, epochs, training, seed);

    /// <summary>Trains <paramref name="template"/> with the given per-layer groups (a chain) for <paramref name="epochs"/> epochs.</summary>
    public static FixedBaseline Train(
        NetworkSpec template, IReadOnlyList<SymmetryGroup> groups, ImageDataset train, ImageDataset validation, ImageDataset test,
        double epochs, TrainingOptions training, int seed)
    {
        var watch = Stopwatch.StartNew();
        using var net = SeededInit.Create(seed, () => new GroupCnn(template.WithGroups(groups)));
        return Fit(net, string.Join("-", net.Spec.Groups.Select(g => g.Name)), net.ParameterCount, train, validation, test, epochs, training, seed, watch);
    }

    /// <summary>
    /// Trains any chain of groups, nested or not (e.g. C1-C1-C1-C1-D4), as a mixed network with z frozen one-hot on
    /// each layer's group: exactly the network of that chain, equivariant to the intersection of its groups.
    /// </summary>
    public static FixedBaseline TrainChain(
        NetworkSpec template, IReadOnlyList<SymmetryGroup> chain, ImageDataset train, ImageDataset validation, ImageDataset test,
        double epochs, TrainingOptions training, int seed)
    {
        var watch = Stopwatch.StartNew();
        var members = SymmetryGroup.All;
        using var net = SeededInit.Create(seed, () => new Equinas.MLNet.Mixed.MixedGroupCnn(new Equinas.MLNet.Mixed.MixedNetworkSpec(template, members)));
        net.FreezeZ(chain.Select(g => members.Select(m => m == g ? 1.0 : 0.0).ToArray()).ToArray());
        return Fit(net, string.Join("-", chain.Select(g => g.Name)), net.WeightParameters().Sum(p => p.numel()), train, validation, test, epochs, training, seed, watch);
    }

    /// <summary>Trains a built network, tests it and records the outcome.</summary>
    private static FixedBaseline Fit(
        EquivariantNetwork net, string architecture, long parameters, ImageDataset train, ImageDataset validation, ImageDataset test,
        double epochs, TrainingOptions training, int seed, Stopwatch watch)
    {
        var history = new NetworkTrainer(training).Fit(net, train, validation, epochs, seed, CancellationToken.None);
        var accuracy = NetworkTrainer.Evaluate(net, test, training.EvaluationBatchSize, CancellationToken.None).Accuracy;
        return new FixedBaseline(architecture, parameters, history[^1].Validation!.Value.Accuracy, accuracy, watch.Elapsed.TotalSeconds);
    }
}
