using Engine.Cli;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

/// <summary>
/// <c>engine mine --stream-above N</c>: a corpus of more than N floats is read into the index block by block (the path a
/// corpus beyond one .NET array takes), with the same rows as the in-memory path for an exact index.
/// </summary>
public class MineStreamingTests
{
    // A clustered data set in tmp and the start of an `engine mine` command line over it (corpus, anchors, positives).
    private static string[] MineOver(TempDir tmp, int n, int nq, int d, int clusters, int seed, int groundTruthK, int positivesTake)
    {
        string data = tmp.File("set");
        Engine.Data.SyntheticData.ClusteredDataSet("set", n, nq, d, clusters, seed, Metric.L2, groundTruthK: groundTruthK).Save(data);
        return ["mine", "--corpus", Path.Combine(data, "base.fvecs"), "--anchors", Path.Combine(data, "query.fvecs"),
            "--positives", Path.Combine(data, "gt.ivecs"), "--positives-take", positivesTake.ToString(System.Globalization.CultureInfo.InvariantCulture)];
    }

    [Fact]
    public void Streamed_corpus_mines_the_same_rows_as_the_in_memory_one()
    {
        using var tmp = new TempDir();
        string[] common = [.. MineOver(tmp, 3000, 40, 16, 12, 31, 20, 1), "--negatives", "4", "--range", "1:30", "--threads", "2"];
        foreach (string spec in (string[])["Flat", "IVF16,Flat"])
        {
            string whole = tmp.File($"whole-{spec}.jsonl"), streamed = tmp.File($"streamed-{spec}.jsonl");
            Assert.Equal(0, Program.Main([.. common, "--index", spec, "--probes", spec == "Flat" ? "0" : "16", "--out", whole]));
            // 3 000 × 16 floats, streamed above 1 000: blocks of 62 rows, IVF trained on every 48th row
            Assert.Equal(0, Program.Main([.. common, "--index", spec, "--probes", spec == "Flat" ? "0" : "16", "--stream-above", "1000", "--out", streamed]));
            var a = Engine.Mining.Output.JsonlMiningWriter.Read(whole).ToList();
            var b = Engine.Mining.Output.JsonlMiningWriter.Read(streamed).ToList();
            Assert.Equal(40, a.Count);
            // every list probed (16 of 16): the streamed IVF, trained on a sample, still scores every row exactly
            Assert.Equal(a.Select(r => r.Negatives), b.Select(r => r.Negatives));
        }
    }

    [Fact]
    public void Streamed_anchors_mine_the_same_rows_and_report_as_one_call()
    {
        using var tmp = new TempDir();
        string[] common = [.. MineOver(tmp, 2000, 50, 16, 10, 33, 20, 2), "--negatives", "3", "--range", "0:40",
            "--sampling", "uniform", "--max-handouts", "4", "--threads", "2", "--batch-size", "4"];
        string whole = tmp.File("whole.jsonl"), streamed = tmp.File("streamed.jsonl");
        Assert.Equal(0, Program.Main([.. common, "--out", whole]));
        // 50 × 16 anchor floats above 200: blocks of 12 anchors = 3 chunks of 4 (and the corpus streamed too); the
        // random sampling and the hand-out cap must not see the blocks.
        Assert.Equal(0, Program.Main([.. common, "--stream-above", "200", "--out", streamed]));
        var a = Engine.Mining.Output.JsonlMiningWriter.Read(whole).ToList();
        var b = Engine.Mining.Output.JsonlMiningWriter.Read(streamed).ToList();
        Assert.Equal(a.Select(r => r.Anchor), b.Select(r => r.Anchor));
        Assert.Equal(a.Select(r => r.Negatives), b.Select(r => r.Negatives));
        // Scores agree to float rounding (a block of 2 anchors takes another kernel path than one of 50).
        Assert.Equal(a.SelectMany(r => r.Scores), b.SelectMany(r => r.Scores), (x, y) => MathF.Abs(x - y) <= 1e-5f * MathF.Max(1, MathF.Abs(x)));
        var ra = System.Text.Json.JsonDocument.Parse(File.ReadAllText(whole + ".report.json")).RootElement;
        var rb = System.Text.Json.JsonDocument.Parse(File.ReadAllText(streamed + ".report.json")).RootElement;
        foreach (var key in (string[])["anchors", "rows_written", "negatives_written", "max_hand_outs"])
            Assert.Equal(ra.GetProperty(key).GetRawText(), rb.GetProperty(key).GetRawText());
        Assert.True(File.Exists(Engine.Mining.Output.MiningManifest.PathFor(streamed)));
    }

    [Fact]
    public void Streaming_refuses_what_needs_the_corpus_in_memory()
    {
        using var tmp = new TempDir();
        string[] common = MineOver(tmp, 500, 10, 8, 4, 32, 5, 1);
        var err = new StringWriter();
        var old = Console.Error;
        Console.SetError(err);
        try
        {
            Assert.Equal(2, Program.Main([.. common, "--stream-above", "100", "--audit", "--out", tmp.File("audit.jsonl")]));
            Assert.Equal(2, Program.Main([.. common, "--stream-above", "0", "--out", tmp.File("zero.jsonl")]));
        }
        finally { Console.SetError(old); }
        Assert.Contains("--audit", err.ToString());
        // Anchors that stream cannot be merged by text (the corpus stays in memory here: only the anchors exceed N).
        string texts = tmp.File("q.txt");
        File.WriteAllLines(texts, Enumerable.Range(0, 10).Select(i => $"q{i % 5}"));
        var err2 = new StringWriter();
        Console.SetError(err2);
        try { Assert.Equal(2, Program.Main([.. common, "--stream-above", "50", "--output-format", "triplet", "--query-texts", texts, "--out", tmp.File("t.jsonl")])); }
        finally { Console.SetError(old); }
        Assert.Contains("--stream-above must be at least 1", err.ToString());
        Assert.False(File.Exists(tmp.File("audit.jsonl")));
    }
}
