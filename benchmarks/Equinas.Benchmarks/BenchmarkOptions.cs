using System.Globalization;
using Equinas.MLNet.Mixed;

namespace Equinas.Benchmarks;

/// <summary>
/// Command-line options <c>--name value</c>. Each benchmark reads the ones it knows, with its own defaults, and
/// rejects the rest.
/// </summary>
internal sealed class BenchmarkOptions
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _read = [];

    private BenchmarkOptions(Dictionary<string, string> values) => _values = values;

    public static BenchmarkOptions Parse(ReadOnlySpan<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"Expected '--name value' pairs; found '{args[i]}'{(i + 1 >= args.Length ? " without a value" : string.Empty)}.");
            }

            values[args[i][2..]] = args[i + 1];
        }

        return new BenchmarkOptions(values);
    }

    /// <summary>A positive integer option.</summary>
    public int Int(string name, int fallback)
    {
        _read.Add(name);
        if (!_values.TryGetValue(name, out var text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new ArgumentException($"Option --{name} needs a positive integer; found '{text}'.");
    }

    /// <summary>A positive number option.</summary>
    public double Double(string name, double fallback)
    {
        _read.Add(name);
        if (!_values.TryGetValue(name, out var text))
        {
            return fallback;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value > 0 && !double.IsInfinity(value)
            ? value
            : throw new ArgumentException($"Option --{name} needs a positive number; found '{text}'.");
    }

    /// <summary>A text option.</summary>
    public string Text(string name, string fallback)
    {
        _read.Add(name);
        return _values.TryGetValue(name, out var text) ? text : fallback;
    }

    /// <summary>A text option that must be one of <paramref name="allowed"/>; a misspelt value is refused, not read as another.</summary>
    public string Choice(string name, string fallback, params string[] allowed)
    {
        string text = Text(name, fallback);
        return allowed.Contains(text, StringComparer.Ordinal)
            ? text
            : throw new ArgumentException($"Option --{name} needs {string.Join(" or ", allowed)}; found '{text}'.");
    }

    /// <summary>
    /// Where a differentiable search's z starts: <c>largest</c> (the top group's logit 0, the others' -2) or
    /// <c>uniform</c>.
    /// </summary>
    public AlphaInitialization Start(string name, AlphaInitialization fallback) =>
        Choice(name, fallback == AlphaInitialization.PreferLargest ? "largest" : "uniform", "largest", "uniform") == "largest"
            ? AlphaInitialization.PreferLargest
            : AlphaInitialization.Uniform;

    /// <summary>Threads for torch (default 2, the machine's cores).</summary>
    public int Threads => Int("threads", 2);

    /// <summary>Throws if an option was given that the benchmark did not read.</summary>
    public void RejectUnknown()
    {
        var unknown = _values.Keys.Where(k => !_read.Contains(k)).ToArray();
        if (unknown.Length > 0)
        {
            throw new ArgumentException($"Unknown option(s) for this benchmark: {string.Join(", ", unknown.Select(u => "--" + u))}.");
        }
    }
}
