using System.Globalization;
using Engine.Mining.Evaluation;
using Engine.Tests.Support;

namespace Engine.Tests.Beyond;

public class CutoffCommandTests
{
    // Per query 40 candidates, 4 relevant scoring ~ offset + 1, the rest ~ offset; the offset varies by query.
    private static (List<LabelledQuery> Queries, string Run, string Qrels) Write(TempDir tmp, string name, int count, int seed)
    {
        var rng = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var queries = new List<LabelledQuery>();
        var run = new List<string>();
        var qrels = new List<string>();
        for (int q = 0; q < count; q++)
        {
            double offset = (rng.NextDouble() * 2 - 1) * 1.5;
            var scores = new float[40];
            var relevant = new bool[40];
            for (int i = 0; i < 40; i++)
            {
                relevant[i] = i < 4;
                scores[i] = (float)(offset + (relevant[i] ? 1 : 0) + 0.25 * Normal());
                run.Add(string.Create(CultureInfo.InvariantCulture, $"{name}{q:D3} Q0 d{i} {i + 1} {scores[i]:R} t"));
                if (relevant[i] || i % 3 == 0) qrels.Add($"{name}{q:D3} 0 d{i} {(relevant[i] ? 2 : 0)}");
            }
            // The loader orders each query by score: label the reference the same way.
            var order = Enumerable.Range(0, 40).OrderByDescending(i => scores[i]).ThenBy(i => i).ToArray();
            queries.Add(new LabelledQuery(order.Select(i => scores[i]).ToArray(), order.Select(i => relevant[i]).ToArray()));
        }
        string runPath = tmp.File(name + ".run"), qrelsPath = tmp.File(name + ".qrels");
        File.WriteAllLines(runPath, run);
        File.WriteAllLines(qrelsPath, qrels);
        return (queries, runPath, qrelsPath);
    }

    [Fact]
    public void Cli_fits_evaluates_and_applies_like_the_library()
    {
        using var tmp = new TempDir();
        var (train, trainRun, trainQrels) = Write(tmp, "a", 120, 1);
        var (test, testRun, testQrels) = Write(tmp, "b", 80, 2);
        string qrels = tmp.File("all.qrels");
        File.WriteAllLines(qrels, File.ReadAllLines(trainQrels).Concat(File.ReadAllLines(testQrels)));
        var sw = new StringWriter();
        var request = new Engine.Cli.CutoffRequest(trainRun, qrels, TestRun: testRun, Apply: testRun, Out: tmp.File("kept.run"), Report: tmp.File("r.json"));
        Assert.Equal(0, Engine.Cli.CutoffCommand.Run(request, sw));

        var cutoff = CalibratedCutoff.Fit(train);
        var (calibrated, plain) = cutoff.Evaluate(test);
        using var doc = System.Text.Json.JsonDocument.Parse(sw.ToString());
        var root = doc.RootElement;
        Assert.Equal(120, root.GetProperty("train_queries").GetInt32());
        Assert.Equal(480, root.GetProperty("train_relevant").GetInt64());
        Assert.Equal(cutoff.Threshold, root.GetProperty("threshold").GetDouble(), 12);
        Assert.Equal(calibrated.F1, root.GetProperty("calibrated").GetProperty("f1").GetDouble(), 12);
        Assert.Equal(plain.F1, root.GetProperty("plain").GetProperty("f1").GetDouble(), 12);
        Assert.True(calibrated.F1 > plain.F1 + 0.1, $"calibrated {calibrated} vs plain {plain}");

        // The applied run keeps exactly the candidates the library keeps, in score order with renumbered ranks.
        long expectKept = test.Sum(t => cutoff.Apply(t.Scores).Count(k => k));
        var kept = File.ReadAllLines(tmp.File("kept.run"));
        Assert.Equal(expectKept, kept.Length);
        Assert.Equal(expectKept, root.GetProperty("kept").GetInt64());
        Assert.Equal("1", kept[0].Split(' ')[3]);
        Assert.True(File.Exists(tmp.File("r.json")));
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        using var tmp = new TempDir();
        var (_, run, qrels) = Write(tmp, "a", 10, 3);
        Assert.Throws<ArgumentException>(() => Engine.Cli.CutoffCommand.Run(new Engine.Cli.CutoffRequest(run, qrels, Apply: run), TextWriter.Null));
        string other = tmp.File("other.qrels");
        File.WriteAllLines(other, ["zzz 0 d1 1"]);
        var e = Assert.Throws<ArgumentException>(() => Engine.Cli.CutoffCommand.Run(new Engine.Cli.CutoffRequest(run, other), TextWriter.Null));
        Assert.Contains("No query", e.Message);
        string json = tmp.File("noscores.jsonl");
        File.WriteAllLines(json, ["{\"query\": \"a000\", \"ids\": [\"d0\", \"d1\"]}"]);
        var f = Assert.Throws<FormatException>(() => Engine.Cli.CutoffCommand.Run(new Engine.Cli.CutoffRequest(json, qrels), TextWriter.Null));
        Assert.Contains("scores", f.Message);
        string scored = tmp.File("scored.jsonl");
        File.WriteAllLines(scored, ["{\"query\": \"a000\", \"ids\": [\"d0\", \"d1\"], \"scores\": [1.5]}"]);
        Assert.Throws<FormatException>(() => Engine.Cli.CutoffCommand.Run(new Engine.Cli.CutoffRequest(scored, qrels), TextWriter.Null));
        Assert.Throws<ArgumentOutOfRangeException>(() => Engine.Cli.CutoffCommand.Run(new Engine.Cli.CutoffRequest(run, qrels, TopK: 0), TextWriter.Null));
    }
}
