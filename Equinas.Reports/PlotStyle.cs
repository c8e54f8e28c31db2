using System.Globalization;
using OxyPlot;
using OxyPlot.Annotations;
using OxyPlot.Axes;
using OxyPlot.Legends;

namespace Equinas.Reports;

/// <summary>The look shared by every plot: font, colours, axes, legends, number formats.</summary>
internal static class PlotStyle
{
    public static readonly OxyColor TextColor = OxyColor.FromRgb(30, 30, 30);
    public static readonly OxyColor GridColor = OxyColor.FromRgb(228, 228, 228);
    public static readonly OxyColor Muted = OxyColor.FromRgb(140, 140, 140);

    /// <summary>Ten distinct colours (the "tab10" set): blue, orange, green, red, purple, brown, pink, grey, olive, cyan.</summary>
    public static readonly OxyColor[] Palette =
    [
        OxyColor.FromRgb(31, 119, 180), OxyColor.FromRgb(255, 127, 14), OxyColor.FromRgb(44, 160, 44), OxyColor.FromRgb(214, 39, 40),
        OxyColor.FromRgb(148, 103, 189), OxyColor.FromRgb(140, 86, 75), OxyColor.FromRgb(227, 119, 194), OxyColor.FromRgb(127, 127, 127),
        OxyColor.FromRgb(188, 189, 34), OxyColor.FromRgb(23, 190, 207),
    ];

    /// <summary>Dark colours for fixed baselines, apart from the palette of the search.</summary>
    public static readonly OxyColor[] BaselineColors =
    [
        OxyColor.FromRgb(20, 20, 20), OxyColor.FromRgb(160, 20, 60), OxyColor.FromRgb(0, 90, 90), OxyColor.FromRgb(110, 70, 0),
    ];

    public static PlotModel Model(string title, string? subtitle = null) => new()
    {
        Title = title,
        Subtitle = subtitle,
        DefaultFont = PlotFonts.Family,
        DefaultFontSize = 12,
        TitleFontSize = 16,
        TitleFontWeight = FontWeights.Bold,
        SubtitleFontSize = 12,
        Background = OxyColors.White,
        TextColor = TextColor,
        PlotAreaBorderColor = OxyColor.FromRgb(110, 110, 110),
        PlotAreaBorderThickness = new OxyThickness(1),
        Padding = new OxyThickness(10, 8, 14, 8),
    };

    public static LinearAxis Linear(AxisPosition position, string title) => Configure(new LinearAxis(), position, title);

    public static LogarithmicAxis Log(AxisPosition position, string title) => Configure(new LogarithmicAxis { Base = 10 }, position, title);

    public static Legend Legend(LegendPosition position, LegendPlacement placement, LegendOrientation orientation = LegendOrientation.Vertical) => new()
    {
        LegendPosition = position,
        LegendPlacement = placement,
        LegendOrientation = orientation,
        LegendBackground = OxyColor.FromAColor(235, OxyColors.White),
        LegendBorder = OxyColor.FromRgb(170, 170, 170),
        LegendBorderThickness = 1,
        LegendFontSize = 12,
        LegendItemSpacing = 18,
    };

    /// <summary>A label at a data point, without a frame, on a faint white background so that it stays readable over lines.</summary>
    public static TextAnnotation Label(string text, double x, double y, double dy, OxyColor? color = null, HorizontalAlignment align = HorizontalAlignment.Center, string? yAxisKey = null) => new()
    {
        Text = text,
        TextPosition = new DataPoint(x, y),
        TextHorizontalAlignment = align,
        TextVerticalAlignment = dy < 0 ? VerticalAlignment.Bottom : VerticalAlignment.Top,
        Offset = new ScreenVector(align switch { HorizontalAlignment.Left => 9, HorizontalAlignment.Right => -9, _ => 0 }, dy),
        FontSize = 11,
        TextColor = color ?? TextColor,
        Stroke = OxyColors.Undefined,
        StrokeThickness = 0,
        Background = OxyColor.FromAColor(200, OxyColors.White),
        Padding = new OxyThickness(2, 0, 2, 0),
        YAxisKey = yAxisKey,
        Layer = AnnotationLayer.AboveSeries,
    };

    /// <summary>Says on the plot that there is nothing to draw (an empty history is not an error).</summary>
    public static void NoData(PlotModel model, string message)
    {
        model.Subtitle = message;
        foreach (var axis in model.Axes)
        {
            if (double.IsNaN(axis.Minimum) || double.IsNaN(axis.Maximum))
            {
                axis.Minimum = axis is LogarithmicAxis ? 1 : 0;
                axis.Maximum = axis is LogarithmicAxis ? 10 : 1;
            }
        }
    }

    /// <summary>[min, max] of the finite values widened by a share of the span (at least <paramref name="minimumPad"/>), clipped to [lower, upper].</summary>
    public static (double Min, double Max) Range(IEnumerable<double> values, double minimumPad, double lower, double upper, double bottomShare = 0.1, double topShare = 0.15)
    {
        var finite = values.Where(double.IsFinite).ToList();
        if (finite.Count == 0)
        {
            return (lower, upper);
        }

        double min = finite.Min(), max = finite.Max(), span = Math.Max(max - min, minimumPad);
        return (Math.Max(lower, min - (span * bottomShare) - (minimumPad / 2)), Math.Min(upper, max + (span * topShare) + (minimumPad / 2)));
    }

    public static string Percent(double value) => value.ToString("0.#", CultureInfo.InvariantCulture) + "%";

    /// <summary>A count as 950, 12k, 1.5k, 2.3M.</summary>
    public static string Count(double value) => Math.Abs(value) switch
    {
        >= 1e6 => (value / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (value / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + "k",
        _ => value.ToString("0.##", CultureInfo.InvariantCulture),
    };

    public static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    private static T Configure<T>(T axis, AxisPosition position, string title)
        where T : Axis
    {
        axis.Position = position;
        axis.Title = title;
        axis.TitleFontSize = 13;
        axis.FontSize = 12;
        axis.MajorGridlineStyle = LineStyle.Solid;
        axis.MajorGridlineColor = GridColor;
        axis.TicklineColor = Muted;
        axis.IsZoomEnabled = false;
        axis.IsPanEnabled = false;
        axis.AxisTitleDistance = 6;
        return axis;
    }
}
