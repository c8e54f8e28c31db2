using System.Globalization;
using Equinas.MLNet;

namespace RotatedDigits;

/// <summary>
/// Writes one line per progress report, on the training thread. (<see cref="Progress{T}"/> would post the reports to
/// the thread pool, so lines could arrive late or out of order.)
/// </summary>
internal sealed class ConsoleProgress(string model) : IProgress<EquinasProgress>
{
    public void Report(EquinasProgress value)
    {
        ArgumentNullException.ThrowIfNull(value);
        string step = value.Phase == EquinasPhase.Generation
            ? $"generation {value.Generation}/{value.TotalSteps - 1}"
            : $"{value.Phase.ToString().ToLowerInvariant()} {value.Step}/{value.TotalSteps}";
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"  [{model}] {step,-16} validation {value.ValidationAccuracy,7:P2} (loss {value.ValidationLoss:F4})  groups {string.Join("-", value.LayerGroups)}  elapsed {Format(value.Elapsed)}  remaining ~{Format(value.Remaining)}"));
    }

    public static string Format(TimeSpan time) =>
        time.TotalHours >= 1
            ? time.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture)
            : time.ToString(@"m\:ss", CultureInfo.InvariantCulture);
}
