using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

public class BenchAndDemoTests
{
    [Fact]
    public void Bench_json_rows_carry_the_peers_schema()
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 3000, 40, 16, 12, seed: 5, Metric.L2, groundTruthK: 20).Save(dir.Path);
        var sw = new StringWriter();
        var options = new BenchOptions(dir.Path, "Flat", 10, 2, [], Json: true, Repeats: 1, QueryLimit: 0);
        Assert.Equal(0, BenchRunner.Run(options, sw));
        var line = sw.ToString().Trim();
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        foreach (var field in new[] { "system", "spec", "params", "k", "threads", "dataset", "n", "nq", "recall", "qps", "build_seconds", "index_bytes", "device" })
            Assert.True(root.TryGetProperty(field, out _), $"missing field {field} in {line}");
        Assert.Equal("engine", root.GetProperty("system").GetString());
        Assert.Equal(1.0, root.GetProperty("recall").GetDouble(), 6);
        Assert.Equal(3000, root.GetProperty("n").GetInt32());
        Assert.True(root.GetProperty("qps").GetDouble() > 0);
    }

    [Fact]
    public void Bench_rejects_k_deeper_than_ground_truth_and_unknown_sweeps()
    {
        using var dir = new TempDir();
        SyntheticData.ClusteredDataSet("tiny", 2000, 10, 8, 4, seed: 6, Metric.L2, groundTruthK: 5).Save(dir.Path);
        var ex = Assert.Throws<ArgumentException>(() => BenchRunner.Run(new BenchOptions(dir.Path, "Flat", 10, 1, [], true, 1, 0), TextWriter.Null));
        Assert.Contains("fewer than k=10", ex.Message);
        var sweeps = BenchOptions.ParseSweeps(["bogus=1,2"]);
        ex = Assert.Throws<ArgumentException>(() => BenchRunner.Run(new BenchOptions(dir.Path, "Flat", 5, 1, sweeps, true, 1, 0), TextWriter.Null));
        Assert.Contains("bogus", ex.Message);
        Assert.Throws<ArgumentException>(() => BenchOptions.ParseSweeps(["probes"]));
    }

    [Fact]
    public void Sweep_settings_are_the_cartesian_product()
    {
        var o = new BenchOptions("x", "Flat", 10, 1, BenchOptions.ParseSweeps(["probes=1,2,4", "refine=1,2"]), true, 1, 0);
        var settings = o.Settings().ToList();
        Assert.Equal(6, settings.Count);
        Assert.Contains(settings, s => s["probes"] == "4" && s["refine"] == "2");
    }

    [Fact]
    public void Demo_runs_end_to_end()
    {
        var sw = new StringWriter();
        Assert.Equal(0, DemoCommand.Run(2000, 20, 16, seed: 3, threads: 2, sw));
        var text = sw.ToString();
        Assert.Contains("recall@10=1.0000", text);   // the exact index
        Assert.Contains("mine", text);
        Assert.Contains("hubness", text);
    }

    [Fact]
    public void Demo_train_runs_with_small_sizes_and_improves_held_out_precision()
    {
        var sw = new StringWriter();
        var settings = new TrainDemoSettings(N: 1200, HeldOut: 200, D: 24, Classes: 6, Distractors: 6, Hidden: 24, Dim: 12,
            Epochs: 2, Anchors: 600, Negatives: 4, Seed: 3, Threads: 2);
        Assert.Equal(0, TrainDemoCommand.Run(settings, sw, out var result));
        var text = sw.ToString();
        Assert.Contains("before   held-out precision@10", text);
        Assert.Contains("epoch  2", text);
        Assert.Contains("after    held-out precision@10", text);
        Assert.True(result.After > result.Before, text);
    }

    [Fact]
    public void Demo_train_is_a_subcommand_and_rejects_bad_sizes()
    {
        var (code, err) = RunMain("demo", "train", "--n", "10");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --n must be at least 100 (got 10)", err);
    }

    [Fact]
    public void Cli_errors_are_one_line_with_exit_code_2()
    {
        var (code, err) = RunMain("bench", "--data", "/nonexistent-engine-dir", "--json");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", err);
        Assert.Contains("/nonexistent-engine-dir", err);
    }

    /// <summary>Runs <see cref="Program.Main"/> with stderr captured.</summary>
    internal static (int Code, string Error) RunMain(params string[] args)
    {
        var err = new StringWriter();
        var saved = Console.Error;
        Console.SetError(err);
        try
        {
            return (Program.Main(args), err.ToString());
        }
        finally { Console.SetError(saved); }
    }
}
