using Equinas.MLNet;

namespace Equinas.Reports.Tests;

/// <summary>Search histories built in the test, shaped like the trainer's: evolution, differentiable search, fixed training.</summary>
internal static class Histories
{
    /// <summary>The ten subgroups of D4 and the elements each contains (e, r, r2, r3, f, rf, r2f, r3f).</summary>
    public static readonly (string Name, string[] Elements)[] Members =
    [
        ("C1", ["e"]),
        ("C2", ["e", "r2"]),
        ("C4", ["e", "r", "r2", "r3"]),
        ("D1V", ["e", "f"]),
        ("D1H", ["e", "r2f"]),
        ("D1D", ["e", "rf"]),
        ("D1A", ["e", "r3f"]),
        ("D2VH", ["e", "r2", "f", "r2f"]),
        ("D2DA", ["e", "r2", "rf", "r3f"]),
        ("D4", ["e", "r", "r2", "r3", "f", "rf", "r2f", "r3f"]),
    ];

    private static readonly string[] ElementNames = ["e", "r", "r2", "r3", "f", "rf", "r2f", "r3f"];

    /// <summary>
    /// An evolutionary search: generation 0 one all-D4 network, then <paramref name="generations"/> generations of
    /// <paramref name="population"/> x 2 candidates, each relaxing one layer; accuracies rise and parameters grow.
    /// </summary>
    public static List<EquinasCandidate> Evolution(int generations = 4, int population = 3)
    {
        var list = new List<EquinasCandidate>();
        int id = 0;
        string[] relax = ["C4", "D1V", "D2VH", "C2", "C1"];
        list.Add(Candidate(0, id++, null, ["D4", "D4", "D4", "D4", "D4"], 21_000, 0.62, survived: true));
        for (int g = 1; g <= generations; g++)
        {
            var parents = list.Where(c => c.Generation == g - 1 && c.Survived).ToList();
            for (int k = 0; k < population * 2; k++)
            {
                var parent = parents[k % parents.Count];
                var groups = parent.LayerGroups.ToArray();
                int layer = (g + k) % groups.Length;
                groups[layer] = relax[(g + k) % relax.Length];
                double accuracy = Math.Min(0.97, 0.62 + (0.07 * g) + (0.012 * ((k * 7) % 5)));
                list.Add(Candidate(g, id++, parent.Id, groups, 21_000 + (g * 9_000) + (k * 4_000), accuracy, survived: k < population));
            }
        }

        return list;
    }

    /// <summary>
    /// A differentiable search over the ten subgroups with <paramref name="layers"/> layers: one warm-up epoch, then
    /// <paramref name="searchEpochs"/> search epochs whose z moves from uniform towards D4 (input side) and C1 (output
    /// side), then <paramref name="retrainEpochs"/> retraining epochs without z. Each phase counts its epochs from 1.
    /// </summary>
    public static List<EquinasEpoch> Differentiable(int layers = 5, int searchEpochs = 4, int retrainEpochs = 2)
    {
        var epochs = new List<EquinasEpoch>
        {
            Epoch(1, EquinasPhase.Warmup, 0.55, Enumerable.Range(0, layers).Select(_ => Uniform()).ToList()),
        };
        for (int e = 1; e <= searchEpochs; e++)
        {
            double t = (double)e / searchEpochs;
            var z = Enumerable.Range(0, layers).Select(layer =>
            {
                string favourite = layer < layers / 2 ? "D4" : layer == layers - 1 ? "C1" : "D2VH";
                return (IReadOnlyDictionary<string, double>)Members.ToDictionary(m => m.Name, m => m.Name == favourite ? 0.1 + (0.6 * t) : (0.9 - (0.6 * t)) / 9);
            }).ToList();
            epochs.Add(Epoch(e, EquinasPhase.Search, 0.6 + (0.08 * e), z));
        }

        for (int e = 1; e <= retrainEpochs; e++)
        {
            epochs.Add(Epoch(e, EquinasPhase.Retrain, 0.85 + (0.03 * e), null));
        }

        return epochs;
    }

    /// <summary>Fixed training: <paramref name="count"/> epochs, validation accuracy rising.</summary>
    public static List<EquinasEpoch> Fixed(int count = 3) =>
        Enumerable.Range(1, count).Select(e => Epoch(e, EquinasPhase.Training, 0.7 + (0.06 * e), null)).ToList();

    public static EquinasHistory History(SearchMode mode, IReadOnlyList<EquinasCandidate>? candidates = null, IReadOnlyList<EquinasEpoch>? epochs = null) => new()
    {
        Mode = mode,
        TopGroup = "D4",
        Candidates = candidates ?? [],
        Epochs = epochs ?? [],
        TrainingTime = TimeSpan.FromSeconds(12),
    };

    public static EquinasCandidate Candidate(int generation, int id, int? parent, string[] groups, long parameters, double accuracy, bool survived) => new()
    {
        Generation = generation,
        Id = id,
        ParentId = parent,
        Change = parent is null ? EquinasChange.Initial : EquinasChange.Relax,
        RelaxedLayer = parent is null ? null : 0,
        RelaxedTo = parent is null ? null : groups[0],
        LayerGroups = groups,
        Parameters = parameters,
        ValidationAccuracy = accuracy,
        ValidationLoss = 1 - accuracy,
        TrainLoss = 1.1 - accuracy,
        Survived = survived,
    };

    public static EquinasEpoch Epoch(double epoch, EquinasPhase phase, double accuracy, IReadOnlyList<IReadOnlyDictionary<string, double>>? z) => new()
    {
        Epoch = epoch,
        Phase = phase,
        Z = z,
        ElementMass = z?.Select(Mass).ToList(),
        TrainLoss = 1 - accuracy,
        TrainAccuracy = accuracy - 0.03,
        ValidationLoss = 1.05 - accuracy,
        ValidationAccuracy = accuracy,
    };

    /// <summary>The mass of z on each element: the sum of z over the members containing it.</summary>
    public static IReadOnlyDictionary<string, double> Mass(IReadOnlyDictionary<string, double> z) =>
        ElementNames.ToDictionary(g => g, g => Members.Where(m => m.Elements.Contains(g)).Sum(m => z.GetValueOrDefault(m.Name)));

    private static IReadOnlyDictionary<string, double> Uniform() => Members.ToDictionary(m => m.Name, _ => 1.0 / Members.Length);
}
