using System.Globalization;

namespace RotatedDigits;

/// <summary>The command-line options.</summary>
internal sealed record RunSettings
{
    public const string Usage =
        """
        Usage: dotnet run -c Release --project examples/RotatedDigits -- [options]

          --seed N                    data rotation, weight initialisation and data order (default 1)
          --generations N             generations of the evolutionary search after the initial training (default 2)
          --population N              survivors per generation (default 2)
          --epochs-per-generation X   epochs every candidate trains per generation (default 0.15)
          --final-epochs X            epochs the winner trains after the last generation (default 0.6)
          --moves paper|blocks|suffixes  children per survivor (default paper: the fewest candidates, within 5 minutes)
          --out DIR                   output folder for the model and report.md (default ./equinas-output)
          --quick                     smoke-test budget: 1 generation of 0.25 epoch, population 2, final 0.25
          --help                      this text
        """;

    public int Seed { get; init; } = 1;

    public int Generations { get; init; } = 2;

    public int Population { get; init; } = 2;

    public double EpochsPerGeneration { get; init; } = 0.15;

    public double FinalEpochs { get; init; } = 0.6;

    public string Moves { get; init; } = "paper";

    public string OutputFolder { get; init; } = "equinas-output";

    public bool Quick { get; init; }

    public bool Help { get; init; }

    /// <summary>Gets the epochs along the search's winning lineage: the initial training, every generation's and the final training.</summary>
    public double LineageEpochs => ((1 + Generations) * EpochsPerGeneration) + FinalEpochs;

    /// <summary>Parses the arguments; <c>--quick</c> sets the budget first, so explicit options still override it.</summary>
    /// <exception cref="ArgumentException">An option is unknown, lacks its value or has a value out of range.</exception>
    public static RunSettings Parse(IReadOnlyList<string> args)
    {
        var settings = args.Contains("--quick") ? new RunSettings { Quick = true, Generations = 1, Population = 2, EpochsPerGeneration = 0.25, FinalEpochs = 0.25 } : new RunSettings();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            settings = name switch
            {
                "--quick" => settings,
                "--help" or "-h" => settings with { Help = true },
                "--seed" => settings with { Seed = Int(name, Value(args, ref i), int.MinValue) },
                "--generations" => settings with { Generations = Int(name, Value(args, ref i), 0) },
                "--population" => settings with { Population = Int(name, Value(args, ref i), 1) },
                "--epochs-per-generation" => settings with { EpochsPerGeneration = Positive(name, Value(args, ref i)) },
                "--final-epochs" => settings with { FinalEpochs = NonNegative(name, Value(args, ref i)) },
                "--moves" => settings with { Moves = ParseMoves(Value(args, ref i)) },
                "--out" => settings with { OutputFolder = Value(args, ref i) },
                _ => throw new ArgumentException($"Unknown option '{name}'."),
            };
        }

        return settings;
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Option '{args[i]}' needs a value.");
        }

        return args[++i];
    }

    private static int Int(string name, string text, int minimum) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value >= minimum
            ? value
            : throw new ArgumentException($"Option '{name}' needs an integer of at least {minimum}; found '{text}'.");

    private static string ParseMoves(string text) =>
        text is "paper" or "blocks" or "suffixes" ? text : throw new ArgumentException($"Option '--moves' needs paper, blocks or suffixes; found '{text}'.");

    private static double NonNegative(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value >= 0 && double.IsFinite(value)
            ? value
            : throw new ArgumentException($"Option '{name}' needs a number of at least 0; found '{text}'.");

    private static double Positive(string name, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value > 0 && double.IsFinite(value)
            ? value
            : throw new ArgumentException($"Option '{name}' needs a positive number; found '{text}'.");
}
