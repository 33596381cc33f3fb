using System.Buffers.Binary;
using Engine.Bench;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

public class PlotAndCsvTests
{
    private static BenchResult Row(string system, string spec, double recall, double qps, params (string, string)[] ps) =>
        new(system, spec, ps.ToDictionary(p => p.Item1, p => p.Item2), recall, qps) { K = 10 };

    private static List<BenchResult> Sweep() =>
    [
        Row("engine", "IVF64,PQ8x4fs,RFlat", 0.50, 9000, ("probes", "1")),
        Row("engine", "IVF64,PQ8x4fs,RFlat", 0.80, 6000, ("probes", "4")),
        Row("engine", "IVF64,PQ8x4fs,RFlat", 0.70, 3000, ("probes", "2")),   // dominated by probes=4
        Row("engine", "IVF64,PQ8x4fs,RFlat", 0.95, 1500, ("probes", "16")),
        Row("hnswlib", "HNSW M16 efC200", 0.90, 4000, ("ef", "40")),
        Row("hnswlib", "HNSW M16 efC200", 0.99, 1200, ("ef", "160")),
    ];

    [Fact]
    public void Pareto_front_keeps_only_undominated_points_by_increasing_recall()
    {
        var front = Pareto.Front(Sweep().Where(r => r.System == "engine"));
        Assert.Equal(["1", "4", "16"], front.Select(r => r.Params["probes"]));
        // Equal recall: only the faster survives; equal QPS: only the higher recall.
        var ties = Pareto.Front([Row("e", "s", 0.9, 100), Row("e", "s", 0.9, 200), Row("e", "s", 0.95, 200)]);
        Assert.Single(ties);
        Assert.Equal(0.95, ties[0].Recall);
        Assert.Empty(Pareto.Front([]));
    }

    [Fact]
    public void Csv_has_one_row_per_setting_quotes_specs_and_leaves_unmeasured_cells_empty()
    {
        using var dir = new TempDir();
        var rows = Sweep();
        rows[0] = rows[0] with { P50Ms = 0.25, P99Ms = 1.5, BuildSeconds = 2.5, MemoryBytes = 123456, ReadsPerQuery = 7.5 };
        string path = dir.File("out.csv");
        BenchCsv.Write(path, rows);
        var lines = File.ReadAllText(path).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(rows.Count + 1, lines.Length);
        Assert.Equal(string.Join(',', BenchCsv.Columns), lines[0]);
        Assert.Equal("engine,\"IVF64,PQ8x4fs,RFlat\",probes=1,10,0.5,9000,0.25,1.5,2.5,123456,,7.5", lines[1]);
        Assert.Equal("hnswlib,HNSW M16 efC200,ef=40,10,0.9,4000,,,,,,", lines[5]);
        Assert.Single(Directory.GetFiles(dir.Path)); // no temporary file left behind
    }

    [Fact]
    public void Csv_and_plot_reject_invalid_rows()
    {
        var bad = new List<BenchResult> { Row("engine", "Flat", 1.2, 100) };
        Assert.Contains("outside [0, 1]", Assert.Throws<ArgumentException>(() => BenchCsv.Write(TextWriter.Null, bad)).Message);
        Assert.Contains("QPS", Assert.Throws<ArgumentException>(() => RecallQpsPlot.Build([Row("engine", "Flat", 1, 0)], new())).Message);
        Assert.Contains("Nothing to plot", Assert.Throws<ArgumentException>(() => RecallQpsPlot.Build([], new())).Message);
    }

    [Fact]
    public void Png_plot_is_written_with_the_requested_size()
    {
        using var dir = new TempDir();
        string path = dir.File("plot.png");
        RecallQpsPlot.Save(path, Sweep(), new RecallQpsPlotOptions { Title = "test", K = 10, Width = 640, Height = 480 });
        byte[] png = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Equal(640, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));  // IHDR width
        Assert.Equal(480, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));  // IHDR height
        Assert.True(png.Length > 10_000, $"a plot with text and six series should not be {png.Length} bytes");
    }

    [Fact]
    public void Svg_plot_has_every_series_labels_and_a_log_qps_axis()
    {
        using var dir = new TempDir();
        string path = dir.File("plot.svg");
        RecallQpsPlot.Save(path, Sweep(), new RecallQpsPlotOptions { Title = "mnist", K = 10 });
        string svg = File.ReadAllText(path);
        Assert.Equal("svg", System.Xml.Linq.XDocument.Parse(svg).Root!.Name.LocalName);
        foreach (var text in new[] { "IVF64,PQ8x4fs,RFlat", "hnswlib HNSW M16 efC200", "probes=16", "ef=160", "recall@10", "log scale", "1,000", "10,000" })
            Assert.Contains(text, svg);
    }

    [Fact]
    public void Plot_rejects_unknown_extensions_and_missing_directories()
    {
        using var dir = new TempDir();
        Assert.Contains(".png or .svg", Assert.Throws<ArgumentException>(() => RecallQpsPlot.Save(dir.File("plot.jpg"), Sweep())).Message);
        Assert.Throws<DirectoryNotFoundException>(() => RecallQpsPlot.Save(Path.Combine(dir.Path, "missing", "p.png"), Sweep()));
    }
}
