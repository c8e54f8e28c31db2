#nullable enable
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Equinas.MLNet.Input;

namespace Equinas.MLNet;

/// <summary>
/// The Equinas entries of an ML.NET model zip: the metadata JSON (with the hashes of the binary entries), its upgrade
/// from earlier versions, and the checks that name a missing, truncated or modified entry.
/// </summary>
internal static class EquinasModelFile
{
    internal const string MetadataEntry = EquinasModelParameters.MetadataEntry;
    internal const string ArchitectureEntry = EquinasModelParameters.ArchitectureEntry;
    internal const string WeightsEntry = EquinasModelParameters.WeightsEntry;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Checks a model file's Equinas entries (see <see cref="EquinasModelParameters.VerifyFile"/>).</summary>
    public static void Verify(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Model file '{path}' was not found.", path);
        }

        System.IO.Compression.ZipArchive zip;
        try
        {
            zip = System.IO.Compression.ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Model file '{path}' is not a complete zip archive (truncated or not a model file): {e.Message}", e);
        }

        using (zip)
        {
            foreach (var metadataEntry in zip.Entries.Where(e => e.Name == MetadataEntry))
            {
                string folder = metadataEntry.FullName[..^MetadataEntry.Length];
                StoredMetadata metadata;
                try
                {
                    using var reader = new StreamReader(metadataEntry.Open());
                    metadata = ParseMetadata(reader.ReadToEnd());
                    CheckEntry(ArchitectureEntry, ReadEntry(zip, folder + ArchitectureEntry), metadata.ArchitectureSha256, metadata.ArchitectureLength);
                    CheckEntry(WeightsEntry, ReadEntry(zip, folder + WeightsEntry), metadata.WeightsSha256, metadata.WeightsLength);
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"Model file '{path}': {e.Message}", e);
                }
            }
        }
    }

    private static byte[]? ReadEntry(System.IO.Compression.ZipArchive zip, string name)
    {
        var entry = zip.GetEntry(name);
        if (entry is null)
        {
            return null;
        }

        using var stream = entry.Open();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    public static StoredMetadata ParseMetadata(string? text)
    {
        if (text is null)
        {
            throw Corrupt(MetadataEntry, "the entry", "no such entry");
        }

        try
        {
            var node = JsonNode.Parse(text) ?? throw Corrupt(MetadataEntry, "a JSON object", "null");
            UpgradeHistory(node["History"]);
            return node.Deserialize<StoredMetadata>(Json) ?? throw Corrupt(MetadataEntry, "a JSON object", "null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Model entry '{MetadataEntry}' is not valid: expected the model's JSON metadata; found a JSON error at line {e.LineNumber}, position {e.BytePositionInLine}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Models saved before 2026-12-01 wrote epoch phases and candidate changes as text ("epoch", "relax layer 3 to C4"):
    /// rewritten here to the enums (and the relaxed layer and group) that the history holds now.
    /// </summary>
    private static void UpgradeHistory(JsonNode? history)
    {
        if (history?["Epochs"] is JsonArray epochs)
        {
            foreach (var epoch in epochs.OfType<JsonObject>())
            {
                if (epoch["Phase"] is JsonValue phase && phase.TryGetValue(out string? text))
                {
                    epoch["Phase"] = text switch
                    {
                        "epoch" => nameof(EquinasPhase.Training),
                        "fine-tune" => nameof(EquinasPhase.Retrain),
                        _ => text,
                    };
                }
            }
        }

        if (history?["Candidates"] is JsonArray candidates)
        {
            foreach (var candidate in candidates.OfType<JsonObject>())
            {
                if (candidate["Change"] is JsonValue change && change.TryGetValue(out string? text) && text.StartsWith("relax layer ", StringComparison.Ordinal))
                {
                    // "relax layer {i} to {H}"
                    var parts = text.Split(' ');
                    candidate["Change"] = nameof(EquinasChange.Relax);
                    candidate["RelaxedLayer"] = int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture);
                    candidate["RelaxedTo"] = parts[4];
                }
            }
        }
    }

    public static void CheckEntry(string entry, byte[]? bytes, string? sha256, long length)
    {
        if (bytes is null)
        {
            throw Corrupt(entry, "the entry", "no such entry");
        }

        if (bytes.Length != length)
        {
            throw Corrupt(entry, $"{length} bytes", $"{bytes.Length} bytes (truncated or replaced)");
        }

        string actual = Convert.ToHexString(SHA256.HashData(bytes));
        if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw Corrupt(entry, $"SHA-256 {sha256}", $"{actual} (the entry was modified)");
        }
    }

    public static InvalidDataException Corrupt(string entry, string expected, string found) =>
        new($"The Equinas model file is damaged: entry '{entry}' should hold {expected}; found {found}. Save the model again.");

    /// <summary>What <see cref="MetadataEntry"/> holds.</summary>
    public sealed record StoredMetadata
    {
        public InputSpec? Input { get; init; }

        public int Classes { get; init; }

        public string[]? LayerGroups { get; init; }

        public EquinasHistory? History { get; init; }

        public string? ArchitectureSha256 { get; init; }

        public long ArchitectureLength { get; init; }

        public string? WeightsSha256 { get; init; }

        public long WeightsLength { get; init; }
    }
}
