using Equinas.MLNet;
using Equinas.MLNet.Groups;
using Equinas.MLNet.Runs;
using Equinas.MLNet.Search.Differentiable;
using Equinas.MLNet.Search.Evolution;

namespace Equinas.Benchmarks;

/// <summary>
/// The engine's search records as the library's public history records, the form Equinas.Reports plots (the same
/// mapping the trainer's reporter makes), so that the experiments draw their figures with the CLI's plotting code.
/// </summary>
internal static class HistoryRecords
{
    /// <summary>EquiNAS_D epochs with z and the element mass by name (retraining epochs carry neither).</summary>
    public static IReadOnlyList<EquinasEpoch> Epochs(IReadOnlyList<SymmetryGroup> members, IEnumerable<DifferentiableEpoch> history)
    {
        var names = members.Select(m => m.Name).ToArray();
        return history.Select(h =>
        {
            bool mixed = h.Phase != DifferentiablePhase.Retrain;
            return new EquinasEpoch
            {
                Epoch = h.Epoch,
                Phase = h.Phase switch
                {
                    DifferentiablePhase.Warmup => EquinasPhase.Warmup,
                    DifferentiablePhase.Search => EquinasPhase.Search,
                    _ => EquinasPhase.Retrain,
                },
                Z = mixed ? EquinasModelParameters.ZByName(names, h.Z) : null,
                ElementMass = mixed ? DifferentiableRun.ElementMass(members, h.Z) : null,
                TrainLoss = h.Train.Loss,
                TrainAccuracy = h.Train.Accuracy,
                ValidationLoss = h.Validation.Loss,
                ValidationAccuracy = h.Validation.Accuracy,
            };
        }).ToArray();
    }

    /// <summary>Every candidate of an EquiNAS_E search, generation by generation.</summary>
    public static IReadOnlyList<EquinasCandidate> Candidates(IEnumerable<GenerationRecord> generations) =>
        generations.SelectMany(g => g.Candidates).Select(RunReporter.ToCandidate).ToArray();
}
