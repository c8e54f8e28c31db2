using Equinas.MLNet;
using Microsoft.ML;
using TorchSharp;
using Digits = Equinas.Data.ShippedDigits;
using Split = Equinas.Data.DigitSplit;

namespace Equinas.Benchmarks;

/// <summary>
/// Wall-clock of EquiNAS_E through the ML.NET trainer on the shipped rotated digits, with the default budget and with
/// the paper's budget scaled down (population 5 as in the paper, fewer generations and shorter ones), and where the
/// time goes (data, training, validation, morphism) from the model's recorded timings.
/// </summary>
internal static class SearchBenchmark
{
    public static int Run(BenchmarkOptions args)
    {
        var o = (Threads: args.Threads, PaperGenerations: args.Int("paper-generations", 5), PaperEpochs: args.Double("paper-epochs-per-generation", 0.25));
        args.RejectUnknown();
        torch.set_num_threads(o.Threads);
        Console.WriteLine($"search: EquinasEvolve on the shipped rotated digits (train 6,004, validation 2,000); default budget, and the paper's budget scaled down to population 5, {o.PaperGenerations} generations of {o.PaperEpochs} epoch");
        Console.WriteLine(Measure.MachineLine(o.Threads));
        var ml = new MLContext(seed: 1);
        var digits = Digits.Load();
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", "Digit");
        var trainRaw = Digits.ToDataView(ml, digits.Rotated(Split.Train, 101));
        var mapper = toKey.Fit(trainRaw);
        var train = mapper.Transform(trainRaw);
        var validation = mapper.Transform(Digits.ToDataView(ml, digits.Rotated(Split.Validation, 102)));

        var budgets = new (string Name, EquivariantImageClassificationTrainer.Options Options)[]
        {
            ("default", new() { ValidationSet = validation, Seed = 1 }),
            ("paper, scaled", new() { ValidationSet = validation, Seed = 1, PopulationSize = 5, Generations = o.PaperGenerations, EpochsPerGeneration = o.PaperEpochs }),
        };
        var rows = new List<Dictionary<string, object>>();
        Console.WriteLine();
        Console.WriteLine($"{"budget",-16}{"mu",4}{"gens",6}{"ep/gen",8}{"candidates",12}{"total s",10}{"data s",9}{"train s",9}{"valid s",9}{"morph s",9}{"other s",9}  groups, validation accuracy");
        foreach (var (name, options) in budgets)
        {
            var model = ml.MulticlassClassification.Trainers.EquinasEvolve(options).Fit(train);
            var history = model.Model.History;
            var t = history.Timings!;
            double Seconds(string key) => t.TryGetValue(key, out var v) ? v.TotalSeconds : 0;
            double other = Seconds("total") - Seconds("data") - Seconds("training") - Seconds("validation") - Seconds("morphism");
            var best = history.Candidates.Where(c => c.Generation == history.Candidates.Max(x => x.Generation)).MaxBy(c => c.ValidationAccuracy)!;
            Console.WriteLine($"{name,-16}{options.PopulationSize,4}{options.Generations,6}{options.EpochsPerGeneration,8:F2}{history.Candidates.Count,12}{Seconds("total"),10:F1}{Seconds("data"),9:F1}{Seconds("training"),9:F1}{Seconds("validation"),9:F1}{Seconds("morphism"),9:F2}{other,9:F1}  {string.Join("-", model.Model.LayerGroups)}, {best.ValidationAccuracy:P2}");
            rows.Add(new()
            {
                ["budget"] = name,
                ["population"] = options.PopulationSize,
                ["generations"] = options.Generations,
                ["epochs_per_generation"] = options.EpochsPerGeneration,
                ["candidates"] = history.Candidates.Count,
                ["total_s"] = Math.Round(Seconds("total"), 2),
                ["data_s"] = Math.Round(Seconds("data"), 2),
                ["training_s"] = Math.Round(Seconds("training"), 2),
                ["validation_s"] = Math.Round(Seconds("validation"), 2),
                ["morphism_s"] = Math.Round(Seconds("morphism"), 3),
                ["groups"] = model.Model.LayerGroups,
                ["validation_accuracy"] = Math.Round(best.ValidationAccuracy, 4),
            });
            model.Model.Dispose();
        }

        Measure.PrintJson(new Dictionary<string, object> { ["benchmark"] = "search", ["threads"] = o.Threads, ["runs"] = rows });
        return 0;
    }
}
