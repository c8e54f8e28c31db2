using System.Globalization;

namespace Equinas.Benchmarks;

/// <summary>Command-line options shared by the benchmarks; each benchmark uses the ones it needs.</summary>
internal sealed record BenchmarkOptions(int Threads, int Rounds, int Steps, int Batch)
{
    public static BenchmarkOptions Parse(ReadOnlySpan<string> args)
    {
        var options = new BenchmarkOptions(Threads: 2, Rounds: 7, Steps: 2000, Batch: 64);
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value <= 0)
            {
                throw new ArgumentException($"Option {name} needs a positive integer value.");
            }

            i++;
            options = name switch
            {
                "--threads" => options with { Threads = value },
                "--rounds" => options with { Rounds = value },
                "--steps" => options with { Steps = value },
                "--batch" => options with { Batch = value },
                _ => throw new ArgumentException($"Unknown option {name}."),
            };
        }

        return options;
    }
}
