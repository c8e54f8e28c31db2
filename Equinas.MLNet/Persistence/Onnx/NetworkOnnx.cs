#nullable enable
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Layers;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Equinas.MLNet.Persistence.Onnx;

/// <summary>
/// Writes a trained network's evaluation-mode computation as ONNX nodes: raw pixels <c>N x C x H x W</c> to class
/// probabilities <c>N x classes</c>, with the per-channel input normalisation inside the graph.
/// </summary>
/// <remarks>
/// <para>
/// Every conv layer of the engine is an ordinary conv2d with an expanded filter, so the export is exact: each layer
/// becomes one <c>Conv</c> whose initializer is the filter the engine convolves with in evaluation mode (the frozen
/// expanded filter of a fixed layer, the cached summed filter <c>sum_H z_H expand(psi_H)</c> of a mixed layer, eq. 11).
/// The restriction between layers of different groups (eq. 3) permutes channels only; it is folded into the next
/// filter's input columns. Group batch norm shares one mean, variance, scale and shift per field over the field's
/// |G| channels; in evaluation mode it is an affine map per channel, folded into the conv's weight and bias (computed in
/// float64). Then <c>Relu</c>, the exact stride-2 <c>AveragePool</c> (the window the engine picks for each size,
/// padding counted), and the invariant head: <c>GlobalAveragePool</c> (mean over space) with the mean over each
/// field's |G| channels folded into the first <c>Gemm</c>, the hidden batch norm folded into it too, <c>Elu</c>, the
/// output <c>Gemm</c>, <c>Softmax</c>.
/// </para>
/// <para>
/// Operators used: Sub, Mul, Conv, Relu, AveragePool, GlobalAveragePool, GlobalMaxPool and Concat (for
/// <see cref="HeadPooling.MeanAndMax"/>), Flatten, Gemm, Elu, Softmax (on a 2-D
/// tensor, where opsets before and after 13 agree), so the same nodes serve a standalone opset-18 model and ML.NET's
/// opset-12 export context.
/// </para>
/// </remarks>
internal static class NetworkOnnx
{
    /// <summary>
    /// Adds the nodes to <paramref name="graph"/>, reading <paramref name="pixels"/> (raw, not normalised), and returns
    /// the name of the probabilities (<paramref name="probabilities"/> when given).
    /// </summary>
    /// <param name="graph">Where the nodes go.</param>
    /// <param name="network">A network in evaluation mode.</param>
    /// <param name="pixels">The graph value holding the raw images <c>N x C x H x W</c>.</param>
    /// <param name="height">Image height the network reads (fixes the pooling windows).</param>
    /// <param name="width">Image width the network reads.</param>
    /// <param name="mean">Per-channel mean subtracted first.</param>
    /// <param name="std">Per-channel standard deviation divided by next (as a multiplication by its float inverse, exactly as the engine's input does).</param>
    /// <param name="probabilities">The name of the output, or null for a fresh one.</param>
    /// <exception cref="InvalidOperationException">The network is in training mode.</exception>
    /// <exception cref="ArgumentException">Mean or std do not have one entry per input channel, or a pooling window is not exact for the size it meets.</exception>
    public static string Write(IOnnxGraph graph, EquivariantNetwork network, string pixels, int height, int width, float[] mean, float[] std, string? probabilities = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (network.training)
        {
            throw new InvalidOperationException("The network is in training mode; export writes the evaluation-mode computation (call PrepareForInference first).");
        }

        int channels = network.Architecture.InputChannels;
        if (mean.Length != channels || std.Length != channels)
        {
            throw new ArgumentException($"The input normalisation needs one mean and one std per input channel ({channels}); found {mean.Length} means and {std.Length} stds.", nameof(mean));
        }

        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var (stages, head) = Plan(network);

        long[] perChannel = [1, channels, 1, 1];
        string x = graph.AddNode("Sub", [pixels, graph.AddTensor("input.mean", (float[])mean.Clone(), perChannel)], "input.centred");
        x = graph.AddNode("Mul", [x, graph.AddTensor("input.inverse_std", std.Select(s => 1f / s).ToArray(), perChannel)], "input.normalised");

        long h = height, w = width;
        for (int i = 0; i < stages.Count; i++)
        {
            var stage = stages[i];
            var (weight, bias) = FoldNorm(stage.Filter, stage.Bias, stage.Norm, stage.Order);
            long k = stage.Filter.shape[2];
            long pad = k / 2;
            x = graph.AddNode(
                "Conv",
                [x, graph.AddTensor($"conv{i}.weight", weight, stage.Filter.shape), graph.AddTensor($"conv{i}.bias", bias, [stage.Filter.shape[0]])],
                $"conv{i}",
                [
                    OnnxAttribute.Ints("kernel_shape", k, k),
                    OnnxAttribute.Ints("pads", pad, pad, pad, pad),
                    OnnxAttribute.Ints("strides", 1, 1),
                    OnnxAttribute.Ints("dilations", 1, 1),
                    OnnxAttribute.Int("group", 1),
                ]);
            x = graph.AddNode("Relu", [x], $"relu{i}");
            if (stage.Pool is { } pool)
            {
                var wh = EquivariantPool2d.WindowFor(h, pool.Window);
                var ww = EquivariantPool2d.WindowFor(w, pool.Window);
                wh.CheckExact(h, "height");
                ww.CheckExact(w, "width");
                x = graph.AddNode(
                    "AveragePool",
                    [x],
                    $"pool{i}",
                    [
                        OnnxAttribute.Ints("kernel_shape", wh.Kernel, ww.Kernel),
                        OnnxAttribute.Ints("strides", wh.Stride, ww.Stride),
                        OnnxAttribute.Ints("pads", wh.Padding, ww.Padding, wh.Padding, ww.Padding),
                        OnnxAttribute.Int("count_include_pad", 1),
                    ]);
                h = wh.OutputSize(h);
                w = ww.OutputSize(w);
            }
        }

        // Head: mean over space per channel (with MeanAndMax also the maximum over space, the two concatenated), then
        // the mean over each field's |G| channels folded into the first layer, block by block.
        var spatialMean = graph.AddNode("GlobalAveragePool", [x], "head.spatial_mean");
        int blocks = InvariantHead.FeaturesPerField(head.Pooling);
        x = blocks == 1
            ? spatialMean
            : graph.AddNode("Concat", [spatialMean, graph.AddNode("GlobalMaxPool", [x], "head.spatial_max")], "head.statistics", [OnnxAttribute.Int("axis", 1)]);
        x = graph.AddNode("Flatten", [x], "head.features", [OnnxAttribute.Int("axis", 1)]);
        long lastChannels = stages[^1].Filter.shape[0];
        var first = head.Hidden ?? head.Output;
        if (first.weight!.shape[1] * head.Order != lastChannels * blocks)
        {
            throw new InvalidOperationException($"The head reads {first.weight.shape[1]} features ({blocks} per field of {head.Order} channels), but the last layer has {lastChannels} channels.");
        }

        var firstWeight = InvariantHead.SpreadWeight(first.weight, head.Pooling, head.Order);
        string logits;
        if (head.Hidden is not null)
        {
            var (hw, hb) = FoldNorm(firstWeight, head.Hidden.bias, head.HiddenNorm!, 1);
            x = Gemm(graph, x, hw, hb, firstWeight.shape, "head.hidden");
            x = graph.AddNode("Elu", [x], "head.elu"); // alpha 1, the default (and the engine's)
            logits = Gemm(graph, x, Floats(head.Output.weight!), Floats(head.Output.bias), head.Output.weight!.shape, "head.logits");
        }
        else
        {
            logits = Gemm(graph, x, Floats(firstWeight), Floats(head.Output.bias), firstWeight.shape, "head.logits");
        }

        return graph.AddNode("Softmax", [logits], "probabilities", [OnnxAttribute.Int("axis", 1)], probabilities);
    }

    /// <summary>One conv layer as the export sees it: the evaluation filter and bias, its norm, the order of the group whose fields share the norm's statistics, and the pooling after it.</summary>
    private sealed record Stage(Tensor Filter, Tensor? Bias, BatchNorm1d Norm, int Order, EquivariantPool2d? Pool);

    /// <summary>The head: the order of the last group (its fields' channels are averaged), the hidden layer with its norm (or none) and the output layer.</summary>
    private sealed record Head(int Order, Linear? Hidden, BatchNorm1d? HiddenNorm, Linear Output, HeadPooling Pooling);

    private static (IReadOnlyList<Stage> Stages, Head Head) Plan(EquivariantNetwork network)
    {
        switch (network)
        {
            case GroupCnn cnn:
            {
                var stages = new List<Stage>();
                foreach (var block in cnn.Blocks)
                {
                    var conv = block.Conv as ExpandedConvolution
                        ?? throw new InvalidOperationException($"Cannot export a {block.Conv.GetType().Name} layer: only expanded convolutions are known.");
                    var (filter, bias) = conv.InferenceFilter();
                    if (block.PreviousGroup is { } previous && previous != block.Layer.Group)
                    {
                        filter = FoldRestriction(filter, GroupRestriction.Index(previous, block.Layer.Group));
                    }

                    stages.Add(new Stage(filter, bias, block.Norm.Inner, block.Layer.Group.Order, block.Pool));
                }

                var head = cnn.Head;
                return (stages, new Head(head.Group.Order, head.Hidden, head.HiddenNorm, head.Output, head.Pooling));
            }

            case MixedGroupCnn mixed:
            {
                var stages = mixed.Blocks
                    .Select(block => new Stage(block.Conv.EvaluationFilter(), null, block.Norm.Inner, block.Norm.Top.Order, block.Pool))
                    .ToArray();
                return (stages, new Head(mixed.Spec.Top.Order, mixed.Hidden, mixed.HeadNorm, mixed.Output, mixed.Spec.Template.HeadPooling));
            }

            default:
                throw new NotSupportedException($"ONNX export knows fixed and mixed networks; found {network.GetType().Name}.");
        }
    }

    /// <summary>
    /// A filter that reads the restricted feature map, rewritten to read the unrestricted one: the restriction's input
    /// channel <c>c |G| + p</c> is the previous layer's channel <c>c |G| + index[p]</c> (a permutation within each field),
    /// so the filter's input column for that previous channel is the one the restricted channel had.
    /// </summary>
    private static Tensor FoldRestriction(Tensor filter, long[] index)
    {
        long n = index.Length, columns = filter.shape[1];
        var inverse = new long[columns];
        for (long c = 0; c < columns / n; c++)
        {
            for (long p = 0; p < n; p++)
            {
                inverse[(c * n) + index[p]] = (c * n) + p;
            }
        }

        return filter.index_select(1, torch.tensor(inverse, device: filter.device));
    }

    /// <summary>
    /// Folds an evaluation-mode batch norm over fields of <paramref name="order"/> channels each into the layer before
    /// it: per output channel, <c>s = gamma / sqrt(var + eps)</c>, weight times s, bias <c>(b - mean) s + beta</c>.
    /// </summary>
    private static (float[] Weight, float[] Bias) FoldNorm(Tensor weight, Tensor? bias, BatchNorm1d norm, int order)
    {
        long outputs = weight.shape[0];
        var mean = (norm.running_mean ?? throw new InvalidOperationException("A batch norm without running statistics cannot be exported.")).to_type(ScalarType.Float64);
        var variance = norm.running_var!.to_type(ScalarType.Float64);
        var gamma = norm.weight is null ? torch.ones_like(mean) : norm.weight.detach().to_type(ScalarType.Float64);
        var beta = norm.bias is null ? torch.zeros_like(mean) : norm.bias.detach().to_type(ScalarType.Float64);
        var fieldScale = gamma / (variance + norm.eps).sqrt();
        var scale = fieldScale.repeat_interleave(order);
        var shift = (beta - (mean * fieldScale)).repeat_interleave(order);
        if (scale.shape[0] != outputs)
        {
            throw new InvalidOperationException($"A batch norm over {mean.shape[0]} fields of {order} channels cannot follow a layer with {outputs} outputs.");
        }

        var broadcast = new long[weight.dim()];
        Array.Fill(broadcast, 1L);
        broadcast[0] = outputs;
        var folded = weight.to_type(ScalarType.Float64) * scale.view(broadcast);
        var b = bias is null ? torch.zeros(outputs, ScalarType.Float64) : bias.detach().to_type(ScalarType.Float64);
        return (Floats(folded), Floats((b * scale) + shift));
    }

    private static string Gemm(IOnnxGraph graph, string input, float[] weight, float[] bias, long[] weightShape, string name) =>
        graph.AddNode(
            "Gemm",
            [input, graph.AddTensor($"{name}.weight", weight, weightShape), graph.AddTensor($"{name}.bias", bias, [weightShape[0]])],
            name,
            [OnnxAttribute.Int("transB", 1)]);

    private static float[] Floats(Tensor? tensor) =>
        tensor is null ? throw new InvalidOperationException("A layer without bias cannot be exported by this writer.") : tensor.detach().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
}
