using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Evolution;
using Orleans.TestingHost;
using TorchSharp;
using Xunit;

namespace Equinas.MLNet.Orleans.Tests;

/// <summary>
/// EquiNAS_E on TestingHost clusters of worker silos (in this process, on loopback): the same result, bit for bit, as
/// in process, the data uploaded once per silo, and a silo stopped mid-generation costs nothing but time.
/// </summary>
public sealed class ClusterSearchTests
{
    static ClusterSearchTests()
    {
        // The CI machine has two cores; set before any parallel work (the engine tests do the same).
        torch.set_num_threads(2);
    }

    [Fact]
    public async Task A_search_on_three_silos_gives_the_in_process_result_bit_for_bit_and_uploads_the_data_once_per_silo()
    {
        using var train = TinySearch.Motifs(96, 3, 12, seed: 1);
        using var validation = TinySearch.Motifs(48, 3, 12, seed: 2);
        (string[] History, float[] Weights) inProcess, onCluster;
        using (var result = new EvolutionarySearch(TinySearch.Budget()).Run(TinySearch.Template, train, validation))
        {
            inProcess = TinySearch.Outcome(result);
        }

        // Settled first, so that a network an earlier test left to the finaliser is not counted.
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        long liveBefore = GroupCnn.LiveInstances;
        var cluster = await TestClusters.Start(3);
        try
        {
            var executor = new ClusterExecutor(cluster.Client, threadsPerJob: 1);
            var search = new EvolutionarySearch(TinySearch.Budget()) { Executor = executor };
            int evaluated = 0;
            search.CandidateEvaluated += (_, _) => Interlocked.Increment(ref evaluated);
            using (var result = await Task.Run(() => search.Run(TinySearch.Template, train, validation)))
            {
                onCluster = TinySearch.Outcome(result);
            }

            Assert.Equal(inProcess.History, onCluster.History);
            Assert.Equal(inProcess.Weights, onCluster.Weights);
            Assert.Equal(inProcess.History.Length, evaluated);
            var costs = executor.Costs;
            Assert.Equal(inProcess.History.Length, costs.Count);
            // The work was spread: every silo trained candidates.
            Assert.Equal(3, costs.Select(c => c.Worker).Distinct().Count());
            // Three generations, but the data went to each silo once.
            Assert.Equal(3, executor.Uploads);
            Assert.Equal(0, executor.Retries);
            Assert.Equal(liveBefore, GroupCnn.LiveInstances);
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_silo_killed_mid_generation_has_its_candidate_trained_elsewhere_with_the_same_result()
    {
        using var train = TinySearch.Motifs(96, 3, 12, seed: 1);
        using var validation = TinySearch.Motifs(48, 3, 12, seed: 2);
        (string[] History, float[] Weights) inProcess, onCluster;
        using (var result = new EvolutionarySearch(TinySearch.Budget()).Run(TinySearch.Template, train, validation))
        {
            inProcess = TinySearch.Outcome(result);
        }

        var cluster = await TestClusters.Start(3);
        try
        {
            // Not the first silo: TestingHost keeps the membership there.
            var victim = cluster.Silos[2];
            int generation = -1, killed = 0;
            var executor = new ClusterExecutor(cluster.Client, threadsPerJob: 1, new ClusterExecutionOptions { MembershipPollInterval = TimeSpan.FromMilliseconds(250) })
            {
                BeforeCall = async (silo, id) =>
                {
                    // The first candidate of generation 1 sent to the victim: the silo dies as the call goes out.
                    if (Volatile.Read(ref generation) >= 0 && silo.Equals(victim.SiloAddress) && Interlocked.Exchange(ref killed, 1) == 0)
                    {
                        await cluster.KillSiloAsync(victim);
                    }
                },
            };
            var search = new EvolutionarySearch(TinySearch.Budget()) { Executor = executor };
            search.GenerationCompleted += (_, g) => Volatile.Write(ref generation, g.Generation);
            using (var result = await Task.Run(() => search.Run(TinySearch.Template, train, validation)))
            {
                onCluster = TinySearch.Outcome(result);
            }

            Assert.Equal(1, killed);
            Assert.True(executor.Retries >= 1, "no call was retried");
            Assert.Equal(inProcess.History, onCluster.History);
            Assert.Equal(inProcess.Weights, onCluster.Weights);
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_lost_answer_is_fetched_again_and_a_lost_request_sent_again_with_the_same_result()
    {
        using var train = TinySearch.Motifs(96, 3, 12, seed: 1);
        using var validation = TinySearch.Motifs(48, 3, 12, seed: 2);
        (string[] History, float[] Weights) inProcess, onCluster;
        using (var result = new EvolutionarySearch(TinySearch.Budget()).Run(TinySearch.Template, train, validation))
        {
            inProcess = TinySearch.Outcome(result);
        }

        var cluster = await TestClusters.Start(2);
        try
        {
            // As calls through the gateway of a silo that died: the first training call's answer never arrives (the
            // worker trains it), the second call never reaches its worker. Neither task ever completes.
            int sent = 0;
            var executor = new ClusterExecutor(cluster.Client, threadsPerJob: 1, new ClusterExecutionOptions { MembershipPollInterval = TimeSpan.FromMilliseconds(250), LivenessTimeout = TimeSpan.FromSeconds(2) })
            {
                SendTrain = (grain, payload, call, token) =>
                {
                    switch (Interlocked.Increment(ref sent))
                    {
                        case 1:
                            _ = grain.Train(payload, call, CancellationToken.None);
                            return new TaskCompletionSource<TrainedCandidate>().Task;
                        case 2:
                            return new TaskCompletionSource<TrainedCandidate>().Task;
                        default:
                            return grain.Train(payload, call, token);
                    }
                },
            };
            var search = new EvolutionarySearch(TinySearch.Budget()) { Executor = executor };
            using (var result = await Task.Run(() => search.Run(TinySearch.Template, train, validation)).WaitAsync(TimeSpan.FromMinutes(3)))
            {
                onCluster = TinySearch.Outcome(result);
            }

            Assert.Equal(1, executor.Refetched);
            Assert.Equal(1, executor.Retries);
            Assert.Equal(inProcess.History, onCluster.History);
            Assert.Equal(inProcess.Weights, onCluster.Weights);
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }
}
