using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

/// <summary><c>engine bench</c> builds and measures specs with an OPQ rotation in front of any list or posting codec.</summary>
public class OpqBenchTests
{
    [Theory]
    [InlineData("OPQ8,IVF16,Flat", null, 0.95)]
    [InlineData("OPQ8,IVF16,BIN2,RFlat", "refine", 0.9)]
    [InlineData("OPQ4,IVF16,PQ8x4fs,RFlat", "refine", 0.9)]
    [InlineData("SPANN(size=32,codec=OPQ8,PQ8)", "rerank", 0.9)]
    public void OpqSpecsAreBuiltAndMeasuredThroughTheFactory(string spec, string? knob, double floor)
    {
        using var dir = new TempDir();
        string data = Path.Combine(dir.Path, "data");
        SyntheticData.ClusteredDataSet("tiny", 3000, 40, 16, 12, seed: 13, Metric.L2, groundTruthK: 20).Save(data);
        var sweeps = new List<KeyValuePair<string, string[]>> { new("probes", ["4", "16"]) };
        if (knob is not null) sweeps.Add(new(knob, ["8"]));
        var options = new BenchOptions(data, spec, 10, 2, sweeps, Json: true, Repeats: 1, QueryLimit: 0) { LatencyQueries = 0 };
        var output = new StringWriter();
        var rows = BenchRunner.Measure(options, output, Steps.Plain(TextWriter.Null));
        Assert.Equal(2, rows.Count);
        foreach (var line in output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            Assert.Equal(spec, json.RootElement.GetProperty("spec").GetString());
        }
        Assert.True(rows.Max(r => r.Recall) >= floor, string.Join("; ", rows.Select(r => $"{r.ParamsText} {r.Recall:F3}")));
    }
}
