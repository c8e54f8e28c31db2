#nullable enable
using System.Diagnostics;
using Equinas.MLNet.Search.Evolution;
using Equinas.MLNet.Search.Training;
using Microsoft.ML.Runtime;

namespace Equinas.MLNet.Runs;

/// <summary>
/// The one progress mapper and history builder of every mode: each finished generation or epoch becomes one
/// <see cref="EquinasProgress"/> report (to <see cref="EquivariantImageClassificationTrainer.Options.Progress"/>), one
/// log line, and an entry of the <see cref="EquinasHistory"/> the model keeps.
/// </summary>
internal sealed class RunReporter
{
    private readonly SearchMode _mode;
    private readonly string _topGroup;
    private readonly IProgress<EquinasProgress>? _progress;
    private readonly IChannel _channel;
    private readonly Stopwatch _watch;
    private readonly List<EquinasCandidate> _candidates = [];
    private readonly List<EquinasEpoch> _epochs = [];
    private int _step;
    private int _restoredSteps;

    public RunReporter(SearchMode mode, string topGroup, IProgress<EquinasProgress>? progress, IChannel channel, Stopwatch watch)
    {
        _mode = mode;
        _topGroup = topGroup;
        _progress = progress;
        _channel = channel;
        _watch = watch;
    }

    /// <summary>Steps reported so far (generations or epochs, retraining included).</summary>
    public int Steps => _step;

    /// <summary>Records a finished generation of the evolutionary search and reports its best candidate.</summary>
    public void Generation(GenerationRecord generation, int totalSteps, TimeSpan remaining, bool restored = false)
    {
        ArgumentNullException.ThrowIfNull(generation);
        _candidates.AddRange(generation.Candidates.Select(ToCandidate));
        var best = generation.Best;
        _channel.Info($"Generation {generation.Generation}/{totalSteps - 1}{(restored ? " (from the checkpoint)" : "")}: {generation.Candidates.Count} candidates; best {string.Join("-", best.Groups)}, validation accuracy {best.ValidationAccuracy:P2}, loss {best.ValidationLoss:F4}.");
        Report(EquinasPhase.Generation, totalSteps, generation.Generation, new PassMetrics(best.TrainLoss, double.NaN, 0), new PassMetrics(best.ValidationLoss, best.ValidationAccuracy, 0), best.Groups, null, best.Parameters, remaining, restored);
    }

    /// <summary>Records a finished epoch (search, retraining or fixed training) and reports it.</summary>
    public void Epoch(EquinasPhase phase, double epoch, int totalSteps, PassMetrics train, PassMetrics validation, IReadOnlyList<string> layerGroups, IReadOnlyList<IReadOnlyDictionary<string, double>>? z, long parameters, bool restored = false, IReadOnlyList<IReadOnlyDictionary<string, double>>? elementMass = null)
    {
        _epochs.Add(new EquinasEpoch
        {
            Epoch = epoch,
            Phase = phase,
            Z = z,
            ElementMass = elementMass,
            TrainLoss = train.Loss,
            TrainAccuracy = train.Accuracy,
            ValidationLoss = validation.Loss,
            ValidationAccuracy = validation.Accuracy,
        });
        _channel.Info($"Epoch {epoch:F2} ({phase}, {string.Join("-", layerGroups)}){(restored ? " (from the checkpoint)" : "")}: validation accuracy {validation.Accuracy:P2}, loss {validation.Loss:F4}.");
        if (restored)
        {
            _restoredSteps++;
        }

        int done = _step + 1, trained = done - _restoredSteps;
        var remaining = trained <= 0 ? TimeSpan.Zero : TimeSpan.FromTicks(_watch.Elapsed.Ticks / trained * Math.Max(0, totalSteps - done));
        Report(phase, totalSteps, null, train, validation, layerGroups, z, parameters, remaining, restored, elementMass);
    }

    /// <summary>The history of the run so far, with its timings.</summary>
    public EquinasHistory History(IReadOnlyDictionary<string, TimeSpan>? timings) => new()
    {
        Mode = _mode,
        TopGroup = _topGroup,
        Candidates = _candidates.ToArray(),
        Epochs = _epochs.ToArray(),
        TrainingTime = _watch.Elapsed,
        Timings = timings,
    };

    private void Report(EquinasPhase phase, int totalSteps, int? generation, PassMetrics train, PassMetrics validation, IReadOnlyList<string> layerGroups, IReadOnlyList<IReadOnlyDictionary<string, double>>? z, long parameters, TimeSpan remaining, bool restored, IReadOnlyList<IReadOnlyDictionary<string, double>>? elementMass = null)
    {
        _step++;
        _progress?.Report(new EquinasProgress
        {
            Mode = _mode,
            Phase = phase,
            Step = _step,
            TotalSteps = totalSteps,
            Generation = generation,
            TrainLoss = train.Loss,
            TrainAccuracy = train.Accuracy,
            ValidationLoss = validation.Loss,
            ValidationAccuracy = validation.Accuracy,
            LayerGroups = layerGroups.ToArray(),
            Z = z,
            ElementMass = elementMass,
            Parameters = parameters,
            Elapsed = _watch.Elapsed,
            Remaining = remaining,
            Restored = restored,
        });
    }

    /// <summary>An engine candidate record as the public history's candidate (also used by the benchmarks).</summary>
    internal static EquinasCandidate ToCandidate(CandidateRecord c) => new()
    {
        Generation = c.Generation,
        Id = c.Id,
        ParentId = c.ParentId,
        Change = c.Change.Kind switch
        {
            ChangeKind.Initial => EquinasChange.Initial,
            ChangeKind.Copy => EquinasChange.Copy,
            ChangeKind.RelaxFrom => EquinasChange.RelaxFrom,
            ChangeKind.Final => EquinasChange.Final,
            _ => EquinasChange.Relax,
        },
        RelaxedLayer = c.Change.Layer,
        RelaxedTo = c.Change.Group,
        LayerGroups = c.Groups.ToArray(),
        Parameters = c.Parameters,
        ValidationAccuracy = c.ValidationAccuracy,
        ValidationLoss = c.ValidationLoss,
        TrainLoss = c.TrainLoss,
        Survived = c.Survived,
    };
}
