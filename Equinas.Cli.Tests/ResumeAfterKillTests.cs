using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;
using Xunit.Abstractions;

namespace Equinas.Cli.Tests;

/// <summary>
/// <c>equinas train --checkpoint</c> in a child process killed with SIGKILL part-way through a generation or epoch,
/// then run again: the model it makes scores every image exactly as the model of an uninterrupted run.
/// </summary>
[Collection("Console")]
public sealed class ResumeAfterKillTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"equinas-kill-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Theory]
    [InlineData("evolve", 3, "--generations", "3", "--population", "2", "--epochs-per-generation", "2")]
    [InlineData("differentiable", 4, "--epochs", "4")]
    public async Task A_training_killed_mid_step_and_run_again_scores_like_an_uninterrupted_one(string mode, int steps, params string[] budget)
    {
        var images = Path.Combine(_root, "images");
        Assert.Equal(0, InProcess("export-digits", "--data", "digits", "--split", "train", "--count", "300", "--out", images));
        var checkpoints = Path.Combine(_root, "checkpoints");
        string[] Train(string model, bool checkpoint) =>
        [
            "train", "--data", images, "--mode", mode, .. budget, "--channels", "8,16,16", "--threads-per-worker", "1",
            "--out", Path.Combine(_root, model), .. checkpoint ? new[] { "--checkpoint", checkpoints } : [],
        ];

        // 1. Killed as soon as its first checkpoint is written, well before the last step.
        using (var child = Start(Train("killed.zip", checkpoint: true)))
        {
            var drained = Drain(child);
            var watch = Stopwatch.StartNew();
            while (!Directory.Exists(checkpoints) || Directory.GetFiles(checkpoints, "checkpoint-*.zip").Length == 0)
            {
                if (child.HasExited)
                {
                    Assert.Fail($"the child ended before its first checkpoint: {await drained}");
                }

                Assert.True(watch.Elapsed < TimeSpan.FromMinutes(3), "no checkpoint within 3 minutes");
                await Task.Delay(10);
            }

            if (child.HasExited)
            {
                Assert.Fail($"the child ended at its first checkpoint: {await drained}");
            }

            child.Kill(); // SIGKILL on Unix: no handler runs, nothing is flushed
            await child.WaitForExitAsync();
            output.WriteLine($"killed after {watch.Elapsed.TotalSeconds:F1} s, exit code {child.ExitCode}\n{await drained}");
        }

        Assert.False(File.Exists(Path.Combine(_root, "killed.zip")));
        var left = Directory.GetFiles(checkpoints).Select(Path.GetFileName).ToArray();
        output.WriteLine("left: " + string.Join(", ", left));
        Assert.DoesNotContain($"checkpoint-{steps:D6}.zip", left);

        // 2. The same command again continues from the checkpoint and finishes.
        using (var child = Start(Train("resumed.zip", checkpoint: true)))
        {
            var drained = Drain(child);
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await child.WaitForExitAsync(limit.Token);
            string text = await drained;
            output.WriteLine(text);
            Assert.Equal(0, child.ExitCode);
            Assert.Contains("(from the checkpoint)", text, StringComparison.Ordinal);
        }

        // 3. An uninterrupted run without checkpoints, in a process of its own like the other two. The resumed run's
        // first generation is its process's first training; when it started two candidates at once, one of them
        // differed at the 7th digit about once in 30 runs, until a process's first candidate training ran alone
        // (FirstTraining, CHANGELOG of 2026-12-02).
        using (var child = Start(Train("uninterrupted.zip", checkpoint: false)))
        {
            var drained = Drain(child);
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await child.WaitForExitAsync(limit.Token);
            string text = await drained;
            Assert.True(child.ExitCode == 0, text);
        }

        var resumed = Scores(Path.Combine(_root, "resumed.zip"), images);
        var uninterrupted = Scores(Path.Combine(_root, "uninterrupted.zip"), images);
        Assert.Equal(45, uninterrupted.Scores.Length, (a, b) => Math.Abs(a - b) <= 2);
        Assert.Equal(uninterrupted.Scores, resumed.Scores);
        Assert.Equal(uninterrupted.History, resumed.History);
    }

    [Fact]
    public async Task Ctrl_C_with_a_checkpoint_folder_says_what_it_holds_and_how_to_continue()
    {
        var images = Path.Combine(_root, "images");
        Assert.Equal(0, InProcess("export-digits", "--data", "digits", "--split", "train", "--count", "300", "--out", images));
        var checkpoints = Path.Combine(_root, "checkpoints");
        using var child = Start(["train", "--data", images, "--mode", "fixed", "--epochs", "20", "--channels", "8,16,16", "--out", Path.Combine(_root, "m.zip"), "--checkpoint", checkpoints]);
        var drained = Drain(child);
        var watch = Stopwatch.StartNew();
        while (!Directory.Exists(checkpoints) || Directory.GetFiles(checkpoints, "checkpoint-*.zip").Length == 0)
        {
            if (child.HasExited || watch.Elapsed > TimeSpan.FromMinutes(3))
            {
                Assert.Fail($"no checkpoint before the child ended or in 3 minutes: {(child.HasExited ? await drained : "")}");
            }

            await Task.Delay(10);
        }

        // SIGINT, as Ctrl+C sends it.
        using (var signal = Process.Start("kill", ["-INT", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await signal.WaitForExitAsync();
        }

        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await child.WaitForExitAsync(limit.Token);
        string text = await drained;
        output.WriteLine(text);
        Assert.Equal(130, child.ExitCode);
        Assert.Contains("Cancelled; no model was written. The checkpoint folder", text, StringComparison.Ordinal);
        Assert.Contains("Run the same command again", text, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_root, "m.zip")));
    }

    /// <summary>Everything the child writes (both streams), read as it comes so that it never blocks on a full pipe.</summary>
    private static async Task<string> Drain(Process child)
    {
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        return await stdout + await stderr;
    }

    private static Process Start(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "equinas"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }

    private int InProcess(params string[] args) => CliInProcess.Run(output, args).Code;

    /// <summary>The model's score vector for every test image of the folder, and its history (validation metrics as text).</summary>
    private static (float[][] Scores, string[] History) Scores(string model, string images)
    {
        var ml = new MLContext(seed: 1);
        var (loaded, _) = ModelFile.Load(ml, model);
        try
        {
            var rows = DataSource.Parse(images).Rows(DataPart.Test);
            var scored = loaded.Transform(ImagePipeline.ToDataView(ml, rows));
            var scores = scored.GetColumn<float[]>(ImagePipeline.ScoreColumn).ToArray();
            var history = ImagePipeline.FindModel(loaded)!.History;
            var lines = history.Candidates.Select(c => $"{c.Generation} {c.Id} {string.Join("-", c.LayerGroups)} {c.ValidationAccuracy:R} {c.ValidationLoss:R} {c.Survived}")
                .Concat(history.Epochs.Select(e => $"{e.Phase} {e.Epoch:R} {e.TrainLoss:R} {e.ValidationAccuracy:R} {e.ValidationLoss:R}"))
                .ToArray();
            return (scores, lines);
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }
}
