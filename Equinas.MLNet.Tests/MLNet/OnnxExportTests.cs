using Equinas.MLNet.Groups;
using Equinas.MLNet.Groups.Actions;
using Equinas.MLNet.Input;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using Equinas.MLNet.Persistence;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Equinas.MLNet.Tests.MLNet;

/// <summary>Kinds of network the export must reproduce.</summary>
public enum ExportKind
{
    /// <summary>All-D4 layers.</summary>
    Fixed,

    /// <summary>Layers of shrinking groups (D4, D2VH, D1H, C1): restrictions between layers; a head without hidden layer.</summary>
    Relaxed,

    /// <summary>[G]-mixed layers over all ten subgroups of D4 with uneven z (the summed filter of eq. 11).</summary>
    Mixed,

    /// <summary>[G]-mixed layers over C4, C2 and C1 (top group C4).</summary>
    MixedC4,

    /// <summary>Layers of shrinking groups (D4, C4, C2) whose head also reads the spatial maxima (<c>HeadPooling.MeanAndMax</c>).</summary>
    RelaxedMeanAndMax,

    /// <summary>[G]-mixed layers over all ten subgroups of D4 with the mean-and-max head.</summary>
    MixedMeanAndMax,
}

/// <summary>
/// <see cref="EquinasModelParameters.SaveAsOnnx(Stream)"/>: ONNX Runtime scores the exported network like the model does,
/// for every kind of network, odd and even (and non-square) sizes, 1 and 3 channels and any batch size; the export of an
/// all-D4 model is D4-invariant in ONNX Runtime; the file is written atomically.
/// </summary>
public sealed class OnnxExportTests : TorchTestBase
{
    private const double Tolerance = 1e-5;

    private static readonly MLContext Ml = new(seed: 1);

    /// <summary>A model of the given kind with perturbed weights, moved batch-norm statistics and a non-trivial input normalisation.</summary>
    internal static EquinasModelParameters Model(ExportKind kind, int channels, int height, int width, int classes = 5, int seed = 11)
    {
        torch.manual_seed(seed);
        EquivariantNetwork network = kind switch
        {
            ExportKind.Fixed => new GroupCnn(NetworkSpec.FromChannels(channels, NetworkPresets.Uniform(SymmetryGroup.D4, 3), [16, 16, 24], 3, [0, 1], classes, 8)),
            ExportKind.Relaxed => new GroupCnn(NetworkSpec.FromChannels(channels, [SymmetryGroup.D4, SymmetryGroup.D2VH, SymmetryGroup.D1H, SymmetryGroup.C1], [16, 16, 8, 8], 5, [0, 2], classes, 0)),
            ExportKind.Mixed => new MixedGroupCnn(new MixedNetworkSpec(NetworkSpec.FromChannels(channels, NetworkPresets.Uniform(SymmetryGroup.D4, 3), [16, 16, 24], 3, [0, 1], classes, 8), SymmetryGroup.All)),
            ExportKind.MixedC4 => new MixedGroupCnn(new MixedNetworkSpec(NetworkSpec.FromChannels(channels, NetworkPresets.Uniform(SymmetryGroup.C4, 2), [8, 12], 3, [1], classes, 6), [SymmetryGroup.C4, SymmetryGroup.C2, SymmetryGroup.C1])),
            ExportKind.RelaxedMeanAndMax => new GroupCnn(NetworkSpec.FromChannels(channels, [SymmetryGroup.D4, SymmetryGroup.C4, SymmetryGroup.C2], [16, 16, 8], 3, [0], classes, 6) with { HeadPooling = HeadPooling.MeanAndMax }),
            ExportKind.MixedMeanAndMax => new MixedGroupCnn(new MixedNetworkSpec(NetworkSpec.FromChannels(channels, NetworkPresets.Uniform(SymmetryGroup.D4, 2), [16, 24], 3, [0], classes, 0) with { HeadPooling = HeadPooling.MeanAndMax }, SymmetryGroup.All)),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        using (var scope = NewDisposeScope())
        using (torch.no_grad())
        {
            network.train();
            for (int i = 0; i < 3; i++)
            {
                network.call(torch.rand(4, channels, height, width) * 2 + 0.5); // moves the running statistics away from 0 and 1
            }

            foreach (var p in network.parameters())
            {
                p.add_(torch.randn_like(p) * 0.2); // also makes z uneven
            }
        }

        var random = new Random(seed);
        var spec = new InputSpec
        {
            Kind = FeatureKind.Pixels,
            Column = "Features",
            Channels = channels,
            Height = height,
            Width = width,
            Mean = Enumerable.Range(0, channels).Select(_ => (float)random.NextDouble()).ToArray(),
            Std = Enumerable.Range(0, channels).Select(_ => 0.3f + (float)random.NextDouble()).ToArray(),
            TypeShape = [channels, height, width],
        };
        var history = new EquinasHistory { Mode = SearchMode.Fixed, TopGroup = "D4", Candidates = [], Epochs = [], TrainingTime = TimeSpan.Zero };
        return EquinasModelParameters.Create(Ml, new StoredNetwork(network), spec, classes, history, torch.CPU);
    }

    /// <summary>Raw images in [0, 2] (never seen by the model: it was not trained on anything).</summary>
    internal static float[] Images(int count, int channels, int height, int width, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count * channels * height * width).Select(_ => 2f * (float)random.NextDouble()).ToArray();
    }

    internal static byte[] Export(EquinasModelParameters model)
    {
        using var stream = new MemoryStream();
        model.SaveAsOnnx(stream);
        return stream.ToArray();
    }

    /// <summary>ONNX Runtime's probabilities for a batch, one thread.</summary>
    internal static float[] Score(InferenceSession session, float[] pixels, int count, int channels, int height, int width, int classes)
    {
        var input = new DenseTensor<float>(pixels, new[] { count, channels, height, width });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("pixels", input) });
        var output = results.Single(r => r.Name == "probabilities").AsTensor<float>();
        Assert.Equal(new[] { count, classes }, output.Dimensions.ToArray());
        return output.ToArray();
    }

    internal static InferenceSession Session(byte[] onnx)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        return new InferenceSession(onnx, options);
    }

    internal static void AssertSameScores(float[] expected, float[] actual, int classes, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual, (e, a) => (double)Math.Abs(e - a)).Max();
        Assert.True(worst <= Tolerance, $"{what}: ONNX Runtime differs from the model by {worst:E2} (tolerance {Tolerance:E0}).");
        for (int row = 0; row < expected.Length / classes; row++)
        {
            Assert.Equal(ArgMax(expected.AsSpan(row * classes, classes)), ArgMax(actual.AsSpan(row * classes, classes)));
        }
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    public static TheoryData<ExportKind, int, int, int> Cases() => new()
    {
        { ExportKind.Fixed, 1, 13, 13 },
        { ExportKind.Fixed, 3, 12, 12 },
        { ExportKind.Relaxed, 1, 11, 14 },
        { ExportKind.Relaxed, 3, 16, 10 },
        { ExportKind.Mixed, 1, 14, 14 },
        { ExportKind.Mixed, 3, 9, 9 },
        { ExportKind.MixedC4, 1, 10, 7 },
        { ExportKind.RelaxedMeanAndMax, 1, 11, 11 },
        { ExportKind.RelaxedMeanAndMax, 3, 12, 9 },
        { ExportKind.MixedMeanAndMax, 1, 10, 10 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Onnx_Runtime_scores_the_export_like_the_model_for_batches_of_one_and_several(ExportKind kind, int channels, int height, int width)
    {
        const int Classes = 5;
        using var model = Model(kind, channels, height, width, Classes);
        using var session = Session(Export(model));
        foreach (int count in new[] { 1, 6 })
        {
            var pixels = Images(count, channels, height, width, seed: count);
            var expected = model.PredictBatch((float[])pixels.Clone(), count);
            var actual = Score(session, pixels, count, channels, height, width, Classes);
            AssertSameScores(expected, actual, Classes, $"{kind} {channels}x{height}x{width}, batch {count}");
        }
    }

    /// <summary>Digits (structured images: i.i.d. noise looks alike under every rotation), <paramref name="channels"/> planes each (the digit times 1, 0.5, 0.25), cropped to <paramref name="size"/>.</summary>
    private static float[] DigitImages(int count, int channels, int size)
    {
        var rows = Digits.Rows(2, count);
        int offset = (Digits.Size - size) / 2;
        var pixels = new List<float>();
        foreach (var row in rows)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int y = 0; y < size; y++)
                {
                    for (int x = 0; x < size; x++)
                    {
                        pixels.Add(row.Features[((y + offset) * Digits.Size) + x + offset] / (1 << c));
                    }
                }
            }
        }

        return pixels.ToArray();
    }

    /// <summary>The largest change of ONNX Runtime's probabilities when <paramref name="g"/> moves the images.</summary>
    private static double Change(InferenceSession session, float[] pixels, D4Element g, int count, int channels, int size, int classes)
    {
        using var scope = NewDisposeScope();
        var moved = TensorAction.ActOnImage(torch.tensor(pixels, [count, channels, size, size]), g).contiguous().data<float>().ToArray();
        var reference = Score(session, pixels, count, channels, size, size, classes);
        return reference.Zip(Score(session, moved, count, channels, size, size, classes), (a, b) => (double)Math.Abs(a - b)).Max();
    }

    [Theory]
    [InlineData(1, 21)]
    [InlineData(3, 20)]
    public void The_export_of_an_all_D4_model_is_invariant_to_every_element_of_D4_in_Onnx_Runtime(int channels, int size)
    {
        const int Classes = 5, Count = 4;
        using var model = Model(ExportKind.Fixed, channels, size, size, Classes);
        using var session = Session(Export(model));
        var pixels = DigitImages(Count, channels, size);
        foreach (var g in D4Element.All)
        {
            double change = Change(session, pixels, g, Count, channels, size, Classes);
            Assert.True(change <= Tolerance, $"{g}: the probabilities moved by {change:E2}.");
        }
    }

    [Fact]
    public void The_invariance_check_detects_a_model_that_is_not_invariant()
    {
        // The relaxed model ends in C1: a quarter turn must change its probabilities on the same images, or the check
        // above proves nothing.
        const int Classes = 5, Count = 4, Size = 21;
        using var model = Model(ExportKind.Relaxed, 1, Size, Size, Classes);
        using var session = Session(Export(model));
        double change = Change(session, DigitImages(Count, 1, Size), D4Element.All[1], Count, 1, Size, Classes);
        Assert.True(change > 1e-3, $"A C1 model's probabilities moved by only {change:E2} under a quarter turn.");
    }

    [Fact]
    public void The_file_declares_a_dynamic_batch_the_input_and_output_shapes_and_a_widely_supported_opset()
    {
        using var model = Model(ExportKind.Fixed, 3, 12, 10);
        var proto = global::Onnx.ModelProto.Parser.ParseFrom(Export(model));
        Assert.Equal(8, proto.IrVersion);
        Assert.Equal(18, proto.OpsetImport.Single(o => o.Domain == "").Version);
        var input = Assert.Single(proto.Graph.Input);
        Assert.Equal("pixels", input.Name);
        var dims = input.Type.TensorType.Shape.Dim;
        Assert.Equal("N", dims[0].DimParam);
        Assert.Equal(new long[] { 3, 12, 10 }, dims.Skip(1).Select(d => d.DimValue).ToArray());
        var output = Assert.Single(proto.Graph.Output);
        Assert.Equal("probabilities", output.Name);
        Assert.Equal("N", output.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(5, output.Type.TensorType.Shape.Dim[1].DimValue);
        Assert.Equal(3, proto.Graph.Node.Count(n => n.OpType == "Conv"));
        Assert.Contains(proto.MetadataProps, p => p.Key == "equinas.layer_groups" && p.Value == "D4,D4,D4");
    }

    [Fact]
    public void SaveAsOnnx_writes_the_file_atomically_and_leaves_it_untouched_on_failure()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"equinas-onnx-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var path = Path.Combine(folder, "model.onnx");
            var model = Model(ExportKind.Mixed, 1, 9, 9);
            model.SaveAsOnnx(path);
            Assert.Equal(Export(model), File.ReadAllBytes(path));
            Assert.Equal(new[] { "model.onnx" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());

            // A failure (here: the model is disposed) leaves the existing file as it was and no temporary file.
            File.WriteAllText(path, "old");
            model.Dispose();
            Assert.Throws<ObjectDisposedException>(() => model.SaveAsOnnx(path));
            Assert.Equal("old", File.ReadAllText(path));
            Assert.Equal(new[] { "model.onnx" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());

            using var other = Model(ExportKind.Fixed, 1, 9, 9);
            var missing = Path.Combine(folder, "no-such-folder", "model.onnx");
            var e = Assert.Throws<DirectoryNotFoundException>(() => other.SaveAsOnnx(missing));
            Assert.Contains("no-such-folder", e.Message, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(folder, "no-such-folder")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
