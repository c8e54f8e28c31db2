using System.Globalization;
using Equinas.MLNet;
using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Equinas.Reports;

/// <summary>A fixed network (every layer one group) to compare a search with, on the same validation split.</summary>
/// <param name="Name">How plots label it, e.g. "fixed all-D4".</param>
/// <param name="Parameters">Its trainable parameters.</param>
/// <param name="ValidationAccuracy">Its validation accuracy after training, in [0, 1].</param>
public sealed record Baseline(string Name, long Parameters, double ValidationAccuracy);

/// <summary>
/// The plots of a search history, as OxyPlot figures: validation accuracy per generation, validation error against
/// parameters, z per layer, the mass of z per group element, and accuracy per epoch. Every builder accepts an empty
/// history and then draws empty axes with a subtitle saying there is nothing to plot.
/// </summary>
public static class SearchPlots
{
    /// <summary>The width of every figure, in pixels.</summary>
    public const int Width = 1000;

    /// <summary>The height of the single-panel figures, in pixels.</summary>
    public const int Height = 600;

    // The order in which member groups are stacked (largest first) and their colours, the same in every plot.
    private static readonly string[] MemberOrder = ["D4", "C4", "D2*", "D2VH", "D2DA", "C2", "D1*", "D1V", "D1H", "D1D", "D1A", "C1"];

    private static readonly Dictionary<string, OxyColor> MemberColors = new(StringComparer.Ordinal)
    {
        ["D4"] = OxyColor.FromRgb(31, 119, 180),
        ["C4"] = OxyColor.FromRgb(255, 127, 14),
        ["D2*"] = OxyColor.FromRgb(44, 160, 44),
        ["D2VH"] = OxyColor.FromRgb(44, 160, 44),
        ["D2DA"] = OxyColor.FromRgb(152, 223, 138),
        ["C2"] = OxyColor.FromRgb(214, 39, 40),
        ["D1*"] = OxyColor.FromRgb(148, 103, 189),
        ["D1V"] = OxyColor.FromRgb(148, 103, 189),
        ["D1H"] = OxyColor.FromRgb(197, 176, 213),
        ["D1D"] = OxyColor.FromRgb(140, 86, 75),
        ["D1A"] = OxyColor.FromRgb(196, 156, 148),
        ["C1"] = OxyColor.FromRgb(127, 127, 127),
    };

    // Element mass lines: r and r3 always carry the same mass (a subgroup holds r exactly when it holds r3), and e is 1.
    private static readonly (string Label, string Key, OxyColor Color, LineStyle Style)[] MassLines =
    [
        ("r, r3 (quarter turns)", "r", OxyColor.FromRgb(31, 119, 180), LineStyle.Solid),
        ("r2 (half turn)", "r2", OxyColor.FromRgb(214, 39, 40), LineStyle.Solid),
        ("f (left-right mirror)", "f", OxyColor.FromRgb(148, 103, 189), LineStyle.Solid),
        ("r2f (up-down mirror)", "r2f", OxyColor.FromRgb(255, 127, 14), LineStyle.Dash),
        ("rf (a diagonal mirror)", "rf", OxyColor.FromRgb(44, 160, 44), LineStyle.Solid),
        ("r3f (the other diagonal)", "r3f", OxyColor.FromRgb(140, 86, 75), LineStyle.Dash),
    ];

    /// <summary>
    /// Validation accuracy of every candidate of an evolutionary search per generation: each candidate as a dot, the
    /// ones kept as parents ringed, the best of each generation joined by a line and labelled with its layer groups
    /// where they change; fixed baselines as dashed horizontal lines.
    /// </summary>
    /// <param name="candidates">The candidates (<see cref="EquinasHistory.Candidates"/>).</param>
    /// <param name="baselines">Fixed networks to draw for comparison, or null.</param>
    /// <returns>The figure.</returns>
    public static Figure SearchAccuracy(IReadOnlyList<EquinasCandidate> candidates, IReadOnlyList<Baseline>? baselines = null)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        baselines ??= [];
        var model = PlotStyle.Model(candidates.Count == 0
            ? "Evolutionary search: validation accuracy per generation"
            : Invariant($"Evolutionary search: validation accuracy per generation ({candidates.Count} candidates)"));
        int last = candidates.Count == 0 ? 0 : candidates.Max(c => c.Generation);
        var x = PlotStyle.Linear(AxisPosition.Bottom, "generation (0 = initial training)");
        x.Minimum = -0.5;
        x.Maximum = last + 0.5;
        x.MajorStep = Math.Max(1, Math.Ceiling((last + 1) / 15.0));
        x.MinorStep = x.MajorStep;
        x.MajorGridlineStyle = LineStyle.None;
        x.LabelFormatter = v => v.ToString("0", CultureInfo.InvariantCulture);
        var y = PlotStyle.Linear(AxisPosition.Left, "validation accuracy");
        // Room above 100% for the labels over the best points; no tick is labelled above 100%.
        y.LabelFormatter = v => v > 100.001 ? "" : PlotStyle.Percent(v);
        (y.Minimum, y.Maximum) = PlotStyle.Range(candidates.Select(c => c.ValidationAccuracy * 100).Concat(baselines.Select(b => b.ValidationAccuracy * 100)), 2, 0, 110, 0.12, 0.25);
        model.Axes.Add(x);
        model.Axes.Add(y);
        if (candidates.Count == 0)
        {
            PlotStyle.NoData(model, "no candidates in this history: nothing to plot");
            return new Figure(model, Width, Height);
        }

        var position = Positions(candidates);
        var all = new ScatterSeries { Title = "candidate", MarkerType = MarkerType.Circle, MarkerSize = 4.5, MarkerFill = OxyColor.FromAColor(200, OxyColor.FromRgb(150, 150, 150)) };
        var kept = new ScatterSeries { Title = "kept as parent", MarkerType = MarkerType.Circle, MarkerSize = 8, MarkerFill = OxyColors.Transparent, MarkerStroke = PlotStyle.Palette[1], MarkerStrokeThickness = 2 };
        foreach (var c in candidates)
        {
            all.Points.Add(new ScatterPoint(position[c], c.ValidationAccuracy * 100));
            if (c.Survived)
            {
                kept.Points.Add(new ScatterPoint(position[c], c.ValidationAccuracy * 100));
            }
        }

        var best = new LineSeries { Title = "best of each generation (its layer groups where they change)", Color = PlotStyle.Palette[0], StrokeThickness = 2.5, MarkerType = MarkerType.Circle, MarkerSize = 4, MarkerFill = PlotStyle.Palette[0] };
        string? previous = null;
        int labels = 0;
        foreach (var generation in candidates.GroupBy(c => c.Generation).OrderBy(g => g.Key))
        {
            var b = Best(generation);
            best.Points.Add(new DataPoint(position[b], b.ValidationAccuracy * 100));
            string groups = string.Join("-", b.LayerGroups);
            if (groups != previous)
            {
                // Consecutive labels alternate between two heights so that neighbours do not overlap, and the first
                // and last start or end at their point, so that none is cut at the sides.
                var align = generation.Key == 0 && last > 0 ? HorizontalAlignment.Left : generation.Key == last && last > 0 ? HorizontalAlignment.Right : HorizontalAlignment.Center;
                model.Annotations.Add(PlotStyle.Label(groups, position[b], b.ValidationAccuracy * 100, labels++ % 2 == 0 ? -10 : -26, PlotStyle.Palette[0], align));
            }

            previous = groups;
        }

        AddBaselineLines(model, baselines);
        model.Series.Add(all);
        model.Series.Add(kept);
        model.Series.Add(best);
        model.Legends.Add(PlotStyle.Legend(LegendPosition.BottomCenter, LegendPlacement.Outside, LegendOrientation.Horizontal));
        return new Figure(model, Width, Height);
    }

    /// <summary>
    /// Validation error of every candidate against its parameter count (log scale), coloured by generation, the final
    /// model ringed; fixed baselines as labelled diamonds.
    /// </summary>
    /// <param name="candidates">The candidates (<see cref="EquinasHistory.Candidates"/>).</param>
    /// <param name="baselines">Fixed networks to draw for comparison, or null.</param>
    /// <param name="note">A line under the title, e.g. the final model's test error; null for the default note.</param>
    /// <returns>The figure.</returns>
    public static Figure ErrorVsParameters(IReadOnlyList<EquinasCandidate> candidates, IReadOnlyList<Baseline>? baselines = null, string? note = null)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        baselines ??= [];
        var model = PlotStyle.Model("Validation error against parameter count", note ?? "every candidate of the search; test error is measured for the final model only");
        var counts = candidates.Select(c => (double)c.Parameters).Concat(baselines.Select(b => (double)b.Parameters)).Where(p => p > 0).ToList();
        var x = PlotStyle.Log(AxisPosition.Bottom, "trainable parameters (log scale)");
        x.LabelFormatter = PlotStyle.Count;
        x.MinorGridlineStyle = LineStyle.Dot;
        x.MinorGridlineColor = PlotStyle.GridColor;
        if (counts.Count > 0)
        {
            // At least a factor of 4 around the data, so that the log axis has ticks to label.
            double min = counts.Min() / 1.4, max = counts.Max() * 1.4;
            if (max / min < 4)
            {
                double centre = Math.Sqrt(min * max);
                (min, max) = (centre / 2, centre * 2);
            }

            (x.Minimum, x.Maximum) = (min, max);
        }

        var y = PlotStyle.Linear(AxisPosition.Left, "validation error");
        y.LabelFormatter = PlotStyle.Percent;
        (y.Minimum, y.Maximum) = PlotStyle.Range(candidates.Select(c => (1 - c.ValidationAccuracy) * 100).Concat(baselines.Select(b => (1 - b.ValidationAccuracy) * 100)), 2, 0, 100, 0.12, 0.18);
        model.Axes.Add(x);
        model.Axes.Add(y);
        if (candidates.Count == 0 && baselines.Count == 0)
        {
            PlotStyle.NoData(model, "no candidates in this history: nothing to plot");
            return new Figure(model, Width, Height);
        }

        // Up to ten generations in distinct colours; more in hues spread evenly, so that no two share a colour.
        int generations = candidates.Count == 0 ? 0 : candidates.Max(c => c.Generation) + 1;
        var colors = generations <= PlotStyle.Palette.Length ? PlotStyle.Palette : OxyPalettes.HueDistinct(generations).Colors.ToArray();
        foreach (var generation in candidates.GroupBy(c => c.Generation).OrderBy(g => g.Key))
        {
            var series = new ScatterSeries
            {
                Title = Invariant($"generation {generation.Key}"),
                MarkerType = MarkerType.Circle,
                MarkerSize = 5.5,
                MarkerFill = colors[generation.Key % colors.Length],
                MarkerStroke = OxyColors.White,
                MarkerStrokeThickness = 0.8,
            };
            series.Points.AddRange(generation.Select(c => new ScatterPoint(c.Parameters, (1 - c.ValidationAccuracy) * 100)));
            model.Series.Add(series);
        }

        if (candidates.Count > 0)
        {
            int last = candidates.Max(c => c.Generation);
            var final = Best(candidates.Where(c => c.Generation == last));
            var ring = new ScatterSeries { Title = "final model", MarkerType = MarkerType.Circle, MarkerSize = 10, MarkerFill = OxyColors.Transparent, MarkerStroke = OxyColors.Black, MarkerStrokeThickness = 2 };
            ring.Points.Add(new ScatterPoint(final.Parameters, (1 - final.ValidationAccuracy) * 100));
            model.Series.Add(ring);
            model.Annotations.Add(PlotStyle.Label("final: " + string.Join("-", final.LayerGroups), final.Parameters, (1 - final.ValidationAccuracy) * 100, -12));
        }

        for (int i = 0; i < baselines.Count; i++)
        {
            var b = baselines[i];
            var color = PlotStyle.BaselineColors[i % PlotStyle.BaselineColors.Length];
            var marker = new ScatterSeries { Title = b.Name, MarkerType = MarkerType.Diamond, MarkerSize = 8, MarkerFill = color };
            marker.Points.Add(new ScatterPoint(b.Parameters, (1 - b.ValidationAccuracy) * 100));
            model.Series.Add(marker);
            model.Annotations.Add(PlotStyle.Label(b.Name, b.Parameters, (1 - b.ValidationAccuracy) * 100, 10, color));
        }

        model.Legends.Add(PlotStyle.Legend(LegendPosition.RightTop, LegendPlacement.Outside));
        return new Figure(model, Width, Height);
    }

    /// <summary>
    /// The mixture weights z of a differentiable search over training as stacked areas, one panel per layer (the input
    /// layer on top), one colour per member group.
    /// </summary>
    /// <param name="epochs">The epochs (<see cref="EquinasHistory.Epochs"/>); those without z (retraining, fixed) are left out.</param>
    /// <param name="sumConjugates">Whether conjugate members are one band (the four mirrors as D1*, the two Klein groups as D2*), as <see cref="ZReadout.ByClass"/> does.</param>
    /// <param name="uniformStart">Whether to start every panel at epoch 0 with z uniform over the members (true for a uniform initialisation).</param>
    /// <param name="title">The title, or null for the default.</param>
    /// <returns>The figure; its height grows with the number of layers.</returns>
    /// <exception cref="ArgumentException">The epochs do not all have the same number of layers.</exception>
    public static Figure ZPerLayer(IReadOnlyList<EquinasEpoch> epochs, bool sumConjugates = true, bool uniformStart = false, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        var cumulative = Cumulative(epochs);
        var withZ = cumulative.Where(p => p.Epoch.Z is { Count: > 0 }).ToList();
        var model = PlotStyle.Model(title ?? "Differentiable search: mixture weights z per layer (stacked)", sumConjugates ? "conjugate members summed: D1* = the four mirror groups, D2* = the two Klein groups" : null);
        if (withZ.Count == 0)
        {
            return EmptyPanels(model, "no epoch with z in this history: nothing to plot");
        }

        int layers = LayerCount(withZ.Select(p => p.Epoch.Z!).ToList(), "z");
        var rawMembers = withZ[0].Epoch.Z![0].Keys.ToList();
        var points = withZ.Select(p => (p.X, Z: p.Epoch.Z!.Select(l => sumConjugates ? ZReadout.ByClass(l) : l).ToList())).ToList();
        if (uniformStart)
        {
            IReadOnlyDictionary<string, double> uniform = rawMembers.ToDictionary(m => m, _ => 1.0 / rawMembers.Count, StringComparer.Ordinal);
            var start = sumConjugates ? ZReadout.ByClass(uniform) : uniform;
            points.Insert(0, (Math.Min(0, points[0].X), Enumerable.Repeat(start, layers).ToList()));
        }

        var members = Ordered(points.SelectMany(p => p.Z.SelectMany(l => l.Keys)).Distinct());
        var xs = Spread(points.Select(p => p.X).ToList());
        var x = AddPanels(model, layers, xs, (layer, axis) =>
        {
            var final = points[^1].Z[layer].MaxBy(kv => kv.Value);
            axis.Title = Invariant($"layer {layer + 1}: {final.Key} {final.Value:F2}");
        });
        x.Title = "epoch (the panel titles give the largest z at the end)";
        for (int layer = 0; layer < layers; layer++)
        {
            var lower = new double[xs.Count];
            for (int m = 0; m < members.Count; m++)
            {
                var color = ColorOf(members[m], m);
                var area = new AreaSeries { Title = layer == 0 ? members[m] : null, RenderInLegend = layer == 0, Fill = color, Color = color, StrokeThickness = 0.5, YAxisKey = PanelKey(layer) };
                var upper = new double[xs.Count];
                for (int i = 0; i < xs.Count; i++)
                {
                    upper[i] = lower[i] + points[Math.Min(i, points.Count - 1)].Z[layer].GetValueOrDefault(members[m]);
                    area.Points.Add(new DataPoint(xs[i], upper[i]));
                    area.Points2.Add(new DataPoint(xs[i], lower[i]));
                }

                model.Series.Add(area);
                lower = upper;
            }
        }

        AddPhaseMarkers(model, withZ, xs[0], layers);
        model.Legends.Add(PlotStyle.Legend(LegendPosition.RightTop, LegendPlacement.Outside));
        return new Figure(model, Width, PanelHeight(layers));
    }

    /// <summary>
    /// The mass of z on each element of D4 per layer over training (<see cref="EquinasEpoch.ElementMass"/>), one panel
    /// per layer: near 1, the layer keeps that symmetry whichever member group carries the weight.
    /// </summary>
    /// <param name="epochs">The epochs (<see cref="EquinasHistory.Epochs"/>); those without element mass are left out.</param>
    /// <param name="title">The title, or null for the default.</param>
    /// <returns>The figure; its height grows with the number of layers.</returns>
    /// <exception cref="ArgumentException">The epochs do not all have the same number of layers.</exception>
    public static Figure ElementMassPerLayer(IReadOnlyList<EquinasEpoch> epochs, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        var withMass = Cumulative(epochs).Where(p => p.Epoch.ElementMass is { Count: > 0 }).ToList();
        var model = PlotStyle.Model(title ?? "Differentiable search: mass of z on each element of D4, per layer", "mass of g = sum of z over the member groups that contain g (the identity always has mass 1)");
        if (withMass.Count == 0)
        {
            return EmptyPanels(model, "no epoch with element mass in this history: nothing to plot");
        }

        int layers = LayerCount(withMass.Select(p => p.Epoch.ElementMass!).ToList(), "element mass");
        var xs = Spread(withMass.Select(p => p.X).ToList());
        var x = AddPanels(model, layers, xs, (layer, axis) => axis.Title = Invariant($"layer {layer + 1}"));
        x.Title = "epoch";
        for (int layer = 0; layer < layers; layer++)
        {
            foreach (var (label, key, color, style) in MassLines)
            {
                var line = new LineSeries
                {
                    Title = layer == 0 ? label : null,
                    RenderInLegend = layer == 0,
                    Color = color,
                    LineStyle = style,
                    StrokeThickness = 2,
                    MarkerType = xs.Count <= 40 ? MarkerType.Circle : MarkerType.None,
                    MarkerSize = 2.5,
                    MarkerFill = color,
                    YAxisKey = PanelKey(layer),
                };
                for (int i = 0; i < xs.Count; i++)
                {
                    line.Points.Add(new DataPoint(xs[i], withMass[Math.Min(i, withMass.Count - 1)].Epoch.ElementMass![layer].GetValueOrDefault(key)));
                }

                model.Series.Add(line);
            }
        }

        AddPhaseMarkers(model, withMass, xs[0], layers);
        model.Legends.Add(PlotStyle.Legend(LegendPosition.RightTop, LegendPlacement.Outside));
        return new Figure(model, Width, PanelHeight(layers));
    }

    /// <summary>
    /// Validation accuracy (solid) and training accuracy over the epoch (dashed) per epoch, for one or more runs;
    /// epochs count on across phases (warm-up, search, retraining), whose boundaries are marked.
    /// </summary>
    /// <param name="runs">Each run's name (empty for a single unnamed run) and epochs.</param>
    /// <param name="title">The title, or null for the default.</param>
    /// <returns>The figure.</returns>
    public static Figure EpochAccuracy(IReadOnlyList<(string Name, IReadOnlyList<EquinasEpoch> Epochs)> runs, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var model = PlotStyle.Model(title ?? "Accuracy per epoch");
        var series = runs.Select(r => (r.Name, Points: Cumulative(r.Epochs))).ToList();
        var x = PlotStyle.Linear(AxisPosition.Bottom, "epoch");
        var xValues = series.SelectMany(s => s.Points.Select(p => p.X)).ToList();
        (x.Minimum, x.Maximum) = xValues.Count == 0 ? (0, 1) : (Math.Min(0, xValues.Min()), Math.Max(xValues.Max(), Math.Min(0, xValues.Min()) + 1) * 1.02);
        var y = PlotStyle.Linear(AxisPosition.Left, "accuracy");
        y.LabelFormatter = PlotStyle.Percent;
        (y.Minimum, y.Maximum) = PlotStyle.Range(series.SelectMany(s => s.Points.SelectMany(p => new[] { p.Epoch.ValidationAccuracy * 100, p.Epoch.TrainAccuracy * 100 })), 2, 0, 100);
        model.Axes.Add(x);
        model.Axes.Add(y);
        if (xValues.Count == 0)
        {
            PlotStyle.NoData(model, "no epochs in this history: nothing to plot");
            return new Figure(model, Width, Height);
        }

        for (int r = 0; r < series.Count; r++)
        {
            var (name, points) = series[r];
            if (points.Count == 0)
            {
                continue;
            }

            var color = PlotStyle.Palette[r % PlotStyle.Palette.Length];
            string prefix = string.IsNullOrEmpty(name) ? "" : name + ": ";
            if (points.All(p => double.IsFinite(p.Epoch.TrainAccuracy)))
            {
                // Hollow markers, so that a single epoch shows too.
                var train = new LineSeries { Title = prefix + "training (over the epoch)", Color = color, LineStyle = LineStyle.Dash, StrokeThickness = 1.8, MarkerType = MarkerType.Circle, MarkerSize = 3, MarkerFill = OxyColors.White, MarkerStroke = color, MarkerStrokeThickness = 1.5 };
                train.Points.AddRange(points.Select(p => new DataPoint(p.X, p.Epoch.TrainAccuracy * 100)));
                model.Series.Add(train);
            }

            var validation = new LineSeries { Title = prefix + "validation", Color = color, StrokeThickness = 2.5, MarkerType = MarkerType.Circle, MarkerSize = 3.5, MarkerFill = color };
            validation.Points.AddRange(points.Select(p => new DataPoint(p.X, p.Epoch.ValidationAccuracy * 100)));
            model.Series.Add(validation);
            if (series.Count == 1)
            {
                AddPhaseMarkers(model, points, x.Minimum);
            }
        }

        model.Legends.Add(PlotStyle.Legend(LegendPosition.BottomCenter, LegendPlacement.Outside, LegendOrientation.Horizontal));
        return new Figure(model, Width, Height);
    }

    /// <summary>The best candidate of a generation: highest validation accuracy, then lowest validation loss, then lowest id.</summary>
    internal static EquinasCandidate Best(IEnumerable<EquinasCandidate> generation) =>
        generation.OrderByDescending(c => c.ValidationAccuracy).ThenBy(c => c.ValidationLoss).ThenBy(c => c.Id).First();

    /// <summary>
    /// Epochs on one axis: each phase's epochs count from 0 (warm-up, search and retraining each restart), so a phase
    /// whose count restarts continues from where the previous phase ended.
    /// </summary>
    internal static List<(double X, EquinasEpoch Epoch)> Cumulative(IReadOnlyList<EquinasEpoch> epochs)
    {
        var result = new List<(double X, EquinasEpoch Epoch)>(epochs.Count);
        double offset = 0;
        for (int i = 0; i < epochs.Count; i++)
        {
            if (i > 0 && epochs[i].Phase != epochs[i - 1].Phase && epochs[i].Epoch <= epochs[i - 1].Epoch)
            {
                offset = result[^1].X;
            }

            result.Add((offset + epochs[i].Epoch, epochs[i]));
        }

        return result;
    }

    // Candidates of a generation spread evenly around the generation's x, in id order, so that equal accuracies stay apart.
    private static Dictionary<EquinasCandidate, double> Positions(IReadOnlyList<EquinasCandidate> candidates)
    {
        var position = new Dictionary<EquinasCandidate, double>(ReferenceEqualityComparer.Instance);
        foreach (var generation in candidates.GroupBy(c => c.Generation))
        {
            var ordered = generation.OrderBy(c => c.Id).ToList();
            for (int i = 0; i < ordered.Count; i++)
            {
                position[ordered[i]] = generation.Key + (ordered.Count == 1 ? 0 : -0.2 + (0.4 * i / (ordered.Count - 1)));
            }
        }

        return position;
    }

    private static void AddBaselineLines(PlotModel model, IReadOnlyList<Baseline> baselines)
    {
        for (int i = 0; i < baselines.Count; i++)
        {
            var color = PlotStyle.BaselineColors[i % PlotStyle.BaselineColors.Length];
            model.Annotations.Add(new LineAnnotation
            {
                Type = LineAnnotationType.Horizontal,
                Y = baselines[i].ValidationAccuracy * 100,
                Color = color,
                LineStyle = LineStyle.Dash,
                StrokeThickness = 2,
                Text = Invariant($"{baselines[i].Name}: {baselines[i].ValidationAccuracy * 100:0.#}%"),
                TextColor = color,
                TextLinePosition = 1,
                TextHorizontalAlignment = HorizontalAlignment.Right,
                TextVerticalAlignment = VerticalAlignment.Bottom,
                FontSize = 11,
            });
        }
    }

    // Vertical dotted lines where the phase changes (warm-up -> search -> retraining), labelled with the new phase:
    // across every panel when there are several (labelled in the first only).
    private static void AddPhaseMarkers(PlotModel model, List<(double X, EquinasEpoch Epoch)> points, double leftEdge, int panels = 0)
    {
        for (int i = 1; i < points.Count; i++)
        {
            // A change on the axis's left edge (after a single warm-up epoch in the z plots) is not drawn.
            if (points[i].Epoch.Phase == points[i - 1].Epoch.Phase || points[i - 1].X <= leftEdge)
            {
                continue;
            }

            for (int panel = 0; panel < Math.Max(1, panels); panel++)
            {
                model.Annotations.Add(new LineAnnotation
                {
                    Type = LineAnnotationType.Vertical,
                    X = points[i - 1].X,
                    Color = OxyColor.FromRgb(60, 60, 60),
                    LineStyle = LineStyle.Dot,
                    StrokeThickness = 1.5,
                    Text = panel == 0 ? points[i].Epoch.Phase.ToString().ToLowerInvariant() + " from here" : null,
                    TextColor = OxyColor.FromRgb(60, 60, 60),
                    TextOrientation = AnnotationTextOrientation.Vertical,
                    TextLinePosition = 0,
                    TextHorizontalAlignment = HorizontalAlignment.Left,
                    TextMargin = 4,
                    FontSize = 11,
                    YAxisKey = panels > 0 ? PanelKey(panel) : null,
                });
            }
        }
    }

    private static string PanelKey(int layer) => "layer" + layer.ToString(CultureInfo.InvariantCulture);

    private static int PanelHeight(int layers) => 130 + (layers * 150);

    // One x axis at the bottom and one y axis per layer, stacked top to bottom with small gaps between panels.
    private static LinearAxis AddPanels(PlotModel model, int layers, IReadOnlyList<double> xs, Action<int, LinearAxis> name)
    {
        model.PlotAreaBorderThickness = new OxyThickness(0);
        var x = PlotStyle.Linear(AxisPosition.Bottom, "epoch");
        (x.Minimum, x.Maximum) = (xs[0], xs[^1]);
        x.AxislineStyle = LineStyle.Solid;
        x.LabelFormatter = PlotStyle.Number;
        model.Axes.Add(x);
        const double gap = 0.035;
        for (int layer = 0; layer < layers; layer++)
        {
            double top = 1 - ((double)layer / layers), bottom = 1 - ((double)(layer + 1) / layers);
            var axis = PlotStyle.Linear(AxisPosition.Left, "");
            axis.Key = PanelKey(layer);
            axis.StartPosition = bottom + (layer == layers - 1 ? 0 : gap);
            axis.EndPosition = top - (layer == 0 ? 0 : gap);
            axis.Minimum = 0;
            axis.Maximum = 1;
            axis.MajorStep = 0.5;
            axis.MinorStep = 0.25;
            axis.AxislineStyle = LineStyle.Solid;
            axis.TitleFontSize = 12;
            axis.LabelFormatter = PlotStyle.Number;
            name(layer, axis);
            model.Axes.Add(axis);
        }

        return x;
    }

    private static Figure EmptyPanels(PlotModel model, string message)
    {
        model.Axes.Add(PlotStyle.Linear(AxisPosition.Bottom, "epoch"));
        model.Axes.Add(PlotStyle.Linear(AxisPosition.Left, "z"));
        PlotStyle.NoData(model, message);
        return new Figure(model, Width, 400);
    }

    // A single epoch is drawn as a band one epoch wide around it (never below epoch 0), so that it is visible.
    private static List<double> Spread(List<double> xs) =>
        xs.Count == 1 || xs.Max() - xs.Min() <= 0 ? [Math.Max(0, xs[0] - 0.5), Math.Max(0, xs[0] - 0.5) + 1] : xs;

    private static int LayerCount(List<IReadOnlyList<IReadOnlyDictionary<string, double>>> perEpoch, string what)
    {
        int layers = perEpoch[0].Count;
        int bad = perEpoch.FindIndex(l => l.Count != layers);
        if (bad >= 0)
        {
            throw new ArgumentException(Invariant($"Every epoch's {what} must have the same number of layers: the first has {layers}, entry {bad} has {perEpoch[bad].Count}."), "epochs");
        }

        return layers;
    }

    private static List<string> Ordered(IEnumerable<string> members) =>
        members.OrderBy(m => Array.IndexOf(MemberOrder, m) is var i && i >= 0 ? i : MemberOrder.Length).ThenBy(m => m, StringComparer.Ordinal).ToList();

    private static OxyColor ColorOf(string member, int index) =>
        MemberColors.TryGetValue(member, out var color) ? color : PlotStyle.Palette[index % PlotStyle.Palette.Length];

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
