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

    /// <summary>The engine tests' motif task (the same file, linked into this project).</summary>
    public static ImageDataset Motifs(int count, int classes, int size, int seed) =>
        Equinas.MLNet.Tests.Search.SyntheticData.Motifs(count, classes, size, seed);
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
