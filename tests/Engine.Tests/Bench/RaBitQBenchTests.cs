using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

/// <summary><c>engine bench</c> sweeps RaBitQ specs like PQ specs and reports the re-scored candidates per query.</summary>
public class RaBitQBenchTests
{
    [Theory]
    [InlineData("IVF16,RaBitQ,RFlat")]
    [InlineData("IVF16,RaBitQfs4,Refine(SQ8)")]
    public void ProbesAndRefineSweepsPrintRescoredPerQuery(string spec)
    {
        using var dir = new TempDir();
        string data = Path.Combine(dir.Path, "data");
        SyntheticData.ClusteredDataSet("tiny", 3000, 40, 16, 12, seed: 11, Metric.L2, groundTruthK: 20).Save(data);
        var sweeps = new List<KeyValuePair<string, string[]>> { new("probes", ["2", "8"]), new("refine", ["1", "16"]) };
        var options = new BenchOptions(data, spec, 10, 2, sweeps, Json: true, Repeats: 1, QueryLimit: 0) { LatencyQueries = 0 };
        var output = new StringWriter();
        var rows = BenchRunner.Measure(options, output, Steps.Plain(TextWriter.Null));
        Assert.Equal(4, rows.Count);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            Assert.Equal(spec, root.GetProperty("spec").GetString());
            double rescored = root.GetProperty("rescored_per_query").GetDouble();
            int refine = int.Parse(root.GetProperty("params").GetProperty("refine").ToString(), System.Globalization.CultureInfo.InvariantCulture);
            // Never more than the k × refine candidates kept; the error bound stops earlier when refine is large.
            Assert.InRange(rescored, 1, 10.0 * refine);
            if (refine == 16) Assert.True(rescored < 160, $"{spec}: re-scored {rescored} of 160");
        }
        Assert.True(rows.Max(r => r.Recall) > 0.9, string.Join("; ", rows.Select(r => $"{r.ParamsText} {r.Recall:F3}")));
    }
}
