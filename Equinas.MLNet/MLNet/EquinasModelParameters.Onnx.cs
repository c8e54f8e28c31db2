#nullable enable
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using Equinas.MLNet.Input;
using Equinas.MLNet.Persistence.Onnx;
using Google.Protobuf;
using Microsoft.ML.Model.OnnxConverter;

namespace Equinas.MLNet;

/// <summary>ONNX export: the network alone (<see cref="SaveAsOnnx(Stream)"/>) and as part of ML.NET's <c>ConvertToOnnx</c>.</summary>
public sealed partial class EquinasModelParameters : ISingleCanSaveOnnx
{
    private const uint OnnxUInt32 = 12; // TensorProto.DataType UINT32: ML.NET's key type.

    // Contexts that have asked CanSaveOnnx once (see ICanSaveOnnx.CanSaveOnnx). Weak: a context lives for one export.
    private readonly ConditionalWeakTable<OnnxContext, object> _onnxContextsSeen = new();

    /// <summary>
    /// Writes the trained network alone as an ONNX model (IR version 8, opset 18) to <paramref name="stream"/>, which is
    /// left open. Input <c>pixels</c>: float <c>N x C x H x W</c> (<see cref="InputShape"/>, N any batch size), the
    /// pixels as the trainer read them from its feature column, before normalisation: the per-channel mean and standard
    /// deviation of the training data are applied inside the graph. Output <c>probabilities</c>: float
    /// <c>N x <see cref="ClassCount"/></c>, softmax over the classes in the label's key order (key k + 1 is column k),
    /// the values ML.NET puts in its Score column.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The graph is the network's evaluation-mode computation, exactly: every conv layer (fixed, relaxed or mixed) is
    /// one Conv with the expanded (for mixed layers: summed) filter the engine convolves with, batch norm folded into
    /// it, ReLU, the exact stride-2 average pooling, the invariant head (mean over space and each field's group
    /// channels, the linear layers, ELU) and Softmax. ONNX Runtime scores it like the model does (tested to 1e-5).
    /// </para>
    /// <para>
    /// What the input holds depends on the feature column the model was trained on: for pixels (ExtractPixels) or a
    /// flat vector, its values unchanged (planar, channel by channel); for an image column or encoded bytes, the decoded
    /// 8-bit values 0-255, planar (1 channel: luminance; 3: R, G, B; 4: R, G, B, A), after resizing to H x W. Image
    /// loading and decoding stay outside the graph: ONNX has no operators for them.
    /// </para>
    /// </remarks>
    /// <param name="stream">A writable stream.</param>
    /// <exception cref="ArgumentException">The stream is not writable.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public void SaveAsOnnx(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream is not writable.", nameof(stream));
        }

        BuildOnnx().WriteTo(stream);
    }

    /// <summary>
    /// Writes the trained network alone as an ONNX model file (see <see cref="SaveAsOnnx(Stream)"/> for its input and
    /// output). The file is written atomically: the complete model goes to a temporary file in the same folder, which
    /// then replaces <paramref name="path"/>; on any failure <paramref name="path"/> is left as it was.
    /// </summary>
    /// <param name="path">The .onnx file to write (replaced if it exists).</param>
    /// <exception cref="ArgumentException">The path is empty.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public void SaveAsOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Cannot write the ONNX model '{path}': the folder '{folder}' does not exist.");
        }

        var model = BuildOnnx();
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                model.WriteTo(file);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>
    /// Whether ML.NET's <c>ConvertToOnnx</c> can export the scorer of this model. ML.NET asks twice in one export:
    /// first while walking the pipeline back from its end (the graph has no inputs yet), then again while it writes
    /// this scorer, when the graph holds every column the earlier steps could export. The second time, a feature
    /// column that is missing means an earlier step has no ONNX export (ImageAnalytics' LoadImages, ResizeImages and
    /// ExtractPixels have none); ML.NET would then fail later with a message that names no step, so this throws with
    /// one that says what happened and points to <see cref="SaveAsOnnx(Stream)"/>.
    /// </summary>
    bool ICanSaveOnnx.CanSaveOnnx(OnnxContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (Input.Kind is FeatureKind.Image or FeatureKind.Bytes)
        {
            throw new NotSupportedException(
                $"This Equinas model reads the {(Input.Kind == FeatureKind.Image ? "image" : "encoded image bytes")} column '{Input.Column}' ({_inputType}), and ONNX has no operators that decode or convert images, so ML.NET's ConvertToOnnx cannot export a pipeline with this model. " +
                $"Export the network alone with EquinasModelParameters.SaveAsOnnx (or 'equinas export'): its input 'pixels' is the decoded images, N x {Input.Shape} planar floats 0-255, and its output 'probabilities' the class probabilities; decode and resize the images before ONNX Runtime.");
        }

        if (!_onnxContextsSeen.TryAdd(ctx, ctx) && !ctx.ContainsColumn(Input.Column))
        {
            throw new NotSupportedException(
                $"ML.NET's ConvertToOnnx cannot export the steps that make the feature column '{Input.Column}' of this Equinas model (image loading transforms such as LoadImages, ResizeImages and ExtractPixels have no ONNX export), so the pipeline cannot become one ONNX model. " +
                $"Export the network alone with EquinasModelParameters.SaveAsOnnx (or 'equinas export'): its input 'pixels' is what '{Input.Column}' holds, N x {Input.Shape} floats, and its output 'probabilities' the class probabilities; or give the pipeline the pixels as a column of its input data.");
        }

        return true;
    }

    /// <summary>
    /// Writes the scorer's nodes into ML.NET's export: the feature vector reshaped to <c>N x C x H x W</c>, the network
    /// (<see cref="NetworkOnnx"/>) into <paramref name="outputNames"/>[1] (Score), and its argmax as a 1-based uint32
    /// key into <paramref name="outputNames"/>[0] (PredictedLabel), as ML.NET's multiclass scorer defines them.
    /// </summary>
    bool ISingleCanSaveOnnx.SaveAsOnnx(OnnxContext ctx, string[] outputNames, string featureColumn)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(outputNames);
        ArgumentException.ThrowIfNullOrEmpty(featureColumn);
        if (outputNames.Length != 2)
        {
            throw new InvalidOperationException($"ML.NET asked the Equinas model for {outputNames.Length} ONNX outputs ({string.Join(", ", outputNames)}); a multiclass scorer asks for two, PredictedLabel and Score.");
        }

        _lifetime.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var graph = new OnnxContextGraph(ctx);
            string images = graph.AddNode("Reshape", [featureColumn, graph.AddTensor("shape", new long[] { -1, Input.Channels, Input.Height, Input.Width }, [4])], "images");
            string score = NetworkOnnx.Write(graph, _network.Network, images, Input.Height, Input.Width, Input.Mean, Input.Std, outputNames[1]);
            string index = graph.AddNode("ArgMax", [score], "argmax", [OnnxAttribute.Int("axis", 1), OnnxAttribute.Int("keepdims", 1)]);
            string key = graph.AddNode("Add", [index, graph.AddTensor("one", new long[] { 1 }, [1])], "key");
            graph.AddNode("Cast", [key], "predicted", [OnnxAttribute.Int("to", OnnxUInt32)], outputNames[0]);
            return true;
        }
        finally
        {
            _lifetime.ExitReadLock();
        }
    }

    private global::Onnx.ModelProto BuildOnnx()
    {
        _lifetime.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            string version = typeof(EquinasModelParameters).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            string source = Input.Kind switch
            {
                FeatureKind.Image or FeatureKind.Bytes => "the decoded image, planar 8-bit values 0-255",
                _ => $"the values of column '{Input.Column}', planar",
            };
            string doc = string.Create(
                CultureInfo.InvariantCulture,
                $"Equinas.MLNet equivariant image classifier ({string.Join("-", LayerGroups)}). Input 'pixels': float[N, {Input.Channels}, {Input.Height}, {Input.Width}], {source}, before normalisation (done in the graph). Output 'probabilities': float[N, {ClassCount}], softmax over the classes in the label's key order.");
            var metadata = new Dictionary<string, string>
            {
                ["equinas.layer_groups"] = string.Join(",", LayerGroups),
                ["equinas.mixed"] = IsMixed ? "true" : "false",
                ["equinas.classes"] = ClassCount.ToString(CultureInfo.InvariantCulture),
                ["equinas.input_shape"] = Input.Shape,
                ["equinas.feature_column"] = Input.Column,
                ["equinas.feature_kind"] = Input.Kind.ToString(),
                ["equinas.input_mean"] = string.Join(",", Input.Mean.Select(v => v.ToString("R", CultureInfo.InvariantCulture))),
                ["equinas.input_std"] = string.Join(",", Input.Std.Select(v => v.ToString("R", CultureInfo.InvariantCulture))),
            };
            return OnnxModelWriter.Build(_network.Network, Input.Height, Input.Width, Input.Mean, Input.Std, version, doc, metadata);
        }
        finally
        {
            _lifetime.ExitReadLock();
        }
    }
}
