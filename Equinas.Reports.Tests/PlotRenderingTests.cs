using System.Xml.Linq;
using Equinas.MLNet;
using SkiaSharp;
using Xunit;

namespace Equinas.Reports.Tests;

/// <summary>
/// The plots render to PNGs of their size with ink and with text where the title and the axis titles are (checked
/// on the decoded pixels), for every plot kind, empty and one-point histories and non-ASCII labels; SVG is a
/// document with text elements. Set EQUINAS_PLOT_DIR to keep the rendered PNGs for a look.
/// </summary>
public sealed class PlotRenderingTests
{
    private static readonly SKColor Blue = new(31, 119, 180);
    private static readonly SKColor Orange = new(255, 127, 14);
    private static readonly SKColor Grey = new(127, 127, 127);
    private static readonly SKColor Red = new(214, 39, 40);
    private static readonly SKColor Green = new(44, 160, 44);
    private static readonly SKColor BaselineRed = new(160, 20, 60);

    private static readonly Baseline[] Baselines = [new("fixed all-D4", 21_000, 0.83), new("fixed all-C1", 160_000, 0.71)];

    public static TheoryData<string> Kinds => new() { "accuracy", "accuracy-long", "error", "error-long", "z", "z-members", "mass", "epochs", "epochs-differentiable", "baselines" };

    // Where the title is (above the plot area, centred), and where the x-axis title or the legend below it and the
    // y-axis title left of it are.
    private static SKRectI TitleStrip(Picture p) => new(200, 0, p.Width - 200, 32);

    private static SKRectI BottomStrip(Picture p) => new(150, p.Height - 70, p.Width - 150, p.Height);

    private static SKRectI LeftStrip(Picture p) => new(0, 60, 36, p.Height - 80);

    private static Figure Build(string kind) => kind switch
    {
        "accuracy" => SearchPlots.SearchAccuracy(Histories.Evolution(), Baselines),
        "accuracy-long" => SearchPlots.SearchAccuracy(Histories.Evolution(generations: 12, population: 3), Baselines),
        "error" => SearchPlots.ErrorVsParameters(Histories.Evolution(), Baselines, "test error of the final model: 4.1%"),
        "error-long" => SearchPlots.ErrorVsParameters(Histories.Evolution(generations: 12, population: 3), Baselines),
        "z" => SearchPlots.ZPerLayer(Histories.Differentiable()),
        "z-members" => SearchPlots.ZPerLayer(Histories.Differentiable(), sumConjugates: false, uniformStart: true),
        "mass" => SearchPlots.ElementMassPerLayer(Histories.Differentiable()),
        "epochs" => SearchPlots.EpochAccuracy([("", Histories.Fixed())], "Fixed groups: accuracy per epoch"),
        "epochs-differentiable" => SearchPlots.EpochAccuracy([("", Histories.Differentiable())], "Differentiable search: accuracy per epoch"),
        "baselines" => SearchPlots.EpochAccuracy([("fixed all-D4", Histories.Fixed(4)), ("fixed all-C1", Histories.Fixed(4).Select(e => e with { ValidationAccuracy = e.ValidationAccuracy - 0.1 }).ToList())], "Fixed baselines: accuracy per epoch"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static XDocument RenderSvg(Figure figure, string keepAs)
    {
        var svg = figure.ToSvg();
        if (Environment.GetEnvironmentVariable("EQUINAS_PLOT_DIR") is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(Path.Combine(folder, keepAs + ".svg"), svg);
        }

        return XDocument.Parse(System.Text.Encoding.UTF8.GetString(svg));
    }

    private static Picture Render(Figure figure, string? keepAs = null)
    {
        var png = figure.ToPng();
        if (keepAs is not null && Environment.GetEnvironmentVariable("EQUINAS_PLOT_DIR") is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(Path.Combine(folder, keepAs + ".png"), png);
        }

        return Picture.Decode(png);
    }

    [Fact]
    public void A_font_is_installed_so_that_plots_have_text()
    {
        Assert.True(PlotFonts.Warning is null, PlotFonts.Warning);
        Assert.Contains(PlotFonts.Family, SKFontManager.Default.GetFontFamilies(), StringComparer.OrdinalIgnoreCase);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_plot_renders_a_png_of_its_size_with_ink_and_with_text_at_the_title_and_the_axes(string kind)
    {
        var figure = Build(kind);
        var picture = Render(figure, kind);
        Assert.Equal((figure.Width, figure.Height), (picture.Width, picture.Height));
        double ink = (double)picture.Ink(picture.All) / (picture.Width * picture.Height);
        Assert.InRange(ink, 0.02, 0.75);
        Assert.True(picture.HasText(TitleStrip(picture), out var m, glyphs: 6), "title: " + m);
        Assert.True(picture.HasText(BottomStrip(picture), out m), "x-axis title or legend: " + m);
        Assert.True(picture.HasText(LeftStrip(picture), out m), "y-axis titles: " + m);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Removing_the_title_removes_the_text_from_the_title_region(string kind)
    {
        var figure = Build(kind);
        figure.Model.Subtitle = null;
        var with = Render(figure);
        figure.Model.Title = null;
        var without = Render(figure);
        Assert.True(with.HasText(TitleStrip(with), out var m, glyphs: 6), "with a title: " + m);
        Assert.False(without.HasText(TitleStrip(without), out m), "without a title: " + m);
        Assert.True(with.Difference(without, TitleStrip(with)) > 300);
    }

    [Fact]
    public void Each_plot_draws_its_marks_in_their_colours()
    {
        var accuracy = Render(Build("accuracy"));
        Assert.True(accuracy.Near(Blue, accuracy.All) > 300, "best-of-generation line");
        Assert.True(accuracy.Near(Orange, accuracy.All) > 100, "rings of the candidates kept as parents");
        Assert.True(accuracy.Near(BaselineRed, accuracy.All, 50) > 100, "the second baseline's line");

        var error = Render(Build("error"));
        Assert.True(error.Near(Blue, error.All) > 30, "generation 0");
        Assert.True(error.Near(Red, error.All) > 30, "generation 3");
        Assert.True(error.Near(BaselineRed, error.All) > 30, "the second baseline's diamond");

        // z: D4 wins the input-side layers, C1 the last; conjugates summed, D2VH is shown as D2*.
        var z = Render(Build("z"));
        Assert.True(z.Near(Blue, z.All, 4) > 20_000, "D4 area");
        Assert.True(z.Near(Grey, z.All, 4) > 5_000, "C1 area");
        Assert.True(z.Near(Green, z.All, 4) > 5_000, "D2* area");

        var mass = Render(Build("mass"));
        Assert.True(mass.Near(Blue, mass.All) > 300, "r, r3 lines");
        Assert.True(mass.Near(Red, mass.All) > 300, "r2 lines");

        var baselines = Render(Build("baselines"));
        Assert.True(baselines.Near(Blue, baselines.All) > 300, "first run");
        Assert.True(baselines.Near(Orange, baselines.All) > 300, "second run");
    }

    [Fact]
    public void Empty_histories_draw_empty_axes_that_say_there_is_nothing_to_plot()
    {
        var figures = new[]
        {
            SearchPlots.SearchAccuracy([]),
            SearchPlots.ErrorVsParameters([]),
            SearchPlots.ZPerLayer([]),
            SearchPlots.ZPerLayer(Histories.Fixed()),
            SearchPlots.ElementMassPerLayer([]),
            SearchPlots.EpochAccuracy([]),
            SearchPlots.EpochAccuracy([("", Array.Empty<EquinasEpoch>())]),
        };
        foreach (var figure in figures)
        {
            Assert.Contains("nothing to plot", figure.Model.Subtitle, StringComparison.Ordinal);
            var picture = Render(figure);
            Assert.True(picture.HasText(TitleStrip(picture), out var m), figure.Model.Title + ": " + m);
        }

        var empty = Histories.History(SearchMode.Evolutionary);
        Assert.Empty(HistoryPlots.Figures(empty));
        var folder = TempFolder();
        try
        {
            var written = HistoryPlots.Write(empty, folder);
            Assert.Empty(written);
            Assert.Empty(Directory.GetFiles(folder));
            Assert.Contains("No plots", HistoryPlots.Markdown(written, folder), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void One_point_histories_draw_their_single_point()
    {
        var one = new List<EquinasCandidate> { Histories.Candidate(0, 0, null, ["D4", "D4", "D4"], 12_345, 0.8, survived: false) };
        var accuracy = Render(SearchPlots.SearchAccuracy(one), "one-candidate-accuracy");
        Assert.True(accuracy.Near(Blue, accuracy.All) > 20, "the single best-of-generation marker");
        Assert.True(accuracy.HasText(TitleStrip(accuracy), out var m), m);
        var error = Render(SearchPlots.ErrorVsParameters(one), "one-candidate-error");
        Assert.True(error.Near(Blue, error.All) > 20, "the single candidate (generation 0)");
        Assert.True(error.HasText(BottomStrip(error), out m), m);

        var oneZ = Histories.Differentiable(layers: 2, searchEpochs: 1, retrainEpochs: 0).Skip(1).ToList();
        var z = Render(SearchPlots.ZPerLayer(oneZ), "one-epoch-z");
        Assert.True(z.Near(Blue, z.All, 4) + z.Near(Grey, z.All, 4) > 10_000, "the single epoch drawn as a band");
        var mass = Render(SearchPlots.ElementMassPerLayer(oneZ), "one-epoch-mass");
        Assert.True(mass.Near(Blue, mass.All) > 10, "the single epoch's markers");

        var epochs = Render(SearchPlots.EpochAccuracy([("", Histories.Fixed(1))]), "one-epoch-accuracy");
        Assert.True(epochs.Near(Blue, epochs.All) > 10, "the single validation marker");
    }

    [Fact]
    public void Non_ascii_labels_render_as_text_in_png_and_svg()
    {
        const string title = "Précision über Généralisation — αβγ Ж";
        const string name = "fixé all-D4 (Überprüfung)";
        var figure = SearchPlots.SearchAccuracy(Histories.Evolution(), [new Baseline(name, 21_000, 0.83)]);
        figure.Model.Title = title;
        var picture = Render(figure, "non-ascii");
        Assert.True(picture.HasText(TitleStrip(picture), out var m), m);

        var svg = RenderSvg(figure, "non-ascii");
        string text = string.Concat(svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value));
        Assert.Contains(title, text, StringComparison.Ordinal);
        Assert.Contains(name, text, StringComparison.Ordinal);
    }

    [Fact]
    public void Svg_is_a_white_document_of_the_figure_size_with_its_text()
    {
        var figure = Build("z-members");
        var svg = RenderSvg(figure, "z-members");
        Assert.Equal("svg", svg.Root!.Name.LocalName);
        Assert.Equal(figure.Width.ToString(System.Globalization.CultureInfo.InvariantCulture), svg.Root.Attribute("width")?.Value);
        Assert.Equal(figure.Height.ToString(System.Globalization.CultureInfo.InvariantCulture), svg.Root.Attribute("height")?.Value);
        Assert.Contains(svg.Descendants().Where(e => e.Name.LocalName == "rect"), r => (r.Attribute("style")?.Value ?? "").StartsWith("fill:rgb(255,255,255)", StringComparison.Ordinal));
        string text = string.Concat(svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value));
        Assert.Contains("epoch", text, StringComparison.Ordinal);
        Assert.Contains("D2VH", text, StringComparison.Ordinal);
        Assert.Contains("layer 5: C1 0.70", text, StringComparison.Ordinal);
        Assert.Contains(figure.Model.Title, text, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_creates_the_plots_of_each_mode_and_leaves_no_temporary_files()
    {
        var folder = TempFolder();
        try
        {
            var evolution = HistoryPlots.Write(Histories.History(SearchMode.Evolutionary, Histories.Evolution()), Path.Combine(folder, "evolution"), new HistoryPlotOptions { Svg = true, Baselines = Baselines });
            Assert.Equal(["validation-accuracy.png", "validation-accuracy.svg", "error-vs-parameters.png", "error-vs-parameters.svg"], evolution.Select(p => Path.GetFileName(p.Path)));
            var differentiable = HistoryPlots.Write(Histories.History(SearchMode.Differentiable, epochs: Histories.Differentiable()), Path.Combine(folder, "differentiable"), new HistoryPlotOptions { FilePrefix = "d-" });
            Assert.Equal(["d-validation-accuracy.png", "d-z-per-layer.png", "d-element-mass-per-layer.png"], differentiable.Select(p => Path.GetFileName(p.Path)));
            var fixedRun = HistoryPlots.Write(Histories.History(SearchMode.Fixed, epochs: Histories.Fixed()), Path.Combine(folder, "fixed"));
            Assert.Equal(["validation-accuracy.png"], fixedRun.Select(p => Path.GetFileName(p.Path)));
            foreach (var plot in evolution.Concat(differentiable).Concat(fixedRun).Where(p => p.Path.EndsWith(".png", StringComparison.Ordinal)))
            {
                var picture = Picture.Decode(File.ReadAllBytes(plot.Path));
                Assert.True(picture.HasText(TitleStrip(picture), out var m), plot.Path + ": " + m);
            }

            Assert.Empty(Directory.GetFiles(folder, "*.tmp", SearchOption.AllDirectories));
            string markdown = HistoryPlots.Markdown(evolution, Path.Combine(folder, "evolution"));
            Assert.Contains("(validation-accuracy.png)", markdown, StringComparison.Ordinal);
            Assert.DoesNotContain(".svg", markdown, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Epochs_of_a_phase_that_restarts_its_count_continue_the_axis()
    {
        // Warm-up 1, search 1..4, retraining 1..2: the axis reads 1, 2..5, 6..7.
        var x = SearchPlots.Cumulative(Histories.Differentiable()).Select(p => p.X);
        Assert.Equal([1.0, 2, 3, 4, 5, 6, 7], x);
        // Epochs that already count on are left as they are.
        Assert.Equal([1.0, 2, 3], SearchPlots.Cumulative(Histories.Fixed()).Select(p => p.X));
    }

    [Fact]
    public void Z_plot_rejects_epochs_with_different_layer_counts()
    {
        var epochs = Histories.Differentiable(layers: 3, searchEpochs: 2, retrainEpochs: 0);
        epochs.Add(Histories.Differentiable(layers: 2, searchEpochs: 1, retrainEpochs: 0)[^1]);
        var e = Assert.Throws<ArgumentException>(() => SearchPlots.ZPerLayer(epochs));
        Assert.Contains("the first has 3, entry 3 has 2", e.Message, StringComparison.Ordinal);
        Assert.Equal("epochs", e.ParamName);
    }

    [Fact]
    public void ZReadout_sums_conjugate_members_and_reads_the_element_mass()
    {
        var z = Histories.Members.ToDictionary(m => m.Name, m => m.Name switch { "D1V" => 0.1, "D1H" => 0.2, "D1D" => 0.05, "D1A" => 0.05, "D2VH" => 0.3, "D2DA" => 0.1, _ => 0.05 });
        var byClass = ZReadout.ByClass(z);
        Assert.Equal(0.4, byClass["D1*"], 12);
        Assert.Equal(0.4, byClass["D2*"], 12);
        Assert.Equal(0.05, byClass["D4"], 12);
        Assert.Equal(z.Values.Sum(), byClass.Values.Sum(), 12);
        Assert.Equal("r 0.10 r2 0.55 f 0.55", ZReadout.Elements(Histories.Mass(z)));
    }

    [Fact]
    public void Save_picks_the_format_from_the_extension()
    {
        var folder = TempFolder();
        try
        {
            var figure = Build("epochs");
            figure.Save(Path.Combine(folder, "a.png"));
            figure.Save(Path.Combine(folder, "a.svg"));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(folder, "a.png")).Take(4));
            Assert.Equal("svg", XDocument.Load(Path.Combine(folder, "a.svg")).Root!.Name.LocalName);
            var e = Assert.Throws<ArgumentException>(() => figure.Save(Path.Combine(folder, "a.jpg")));
            Assert.Contains("must end in .png or .svg", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void The_library_does_not_reference_the_plotting_library()
    {
        var references = typeof(EquinasHistory).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToList();
        Assert.DoesNotContain(references, name => name.StartsWith("OxyPlot", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(typeof(Figure).Assembly.GetReferencedAssemblies(), a => a.Name == "OxyPlot");
    }

    private static string TempFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"equinas-plots-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        return folder;
    }
}
