using Engine.Bench;
using Engine.Cli;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

public class BenchCliTests
{
    private static string TinyData(TempDir dir)
    {
        string data = Path.Combine(dir.Path, "data");
        SyntheticData.ClusteredDataSet("tiny", 3000, 40, 16, 12, seed: 11, Metric.L2, groundTruthK: 20).Save(data);
        return data;
    }

    [Fact]
    public void Specs_file_with_peers_writes_one_csv_row_per_setting_and_one_combined_plot()
    {
        using var dir = new TempDir();
        string data = TinyData(dir);
        File.WriteAllText(dir.File("specs.json"), """
            {"runs": [
              {"index": "Flat"},
              {"index": "IVF16,PQ8x4fs,RFlat", "sweep": {"probes": [1, 4], "refine": [1, 4]}}
            ]}
            """);
        File.WriteAllText(dir.File("peers.jsonl"), """
            {"system": "faiss", "spec": "IVF16,PQ8x4fs,RFlat", "params": {"nprobe": 4, "k_factor": 4}, "recall": 0.93, "qps": 25000, "build_seconds": 0.2}
            {"system": "hnswlib", "spec": "HNSW M16 efC200", "params": {"ef": 40}, "recall": 0.99, "qps": 30000, "build_seconds": 0.4}
            """);
        var options = new BenchOptions(data, "Flat", 10, 2, [], Json: false, Repeats: 1, QueryLimit: 0)
        {
            SpecsFile = dir.File("specs.json"),
            PeersFile = dir.File("peers.jsonl"),
            PlotFile = dir.File("plot.svg"),
            CsvFile = dir.File("rows.csv"),
            LatencyQueries = 20,
        };
        var log = new StringWriter();
        var rows = BenchRunner.Measure(options, TextWriter.Null, Steps.Plain(log));

        Assert.Equal(5, rows.Count); // Flat + 2 x 2 IVF settings
        Assert.Equal(1.0, rows[0].Recall, 6);
        Assert.All(rows, r => Assert.True(r.P50Ms > 0 && r.P99Ms >= r.P50Ms && r.MemoryBytes > 0 && r.BuildSeconds >= 0, r.ToString()));
        Assert.Contains(rows, r => r.ParamsText == "probes=4 refine=4" && r.Recall > 0.5);

        var csv = File.ReadAllLines(dir.File("rows.csv"));
        Assert.Equal(1 + 5 + 2, csv.Length);
        Assert.StartsWith("engine,Flat,,10,1,", csv[1]);
        Assert.Contains(csv, l => l.StartsWith("engine,\"IVF16,PQ8x4fs,RFlat\",probes=1 refine=4,10,", StringComparison.Ordinal));
        Assert.Contains(csv, l => l.StartsWith("hnswlib,HNSW M16 efC200,ef=40,,0.99,30000,", StringComparison.Ordinal));

        string svg = File.ReadAllText(dir.File("plot.svg"));
        foreach (var series in new[] { "Flat", "IVF16,PQ8x4fs,RFlat", "faiss IVF16,PQ8x4fs,RFlat", "hnswlib HNSW M16 efC200", "probes=4 refine=4", "tiny" })
            Assert.Contains(series, svg);

        string text = log.ToString();
        Assert.Contains("train IVF16,PQ8x4fs,RFlat: done in", text);
        Assert.Contains("sweep IVF16,PQ8x4fs,RFlat (4 settings): done in", text);
        Assert.DoesNotContain("\u001b[", text); // plain lines, no terminal escapes
    }

    [Fact]
    public void Bad_outputs_and_peers_fail_before_any_index_is_built()
    {
        using var dir = new TempDir();
        string data = TinyData(dir);
        var baseOptions = new BenchOptions(data, "Flat", 10, 1, [], Json: true, Repeats: 1, QueryLimit: 0);
        var log = new StringWriter();
        var ex = Assert.Throws<ArgumentException>(() => BenchRunner.Measure(baseOptions with { PlotFile = dir.File("p.gif") }, TextWriter.Null, Steps.Plain(log)));
        Assert.Contains("--plot", ex.Message);
        Assert.Throws<DirectoryNotFoundException>(() => BenchRunner.Measure(baseOptions with { CsvFile = Path.Combine(dir.Path, "no", "x.csv") }, TextWriter.Null, Steps.Plain(log)));
        File.WriteAllText(dir.File("peers.jsonl"), "{\"system\": \"faiss\"}\n");
        Assert.Throws<FormatException>(() => BenchRunner.Measure(baseOptions with { PeersFile = dir.File("peers.jsonl") }, TextWriter.Null, Steps.Plain(log)));
        Assert.Throws<FileNotFoundException>(() => BenchRunner.Measure(baseOptions with { SpecsFile = dir.File("none.json") }, TextWriter.Null, Steps.Plain(log)));
        File.WriteAllText(dir.File("peers.jsonl"), "{\"system\": \"faiss\", \"spec\": \"Flat\", \"recall\": 1, \"qps\": 5, \"k\": 100}\n");
        ex = Assert.Throws<ArgumentException>(() => BenchRunner.Measure(baseOptions with { PeersFile = dir.File("peers.jsonl") }, TextWriter.Null, Steps.Plain(log)));
        Assert.Contains("k=100", ex.Message);
        Assert.DoesNotContain("train", log.ToString());
    }

    [Fact]
    public void Min_seconds_keeps_timing_past_the_repeats_and_bad_values_fail_before_any_build()
    {
        using var dir = new TempDir();
        string data = TinyData(dir);
        var options = new BenchOptions(data, "Flat", 10, 1, [], Json: true, Repeats: 1, QueryLimit: 0) { LatencyQueries = 0 };
        var log = new StringWriter();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var quick = BenchRunner.Measure(options, TextWriter.Null, Steps.Plain(log));
        double plain = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var timed = BenchRunner.Measure(options with { MinSeconds = 1.5 }, TextWriter.Null, Steps.Plain(log));
        // a lower bound only (the timed passes run for at least 1.5 s), never a speed assertion
        Assert.True(clock.Elapsed.TotalSeconds >= 1.5 && clock.Elapsed.TotalSeconds > plain, $"{clock.Elapsed.TotalSeconds} s with --min-seconds 1.5, {plain} s without");
        Assert.Equal(quick[0].Recall, timed[0].Recall);
        foreach (double bad in new[] { -1, double.NaN, 1e6 })
        {
            var ex = Assert.Throws<ArgumentException>(() => BenchRunner.Measure(options with { MinSeconds = bad, SpecsFile = dir.File("none.json") }, TextWriter.Null, Steps.Plain(log)));
            Assert.Contains("--min-seconds", ex.Message);
        }
        var (code, err) = Engine.Tests.Cli.BenchAndDemoTests.RunMain("bench", "--data", data, "--min-seconds", "-2");
        Assert.Equal(2, code);
        Assert.Contains("--min-seconds", err);
    }

    [Fact]
    public void Command_line_rejects_specs_together_with_index_and_names_engine()
    {
        using var dir = new TempDir();
        var (code, err) = Engine.Tests.Cli.BenchAndDemoTests.RunMain("bench", "--data", dir.Path, "--specs", dir.File("s.json"), "--index", "Flat");
        Assert.Equal(2, code);
        Assert.Contains("do not combine it with --index", err);
    }

    [Theory]
    [InlineData(false, false, null, "xterm-256color", true)]
    [InlineData(true, false, null, "xterm", false)]
    [InlineData(false, true, null, "xterm", false)]
    [InlineData(false, false, "true", "xterm", false)]
    [InlineData(false, false, null, "dumb", false)]
    public void Progress_bars_only_on_a_terminal_outside_ci(bool outRedirected, bool errRedirected, string? ci, string? term, bool expected) =>
        Assert.Equal(expected, Terminal.Decide(outRedirected, errRedirected, ci, term));

    [Fact]
    public void Plain_steps_print_start_progress_and_end_lines_without_escapes()
    {
        var log = new StringWriter();
        var steps = Steps.ForConsole(log); // the test host's output is redirected: no bars
        Assert.False(steps.Interactive);
        int value = steps.Run("work", p => { p.Report(new BuildProgress("work", 1, 2)); return 42; });
        Assert.Equal(42, value);
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal("work ...", lines[0]);
        Assert.StartsWith("work: done in ", lines[^1]);
        Assert.DoesNotContain('\u001b', log.ToString());
        Assert.False(Steps.ForConsole(TextWriter.Null).Interactive);
    }
}
