using System.Globalization;
using ScottPlot;

namespace Engine.Bench;

/// <summary>Options of <see cref="RecallQpsPlot"/>.</summary>
public sealed class RecallQpsPlotOptions
{
    /// <summary>Title above the plot (data set, machine…); empty for none.</summary>
    public string Title { get; init; } = "";

    /// <summary>The k of recall@k, used in the x-axis label (0 writes just "recall").</summary>
    public int K { get; init; }

    /// <summary>Image width in pixels (also the SVG's).</summary>
    public int Width { get; init; } = 1200;

    /// <summary>Image height in pixels.</summary>
    public int Height { get; init; } = 800;

    /// <summary>Series with at most this many points get every point labelled; larger ones label only their front.</summary>
    public int LabelAllUpTo { get; init; } = 12;
}

/// <summary>
/// Draws the ann-benchmarks style recall–QPS plot with ScottPlot: recall@k on x, QPS on a log y axis, one colour per
/// series (engine spec, or peer system and spec), every setting as a marker, each series' Pareto front as a line,
/// points labelled with their parameters. Engine series use circles, peers other marker shapes.
/// </summary>
public static class RecallQpsPlot
{
    private static readonly MarkerShape[] PeerShapes =
        [MarkerShape.FilledTriangleUp, MarkerShape.FilledSquare, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleDown, MarkerShape.Cross];

    /// <summary>Writes the plot to <paramref name="path"/>: PNG for <c>.png</c>, SVG for <c>.svg</c>.</summary>
    /// <exception cref="ArgumentException">No rows, an invalid row, or an extension other than .png / .svg.</exception>
    /// <exception cref="DirectoryNotFoundException">The target directory does not exist.</exception>
    public static void Save(string path, IReadOnlyList<BenchResult> rows, RecallQpsPlotOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new RecallQpsPlotOptions();
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".png" or ".svg"))
            throw new ArgumentException($"Plot file '{path}' must end in .png or .svg.");
        if (options.Width < 100 || options.Height < 100)
            throw new ArgumentException($"Plot size {options.Width}x{options.Height} is too small (at least 100x100).");
        using var plot = Build(rows, options);
        AtomicFile.Write(path, stream =>
        {
            byte[] bytes = ext == ".png"
                ? plot.GetImageBytes(options.Width, options.Height, ImageFormat.Png)
                : System.Text.Encoding.UTF8.GetBytes(plot.GetSvgXml(options.Width, options.Height));
            stream.Write(bytes);
        });
    }

    /// <summary>Builds the plot without rendering it (for callers that render elsewhere).</summary>
    /// <exception cref="ArgumentException">No rows, or an invalid row.</exception>
    public static Plot Build(IReadOnlyList<BenchResult> rows, RecallQpsPlotOptions options)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(options);
        if (rows.Count == 0) throw new ArgumentException("Nothing to plot: no result rows.");
        foreach (var r in rows) r.Validate();

        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int seriesIndex = 0, peerIndex = 0;
        foreach (var group in rows.GroupBy(r => r.Series))
        {
            var points = group.ToList();
            var color = palette.GetColor(seriesIndex++);
            bool engine = points[0].System == BenchResult.EngineSystem;
            var shape = engine ? MarkerShape.FilledCircle : PeerShapes[peerIndex++ % PeerShapes.Length];

            var all = plot.Add.ScatterPoints(points.Select(p => p.Recall).ToArray(), points.Select(p => Math.Log10(p.Qps)).ToArray());
            all.Color = color.WithAlpha(0.45);
            all.MarkerShape = shape;
            all.MarkerSize = 6;

            var front = Pareto.Front(points);
            var line = plot.Add.Scatter(front.Select(p => p.Recall).ToArray(), front.Select(p => Math.Log10(p.Qps)).ToArray());
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerShape = shape;
            line.MarkerSize = 9;
            line.LegendText = group.Key;

            var labelled = points.Count <= options.LabelAllUpTo ? points : front;
            foreach (var p in labelled)
            {
                if (p.Params.Count == 0) continue;
                var text = plot.Add.Text(p.ParamsText, p.Recall, Math.Log10(p.Qps));
                text.LabelFontSize = 9;
                text.LabelFontColor = color.Darken(0.3);
                text.LabelOffsetX = 5;
                text.LabelOffsetY = -4;
            }
        }

        plot.XLabel(options.K > 0 ? $"recall@{options.K}" : "recall");
        plot.YLabel("queries per second (log scale)");
        if (options.Title.Length > 0) plot.Title(options.Title);

        // Log y axis: the data are log10(QPS); ticks at whole powers of ten labelled with the QPS, log-spaced minor ticks.
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Math.Pow(10, y).ToString("N0", CultureInfo.InvariantCulture),
        };
        plot.Grid.MajorLineColor = Colors.Black.WithAlpha(0.15);
        plot.Grid.MinorLineColor = Colors.Black.WithAlpha(0.05);
        plot.Grid.MinorLineWidth = 1;

        double minRecall = rows.Min(r => r.Recall), maxRecall = rows.Max(r => r.Recall);
        double minLog = Math.Floor(rows.Min(r => Math.Log10(r.Qps))), maxLog = Math.Ceiling(rows.Max(r => Math.Log10(r.Qps)));
        if (maxLog <= minLog) maxLog = minLog + 1;
        double pad = Math.Max(0.01, (maxRecall - minRecall) * 0.05);
        // Room on the right for the labels of the best-recall points, but recall ticks stop at 1.
        double left = Math.Max(0, minRecall - pad), right = Math.Min(1.0, maxRecall) + pad * 3;
        plot.Axes.SetLimits(left, right, minLog, maxLog);
        plot.Axes.Bottom.TickGenerator = RecallTicks(left, Math.Min(1.0, right));
        plot.ShowLegend(Alignment.LowerLeft);
        return plot;
    }

    /// <summary>About ten ticks at a round step (0.005 … 0.1) from <paramref name="from"/> up to <paramref name="to"/> (at most 1).</summary>
    private static ScottPlot.TickGenerators.NumericManual RecallTicks(double from, double to)
    {
        double step = new[] { 0.005, 0.01, 0.02, 0.05, 0.1 }.FirstOrDefault(st => (to - from) / st <= 12, 0.1);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (long i = (long)Math.Ceiling(from / step - 1e-9); i * step <= to + 1e-9; i++)
        {
            double x = Math.Round(i * step, 3);
            ticks.AddMajor(x, x.ToString("0.###", CultureInfo.InvariantCulture));
        }
        return ticks;
    }
}
