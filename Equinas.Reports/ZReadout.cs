using System.Globalization;

namespace Equinas.Reports;

/// <summary>How reports show a differentiable search's z: conjugate members summed, and the mass per element.</summary>
public static class ZReadout
{
    /// <summary>
    /// z of one layer with conjugate members summed: the four reflection groups as D1*, the two Klein groups as D2*
    /// (which axis carries the weight is not a property of the data's symmetry class).
    /// </summary>
    /// <param name="z">Member group name to weight.</param>
    /// <returns>Class name to summed weight.</returns>
    public static IReadOnlyDictionary<string, double> ByClass(IReadOnlyDictionary<string, double> z)
    {
        ArgumentNullException.ThrowIfNull(z);
        var classes = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (member, value) in z)
        {
            classes[ClassOf(member)] = classes.GetValueOrDefault(ClassOf(member)) + value;
        }

        return classes;
    }

    /// <summary>The conjugacy class name of a member group: D1* for the reflection groups, D2* for the Klein groups, else the name.</summary>
    /// <param name="member">A member group name such as D1V or C4.</param>
    /// <returns>The class name.</returns>
    public static string ClassOf(string member)
    {
        ArgumentNullException.ThrowIfNull(member);
        return member.StartsWith("D1", StringComparison.Ordinal) ? "D1*" : member.StartsWith("D2", StringComparison.Ordinal) ? "D2*" : member;
    }

    /// <summary>One layer's element mass as "r 0.45 r2 0.70 f 0.52": the quarter turn, the half turn and the largest mirror.</summary>
    /// <param name="mass">Element name (e, r, r2, r3, f, rf, r2f, r3f) to mass.</param>
    /// <returns>The short text.</returns>
    public static string Elements(IReadOnlyDictionary<string, double> mass)
    {
        ArgumentNullException.ThrowIfNull(mass);
        double mirror = mass.Where(kv => kv.Key.EndsWith('f')).Select(kv => kv.Value).DefaultIfEmpty(0).Max();
        return string.Create(CultureInfo.InvariantCulture, $"r {mass.GetValueOrDefault("r"):F2} r2 {mass.GetValueOrDefault("r2"):F2} f {mirror:F2}");
    }
}
