#nullable enable
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Equinas.MLNet.Search.Training;

namespace Equinas.MLNet.Search.Checkpoints;

/// <summary>
/// What a checkpoint was written for: a description of the data (counts, shape and a SHA-256 of every pixel and
/// label) and the settings that shape the result, each by name. A run may continue from a checkpoint only when both
/// are the same; otherwise <see cref="Differences"/> names what changed.
/// </summary>
internal sealed record CheckpointIdentity
{
    public CheckpointIdentity(IReadOnlyDictionary<string, string> data, IReadOnlyDictionary<string, string> settings)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(settings);
        Data = new SortedDictionary<string, string>(data.ToDictionary(p => p.Key, p => p.Value), StringComparer.Ordinal);
        Settings = new SortedDictionary<string, string>(settings.ToDictionary(p => p.Key, p => p.Value), StringComparer.Ordinal);
    }

    /// <summary>The data's description by name (sorted), with its content hash under <c>DataHash</c>.</summary>
    public IReadOnlyDictionary<string, string> Data { get; }

    /// <summary>The settings that shape the result, by name (sorted).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>SHA-256 of the data's description (its content hash included).</summary>
    public string DataHash => Hash(Data);

    /// <summary>SHA-256 of the settings, names and values.</summary>
    public string SettingsHash => Hash(Settings);

    /// <summary>
    /// The description of a training and a validation set: image and class counts, image shape, and a SHA-256 over
    /// every pixel (after normalisation) and every label of both, in order.
    /// </summary>
    public static IReadOnlyDictionary<string, string> DescribeData(ImageDataset train, ImageDataset validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var set in new[] { train, validation })
        {
            sha.AppendData(BitConverter.GetBytes(set.Count));
            set.AppendPixels(sha);
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Labels.contiguous().data<long>().ToArray().AsSpan()));
        }

        return new Dictionary<string, string>
        {
            ["TrainImages"] = train.Count.ToString(CultureInfo.InvariantCulture),
            ["ValidationImages"] = validation.Count.ToString(CultureInfo.InvariantCulture),
            ["ImageShape"] = string.Create(CultureInfo.InvariantCulture, $"{train.Channels}x{train.Height}x{train.Width}"),
            ["Classes"] = train.Classes.ToString(CultureInfo.InvariantCulture),
            ["DataHash"] = Convert.ToHexStringLower(sha.GetHashAndReset()),
        };
    }

    /// <summary>
    /// What differs between this identity (the checkpoint's) and <paramref name="current"/> (the run's), as
    /// "data: ..." and "options: ..." clauses naming each entry with both values; empty when they are the same.
    /// </summary>
    public IReadOnlyList<string> Differences(CheckpointIdentity current)
    {
        ArgumentNullException.ThrowIfNull(current);
        var clauses = new List<string>();
        var data = Compare(Data, current.Data);
        if (data.Count > 0)
        {
            clauses.Add("other data (" + string.Join("; ", data) + ")");
        }

        var settings = Compare(Settings, current.Settings);
        if (settings.Count > 0)
        {
            clauses.Add("other options (" + string.Join("; ", settings) + ")");
        }

        return clauses;
    }

    private static List<string> Compare(IReadOnlyDictionary<string, string> saved, IReadOnlyDictionary<string, string> current)
    {
        var differences = new List<string>();
        foreach (var name in saved.Keys.Union(current.Keys).Order(StringComparer.Ordinal))
        {
            var before = saved.TryGetValue(name, out var b) ? b : null;
            var now = current.TryGetValue(name, out var n) ? n : null;
            if (before != now)
            {
                differences.Add($"{name} is {Show(before)} in the checkpoint and {Show(now)} in this run");
            }
        }

        return differences;

        static string Show(string? value) => value is null ? "not set" : value.Length > 16 && value.All(Uri.IsHexDigit) ? value[..12] + "..." : value;
    }

    private static string Hash(IReadOnlyDictionary<string, string> values)
    {
        var text = new StringBuilder();
        foreach (var (name, value) in values)
        {
            text.Append(name).Append('=').Append(value).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
