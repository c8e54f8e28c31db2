#nullable enable
using Equinas.MLNet.Persistence.Onnx;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;

namespace Equinas.MLNet;

/// <summary>
/// <see cref="IOnnxGraph"/> over ML.NET's export context: every value and constant is named "Equinas.*" (the context
/// maps each new name to a column of that name, so the prefix keeps them off the pipeline's own columns), and
/// intermediate values get no declared shape (ONNX Runtime infers it).
/// </summary>
internal sealed class OnnxContextGraph(OnnxContext ctx) : IOnnxGraph
{
    private const string Prefix = "Equinas.";

    public string AddTensor(string hint, float[] values, long[] dims) => ctx.AddInitializer(values, dims, Prefix + hint);

    public string AddTensor(string hint, long[] values, long[] dims) => ctx.AddInitializer(values, dims, Prefix + hint);

    public string AddNode(string opType, IReadOnlyList<string> inputs, string hint, IReadOnlyList<OnnxAttribute>? attributes = null, string? output = null)
    {
        string name = output ?? ctx.AddIntermediateVariable(NumberDataViewType.Single, Prefix + hint, skip: true);
        var node = ctx.CreateNode(opType, inputs, [name], ctx.GetNodeName(Prefix + opType), "");
        foreach (var a in attributes ?? [])
        {
            if (a.Integer is { } i)
            {
                node.AddAttribute(a.Name, i);
            }
            else if (a.Real is { } f)
            {
                node.AddAttribute(a.Name, (double)f);
            }
            else
            {
                node.AddAttribute(a.Name, (IEnumerable<long>)(a.Integers ?? []));
            }
        }

        return name;
    }
}
