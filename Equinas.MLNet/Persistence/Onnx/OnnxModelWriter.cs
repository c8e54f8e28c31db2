#nullable enable
using System.Runtime.InteropServices;
using Equinas.MLNet.Nn.Networks;
using Google.Protobuf;
using Onnx;

namespace Equinas.MLNet.Persistence.Onnx;

/// <summary>
/// A standalone ONNX model of a network (IR version 8, opset 18 of the default domain): input <see cref="InputName"/>
/// (float, <c>N x C x H x W</c>, N free), output <see cref="OutputName"/> (float, <c>N x classes</c>). Built in memory
/// with the ONNX protobuf types of OnnxSharp, then written in one piece.
/// </summary>
internal static class OnnxModelWriter
{
    /// <summary>ONNX IR version written (ONNX 1.13 and later, ONNX Runtime 1.14 and later read it).</summary>
    public const long IrVersion = 8;

    /// <summary>Opset of the default domain.</summary>
    public const long Opset = 18;

    /// <summary>The graph's input: raw pixels, <c>N x C x H x W</c>.</summary>
    public const string InputName = "pixels";

    /// <summary>The graph's output: class probabilities, <c>N x classes</c>.</summary>
    public const string OutputName = "probabilities";

    /// <summary>The batch dimension's symbolic name.</summary>
    public const string BatchDimension = "N";

    private const int FloatType = (int)TensorProto.Types.DataType.Float;
    private const int Int64Type = (int)TensorProto.Types.DataType.Int64;

    /// <summary>Builds the model of <paramref name="network"/> (in evaluation mode) for <paramref name="height"/> x <paramref name="width"/> images.</summary>
    /// <param name="network">The network.</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="mean">Per-channel input mean.</param>
    /// <param name="std">Per-channel input standard deviation.</param>
    /// <param name="producerVersion">The writing library's version.</param>
    /// <param name="docString">What the model is, for people reading the file.</param>
    /// <param name="metadata">Key-value pairs stored in the model's metadata.</param>
    public static ModelProto Build(EquivariantNetwork network, int height, int width, float[] mean, float[] std, string producerVersion, string docString, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(metadata);
        var graph = new ProtoGraph();
        NetworkOnnx.Write(graph, network, InputName, height, width, mean, std, OutputName);

        var proto = graph.Proto;
        proto.Name = "equinas";
        proto.Input.Add(Value(InputName, FloatType, network.Architecture.InputChannels, height, width));
        proto.Output.Add(Value(OutputName, FloatType, network.Architecture.Classes));
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Equinas.MLNet",
            ProducerVersion = producerVersion,
            Domain = "equinas",
            ModelVersion = 1,
            DocString = docString,
            Graph = proto,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in metadata)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        return model;
    }

    /// <summary>A float tensor value <c>N x dims...</c> with a symbolic batch dimension.</summary>
    private static ValueInfoProto Value(string name, int elementType, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = BatchDimension });
        foreach (long d in dims)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } },
        };
    }

    /// <summary>Collects nodes and initializers into a <see cref="GraphProto"/>, giving every value a unique name.</summary>
    private sealed class ProtoGraph : IOnnxGraph
    {
        private readonly HashSet<string> _names = [InputName, OutputName];
        private readonly Dictionary<string, int> _counts = new();

        public GraphProto Proto { get; } = new();

        public string AddTensor(string hint, float[] values, long[] dims)
        {
            var tensor = new TensorProto { Name = Fresh(hint), DataType = FloatType };
            tensor.Dims.Add(dims);
            if (BitConverter.IsLittleEndian)
            {
                // ONNX raw data is little-endian: the floats' own bytes on this machine.
                tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            else
            {
                tensor.FloatData.Add(values);
            }

            Proto.Initializer.Add(tensor);
            return tensor.Name;
        }

        public string AddTensor(string hint, long[] values, long[] dims)
        {
            var tensor = new TensorProto { Name = Fresh(hint), DataType = Int64Type };
            tensor.Dims.Add(dims);
            tensor.Int64Data.Add(values);
            Proto.Initializer.Add(tensor);
            return tensor.Name;
        }

        public string AddNode(string opType, IReadOnlyList<string> inputs, string hint, IReadOnlyList<OnnxAttribute>? attributes = null, string? output = null)
        {
            string name = output ?? Fresh(hint);
            var node = new NodeProto { OpType = opType, Name = $"{name}.{opType}", Domain = "" };
            node.Input.Add(inputs);
            node.Output.Add(name);
            foreach (var a in attributes ?? [])
            {
                node.Attribute.Add(Attribute(a));
            }

            Proto.Node.Add(node);
            return name;
        }

        private static AttributeProto Attribute(OnnxAttribute a)
        {
            var proto = new AttributeProto { Name = a.Name };
            if (a.Integer is { } i)
            {
                proto.Type = AttributeProto.Types.AttributeType.Int;
                proto.I = i;
            }
            else if (a.Real is { } f)
            {
                proto.Type = AttributeProto.Types.AttributeType.Float;
                proto.F = f;
            }
            else
            {
                proto.Type = AttributeProto.Types.AttributeType.Ints;
                proto.Ints.Add(a.Integers ?? []);
            }

            return proto;
        }

        /// <summary>The hint itself the first time, then the hint with a counter.</summary>
        private string Fresh(string hint)
        {
            string name = hint;
            while (!_names.Add(name))
            {
                int count = _counts.GetValueOrDefault(hint) + 1;
                _counts[hint] = count;
                name = $"{hint}_{count}";
            }

            return name;
        }
    }
}
