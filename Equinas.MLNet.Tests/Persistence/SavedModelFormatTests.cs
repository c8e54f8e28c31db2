using System.Globalization;
using Equinas.MLNet.Tests.MLNet;
using Microsoft.ML;
using Xunit;

namespace Equinas.MLNet.Tests.Persistence;

/// <summary>
/// Models saved by earlier versions (zips committed under Fixtures/, made by main as of 2026-11-29 with the public
/// API: 200 training digits of classes 0-3, widths 8,8, seed 3) load and score as they did when saved.
/// </summary>
public sealed class SavedModelFormatTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Persistence", "Fixtures", name);

    private sealed class ScoreOnly
    {
        public float[] Score { get; set; } = [];
    }

    [Fact]
    public void A_differentiable_model_of_the_old_mixed_layout_is_refused_naming_the_format()
    {
        var ml = new MLContext(seed: 1);
        var error = Assert.ThrowsAny<Exception>(() => ml.Model.Load(Fixture("differentiable-2026-11-29.zip"), out _));
        var cause = error.GetBaseException();
        Assert.IsType<InvalidDataException>(cause);
        Assert.Contains("mixed-network format 1", cause.Message, StringComparison.Ordinal);
        Assert.Contains("reads format 2 only", cause.Message, StringComparison.Ordinal);
        Assert.Contains("Train the model again", cause.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fixed")]
    [InlineData("evolutionary")]
    public void Models_saved_before_the_restructure_load_and_score_as_when_saved(string mode)
    {
        var ml = new MLContext(seed: 1);
        var expected = File.ReadAllLines(Fixture($"{mode}-2026-11-29.scores.txt"))
            .Select(l => l.Split(' ').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var model = ml.Model.Load(Fixture($"{mode}-2026-11-29.zip"), out _);
        try
        {
            var test = ml.Data.LoadFromEnumerable(Digits.Rows(2, 16, 0, 1, 2, 3));
            var scores = ml.Data.CreateEnumerable<ScoreOnly>(model.Transform(test), reuseRowObject: false).Select(s => s.Score).ToArray();
            Assert.Equal(expected.Length, scores.Length);
            for (int i = 0; i < scores.Length; i++)
            {
                Assert.Equal(expected[i].Length, scores[i].Length);
                for (int c = 0; c < scores[i].Length; c++)
                {
                    Assert.True(Math.Abs(expected[i][c] - scores[i][c]) <= 1e-6, $"row {i} class {c}: {scores[i][c]} vs {expected[i][c]} when saved");
                }
            }

            var parameters = EquinasModelParameters.FindIn(model)!;
            Assert.NotEmpty(parameters.History.Settings!);
            // Saved before the resize option existed: read as stretching, what those models did.
            Assert.Equal(ImageResizeMode.Stretch, parameters.Input.Resize);
            if (mode == "evolutionary")
            {
                // The old text changes ("initial", "copy", "relax layer i to H") read back as the enum and its details.
                Assert.Contains(parameters.History.Candidates, c => c.Change == EquinasChange.Initial);
                Assert.All(parameters.History.Candidates.Where(c => c.Change == EquinasChange.Relax), c =>
                {
                    Assert.NotNull(c.RelaxedLayer);
                    Assert.NotNull(c.RelaxedTo);
                    Assert.StartsWith("relax layer ", c.ChangeText, StringComparison.Ordinal);
                });
            }
            else
            {
                Assert.All(parameters.History.Epochs, e => Assert.Equal(EquinasPhase.Training, e.Phase));
            }
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }
}
