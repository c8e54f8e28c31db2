// Publicizer: writes copies of .NET assemblies whose internal and private types and members are public, for use as
// compile-time references only (see eng/MLNetInternals.targets). At run time the original assemblies load, and the
// consuming assembly's [IgnoresAccessChecksTo] attributes let CoreCLR skip the access checks.
//
// Usage: dotnet Publicizer.dll --out <directory> <assembly.dll>...
//
// Rules:
// - Types: every top-level type becomes public, every nested type nested-public. Left alone: <Module>,
//   compiler-generated types (names with '<'), and types in the System.* and Microsoft.CodeAnalysis.* namespaces
//   (polyfills such as NullableAttribute or IsExternalInit, which would clash with the BCL's or the compiler's own).
// - Methods (property and event accessors included): become public, except that an overridable (virtual, not final)
//   protected, protected internal or private protected method becomes/stays protected, so that a derived class
//   overrides it the usual way ("protected override"). Left alone: compiler-generated methods (names with '<'),
//   explicit interface implementations (names with '.', or with .override entries), and static constructors.
// - Fields: become public, except compiler-generated ones (backing fields) and a field that shares its name with
//   another member of its type (the field behind a field-like event), which would make uses ambiguous.
// Nothing else changes: the assembly keeps its name, version, public key and custom attributes, so the compiler
// records the same identity as for the original. The copy is not validly signed and must never be loaded or shipped.
//
// An output is rewritten only when the input's path, size or timestamp, or this tool's version, has changed
// (recorded in "<output>.stamp"), so incremental builds cost one process start.

using Mono.Cecil;

namespace Equinas.Publicizer;

internal static class Program
{
    // Bump when the rules change, so that existing outputs are rewritten.
    private const string RulesVersion = "1";

    private static int Main(string[] args)
    {
        string? outputDirectory = null;
        var inputs = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--out" && i + 1 < args.Length)
            {
                outputDirectory = args[++i];
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                return Usage($"unknown option {args[i]}");
            }
            else
            {
                inputs.Add(args[i]);
            }
        }

        if (outputDirectory is null || inputs.Count == 0)
        {
            return Usage("an output directory and at least one input assembly are required");
        }

        try
        {
            Directory.CreateDirectory(outputDirectory);
            foreach (string input in inputs)
            {
                string inputPath = Path.GetFullPath(input);
                string outputPath = Path.Combine(Path.GetFullPath(outputDirectory), Path.GetFileName(inputPath));
                if (Path.GetFullPath(outputPath) == inputPath)
                {
                    throw new InvalidOperationException($"refusing to overwrite the input {inputPath}");
                }

                string stamp = Stamp(inputPath);
                string stampPath = outputPath + ".stamp";
                if (File.Exists(outputPath) && File.Exists(stampPath) && File.ReadAllText(stampPath) == stamp)
                {
                    Console.WriteLine($"Publicizer: {Path.GetFileName(outputPath)} is up to date");
                    continue;
                }

                Stats stats = Publicize(inputPath, outputPath, inputs);
                File.WriteAllText(stampPath, stamp);
                Console.WriteLine(
                    $"Publicizer: {Path.GetFileName(inputPath)} -> {outputPath} ({stats.Types} types, {stats.Methods} methods, " +
                    $"{stats.Fields} fields made public; {stats.Skipped} members left alone)");
            }

            return 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or BadImageFormatException or InvalidOperationException)
        {
            Console.Error.WriteLine($"Publicizer: error: {ex.Message}");
            return 1;
        }
    }

    private static int Usage(string problem)
    {
        Console.Error.WriteLine($"Publicizer: error: {problem}");
        Console.Error.WriteLine("usage: Publicizer --out <directory> <assembly.dll>...");
        return 2;
    }

    private static string Stamp(string inputPath)
    {
        var info = new FileInfo(inputPath);
        return $"rules={RulesVersion};path={inputPath};length={info.Length};mtime={info.LastWriteTimeUtc.Ticks}";
    }

    private sealed class Stats
    {
        public int Types { get; set; }

        public int Methods { get; set; }

        public int Fields { get; set; }

        public int Skipped { get; set; }
    }

    private static Stats Publicize(string inputPath, string outputPath, List<string> allInputs)
    {
        using var resolver = new DefaultAssemblyResolver();
        foreach (string directory in allInputs.Select(i => Path.GetDirectoryName(Path.GetFullPath(i))!).Distinct())
        {
            resolver.AddSearchDirectory(directory);
        }

        var readerParameters = new ReaderParameters
        {
            AssemblyResolver = resolver,
            ReadingMode = ReadingMode.Immediate,
            ReadSymbols = false,
            InMemory = true,
        };

        var stats = new Stats();
        using (AssemblyDefinition assembly = AssemblyDefinition.ReadAssembly(inputPath, readerParameters))
        {
            foreach (ModuleDefinition module in assembly.Modules)
            {
                foreach (TypeDefinition type in module.GetTypes())
                {
                    PublicizeType(type, stats);
                }
            }

            // Write next to the target, then move, so that a reader never sees a half-written file.
            string temporaryPath = outputPath + ".tmp";
            assembly.Write(temporaryPath);
            File.Move(temporaryPath, outputPath, overwrite: true);
        }

        return stats;
    }

    private static void PublicizeType(TypeDefinition type, Stats stats)
    {
        if (IsLeftAlone(type))
        {
            stats.Skipped++;
            return;
        }

        if (type.IsNested)
        {
            if (!type.IsNestedPublic)
            {
                type.Attributes = (type.Attributes & ~TypeAttributes.VisibilityMask) | TypeAttributes.NestedPublic;
                stats.Types++;
            }
        }
        else if (!type.IsPublic)
        {
            type.Attributes = (type.Attributes & ~TypeAttributes.VisibilityMask) | TypeAttributes.Public;
            stats.Types++;
        }

        foreach (MethodDefinition method in type.Methods)
        {
            PublicizeMethod(method, stats);
        }

        var otherMemberNames = new HashSet<string>(StringComparer.Ordinal);
        otherMemberNames.UnionWith(type.Properties.Select(p => p.Name));
        otherMemberNames.UnionWith(type.Events.Select(e => e.Name));
        otherMemberNames.UnionWith(type.Methods.Select(m => m.Name));
        otherMemberNames.UnionWith(type.NestedTypes.Select(t => t.Name));
        foreach (FieldDefinition field in type.Fields)
        {
            if (field.IsPublic)
            {
                continue;
            }

            if (field.Name.Contains('<', StringComparison.Ordinal) || otherMemberNames.Contains(field.Name))
            {
                stats.Skipped++;
                continue;
            }

            field.Attributes = (field.Attributes & ~FieldAttributes.FieldAccessMask) | FieldAttributes.Public;
            stats.Fields++;
        }
    }

    private static void PublicizeMethod(MethodDefinition method, Stats stats)
    {
        if (method.IsPublic)
        {
            return;
        }

        bool explicitImplementation = method.HasOverrides || (method.Name.Contains('.', StringComparison.Ordinal) && !method.IsConstructor);
        if (method.Name.Contains('<', StringComparison.Ordinal) || explicitImplementation || (method.IsConstructor && method.IsStatic))
        {
            stats.Skipped++;
            return;
        }

        MethodAttributes access = MethodAttributes.Public;
        bool overridable = method.IsVirtual && !method.IsFinal;
        if (overridable && (method.IsFamily || method.IsFamilyOrAssembly || method.IsFamilyAndAssembly))
        {
            // Keeps "protected override" in derived classes; protected internal is already protected to other assemblies.
            if (method.IsFamilyOrAssembly || method.IsFamily)
            {
                return;
            }

            access = MethodAttributes.Family;
        }

        method.Attributes = (method.Attributes & ~MethodAttributes.MemberAccessMask) | access;
        stats.Methods++;
    }

    private static bool IsLeftAlone(TypeDefinition type)
    {
        if (type.Name == "<Module>" || type.Name.Contains('<', StringComparison.Ordinal))
        {
            return true;
        }

        TypeDefinition outermost = type;
        while (outermost.DeclaringType is not null)
        {
            if (outermost.Name.Contains('<', StringComparison.Ordinal))
            {
                return true;
            }

            outermost = outermost.DeclaringType;
        }

        string ns = outermost.Namespace;
        return ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal)
            || ns == "Microsoft.CodeAnalysis" || ns.StartsWith("Microsoft.CodeAnalysis.", StringComparison.Ordinal);
    }
}
