using System.Globalization;
using System.Text;
using Equinas.MLNet.Groups;

namespace Equinas.Benchmarks;

/// <summary>
/// Writes z over training as an SVG of stacked areas, one panel per layer, one colour per member group. SVG text is
/// written directly: a few dozen lines, no native rendering library, and any browser or image viewer shows it.
/// </summary>
internal static class ZPlot
{
    private static readonly string[] Palette =
        ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

    public static void WriteSvg(string path, string title, IReadOnlyList<SymmetryGroup> members, IReadOnlyList<(double Epoch, IReadOnlyList<double[]> Z)> history)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(history);
        if (history.Count == 0)
        {
            return;
        }

        int layers = history[0].Z.Count;
        const int panelWidth = 180, panelHeight = 140, margin = 40, top = 50, legendHeight = 30;
        int width = (margin * 2) + (layers * (panelWidth + 20));
        int height = top + panelHeight + margin + legendHeight;
        // Epoch 0: the uniform start, so that every panel begins where the search began.
        var points = new List<(double Epoch, IReadOnlyList<double[]> Z)> { (0, Enumerable.Range(0, layers).Select(_ => Enumerable.Repeat(1.0 / members.Count, members.Count).ToArray()).ToArray()) };
        points.AddRange(history);
        double maxEpoch = points.Max(p => p.Epoch);
        var svg = new StringBuilder();
        string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        svg.AppendLine(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{margin}\" y=\"22\" font-size=\"14\">{System.Security.SecurityElement.Escape(title)}</text>");
        for (int layer = 0; layer < layers; layer++)
        {
            double x0 = margin + (layer * (panelWidth + 20));
            double X(double epoch) => x0 + (panelWidth * epoch / maxEpoch);
            double Y(double fraction) => top + (panelHeight * (1 - fraction));
            var lower = new double[points.Count];
            for (int m = 0; m < members.Count; m++)
            {
                var upper = points.Select((p, i) => lower[i] + p.Z[layer][m]).ToArray();
                var outline = points.Select((p, i) => $"{F(X(p.Epoch))},{F(Y(upper[i]))}")
                    .Concat(points.Select((p, i) => $"{F(X(p.Epoch))},{F(Y(lower[i]))}").Reverse());
                svg.AppendLine(CultureInfo.InvariantCulture, $"<polygon points=\"{string.Join(' ', outline)}\" fill=\"{Palette[m % Palette.Length]}\" stroke=\"none\"/>");
                lower = upper;
            }

            svg.AppendLine(CultureInfo.InvariantCulture, $"<rect x=\"{F(x0)}\" y=\"{top}\" width=\"{panelWidth}\" height=\"{panelHeight}\" fill=\"none\" stroke=\"#333\"/>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{F(x0 + (panelWidth / 2.0))}\" y=\"{top - 6}\" text-anchor=\"middle\">layer {layer + 1}</text>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{F(x0)}\" y=\"{top + panelHeight + 14}\">0</text>");
            svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"{F(x0 + panelWidth)}\" y=\"{top + panelHeight + 14}\" text-anchor=\"end\">{F(maxEpoch)} epochs</text>");
        }

        svg.AppendLine(CultureInfo.InvariantCulture, $"<text x=\"8\" y=\"{top + 4}\">1</text><text x=\"8\" y=\"{top + panelHeight}\">0</text>");
        double legendY = top + panelHeight + margin;
        for (int m = 0; m < members.Count; m++)
        {
            double lx = margin + (m * 70);
            svg.AppendLine(CultureInfo.InvariantCulture, $"<rect x=\"{F(lx)}\" y=\"{F(legendY - 10)}\" width=\"12\" height=\"12\" fill=\"{Palette[m % Palette.Length]}\"/><text x=\"{F(lx + 16)}\" y=\"{F(legendY)}\">{members[m].Name}</text>");
        }

        svg.AppendLine("</svg>");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, svg.ToString());
    }
}
