#nullable enable
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Equinas.MLNet.Search.Checkpoints;

/// <summary>
/// One checkpoint as read back: its step (generations or epochs completed), its kind, the owner's JSON state and its
/// binary entries (networks, optimiser states), every one checked against the SHA-256 the manifest recorded.
/// </summary>
internal sealed class Checkpoint
{
    internal Checkpoint(int step, string kind, DateTimeOffset written, string path, byte[] state, IReadOnlyDictionary<string, byte[]> entries)
    {
        Step = step;
        Kind = kind;
        Written = written;
        Path = path;
        StateJson = state;
        Entries = entries;
    }

    public int Step { get; }

    public string Kind { get; }

    public DateTimeOffset Written { get; }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>The owner's state, UTF-8 JSON.</summary>
    public byte[] StateJson { get; }

    public IReadOnlyDictionary<string, byte[]> Entries { get; }

    /// <summary>The owner's state as <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidDataException">The state is not a <typeparamref name="T"/>.</exception>
    public T State<T>()
    {
        try
        {
            return JsonSerializer.Deserialize<T>(StateJson, CheckpointStore.Json) ?? throw new InvalidDataException($"The checkpoint '{Path}' holds an empty state.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The checkpoint '{Path}' holds a state this version cannot read: {e.Message}", e);
        }
    }

    /// <summary>The entry called <paramref name="name"/>.</summary>
    /// <exception cref="InvalidDataException">There is no such entry.</exception>
    public byte[] Entry(string name) =>
        Entries.TryGetValue(name, out var bytes) ? bytes : throw new InvalidDataException($"The checkpoint '{Path}' has no entry '{name}'.");
}

/// <summary>A checkpoint written for other data or other options than the run that found it.</summary>
internal sealed class CheckpointMismatchException(string message) : InvalidOperationException(message);

/// <summary>
/// A folder of checkpoints for one run. Every <see cref="Save"/> writes one self-contained file,
/// <c>checkpoint-NNNNNN.zip</c> (a manifest with the format version, the step, the data and settings identity and
/// the length and SHA-256 of every entry; the owner's JSON state; binary entries), first under a temporary name,
/// flushed to disk, then renamed over the final name, which is atomic: a crash (or SIGKILL) while writing leaves a
/// temporary file, which is ignored and later deleted, and every earlier checkpoint intact. The two newest are kept,
/// so that a checkpoint damaged after it was written (its hashes no longer match) falls back to the one before.
/// A lock file keeps a second run from using the folder at the same time.
/// </summary>
internal sealed class CheckpointStore : IDisposable
{
    /// <summary>The layout of the files; a checkpoint of another version is refused.</summary>
    public const int FormatVersion = 1;

    private const string Prefix = "checkpoint-";
    private const string Extension = ".zip";
    private const string TemporarySuffix = ".tmp";
    private const string ManifestEntry = "manifest.json";
    private const string StateEntry = "state.json";
    private const int Keep = 2;

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly FileStream _lock;
    private readonly Action<string>? _warn;
    private readonly Stopwatch _writeClock = new();
    private Checkpoint? _latest;
    private bool _read;

    /// <summary>Opens (creating it if needed) the folder for a run with <paramref name="identity"/>.</summary>
    /// <param name="directory">The folder.</param>
    /// <param name="identity">The run's data and settings.</param>
    /// <param name="warn">Where to say that a damaged checkpoint was passed over.</param>
    /// <exception cref="IOException">Another run holds the folder.</exception>
    public CheckpointStore(string directory, CheckpointIdentity identity, Action<string>? warn = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Identity = identity ?? throw new ArgumentNullException(nameof(identity));
        Directory = System.IO.Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
        _warn = warn;
        try
        {
            _lock = new FileStream(System.IO.Path.Combine(Directory, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"The checkpoint directory '{Directory}' is in use by another training (its .lock file is held); give each run a directory of its own.", e);
        }

        // Only this run writes here now: temporaries are what an earlier run left when it was stopped mid-write.
        foreach (var stale in System.IO.Directory.EnumerateFiles(Directory, Prefix + "*" + TemporarySuffix))
        {
            File.Delete(stale);
        }
    }

    public string Directory { get; }

    public CheckpointIdentity Identity { get; }

    /// <summary>Checkpoints written by this store.</summary>
    public int Writes { get; private set; }

    /// <summary>Time spent writing them (serialising, hashing, writing, flushing, renaming).</summary>
    public TimeSpan WriteTime => _writeClock.Elapsed;

    /// <summary>Bytes of the last checkpoint written.</summary>
    public long LastSize { get; private set; }

    /// <summary>
    /// The newest checkpoint in the folder that is whole (every hash matches) and was written for this identity; null
    /// when there is none. Read once.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The newest whole checkpoint was written for other data or options.</exception>
    public Checkpoint? Latest()
    {
        if (_read)
        {
            return _latest;
        }

        foreach (var (step, path) in Files().OrderByDescending(f => f.Step))
        {
            Checkpoint? checkpoint;
            try
            {
                checkpoint = Read(path);
            }
            catch (InvalidDataException e)
            {
                _warn?.Invoke($"Checkpoint '{path}' is damaged and was passed over: {e.Message}");
                continue;
            }

            _latest = checkpoint;
            break;
        }

        _read = true;
        return _latest;
    }

    /// <summary>
    /// Writes a checkpoint for <paramref name="step"/> with the owner's <paramref name="state"/> (as JSON) and
    /// <paramref name="entries"/>, atomically, and deletes all but the newest two.
    /// </summary>
    public void Save<T>(int step, string kind, T state, IReadOnlyDictionary<string, byte[]> entries)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        ArgumentNullException.ThrowIfNull(entries);
        _writeClock.Start();
        try
        {
            var all = new Dictionary<string, byte[]>(entries) { [StateEntry] = JsonSerializer.SerializeToUtf8Bytes(state, Json) };
            var manifest = new Manifest
            {
                Format = FormatVersion,
                Step = step,
                Kind = kind,
                Written = DateTimeOffset.UtcNow,
                Data = Identity.Data,
                DataHash = Identity.DataHash,
                Settings = Identity.Settings,
                SettingsHash = Identity.SettingsHash,
                Entries = all.ToDictionary(e => e.Key, e => new EntryInfo(e.Value.LongLength, Convert.ToHexStringLower(SHA256.HashData(e.Value)))),
            };
            string final = PathOf(step);
            string temporary = final + TemporarySuffix;
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                using (var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true))
                {
                    foreach (var (name, bytes) in all.OrderBy(e => e.Key, StringComparer.Ordinal))
                    {
                        using var stream = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                        stream.Write(bytes);
                    }

                    using var manifestStream = zip.CreateEntry(ManifestEntry, CompressionLevel.NoCompression).Open();
                    JsonSerializer.Serialize(manifestStream, manifest, Json);
                }

                file.Flush(flushToDisk: true);
                LastSize = file.Length;
            }

            File.Move(temporary, final, overwrite: true);
            Writes++;
            _latest = null;
            _read = false;
            foreach (var (_, path) in Files().OrderByDescending(f => f.Step).Skip(Keep))
            {
                File.Delete(path);
            }
        }
        finally
        {
            _writeClock.Stop();
        }
    }

    public void Dispose() => _lock.Dispose();

    private string PathOf(int step) => System.IO.Path.Combine(Directory, Prefix + step.ToString("D6", CultureInfo.InvariantCulture) + Extension);

    private IEnumerable<(int Step, string Path)> Files()
    {
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, Prefix + "*" + Extension))
        {
            var name = System.IO.Path.GetFileNameWithoutExtension(path);
            if (int.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int step))
            {
                yield return (step, path);
            }
        }
    }

    /// <summary>Reads and checks one file: whole, this format, this identity.</summary>
    /// <exception cref="InvalidDataException">The file is damaged (truncated, hashes do not match) or of another format.</exception>
    /// <exception cref="CheckpointMismatchException">It was written for other data or options.</exception>
    private Checkpoint Read(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var manifestEntry = zip.GetEntry(ManifestEntry) ?? throw new InvalidDataException("it has no manifest");
            Manifest manifest;
            using (var stream = manifestEntry.Open())
            {
                manifest = JsonSerializer.Deserialize<Manifest>(stream, Json) ?? throw new InvalidDataException("its manifest is empty");
            }

            if (manifest.Format != FormatVersion)
            {
                throw new CheckpointMismatchException($"The checkpoint '{path}' has format {manifest.Format}; this version reads format {FormatVersion}. Use another checkpoint directory (or empty this one) to start afresh.");
            }

            var saved = new CheckpointIdentity(manifest.Data, manifest.Settings);
            var differences = saved.Differences(Identity);
            if (differences.Count > 0 || manifest.DataHash != Identity.DataHash || manifest.SettingsHash != Identity.SettingsHash)
            {
                throw new CheckpointMismatchException(
                    $"The checkpoint '{path}' ({manifest.Kind} {manifest.Step}, written {manifest.Written:yyyy-MM-dd HH:mm} UTC) was made with "
                    + (differences.Count > 0 ? string.Join(" and ", differences) : "another identity")
                    + ", so this run cannot continue from it. Run with the same data and options to resume, or use another checkpoint directory (or empty this one) to start afresh.");
            }

            var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var (name, info) in manifest.Entries)
            {
                var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"entry '{name}' is missing");
                var bytes = new byte[info.Length];
                using (var stream = entry.Open())
                {
                    stream.ReadExactly(bytes);
                    if (stream.ReadByte() != -1)
                    {
                        throw new InvalidDataException($"entry '{name}' is longer than recorded");
                    }
                }

                if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != info.Sha256)
                {
                    throw new InvalidDataException($"entry '{name}' does not match its SHA-256");
                }

                entries[name] = bytes;
            }

            var state = entries[StateEntry];
            entries.Remove(StateEntry);
            return new Checkpoint(manifest.Step, manifest.Kind, manifest.Written, path, state, entries);
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or NotSupportedException && e is not CheckpointMismatchException)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    private sealed record EntryInfo(long Length, string Sha256);

    private sealed record Manifest
    {
        public required int Format { get; init; }

        public required int Step { get; init; }

        public required string Kind { get; init; }

        public required DateTimeOffset Written { get; init; }

        public required IReadOnlyDictionary<string, string> Data { get; init; }

        public required string DataHash { get; init; }

        public required IReadOnlyDictionary<string, string> Settings { get; init; }

        public required string SettingsHash { get; init; }

        public required IReadOnlyDictionary<string, EntryInfo> Entries { get; init; }
    }
}
