#nullable enable
// Lets this assembly use internals of ML.NET at run time. The compiler sees them through publicized copies of these
// assemblies (eng/MLNetInternals.targets); CoreCLR then skips its access checks for calls from this assembly into
// the real ones. Keep this list in step with the EquinasPublicizeAssembly items in eng/MLNetInternals.targets.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices;

/// <summary>
/// Tells the runtime that the assembly carrying this attribute may access non-public types and members of the
/// named assembly. CoreCLR honours it; the compiler does not, which is why compilation uses publicized references.
/// The class is not part of the public BCL surface, so the assembly declares it itself; the runtime matches it by
/// its full name.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class IgnoresAccessChecksToAttribute : Attribute
{
    /// <summary>Initializes a new instance of the <see cref="IgnoresAccessChecksToAttribute"/> class.</summary>
    /// <param name="assemblyName">The simple name of the assembly whose internals are accessed.</param>
    public IgnoresAccessChecksToAttribute(string assemblyName)
    {
        AssemblyName = assemblyName;
    }

    /// <summary>Gets the simple name of the assembly whose internals are accessed.</summary>
    public string AssemblyName { get; }
}
