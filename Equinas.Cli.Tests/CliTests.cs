using Xunit;
using Xunit.Abstractions;

namespace Equinas.Cli.Tests;

/// <summary>The <c>equinas</c> tool's commands end to end, in process, on an image folder made from the shipped digits.</summary>
[Collection("Console")]
public sealed class CliTests(ITestOutputHelper output)
{
    private string _lastOutput = "";

    private int Run(params string[] args)
    {
        (int code, _lastOutput) = CliInProcess.Run(output, args);
        return code;
    }

    [Fact]
    public void Export_train_evaluate_predict_and_report_on_an_image_folder()
    {
        var root = Path.Combine(Path.GetTempPath(), $"equinas-cli-{Guid.NewGuid():N}");
        try
        {
            var pngs = Path.Combine(root, "pngs");
            var model = Path.Combine(root, "model.zip");
            Assert.Equal(0, Run("export-digits", "--data", "digits", "--split", "test", "--count", "120", "--out", pngs));
            Assert.True(Directory.GetFiles(pngs, "*.png", SearchOption.AllDirectories).Length == 120);

            Assert.Equal(0, Run("train", "--data", pngs, "--mode", "fixed", "--epochs", "1", "--channels", "8,16,16", "--out", model, "--report", Path.Combine(root, "report")));
            Assert.True(File.Exists(model));
            Assert.Contains("epoch 1", _lastOutput, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(root, "*.tmp*"));

            Assert.Equal(0, Run("evaluate", "--model", model, "--data", pngs));
            Assert.Equal(0, Run("predict", "--model", model, Path.Combine(pngs, "7")));
            Assert.Equal(0, Run("report", "--model", model, "--out", Path.Combine(root, "report2")));
            Assert.True(File.Exists(Path.Combine(root, "report2", "report.md")));
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(root, "report2"), "*.png"));
            using (var plot = SkiaSharp.SKBitmap.Decode(Path.Combine(root, "report2", "validation-accuracy.png")))
            {
                Assert.Equal((1000, 600), (plot.Width, plot.Height));
            }

            Assert.Contains("](validation-accuracy.png)", File.ReadAllText(Path.Combine(root, "report2", "report.md")), StringComparison.Ordinal);

            // The network alone as ONNX, into a folder that does not exist yet; written atomically.
            var onnx = Path.Combine(root, "onnx", "model.onnx");
            Assert.Equal(0, Run("export", "--model", model, "--onnx", onnx));
            Assert.Contains("input 'pixels': float[N, 1, 28, 28]", _lastOutput, StringComparison.Ordinal);
            Assert.Contains("output 'probabilities': float[N, ", _lastOutput, StringComparison.Ordinal);
            var proto = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx));
            Assert.Equal("pixels", Assert.Single(proto.Graph.Input).Name);
            Assert.Equal("probabilities", Assert.Single(proto.Graph.Output).Name);
            Assert.Equal(new[] { "model.onnx" }, Directory.GetFiles(Path.Combine(root, "onnx")).Select(Path.GetFileName).ToArray());

            // Bad input: one error line and a non-zero exit code, no model written.
            var missing = Path.Combine(root, "missing.zip");
            var noOnnx = Path.Combine(root, "missing.onnx");
            Assert.NotEqual(0, Run("export", "--model", missing, "--onnx", noOnnx));
            Assert.False(File.Exists(noOnnx));
            Assert.NotEqual(0, Run("export", "--model", model));
            Assert.NotEqual(0, Run("export", "--model", model, "--onnx", root));
            Assert.NotEqual(0, Run("train", "--data", Path.Combine(root, "no-such-folder"), "--out", missing));
            Assert.False(File.Exists(missing));
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
