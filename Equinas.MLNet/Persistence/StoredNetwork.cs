#nullable enable
using System.Text.Json;
using System.Text.Json.Serialization;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Mixed;
using Equinas.MLNet.Nn.Networks;

namespace Equinas.MLNet.Persistence;

/// <summary>
/// A trained network of either kind with everything needed to rebuild it: a JSON description of the architecture
/// (<see cref="NetworkDescription"/>) and the weights as TorchSharp's binary state. Owns the network.
/// </summary>
internal sealed class StoredNetwork : IDisposable
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public StoredNetwork(EquivariantNetwork network)
    {
        Network = network ?? throw new ArgumentNullException(nameof(network));
        Description = NetworkDescription.Of(network);
    }

    private StoredNetwork(EquivariantNetwork network, NetworkDescription description)
    {
        Network = network;
        Description = description;
    }

    /// <summary>The network, in evaluation mode unless the caller changed it.</summary>
    public EquivariantNetwork Network { get; }

    public NetworkDescription Description { get; }

    /// <summary>
    /// Writes the description (JSON) to <paramref name="architecture"/> and the weights to <paramref name="weights"/>.
    /// The weights are written as CPU tensors whatever device the network is on (TorchSharp copies others to the CPU),
    /// so what is saved on one device loads on any.
    /// </summary>
    public void Save(BinaryWriter architecture, BinaryWriter weights)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(weights);
        architecture.Write(JsonSerializer.Serialize(Description, Json));
        Network.save(weights);
    }

    /// <summary>
    /// Rebuilds a network from what <see cref="Save"/> wrote, on <paramref name="device"/> (null: the CPU); the result is
    /// in evaluation mode. The weights are read on the CPU and then moved.
    /// </summary>
    /// <exception cref="InvalidDataException">The description is malformed or the weights do not fit it.</exception>
    public static StoredNetwork Load(BinaryReader architecture, BinaryReader weights, TorchSharp.torch.Device? device = null)
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

        // The fresh weights are overwritten by the stored ones; built under the init lock (see SeededInit).
        var network = SeededInit.Overwritten(description.Build);
        try
        {
            network.load(weights, strict: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            network.Dispose();
            throw new InvalidDataException($"The stored weights do not fit the stored architecture ({description.Summary()}): {e.Message}", e);
        }

        SeededInit.MoveTo(network, device);
        if (network is MixedGroupCnn mixed && description.FrozenZ is { } z)
        {
            mixed.FreezeZ(z);
        }

        network.eval();
        return new StoredNetwork(network, description);
    }

    public void Dispose() => Network.Dispose();
}

/// <summary>The architecture of a <see cref="StoredNetwork"/>, as stored (JSON; change it only with a format version).</summary>
internal sealed record NetworkDescription
{
    /// <summary>The network's kind, stored as "fixed" or "mixed".</summary>
    public required NetworkKind Kind { get; init; }

    public required int InputChannels { get; init; }

    /// <summary>Per-layer group names (fixed networks); for mixed networks the template's groups (unused).</summary>
    public required string[] Groups { get; init; }

    /// <summary>Per-layer fields (fixed networks) or scalar channels (mixed networks, where fields depend on the member).</summary>
    public required int[] Widths { get; init; }

    public required int KernelSize { get; init; }

    public required int[] PoolAfter { get; init; }

    public required int Classes { get; init; }

    public required int HeadHidden { get; init; }

    /// <summary>
    /// What the head reads from each field ("MeanAndMax"); absent for the mean alone, so that models of the default head,
    /// and every model saved before the field existed (2026-12-02), read as before.
    /// </summary>
    public string? HeadPooling { get; init; }

    /// <summary>Member groups of every mixed layer.</summary>
    public string[]? Members { get; init; }

    public string? Initialization { get; init; }

    public double? Temperature { get; init; }

    /// <summary>Frozen z per layer, or null when z comes from the stored logits.</summary>
    public double[][]? FrozenZ { get; init; }

    /// <summary>
    /// The mixed networks' format: 2 since 2026-12-01 (one channel layout over the top group, member kernels of fixed
    /// norm, one shared norm, a z-free head); absent (1) before. Fixed networks have no such field.
    /// </summary>
    public int? MixedFormat { get; init; }

    /// <summary>The mixed-network format this version writes and reads.</summary>
    public const int CurrentMixedFormat = 2;

    public static NetworkDescription Of(EquivariantNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var spec = network.Architecture;
        var mixed = network as MixedGroupCnn;
        return new()
        {
            Kind = network.Kind,
            InputChannels = spec.InputChannels,
            Groups = spec.Layers.Select(l => l.Group.Name).ToArray(),
            Widths = network.Kind == NetworkKind.Fixed ? spec.Layers.Select(l => l.Fields).ToArray() : spec.Layers.Select(l => l.Channels).ToArray(),
            KernelSize = spec.KernelSize,
            PoolAfter = spec.PoolAfter.ToArray(),
            Classes = spec.Classes,
            HeadHidden = spec.HeadHidden,
            HeadPooling = spec.HeadPooling == Nn.Layers.HeadPooling.Mean ? null : spec.HeadPooling.ToString(),
            Members = mixed?.Spec.Members.Select(m => m.Name).ToArray(),
            Initialization = mixed?.Spec.Initialization.ToString(),
            Temperature = mixed?.Spec.Temperature,
            FrozenZ = mixed is not null && mixed.Blocks.Any(b => b.Conv.FrozenZ is not null) ? mixed.Z() : null,
            MixedFormat = mixed is null ? null : CurrentMixedFormat,
        };
    }

    /// <summary>A one-line description for messages.</summary>
    public string Summary() => $"{Kind.ToString().ToLowerInvariant()} {string.Join("-", Groups)} [{string.Join(",", Widths)}], {Classes} classes";

    /// <summary>A new network with this architecture and fresh weights.</summary>
    /// <exception cref="InvalidDataException">The description is inconsistent.</exception>
    public EquivariantNetwork Build()
    {
        try
        {
            var groups = Groups.Select(SymmetryGroup.Parse).ToArray();
            var pooling = Nn.Layers.HeadPooling.Mean;
            if (HeadPooling is not null && !Enum.TryParse(HeadPooling, ignoreCase: false, out pooling))
            {
                throw new InvalidDataException($"The stored head pooling '{HeadPooling}' is not one of {string.Join(", ", Enum.GetNames<Nn.Layers.HeadPooling>())}.");
            }

            switch (Kind)
            {
                case NetworkKind.Fixed:
                    var layers = groups.Zip(Widths, (g, f) => new LayerSpec(g, f)).ToArray();
                    return new GroupCnn(new NetworkSpec(InputChannels, layers, KernelSize, PoolAfter, Classes, HeadHidden) { HeadPooling = pooling });
                case NetworkKind.Mixed when (MixedFormat ?? 1) != CurrentMixedFormat:
                    throw new InvalidDataException(
                        $"This differentiable-search model uses mixed-network format {MixedFormat ?? 1} (saved by Equinas.MLNet before 2026-12-01, whose mixed layers laid members out inconsistently and were not invariant to what they reported); this version reads format {CurrentMixedFormat} only. Train the model again (models with one group per layer, from any search mode, still load).");
                case NetworkKind.Mixed when Members is not null:
                    var template = NetworkSpec.FromChannels(InputChannels, NetworkPresets.Uniform(SymmetryGroup.C1, Widths.Length), Widths, KernelSize, PoolAfter, Classes, HeadHidden) with { HeadPooling = pooling };
                    var initialization = Enum.Parse<AlphaInitialization>(Initialization ?? nameof(AlphaInitialization.Uniform));
                    return new MixedGroupCnn(new MixedNetworkSpec(template, Members.Select(SymmetryGroup.Parse).ToArray(), initialization, Temperature ?? 1.0));
                default:
                    throw new InvalidDataException($"Unknown network kind '{Kind}' (expected fixed, or mixed with members).");
            }
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The stored architecture is inconsistent: {e.Message}", e);
        }
    }
}
