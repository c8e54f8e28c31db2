using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Execution;
using Equinas.MLNet.Search.Training;
using Equinas.MLNet.Tests.Search;
using TorchSharp;
using Xunit;

namespace Equinas.MLNet.Tests.Search.Execution;

public class CandidateExecutorTests : TorchTestBase
{
    internal static readonly NetworkSpec Template =
        NetworkSpec.FromChannels(1, NetworkPresets.Uniform(SymmetryGroup.D4, 3), [16, 32, 32], 3, [0, 1], classes: 3, headHidden: 0);

    internal static EvolutionOptions Budget(int workers) => new()
    {
        PopulationSize = 2,
        Generations = 2,
        EpochsPerGeneration = 0.5,
        Training = new TrainingOptions { BatchSize = 16, LearningRate = 3e-3 },
        Seed = 4,
        Workers = workers,
        ThreadsPerWorker = 1,
    };

    /// <summary>Everything a search produced, as text (doubles round-tripped) and the returned network's weights.</summary>
    internal static (string[] History, float[] Weights) Outcome(EvolutionResult result) =>
        (result.History.SelectMany(g => g.Candidates)
            .Select(c => $"{c.Generation} {c.Id} {c.ParentId} {c.Change} {string.Join("-", c.Groups)} {c.Parameters} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.TrainLoss:R} {c.Survived}")
            .ToArray(),
        result.Network.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray());

    [Fact]
    public void Parallel_searches_give_the_sequential_result_bit_for_bit_with_2_and_3_workers()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        (string[] History, float[] Weights) Run(int workers)
        {
            using var result = new EvolutionarySearch(Budget(workers)).Run(Template, train, validation);
            return Outcome(result);
        }

        var sequential = Run(1);
        Assert.True(sequential.History.Length >= 9, $"{sequential.History.Length} candidates");
        foreach (int workers in new[] { 2, 3 })
        {
            var parallel = Run(workers);
            Assert.Equal(sequential.History, parallel.History);
            Assert.Equal(sequential.Weights, parallel.Weights);
        }

        // The executor put libtorch's default thread count back.
        Assert.Equal(Threads, torch.get_num_threads());
    }

    [Fact]
    public void A_fresh_process_gives_the_bits_of_a_warm_one()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var training = Budget(2).Training;
        (List<int> Finished, string[] Metrics, float[] Weights) Run(bool fresh)
        {
            var networks = Enumerable.Range(0, 4).Select(i => SeededInit.Create(10 + i, () => new GroupCnn(Template))).ToArray();
            var jobs = networks.Select((n, i) => new CandidateJob(i, n, 0.5, 100 + i)).ToArray();
            var finished = new List<int>();
            if (fresh)
            {
                FirstTraining.Process.Forget();
            }

            try
            {
                var outcomes = new InProcessExecutor(2, 1).Execute(new CandidateBatch(jobs, train, validation, training), o => finished.Add(o.Id), CancellationToken.None);
                Assert.Equal([0, 1, 2, 3], outcomes.Select(o => o.Id));
                return (finished,
                    outcomes.Select(o => $"{o.Id} {o.Last.Train.Loss:R} {o.Last.Validation?.Loss:R} {o.Last.Validation?.Accuracy:R}").ToArray(),
                    outcomes.SelectMany(o => o.Network.parameters().SelectMany(p => p.data<float>().ToArray())).ToArray());
            }
            finally
            {
                foreach (var network in networks)
                {
                    network.Dispose();
                }
            }
        }

        var fresh = Run(fresh: true);
        Assert.True(FirstTraining.Process.Done);
        Assert.Equal(4, fresh.Finished.Distinct().Count());
        var warm = Run(fresh: false);
        Assert.Equal(4, warm.Finished.Distinct().Count());
        Assert.Equal(warm.Metrics, fresh.Metrics);
        Assert.Equal(warm.Weights, fresh.Weights);
        Assert.Equal(Threads, torch.get_num_threads());
    }

    [Fact]
    public void A_fresh_process_s_first_training_runs_alone_and_later_ones_together()
    {
        var gate = new FirstTraining(); // not the process's: other tests train at the same time
        int running = 0, most = 0;
        int Work()
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            Thread.Sleep(500);
            Interlocked.Decrement(ref running);
            return now;
        }

        // Three trainings arrive together in a fresh process: the first runs alone, the two that waited run at once.
        using var start = new Barrier(3);
        var threads = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            gate.Run(Work);
        })).ToArray();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        Assert.True(gate.Done);
        Assert.Equal(2, most);
        Assert.InRange(watch.Elapsed.TotalMilliseconds, 950, 6000); // two rounds of 500 ms, not three or one

        // A first training that fails leaves the next one first.
        var another = new FirstTraining();
        Assert.Throws<InvalidOperationException>(() => another.Run<int>(() => throw new InvalidOperationException("first")));
        Assert.False(another.Done);
        Assert.Equal(7, another.Run(() => 7));
        Assert.True(another.Done);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    [Fact]
    public void An_executor_that_ships_candidates_as_bytes_gives_the_same_result()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        long liveBefore = LiveNetworksSettled();
        (string[] History, float[] Weights) inProcess, shipped;
        using (var result = new EvolutionarySearch(Budget(2)).Run(Template, train, validation))
        {
            inProcess = Outcome(result);
        }

        var executor = new ShippingExecutor();
        using (var result = new EvolutionarySearch(Budget(2)) { Executor = executor }.Run(Template, train, validation))
        {
            shipped = Outcome(result);
        }

        Assert.True(executor.Shipped >= 9, $"{executor.Shipped} jobs shipped");
        Assert.Equal(inProcess.History, shipped.History);
        Assert.Equal(inProcess.Weights, shipped.Weights);
        Assert.Equal(liveBefore, GroupCnn.LiveInstances);
    }

    [Fact]
    public void A_failing_job_stops_the_generation_and_its_error_comes_through()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        long liveBefore = LiveNetworksSettled();
        var search = new EvolutionarySearch(Budget(3));
        int evaluated = 0;
        search.CandidateEvaluated += (_, c) =>
        {
            if (Interlocked.Increment(ref evaluated) == 2)
            {
                throw new InvalidOperationException("listener failed");
            }
        };
        var error = Assert.Throws<InvalidOperationException>(() => search.Run(Template, train, validation));
        Assert.Equal("listener failed", error.Message);
        Assert.Equal(2, evaluated);
        Assert.Equal(liveBefore, GroupCnn.LiveInstances);
    }

    /// <summary>
    /// What a cluster executor does, in process: every job's network goes out as bytes (architecture and weights), is
    /// rebuilt, trained and sent back as bytes, and the search gets a new network; the job's own is disposed.
    /// </summary>
    private sealed class ShippingExecutor : ICandidateExecutor
    {
        private readonly InProcessExecutor _workers = new(2, 1);

        public int Shipped { get; private set; }

        public int ThreadsPerJob => _workers.ThreadsPerJob;

        public IReadOnlyList<CandidateOutcome> Execute(CandidateBatch batch, Action<CandidateOutcome>? finished, CancellationToken cancellationToken)
        {
            var remote = batch.Jobs.Select(j => j with { Network = Ship(j.Network) }).ToArray();
            IReadOnlyList<CandidateOutcome> trained;
            try
            {
                trained = _workers.Execute(batch with { Jobs = remote }, null, cancellationToken);
            }
            catch
            {
                foreach (var job in remote)
                {
                    job.Network.Dispose();
                }

                throw;
            }

            var outcomes = new List<CandidateOutcome>();
            for (int i = 0; i < trained.Count; i++)
            {
                var back = trained[i] with { Network = Ship(trained[i].Network) };
                trained[i].Network.Dispose();
                batch.Jobs[i].Network.Dispose();
                finished?.Invoke(back);
                outcomes.Add(back);
                Shipped++;
            }

            return outcomes;
        }

        private static GroupCnn Ship(GroupCnn network)
        {
            using var architecture = new MemoryStream();
            using var weights = new MemoryStream();
            using (var a = new BinaryWriter(architecture, System.Text.Encoding.UTF8, leaveOpen: true))
            using (var w = new BinaryWriter(weights, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                new StoredNetwork(network).Save(a, w);
            }

            architecture.Position = 0;
            weights.Position = 0;
            return (GroupCnn)StoredNetwork.Load(new BinaryReader(architecture), new BinaryReader(weights)).Network;
        }
    }
}
