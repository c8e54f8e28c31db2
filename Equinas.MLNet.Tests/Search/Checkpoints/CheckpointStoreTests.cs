using Equinas.MLNet.Search.Checkpoints;
using Equinas.MLNet.Tests.Search;
using Xunit;

namespace Equinas.MLNet.Tests.Search.Checkpoints;

public sealed class CheckpointStoreTests : TorchTestBase, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"equinas-store-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static CheckpointIdentity Identity(string seed = "1", string epochs = "0.5", IReadOnlyDictionary<string, string>? data = null) =>
        new(data ?? new Dictionary<string, string> { ["TrainImages"] = "96", ["DataHash"] = new string('a', 64) },
            new Dictionary<string, string> { ["Seed"] = seed, ["EpochsPerGeneration"] = epochs, ["SearchMode"] = "Evolutionary" });

    private sealed record State(int Generation, double[] Values);

    private static void Write(CheckpointStore store, int step) =>
        store.Save(step, "generation", new State(step, [step, double.NaN, 1.0 / 3]), new Dictionary<string, byte[]> { ["blob"] = Enumerable.Range(0, 5000).Select(i => (byte)(i * step)).ToArray() });

    [Fact]
    public void A_checkpoint_reads_back_whole_and_only_the_newest_two_are_kept()
    {
        using (var store = new CheckpointStore(_directory, Identity()))
        {
            Assert.Null(store.Latest());
            for (int step = 0; step < 4; step++)
            {
                Write(store, step);
            }

            Assert.Equal(4, store.Writes);
        }

        Assert.Equal(["checkpoint-000002.zip", "checkpoint-000003.zip"], Directory.GetFiles(_directory, "checkpoint-*").Select(Path.GetFileName).Order());
        using var again = new CheckpointStore(_directory, Identity());
        var latest = again.Latest()!;
        Assert.Equal(3, latest.Step);
        Assert.Equal("generation", latest.Kind);
        var state = latest.State<State>();
        Assert.Equal(3, state.Generation);
        Assert.Equal(1.0 / 3, state.Values[2]);
        Assert.True(double.IsNaN(state.Values[1]));
        Assert.Equal(Enumerable.Range(0, 5000).Select(i => (byte)(i * 3)), latest.Entry("blob"));
    }

    [Fact]
    public void A_checkpoint_from_other_options_or_other_data_is_refused_naming_what_differs()
    {
        using (var store = new CheckpointStore(_directory, Identity()))
        {
            Write(store, 0);
        }

        using (var store = new CheckpointStore(_directory, Identity(seed: "2", epochs: "1")))
        {
            var error = Assert.Throws<CheckpointMismatchException>(() => store.Latest());
            Assert.Contains("other options", error.Message, StringComparison.Ordinal);
            Assert.Contains("Seed is 1 in the checkpoint and 2 in this run", error.Message, StringComparison.Ordinal);
            Assert.Contains("EpochsPerGeneration is 0.5 in the checkpoint and 1 in this run", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("other data", error.Message, StringComparison.Ordinal);
            Assert.Contains(_directory, error.Message, StringComparison.Ordinal);
        }

        var otherData = new Dictionary<string, string> { ["TrainImages"] = "95", ["DataHash"] = new string('b', 64) };
        using (var store = new CheckpointStore(_directory, Identity(data: otherData)))
        {
            var error = Assert.Throws<CheckpointMismatchException>(() => store.Latest());
            Assert.Contains("other data", error.Message, StringComparison.Ordinal);
            Assert.Contains("TrainImages is 96 in the checkpoint and 95 in this run", error.Message, StringComparison.Ordinal);
            Assert.Contains("DataHash is aaaaaaaaaaaa... in the checkpoint and bbbbbbbbbbbb... in this run", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_data_description_hashes_every_pixel_and_label()
    {
        using var train = SyntheticData.Motifs(40, 3, 8, seed: 1);
        using var validation = SyntheticData.Motifs(20, 3, 8, seed: 2);
        using var changed = SyntheticData.Motifs(40, 3, 8, seed: 1);
        var data = CheckpointIdentity.DescribeData(train, validation);
        Assert.Equal(data, CheckpointIdentity.DescribeData(changed, validation));
        Assert.Equal("1x8x8", data["ImageShape"]);
        Assert.Equal("40", data["TrainImages"]);
        using (TorchSharp.torch.no_grad())
        {
            changed.Images[7, 0, 3, 3] = changed.Images[7, 0, 3, 3] + 1e-3f;
        }

        Assert.NotEqual(data["DataHash"], CheckpointIdentity.DescribeData(changed, validation)["DataHash"]);
    }

    [Fact]
    public void A_checkpoint_truncated_mid_write_is_not_used()
    {
        using (var store = new CheckpointStore(_directory, Identity()))
        {
            Write(store, 0);
            Write(store, 1);
        }

        var newest = Path.Combine(_directory, "checkpoint-000001.zip");
        var whole = File.ReadAllBytes(newest);

        // A write stopped part-way leaves a temporary file: ignored, and deleted when the folder is opened again.
        File.WriteAllBytes(Path.Combine(_directory, "checkpoint-000002.zip.tmp"), whole.AsSpan(0, whole.Length / 2).ToArray());
        var warnings = new List<string>();
        using (var store = new CheckpointStore(_directory, Identity(), warnings.Add))
        {
            Assert.Equal(1, store.Latest()!.Step);
            Assert.Empty(warnings);
        }

        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));

        // A checkpoint cut short under its final name (a file system that lost the end of it) or with one changed
        // byte is passed over with a warning, and the one before it is used.
        foreach (var damage in new Func<byte[], byte[]>[] { b => b.AsSpan(0, b.Length - 200).ToArray(), b => Flip(b, b.Length / 3) })
        {
            File.WriteAllBytes(newest, damage(whole));
            warnings.Clear();
            using var store = new CheckpointStore(_directory, Identity(), warnings.Add);
            Assert.Equal(0, store.Latest()!.Step);
            var warning = Assert.Single(warnings);
            Assert.Contains("checkpoint-000001.zip", warning, StringComparison.Ordinal);
        }

        // Nothing whole at all: the run starts afresh.
        File.WriteAllBytes(Path.Combine(_directory, "checkpoint-000000.zip"), [1, 2, 3]);
        using (var store = new CheckpointStore(_directory, Identity(), warnings.Add))
        {
            Assert.Null(store.Latest());
        }

        static byte[] Flip(byte[] bytes, int at)
        {
            var copy = (byte[])bytes.Clone();
            copy[at] ^= 0x5a;
            return copy;
        }
    }

    [Fact]
    public void Two_runs_cannot_share_a_checkpoint_directory()
    {
        using var first = new CheckpointStore(_directory, Identity());
        var error = Assert.Throws<IOException>(() => new CheckpointStore(_directory, Identity()));
        Assert.Contains("in use by another training", error.Message, StringComparison.Ordinal);
    }
}
