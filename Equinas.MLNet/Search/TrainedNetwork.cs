#nullable enable
using System.Text.Json;
using System.Text.Json.Serialization;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Equinas.MLNet.Search;

/// <summary>
/// A trained network of either kind (fixed per-layer groups, or mixed layers with their z) with everything needed to
/// rebuild it: a JSON description of the architecture and the weights as TorchSharp's binary state. Owns the network.
/// </summary>
internal sealed class TrainedNetwork : IDisposable
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public TrainedNetwork(GroupCnn network)
    {
        Network = network ?? throw new ArgumentNullException(nameof(network));
        Description = NetworkDescription.Of(network.Spec, null, null);
    }

    public TrainedNetwork(MixedGroupCnn network)
    {
        Network = network ?? throw new ArgumentNullException(nameof(network));
        var frozen = network.Blocks.Any(b => b.Conv.FrozenZ is not null) ? network.Z() : null;
        Description = NetworkDescription.Of(network.Spec.Template, network.Spec, frozen);
    }

    private TrainedNetwork(nn.Module<Tensor, Tensor> network, NetworkDescription description)
    {
        Network = network;
        Description = description;
    }

    /// <summary>The network, in evaluation mode unless the caller changed it.</summary>
    public nn.Module<Tensor, Tensor> Network { get; }

    public NetworkDescription Description { get; }

    /// <summary>Trainable scalars (architecture logits excluded).</summary>
    public long ParameterCount => Network switch
    {
        GroupCnn g => g.ParameterCount,
        MixedGroupCnn m => m.WeightCount,
        _ => throw new InvalidOperationException(),
    };

    /// <summary>Writes the description (JSON) to <paramref name="architecture"/> and the weights to <paramref name="weights"/>.</summary>
    public void Save(BinaryWriter architecture, BinaryWriter weights)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(weights);
        architecture.Write(JsonSerializer.Serialize(Description, Json));
        Network.save(weights);
    }

    /// <summary>Rebuilds a network from what <see cref="Save"/> wrote; the result is in evaluation mode.</summary>
    /// <exception cref="InvalidDataException">The description is malformed or the weights do not fit it.</exception>
    public static TrainedNetwork Load(BinaryReader architecture, BinaryReader weights)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(weights);
        NetworkDescription description;
        try
        {
            description = JsonSerializer.Deserialize<NetworkDescription>(architecture.ReadString(), Json)
                ?? throw new InvalidDataException("The network description is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The network description is not valid JSON: {e.Message}", e);
        }

        var network = description.Build();
        try
        {
            network.load(weights, strict: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            network.Dispose();
            throw new InvalidDataException($"The stored weights do not fit the stored architecture ({description.Summary()}): {e.Message}", e);
        }

        if (network is MixedGroupCnn mixed && description.FrozenZ is { } z)
        {
            mixed.FreezeZ(z);
        }

        network.eval();
        return new TrainedNetwork(network, description);
    }

    public void Dispose() => Network.Dispose();
}

/// <summary>The architecture of a <see cref="TrainedNetwork"/>, as stored (JSON; change it only with a format version).</summary>
internal sealed record NetworkDescription
{
    /// <summary>"fixed" or "mixed".</summary>
    public required string Kind { get; init; }

    public required int InputChannels { get; init; }

    /// <summary>Per-layer group names (fixed networks); for mixed networks the template's groups (unused).</summary>
    public required string[] Groups { get; init; }

    /// <summary>Per-layer fields (fixed networks) or scalar channels (mixed networks, where fields depend on the member).</summary>
    public required int[] Widths { get; init; }

    public required int KernelSize { get; init; }

    public required int[] PoolAfter { get; init; }

    public required int Classes { get; init; }

    public required int HeadHidden { get; init; }

    /// <summary>Member groups of every mixed layer.</summary>
    public string[]? Members { get; init; }

    public string? Initialization { get; init; }

    public double? Temperature { get; init; }

    /// <summary>Frozen z per layer (after discretisation), or null when z comes from the stored logits.</summary>
    public double[][]? FrozenZ { get; init; }

    public static NetworkDescription Of(NetworkSpec spec, MixedNetworkSpec? mixed, double[][]? frozenZ) => new()
    {
        Kind = mixed is null ? "fixed" : "mixed",
        InputChannels = spec.InputChannels,
        Groups = spec.Layers.Select(l => l.Group.Name).ToArray(),
        Widths = mixed is null ? spec.Layers.Select(l => l.Fields).ToArray() : spec.Layers.Select(l => l.Channels).ToArray(),
        KernelSize = spec.KernelSize,
        PoolAfter = spec.PoolAfter.ToArray(),
        Classes = spec.Classes,
        HeadHidden = spec.HeadHidden,
        Members = mixed?.Members.Select(m => m.Name).ToArray(),
        Initialization = mixed?.Initialization.ToString(),
        Temperature = mixed?.Temperature,
        FrozenZ = frozenZ,
    };

    /// <summary>A one-line description for messages.</summary>
    public string Summary() => $"{Kind} {string.Join("-", Groups)} [{string.Join(",", Widths)}], {Classes} classes";

    /// <summary>A new network with this architecture and fresh weights.</summary>
    /// <exception cref="InvalidDataException">The description is inconsistent.</exception>
    public nn.Module<Tensor, Tensor> Build()
    {
        try
        {
            var groups = Groups.Select(SymmetryGroup.Parse).ToArray();
            if (Kind == "fixed")
            {
                var layers = groups.Zip(Widths, (g, f) => new LayerSpec(g, f)).ToArray();
                return new GroupCnn(new NetworkSpec(InputChannels, layers, KernelSize, PoolAfter, Classes, HeadHidden));
            }

            if (Kind == "mixed" && Members is not null)
            {
                var template = NetworkSpec.FromChannels(InputChannels, NetworkPresets.Uniform(SymmetryGroup.C1, Widths.Length), Widths, KernelSize, PoolAfter, Classes, HeadHidden);
                var initialization = Enum.Parse<AlphaInitialization>(Initialization ?? nameof(AlphaInitialization.Uniform));
                return new MixedGroupCnn(new MixedNetworkSpec(template, Members.Select(SymmetryGroup.Parse).ToArray(), initialization, Temperature ?? 1.0));
            }

            throw new InvalidDataException($"Unknown network kind '{Kind}' (expected 'fixed' or 'mixed' with members).");
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The stored architecture is inconsistent: {e.Message}", e);
        }
    }
}
