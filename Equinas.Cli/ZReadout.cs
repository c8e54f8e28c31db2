using System.Globalization;

namespace Equinas.Cli;

/// <summary>How the tool shows a differentiable search's z: conjugate members summed, and the mass per element.</summary>
internal static class ZReadout
{
    /// <summary>z of one layer with conjugate members summed: the four reflection groups as D1*, the two Klein groups as D2*.</summary>
    public static IReadOnlyDictionary<string, double> ByClass(IReadOnlyDictionary<string, double> z)
    {
        var classes = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (member, value) in z)
        {
            string key = member.StartsWith("D1", StringComparison.Ordinal) ? "D1*" : member.StartsWith("D2", StringComparison.Ordinal) ? "D2*" : member;
            classes[key] = classes.GetValueOrDefault(key) + value;
        }

        return classes;
    }

    /// <summary>One layer's element mass as "r .45 r2 .70 f .52": the quarter turn, the half turn and the largest mirror.</summary>
    public static string Elements(IReadOnlyDictionary<string, double> mass)
    {
        double mirror = mass.Where(kv => kv.Key.EndsWith('f')).Select(kv => kv.Value).DefaultIfEmpty(0).Max();
        return string.Create(CultureInfo.InvariantCulture, $"r {mass.GetValueOrDefault("r"):F2} r2 {mass.GetValueOrDefault("r2"):F2} f {mirror:F2}");
    }
}
