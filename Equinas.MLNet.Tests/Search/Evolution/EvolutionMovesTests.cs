using Equinas.MLNet.Groups;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Tests.Search.Checkpoints;
using Equinas.MLNet.Tests.Search.Execution;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.Search.Evolution;

/// <summary>
/// The block moves (a suffix of the network relaxed one lattice step at once), the copy-only control and the final
/// training of the winner.
/// </summary>
public sealed class EvolutionMovesTests : TorchTestBase, IDisposable
{
    private const int Layers = 4;

    private static readonly NetworkSpec Template =
        NetworkSpec.FromChannels(2, NetworkPresets.Uniform(SymmetryGroup.D4, Layers), [8, 16, 16, 16], kernelSize: 3, poolAfter: [1, 2], classes: 3, headHidden: 6);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"equinas-moves-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    /// <summary>Steps from D4 down to a group in the lattice: 3 for C1, 2 for C4 and D2VH, 0 for D4.</summary>
    private static int Depth(SymmetryGroup g) => 3 - (int)Math.Log2(g.Order);

    /// <summary>Every chain g0 &gt;= g1 &gt;= ... of <see cref="Layers"/> groups of the lattice.</summary>
    private static List<SymmetryGroup[]> AllChains()
    {
        var chains = new List<SymmetryGroup[]> { Array.Empty<SymmetryGroup>() };
        for (int i = 0; i < Layers; i++)
        {
            chains = chains.SelectMany(c => (c.Length == 0 ? SymmetryGroup.All : c[^1].Subgroups()).Select(g => c.Append(g).ToArray())).ToList();
        }

        return chains;
    }

    private static string Key(IEnumerable<SymmetryGroup> groups) => string.Join("-", groups.Select(g => g.Name));

    /// <summary>Generations needed to reach every architecture from all-D4 (breadth first over the moves).</summary>
    private static Dictionary<string, int> Reach(MutationSet set, int maxGenerations)
    {
        var depth = new Dictionary<string, int> { [Key(Template.Groups)] = 0 };
        var frontier = new List<NetworkSpec> { Template };
        for (int generation = 1; generation <= maxGenerations && frontier.Count > 0; generation++)
        {
            var next = new List<NetworkSpec>();
            foreach (var spec in frontier)
            {
                foreach (var move in EvolutionarySearch.Moves(spec, set).Where(m => m.Kind != ChangeKind.Copy))
                {
                    var child = EvolutionarySearch.Apply(spec, move);
                    if (depth.TryAdd(Key(child.Groups), generation))
                    {
                        next.Add(child);
                    }
                }
            }

            frontier = next;
        }

        return depth;
    }

    [Fact]
    public void Block_moves_reach_every_chain_and_far_more_of_them_within_the_default_generations()
    {
        var chains = AllChains();
        var blocks = Reach(MutationSet.Blocks, 20);
        var paper = Reach(MutationSet.Paper, 20);
        var suffixes = Reach(MutationSet.Suffixes, 20);
        // Both move sets reach every chain of the lattice from all-D4 (each layer below D4 by the morphism) ...
        Assert.Equal(chains.Count, blocks.Count);
        Assert.Equal(chains.Count, paper.Count);
        Assert.All(chains, c => Assert.True(blocks.ContainsKey(Key(c)) && paper.ContainsKey(Key(c)), Key(c)));
        // ... but the paper's need 3 generations for the last layer and one more per earlier layer to reach all-C1,
        // the block moves 3 (the lattice's height), and within the default 4 generations the block moves reach twice
        // as many chains.
        string allC1 = Key(NetworkPresets.Uniform(SymmetryGroup.C1, Layers));
        Assert.Equal(3, blocks[allC1]);
        Assert.Equal(3 + Layers - 1, paper[allC1]);
        int generations = new EvolutionOptions().Generations;
        int blocksWithin = blocks.Values.Count(d => d <= generations), paperWithin = paper.Values.Count(d => d <= generations);
        Assert.True(
            (blocks.Values.Max(), blocksWithin, paper.Values.Max(), paperWithin) == (MaxBlocks, BlocksWithin, MaxPaper, PaperWithin),
            $"of {chains.Count} chains: block moves at most {blocks.Values.Max()} generations, {blocksWithin} within {generations}; paper at most {paper.Values.Max()}, {paperWithin} within {generations}");
        Assert.All(chains, c => Assert.True(blocks[Key(c)] <= paper[Key(c)], $"{Key(c)}: block moves {blocks[Key(c)]}, paper {paper[Key(c)]}"));
        // Suffixes from every layer: each chain in as many generations as the lattice steps from D4 to its last group.
        Assert.All(chains, c => Assert.Equal(Depth(c[^1]), suffixes[Key(c)]));
    }

    // Measured by this test on the lattice (deterministic): block moves at most 6 generations, 102 of 155 within 4;
    // the paper's at most 9, 52 within 4.
    private const int MaxBlocks = 6;
    private const int BlocksWithin = 102;
    private const int MaxPaper = 9;
    private const int PaperWithin = 52;

    [Fact]
    public void Block_moves_of_the_all_top_network_relax_the_whole_network_or_the_last_layer()
    {
        static string[] Describe(NetworkSpec spec, MutationSet set) =>
            EvolutionarySearch.Moves(spec, set).Select(m => m.Kind == ChangeKind.Copy ? "copy" : $"{(m.Kind == ChangeKind.RelaxFrom ? "from " : "")}{m.Layer}:{m.Group!.Name}").ToArray();

        Assert.Equal(["copy", "3:C4", "3:D2VH", "3:D2DA"], Describe(Template, MutationSet.Paper));
        Assert.Equal(["copy", "3:C4", "3:D2VH", "3:D2DA", "from 0:C4", "from 0:D2VH", "from 0:D2DA"], Describe(Template, MutationSet.Blocks));
        var chain = Template.WithGroups([SymmetryGroup.D4, SymmetryGroup.D2VH, SymmetryGroup.D2VH, SymmetryGroup.C2]);
        Assert.Equal(
            ["copy", "3:C1", "0:D2VH", "2:C2", "from 0:C4", "from 0:D2VH", "from 0:D2DA", "from 1:C2", "from 1:D1V", "from 1:D1H"],
            Describe(chain, MutationSet.Blocks));
        // A suffix move intersects every later layer with the new group.
        var move = EvolutionarySearch.Moves(chain, MutationSet.Blocks).First(m => m.Kind == ChangeKind.RelaxFrom && m.Layer == 0 && m.Group == SymmetryGroup.C4);
        Assert.Equal("C4-C2-C2-C2", Key(EvolutionarySearch.Apply(chain, move).Groups));
        var d1 = EvolutionarySearch.Moves(chain, MutationSet.Blocks).First(m => m.Kind == ChangeKind.RelaxFrom && m.Layer == 1 && m.Group == SymmetryGroup.D1V);
        Assert.Equal("D4-D1V-D1V-C1", Key(EvolutionarySearch.Apply(chain, d1).Groups));
    }

    public static TheoryData<string> Parents() =>
    [
        "D4-D4-D4-D4",
        "D4-D4-D2VH-D2VH",
        "D4-C4-C4-C2",
        "D2DA-D2DA-D1D-C1",
        "D4-D2DA-C2-C2",
    ];

    [Theory]
    [MemberData(nameof(Parents))]
    public void Every_move_preserves_the_logits_on_odd_and_even_sizes(string parent)
    {
        var groups = parent.Split('-').Select(SymmetryGroup.Parse).ToArray();
        foreach (int size in new[] { 9, 10 })
        {
            using var scope = NewDisposeScope();
            using var net = Perturbed(Template.WithGroups(groups), size);
            using var noGrad = torch.no_grad();
            var x = torch.randn([5, 2, size, size]);
            var reference = net.call(x);
            int moves = 0;
            foreach (var move in EvolutionarySearch.Moves(net.Spec, MutationSet.Blocks).Where(m => m.Kind != ChangeKind.Copy))
            {
                using var child = EvolutionarySearch.Apply(net, move);
                Assert.Equal(Key(EvolutionarySearch.Apply(net.Spec, move).Groups), Key(child.Spec.Groups));
                Assert.NotEqual(parent, Key(child.Spec.Groups));
                double error = RelativeError(child.call(x), reference);
                Assert.True(error < 1e-5, $"{parent} {move.Kind} {move.Layer}:{move.Group}, size {size}: relative error {error:E2}");
                moves++;
            }

            Assert.True(moves > 0);
        }
    }

    [Fact]
    public void The_copy_only_control_trains_as_many_copies_as_the_search_has_children_each_with_its_own_data_order()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var options = CandidateExecutorTests.Budget(workers: 2) with { Generations = 2, CopyOnly = true };
        using var result = new EvolutionarySearch(options).Run(CandidateExecutorTests.Template, train, validation);
        var history = result.History;
        Assert.All(history.SelectMany(g => g.Candidates), c => Assert.Equal(["D4", "D4", "D4"], c.Groups));
        // As many as the relaxation search's moves of an all-D4 network (copy, 3 last-layer, 3 suffix), per survivor.
        int moves = EvolutionarySearch.Moves(CandidateExecutorTests.Template, MutationSet.Blocks).Count();
        Assert.Equal(moves, history[1].Candidates.Count);
        Assert.Equal(2 * moves, history[2].Candidates.Count);
        Assert.All(history.Skip(1).SelectMany(g => g.Candidates), c => Assert.Equal(ChangeKind.Copy, c.Change.Kind));
        // Copies of one parent train on their own data orders: their losses differ.
        Assert.Equal(moves, history[1].Candidates.Select(c => c.TrainLoss).Distinct().Count());
    }

    [Fact]
    public void The_winner_trains_its_final_epochs_as_a_last_generation_and_a_finished_checkpoint_gives_it_back()
    {
        using var train = SyntheticData.Motifs(96, 3, 12, seed: 1);
        using var validation = SyntheticData.Motifs(48, 3, 12, seed: 2);
        var options = CandidateExecutorTests.Budget(workers: 2) with { Generations = 2, FinalEpochs = 1 };
        (string[] History, float[] Weights) uninterrupted;
        using (var result = new EvolutionarySearch(options).Run(CandidateExecutorTests.Template, train, validation))
        {
            Assert.Equal([0, 1, 2, 3], result.History.Select(g => g.Generation));
            var final = Assert.Single(result.History[^1].Candidates);
            Assert.Equal(ChangeKind.Final, final.Change.Kind);
            Assert.True(final.Survived);
            var winner = CandidateRankingOf(result.History[2]);
            Assert.Equal(winner.Id, final.ParentId);
            Assert.Equal(winner.Groups, final.Groups);
            Assert.Equal(final.Id, result.Best.Id);
            Assert.NotEqual(winner.TrainLoss, final.TrainLoss);
            uninterrupted = CandidateExecutorTests.Outcome(result);
        }

        using (var without = new EvolutionarySearch(options with { FinalEpochs = 0 }).Run(CandidateExecutorTests.Template, train, validation))
        {
            Assert.Equal([0, 1, 2], without.History.Select(g => g.Generation));
            Assert.NotEqual(uninterrupted.Weights, CandidateExecutorTests.Outcome(without).Weights);
        }

        // Stopped during the final training: the checkpoint of generation 2 is the last one, and the run continues.
        var identity = ResumeTests.Identity(train, validation);
        using (var store = new CheckpointStore(_directory, identity))
        using (var cancellation = new CancellationTokenSource())
        {
            var search = new EvolutionarySearch(options) { Checkpoints = store };
            search.GenerationCompleted += (_, g) =>
            {
                if (g.Generation == 2)
                {
                    cancellation.Cancel();
                }
            };
            Assert.ThrowsAny<OperationCanceledException>(() => search.Run(CandidateExecutorTests.Template, train, validation, cancellation.Token));
        }

        using (var store = new CheckpointStore(_directory, identity))
        {
            using var result = new EvolutionarySearch(options) { Checkpoints = store }.Run(CandidateExecutorTests.Template, train, validation);
            Assert.Equal(uninterrupted.History, CandidateExecutorTests.Outcome(result).History);
            Assert.Equal(uninterrupted.Weights, CandidateExecutorTests.Outcome(result).Weights);
        }

        using (var store = new CheckpointStore(_directory, identity))
        {
            var search = new EvolutionarySearch(options) { Checkpoints = store };
            int trained = 0;
            search.CandidateEvaluated += (_, _) => trained++;
            using var result = search.Run(CandidateExecutorTests.Template, train, validation);
            Assert.Equal(0, trained);
            Assert.Equal(uninterrupted.Weights, CandidateExecutorTests.Outcome(result).Weights);
        }
    }

    private static CandidateRecord CandidateRankingOf(GenerationRecord generation) =>
        CandidateRanking.Rank(generation.Candidates.Where(c => c.Survived)).First();

    /// <summary>A network with non-trivial biases, norm statistics and affine parameters, in evaluation mode.</summary>
    private static GroupCnn Perturbed(NetworkSpec spec, int size)
    {
        var net = new GroupCnn(spec);
        using (torch.no_grad())
        {
            foreach (var p in net.parameters().Where(p => p.dim() == 1))
            {
                p.normal_(0, 0.5);
            }

            net.train();
            for (int i = 0; i < 3; i++)
            {
                using var scope = NewDisposeScope();
                net.call(torch.randn([4, 2, size, size]) + 0.3);
            }
        }

        net.eval();
        return net;
    }
}
