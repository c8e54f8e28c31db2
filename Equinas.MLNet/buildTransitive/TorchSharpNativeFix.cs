// MSBuild inline task (RoslynCodeTaskFactory) used by Equinas.MLNet.targets. It is compiled at build time
// against the netstandard and MSBuild reference assemblies only; it is not part of the Equinas.MLNet library.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Equinas.MLNet.Build;

/// <summary>
/// Lets a copied <c>libLibTorchSharp.so</c> load on systems whose libstdc++ is older than the one it was linked
/// against, by marking the missing libstdc++ version requirements weak (<c>VER_FLG_WEAK</c>) in its
/// <c>.gnu.version_r</c> section.
/// </summary>
/// <remarks>
/// TorchSharp's Linux build needs <c>GLIBCXX_3.4.32</c> (GCC 13) only for <c>std::ios_base_library_init()</c>,
/// a link-time marker that no relocation uses. The dynamic loader refuses a library whose non-weak needed version is
/// missing, but accepts a weak one. A version is made weak only when the build machine's libstdc++ does not define it
/// and every dynamic symbol bound to it is in <see cref="_allowedSymbols"/>; otherwise a warning is logged and the
/// file is left unchanged. Files are replaced by an atomic rename (never written in place, so a hard-linked package
/// cache copy is untouched) and keep their timestamp, so the SDK's incremental copy does not overwrite them again.
/// </remarks>
public sealed class TorchSharpNativeFix : Task
{
    /// <summary>
    /// The only dynamic symbols that may be bound to a libstdc++ version missing on this system. Each entry must be a
    /// symbol the library never calls or relocates against, so an unresolved binding is harmless.
    /// </summary>
    private static readonly HashSet<string> _allowedSymbols = new(StringComparer.Ordinal)
    {
        // std::ios_base_library_init() (GLIBCXX_3.4.32): GCC 13's <iostream> references it, instead of defining a static
        // std::ios_base::Init per translation unit, only to require a libstdc++ that initializes the standard streams
        // itself. Nothing calls it. With an older libstdc++ the streams are set up by any ios_base::Init object, such as
        // those of libtorch (built with GCC 9), which loads first as a dependency of libLibTorchSharp.so.
        "_ZSt21ios_base_library_initv",
    };

    /// <summary>Directories searched, in order, for the system <c>libstdc++.so.6</c>.</summary>
    private static readonly string[] _libraryDirectories =
    {
        "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu",
        "/usr/lib64", "/lib64", "/usr/lib", "/lib",
    };

    private const string LibStdCxx = "libstdc++.so.6";
    private const ushort VerFlgWeak = 0x2;

    /// <summary>System libstdc++ version definitions per ELF machine (null: none found).</summary>
    private readonly Dictionary<ushort, HashSet<string>?> _systemVersions = new();

    /// <summary>The <c>libLibTorchSharp.so</c> files in a build or publish output folder.</summary>
    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <inheritdoc />
    public override bool Execute()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Log.LogMessage(MessageImportance.Low, "TorchSharpNativeFix: not running on Linux, nothing to do.");
            return true;
        }
        foreach (var path in Files.Select(f => f.GetMetadata("FullPath")).Distinct(StringComparer.Ordinal))
        {
            try
            {
                Fix(path);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is InvalidDataException)
            {
                Log.LogWarning(null, "EQML0002", null, path, 0, 0, 0, 0,
                    "TorchSharpNativeFix: could not check or patch '{0}': {1}", path, e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>Checks one library and makes its safely removable libstdc++ version needs weak.</summary>
    private void Fix(string path)
    {
        var elf = Elf.TryRead(path);
        if (elf is null)
        {
            Log.LogMessage(MessageImportance.Low, "TorchSharpNativeFix: '{0}' is not a little-endian ELF64 file.", path);
            return;
        }
        var needs = elf.NeededVersions(LibStdCxx).Where(n => (n.Flags & VerFlgWeak) == 0).ToList();
        if (needs.Count == 0)
            return;
        var available = SystemVersions(elf.Machine);
        if (available is null)
        {
            Log.LogMessage(MessageImportance.Low, "TorchSharpNativeFix: no system {0} found; '{1}' left as is.", LibStdCxx, path);
            return;
        }
        var missing = needs.Where(n => !available.Contains(n.Name)).ToList();
        var blocked = false;
        foreach (var need in missing)
        {
            var others = elf.SymbolsOfVersion(need.Index).Where(s => !_allowedSymbols.Contains(s)).ToList();
            if (others.Count == 0)
                continue;
            blocked = true;
            Log.LogWarning(null, "EQML0001", null, path, 0, 0, 0, 0,
                "TorchSharpNativeFix: '{0}' needs {1} from {2}, which this system's libstdc++ does not define, for symbol(s) "
                + "not known to be safe to leave unresolved: {3}. The file is left unchanged and will likely fail to load.",
                path, need.Name, LibStdCxx, string.Join(", ", others));
        }
        if (blocked || missing.Count == 0)
            return;

        WriteWeakFlags(path, missing);
        foreach (var need in missing)
            Log.LogMessage(MessageImportance.Normal, "TorchSharpNativeFix: marked {0} ({1}) weak in '{2}'.", need.Name, LibStdCxx, path);
    }

    /// <summary>Returns the version names defined by the system libstdc++ for the given ELF machine, or null.</summary>
    private HashSet<string>? SystemVersions(ushort machine)
    {
        if (!_systemVersions.TryGetValue(machine, out var versions))
        {
            var library = _libraryDirectories.Select(d => Path.Combine(d, LibStdCxx)).Where(File.Exists)
                .Select(Elf.TryRead).FirstOrDefault(e => e is not null && e.Machine == machine);
            versions = library?.DefinedVersions();
            _systemVersions[machine] = versions is { Count: > 0 } ? versions : null;
        }
        return _systemVersions[machine];
    }

    /// <summary>
    /// Sets VER_FLG_WEAK on the given entries in a copy of the file, keeping its timestamp, then renames the copy over
    /// the original. The rename gives the output path a new inode, so a hard link to the package cache is broken.
    /// </summary>
    private static void WriteWeakFlags(string path, IEnumerable<VersionNeed> needs)
    {
        var lastWrite = File.GetLastWriteTimeUtc(path);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.Copy(path, temp); // keeps the permission bits; a read-only copy is made writable for the patch
            var attributes = File.GetAttributes(temp);
            File.SetAttributes(temp, attributes & ~FileAttributes.ReadOnly);
            using (var stream = new FileStream(temp, FileMode.Open, FileAccess.Write))
            {
                foreach (var need in needs)
                {
                    var flags = need.Flags | VerFlgWeak;
                    stream.Position = need.FlagsOffset;
                    stream.Write(new[] { (byte)flags, (byte)(flags >> 8) }, 0, 2);
                }
            }
            File.SetLastWriteTimeUtc(temp, lastWrite);
            File.SetAttributes(temp, attributes);
            File.Replace(temp, path, null);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }

    /// <summary>A Vernaux entry: needed version name, <c>vna_flags</c> and its file offset, version index (<c>vna_other</c>).</summary>
    private sealed class VersionNeed
    {
        public VersionNeed(string name, ushort flags, long flagsOffset, ushort index) =>
            (Name, Flags, FlagsOffset, Index) = (name, flags, flagsOffset, index);

        public string Name { get; }
        public ushort Flags { get; }
        public long FlagsOffset { get; }
        public ushort Index { get; }
    }

    /// <summary>The fields of an ELF64 section header that this task uses.</summary>
    private sealed class Section
    {
        public Section(uint type, long offset, long size, long entrySize, uint link, uint info) =>
            (Type, Offset, Size, EntrySize, Link, Info) = (type, offset, size, entrySize, link, info);

        public uint Type { get; }
        public long Offset { get; }
        public long Size { get; }
        public long EntrySize { get; }
        public uint Link { get; }
        public uint Info { get; }
    }

    /// <summary>Minimal reader for the symbol versioning data of a little-endian ELF64 file.</summary>
    private sealed class Elf
    {
        private const uint ShtDynSym = 11, ShtGnuVerDef = 0x6ffffffd, ShtGnuVerNeed = 0x6ffffffe, ShtGnuVerSym = 0x6fffffff;
        private readonly byte[] _data;
        private readonly List<Section> _sections = new();

        private Elf(byte[] data)
        {
            _data = data;
            Machine = U16(0x12);
            long headers = Offset(U64(0x28)), entrySize = U16(0x3A), count = U16(0x3C);
            if (headers != 0 && entrySize < 0x40)
                throw new InvalidDataException($"Bad ELF section header size {entrySize}.");
            if (count == 0 && headers != 0)
                count = Offset(U64(headers + 0x20)); // more than 0xff00 sections: the count is in section 0
            for (long i = 0, h = headers; i < count; i++, h += entrySize)
                _sections.Add(new Section(U32(h + 4), Offset(U64(h + 0x18)), Offset(U64(h + 0x20)), Offset(U64(h + 0x38)),
                    U32(h + 0x28), U32(h + 0x2C)));
        }

        /// <summary>The ELF <c>e_machine</c> value.</summary>
        public ushort Machine { get; }

        /// <summary>Reads a file, or returns null when it is not a little-endian ELF64 file.</summary>
        public static Elf? TryRead(string path)
        {
            var data = File.ReadAllBytes(path);
            var isElf64Le = data.Length >= 64 && data[0] == 0x7F && data[1] == (byte)'E' && data[2] == (byte)'L'
                && data[3] == (byte)'F' && data[4] == 2 && data[5] == 1;
            return isElf64Le ? new Elf(data) : null;
        }

        /// <summary>The versions needed from <paramref name="file"/> (<c>.gnu.version_r</c> entries).</summary>
        public List<VersionNeed> NeededVersions(string file)
        {
            var result = new List<VersionNeed>();
            if (Find(ShtGnuVerNeed) is not { } section)
                return result;
            var strings = Linked(section);
            long need = section.Offset;
            for (uint i = 0; i < section.Info; i++)
            {
                if (String(strings, U32(need + 4)) == file)
                {
                    long aux = need + U32(need + 8);
                    for (int j = 0, count = U16(need + 2); j < count; j++)
                    {
                        result.Add(new VersionNeed(String(strings, U32(aux + 8)), U16(aux + 4), aux + 4, U16(aux + 6)));
                        aux += U32(aux + 12);
                    }
                }
                uint next = U32(need + 12);
                if (next == 0)
                    break;
                need += next;
            }
            return result;
        }

        /// <summary>The version names this file defines (first <c>Verdaux</c> name of each <c>.gnu.version_d</c> entry).</summary>
        public HashSet<string> DefinedVersions()
        {
            var result = new HashSet<string>(StringComparer.Ordinal);
            if (Find(ShtGnuVerDef) is not { } section)
                return result;
            var strings = Linked(section);
            long def = section.Offset;
            for (uint i = 0; i < section.Info; i++)
            {
                result.Add(String(strings, U32(def + U32(def + 12))));
                uint next = U32(def + 16);
                if (next == 0)
                    break;
                def += next;
            }
            return result;
        }

        /// <summary>Names of the <c>.dynsym</c> symbols whose <c>.gnu.version</c> index (hidden bit masked) is <paramref name="index"/>.</summary>
        public IEnumerable<string> SymbolsOfVersion(ushort index)
        {
            if (Find(ShtDynSym) is not { } symbols || Find(ShtGnuVerSym) is not { } versions)
                yield break;
            var strings = Linked(symbols);
            long entrySize = symbols.EntrySize > 0 ? symbols.EntrySize : 24;
            long count = Math.Min(symbols.Size / entrySize, versions.Size / 2);
            for (long i = 0; i < count; i++)
            {
                if ((U16(versions.Offset + 2 * i) & 0x7FFF) == index)
                    yield return String(strings, U32(symbols.Offset + i * entrySize));
            }
        }

        private Section? Find(uint type) => _sections.FirstOrDefault(s => s.Type == type);

        private Section Linked(Section section) =>
            section.Link < _sections.Count ? _sections[(int)section.Link] : throw new InvalidDataException("Bad ELF sh_link.");

        private string String(Section table, uint offset)
        {
            long start = table.Offset + offset, end = start;
            while (Byte(end) != 0)
                end++;
            return Encoding.UTF8.GetString(_data, (int)start, (int)(end - start));
        }

        private byte Byte(long offset) => _data[Check(offset, 1)];
        private ushort U16(long offset) => (ushort)(_data[Check(offset, 2)] | _data[offset + 1] << 8);
        private uint U32(long offset) => U16(offset) | (uint)U16(offset + 2) << 16;
        private ulong U64(long offset) => U32(offset) | (ulong)U32(offset + 4) << 32;

        private long Check(long offset, int length) =>
            offset >= 0 && offset <= _data.Length - length ? offset : throw new InvalidDataException($"ELF data out of range at offset {offset}.");

        /// <summary>Clamps a file offset or size; out-of-range values then fail in <see cref="Check"/>, not in arithmetic.</summary>
        private static long Offset(ulong value) => (long)Math.Min(value, int.MaxValue);
    }
}
