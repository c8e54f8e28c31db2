using System.Reflection;
using NetArchTest.Rules;
using Xunit;

namespace Equinas.MLNet.Tests.Architecture;

/// <summary>
/// The library's folders in the design's order (docs/design.md): each may use only those before it. Checked on the
/// compiled assembly, so a forbidden <c>using</c> anywhere fails here.
/// </summary>
public sealed class LayeringTests
{
    private static readonly Assembly Library = typeof(EquinasModelParameters).Assembly;

    /// <summary>The ML.NET integration: the public API's namespace (its types by name) and its sub-namespaces.</summary>
    private static readonly string[] Integration =
    [
        .. Library.GetTypes().Where(t => t.Namespace == "Equinas.MLNet" && !t.IsNested && t.Name != "<Module>").Select(t => t.FullName!),
        "Equinas.MLNet.Input",
        "Equinas.MLNet.Runs",
        "Equinas.MLNet.Scoring",
    ];

    /// <summary>The layers, lowest first; every layer's namespaces.</summary>
    private static readonly (string Name, string[] Namespaces)[] Layers =
    [
        ("Groups", ["Equinas.MLNet.Groups"]),
        ("Groups.Actions", ["Equinas.MLNet.Groups.Actions"]),
        ("Nn", ["Equinas.MLNet.Nn"]),
        ("Morphism", ["Equinas.MLNet.Morphism"]),
        ("Mixed", ["Equinas.MLNet.Mixed"]),
        ("Persistence", ["Equinas.MLNet.Persistence"]),
        ("Search", ["Equinas.MLNet.Search"]),
    ];

    public static TheoryData<int> LayerIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Layers.Length; i++)
        {
            data.Add(i);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(LayerIndices))]
    public void A_layer_uses_no_layer_above_it(int layer)
    {
        var (name, namespaces) = Layers[layer];
        var above = Layers.Skip(layer + 1).SelectMany(l => l.Namespaces).Concat(Integration).ToArray();
        // Groups.Actions lives inside Groups' folder: the pure group layer is Groups without it.
        var types = Types.InAssembly(Library).That().ResideInNamespace(namespaces[0]);
        var selected = layer == 0 ? types.And().DoNotResideInNamespace("Equinas.MLNet.Groups.Actions") : types;
        var result = selected.ShouldNot().HaveDependencyOnAny(above).GetResult();
        Assert.True(result.IsSuccessful, $"{name} uses a layer above it: {Failing(result)}");
    }

    [Fact]
    public void The_group_layer_is_pure_csharp()
    {
        var result = Types.InAssembly(Library).That().ResideInNamespace("Equinas.MLNet.Groups").And().DoNotResideInNamespace("Equinas.MLNet.Groups.Actions")
            .ShouldNot().HaveDependencyOnAny("TorchSharp").GetResult();
        Assert.True(result.IsSuccessful, $"Groups uses TorchSharp: {Failing(result)}");
    }

    [Fact]
    public void Only_the_integration_uses_MLNet()
    {
        var engine = Layers.SelectMany(l => l.Namespaces).ToArray();
        var result = Types.InAssembly(Library).That().ResideInNamespace(engine[0]).Or().ResideInNamespace(engine[1])
            .Or().ResideInNamespace(engine[2]).Or().ResideInNamespace(engine[3]).Or().ResideInNamespace(engine[4])
            .Or().ResideInNamespace(engine[5]).Or().ResideInNamespace(engine[6])
            .ShouldNot().HaveDependencyOnAny("Microsoft.ML").GetResult();
        Assert.True(result.IsSuccessful, $"Engine types use ML.NET: {Failing(result)}");
    }

    private static string Failing(TestResult result) => string.Join(", ", result.FailingTypes?.Select(t => t.FullName) ?? []);

    [Fact]
    public void The_rule_sees_the_integration_types()
    {
        // A check that cannot fail proves nothing: the integration's names must include the public API's types.
        Assert.Contains("Equinas.MLNet.EquinasModelParameters", Integration);
        Assert.Contains("Equinas.MLNet.EquivariantImageClassificationTrainer", Integration);
        var engineTypes = Types.InAssembly(Library).That().ResideInNamespace("Equinas.MLNet.Search").GetTypes().Count();
        Assert.True(engineTypes > 10, $"{engineTypes} Search types seen");
        // The ONNX export sits in the Persistence layer (it writes the network; ML.NET's export context is adapted in the integration).
        var onnxTypes = Types.InAssembly(Library).That().ResideInNamespace("Equinas.MLNet.Persistence.Onnx").GetTypes().Count();
        Assert.True(onnxTypes >= 3, $"{onnxTypes} Persistence.Onnx types seen");
    }
}
