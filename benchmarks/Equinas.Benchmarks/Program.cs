using System.Globalization;
using Equinas.Benchmarks;

// Benchmark runner. Usage: dotnet run -c Release --project benchmarks/Equinas.Benchmarks -- <benchmark> [options]
// Each benchmark prints a readable table and, as its last line, one JSON object with the figures.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

var benchmarks = new Dictionary<string, Func<BenchmarkOptions, int>>(StringComparer.OrdinalIgnoreCase)
{
    ["engine"] = EngineBenchmark.Run,
    ["memory"] = MemoryBenchmark.Run,
    ["mlnet"] = MLNetBenchmark.Run,
    ["mlnet-memory"] = MLNetMemoryBenchmark.Run,
    ["onnx"] = OnnxBenchmark.Run,
    ["search"] = SearchBenchmark.Run,
    ["precision"] = PrecisionBenchmark.Run,
    ["evolution"] = EvolutionExperiment.Run,
    ["differentiable"] = DifferentiableExperiment.Run,
    ["known-answer"] = KnownAnswerExperiment.Run,
    ["compare"] = ComparisonExperiment.Run,
    ["folders"] = FolderBenchmark.Run,
    ["cluster"] = ClusterBenchmark.Run,
};

// The cluster benchmark's worker processes (not a benchmark of its own).
if (args.Length > 0 && args[0] == "cluster-worker")
{
    return ClusterBenchmark.Worker(BenchmarkOptions.Parse(args.AsSpan(1)));
}

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"Usage: Equinas.Benchmarks <{string.Join("|", benchmarks.Keys)}> [--name value ...] (see README: Benchmarks)");
    return 2;
}

try
{
    return run(BenchmarkOptions.Parse(args.AsSpan(1)));
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
