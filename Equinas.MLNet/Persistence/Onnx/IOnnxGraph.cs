#nullable enable
namespace Equinas.MLNet.Persistence.Onnx;

/// <summary>An attribute of an ONNX node: an integer, a float or a list of integers.</summary>
/// <param name="Name">The attribute's name in the operator's schema.</param>
/// <param name="Integer">The integer value, or null.</param>
/// <param name="Real">The float value, or null.</param>
/// <param name="Integers">The list of integers, or null.</param>
internal readonly record struct OnnxAttribute(string Name, long? Integer = null, float? Real = null, long[]? Integers = null)
{
    public static OnnxAttribute Int(string name, long value) => new(name, Integer: value);

    public static OnnxAttribute Float(string name, float value) => new(name, Real: value);

    public static OnnxAttribute Ints(string name, params long[] values) => new(name, Integers: values);
}

/// <summary>
/// Where the nodes of an exported network go: a standalone ONNX graph (<see cref="OnnxModelWriter"/>) or ML.NET's
/// own export context (the ML.NET integration adapts it). The network writer (<see cref="NetworkOnnx"/>) uses only
/// operators whose meaning is the same in every opset from 12 to 18, so both targets get the same graph.
/// </summary>
internal interface IOnnxGraph
{
    /// <summary>Adds a float constant tensor; returns its unique name.</summary>
    string AddTensor(string hint, float[] values, long[] dims);

    /// <summary>Adds an int64 constant tensor; returns its unique name.</summary>
    string AddTensor(string hint, long[] values, long[] dims);

    /// <summary>
    /// Adds a node of the default domain with one output and returns that output's name: <paramref name="output"/>
    /// when given (a name the target already reserved for it), else a fresh name made from <paramref name="hint"/>.
    /// </summary>
    string AddNode(string opType, IReadOnlyList<string> inputs, string hint, IReadOnlyList<OnnxAttribute>? attributes = null, string? output = null);
}
