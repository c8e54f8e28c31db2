using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Training;
using Orleans.Configuration;
using Orleans.TestingHost;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Orleans.Tests;

/// <summary>A tiny search (as in the engine's executor tests) and helpers shared by the cluster tests.</summary>
internal static class TinySearch
{
    public static readonly NetworkSpec Template =
        NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.D4, 3), [16, 32, 32], 3, [0, 1], classes: 3, headHidden: 0);

    public static EvolutionOptions Budget(int generations = 2) => new()
    {
        PopulationSize = 2,
        Generations = generations,
        EpochsPerGeneration = 0.5,
        Training = new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 },
        Seed = 4,
        Workers = 2,
        ThreadsPerWorker = 1,
    };

    /// <summary>Everything a search produced, as text (doubles round-tripped), and the returned network's weights.</summary>
    public static (string[] History, float[] Weights) Outcome(EvolutionResult result) =>
        (result.History.SelectMany(g => g.Candidates)
            .Select(c => $"{c.Generation} {c.Id} {c.ParentId} {c.Change} {string.Join("-", c.Groups)} {c.Parameters} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.TrainLoss:R} {c.Survived}")
            .ToArray(),
        result.Network.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray());

    /// <summary>Each class a fixed 5x5 motif at a random place and orientation, plus noise.</summary>
    public static ImageDataset Motifs(int count, int classes, int size, int seed)
    {
        var motifRandom = new Random(42);
        var motifs = Enumerable.Range(0, classes).Select(_ => Enumerable.Range(0, 25).Select(_ => motifRandom.NextDouble() < 0.5 ? 1f : 0f).ToArray()).ToArray();
        var random = new Random(seed);
        var pixels = new float[count * size * size];
        var labels = new long[count];
        for (int n = 0; n < count; n++)
        {
            int label = n % classes;
            labels[n] = label;
            var source = PixelAction.SourceIndices(D4Element.FromIndex(random.Next(8)), 5, 5);
            int top = random.Next(size - 5), left = random.Next(size - 5);
            for (int p = 0; p < 25; p++)
            {
                pixels[(n * size * size) + ((top + (p / 5)) * size) + left + (p % 5)] = motifs[label][source[p]];
            }

            for (int p = 0; p < size * size; p++)
            {
                pixels[(n * size * size) + p] += (float)(0.2 * random.NextDouble());
            }
        }

        return new ImageDataset(torch.tensor(pixels, [count, 1, size, size]), torch.tensor(labels), classes);
    }
}

/// <summary>Every test silo is an Equinas worker with one slot, and dead silos are noticed within seconds.</summary>
public sealed class WorkerSilo : ISiloConfigurator
{
    public void Configure(ISiloBuilder siloBuilder)
    {
        siloBuilder.AddEquinasWorker();
        siloBuilder.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 1;
            o.NumVotesForDeathDeclaration = 1;
        });
    }
}

/// <summary>Starts TestingHost clusters of worker silos on loopback.</summary>
internal static class TestClusters
{
    public static async Task<TestCluster> Start(int silos)
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.AddSiloBuilderConfigurator<WorkerSilo>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}
