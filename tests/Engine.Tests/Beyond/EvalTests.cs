using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Data;
using Engine.Mining.Evaluation;
using Engine.Tests.Support;

namespace Engine.Tests.Beyond;

public class EvalTests
{
    private static string Reference => Path.Combine(RepoRoot(), "tests", "Engine.Tests", "Beyond", "eval_reference.py");

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
        throw new InvalidOperationException("Engine.sln not found above the test binaries.");
    }

    // Random run and qrels: 40 queries, graded relevance 0..3, some judged queries absent from the run, some queries
    // with no relevant document, score ties in the TREC run.
    private static (string Run, string Qrels) WriteRandomRunAndQrels(TempDir tmp, int seed, bool json)
    {
        var rng = new Random(seed);
        var run = new List<string>();
        var qrels = new List<string>();
        for (int q = 0; q < 40; q++)
        {
            string qid = "q" + q;
            var docs = Enumerable.Range(0, 60).Select(i => "d" + rng.Next(200)).Distinct().ToList();
            if (q % 7 != 3)
            {
                if (json) run.Add(JsonSerializer.Serialize(new { query = qid, ids = docs }));
                else
                    for (int i = 0; i < docs.Count; i++)
                        run.Add(string.Create(CultureInfo.InvariantCulture, $"{qid} Q0 {docs[i]} {i + 1} {Math.Round(10 - i * 0.1 + (i % 5 == 0 ? 0.1 : 0), 1)} tag"));
            }
            int judged = q % 11 == 5 ? 3 : 15;
            foreach (var doc in Enumerable.Range(0, judged).Select(_ => "d" + rng.Next(200)).Distinct())
            {
                int grade = q % 11 == 5 ? 0 : rng.Next(4);
                qrels.Add(json ? JsonSerializer.Serialize(new { query = qid, doc, relevance = grade }) : $"{qid} 0 {doc} {grade}");
            }
        }
        string runPath = tmp.File(json ? "run.jsonl" : "run.trec"), qrelsPath = tmp.File(json ? "qrels.jsonl" : "qrels.txt");
        File.WriteAllLines(runPath, run);
        File.WriteAllLines(qrelsPath, qrels);
        return (runPath, qrelsPath);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public void Metrics_equal_the_python_reference(int seed, bool json)
    {
        using var tmp = new TempDir();
        var (run, qrels) = WriteRandomRunAndQrels(tmp, seed, json);
        const int n = 300, d = 12;
        var x = TestData.Gaussian(n, d, seed: seed);
        for (int i = 0; i < n * d; i++) x[i] *= 1 + (i % d); // anisotropic: a non-trivial effective rank
        VectorFiles.Write(tmp.File("x.npy"), x, d);
        var rng = new Random(seed);
        File.WriteAllLines(tmp.File("pairs.txt"), Enumerable.Range(0, 50).Select(_ => $"{rng.Next(n)} {rng.Next(n)}"));

        var sw = new StringWriter();
        var request = new Engine.Cli.EvalRequest(run, qrels, [1, 5, 10, 100], tmp.File("pairs.txt"), Sample: n, HubK: 5);
        Assert.Equal(0, Engine.Cli.EvalCommand.Run(request, Engine.Cli.VectorInput.Load(null, tmp.File("x.npy"), "l2"), sw));
        using var ours = JsonDocument.Parse(sw.ToString());

        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Reference, run, qrels, "1,5,10,100", tmp.File("x.npy"), tmp.File("pairs.txt") }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "reference failed: " + stderr);
        using var reference = JsonDocument.Parse(stdout);

        int compared = 0;
        foreach (var section in new[] { "retrieval", "embedding" })
            foreach (var prop in reference.RootElement.GetProperty(section).EnumerateObject())
            {
                double want = prop.Value.GetDouble(), got = ours.RootElement.GetProperty(section).GetProperty(prop.Name).GetDouble();
                Assert.True(Math.Abs(want - got) <= 1e-6 * Math.Max(1, Math.Abs(want)), $"{section}.{prop.Name}: ours {got}, reference {want}");
                compared++;
            }
        Assert.Equal(21 + 3, compared);
        var hub = ours.RootElement.GetProperty("embedding").GetProperty("hubness");
        Assert.InRange(hub.GetProperty("hub_occupancy").GetDouble(), 0, 1);
    }

    [Fact]
    public void Hand_computed_example()
    {
        var qrels = new Qrels(new Dictionary<string, IReadOnlyDictionary<string, int>>
        {
            ["a"] = new Dictionary<string, int> { ["1"] = 2, ["3"] = 1, ["9"] = 1 },
        });
        var run = new RetrievalRun(new Dictionary<string, IReadOnlyList<string>> { ["a"] = ["5", "1", "3", "7"] });
        var (m, queries) = RetrievalMetrics.Evaluate(run, qrels, [3]);
        Assert.Equal(1, queries);
        var r = m[0];
        Assert.Equal(0.5, r.Mrr, 12);
        Assert.Equal(2.0 / 3, r.Recall, 12);
        Assert.Equal(2.0 / 3, r.Precision, 12);
        Assert.Equal((1.0 / 2 + 2.0 / 3) / 3, r.Map, 12);
        double dcg = 2 / Math.Log2(3) + 1 / Math.Log2(4), idcg = 2 + 1 / Math.Log2(3) + 1 / Math.Log2(4);
        Assert.Equal(dcg / idcg, r.Ndcg, 12);
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("empty.txt"), "\n# nothing\n");
        File.WriteAllText(tmp.File("bad.txt"), "q1 0 d1\n");
        File.WriteAllText(tmp.File("zero.txt"), "q1 0 d1 0\n");
        File.WriteAllText(tmp.File("run.txt"), "q1 Q0 d1 1 0.5 t\n");
        File.WriteAllText(tmp.File("badrun.txt"), "q1 Q0 d1 1 high t\n");
        Assert.Contains("no judgements", Assert.Throws<ArgumentException>(() => Qrels.Load(tmp.File("empty.txt"))).Message);
        Assert.Contains("bad.txt:1", Assert.Throws<FormatException>(() => Qrels.Load(tmp.File("bad.txt"))).Message);
        Assert.Throws<FormatException>(() => RetrievalRun.Load(tmp.File("badrun.txt")));
        var run = RetrievalRun.Load(tmp.File("run.txt"));
        Assert.Contains("no query with a relevant", Assert.Throws<ArgumentException>(() => RetrievalMetrics.Evaluate(run, Qrels.Load(tmp.File("zero.txt")), [10])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => RetrievalMetrics.Evaluate(run, Qrels.Load(tmp.File("zero.txt")), [0]));
        Assert.Throws<ArgumentException>(() => Engine.Cli.EvalCommand.Run(new Engine.Cli.EvalRequest(tmp.File("run.txt"), null, [10]), null, TextWriter.Null));
        Assert.Throws<ArgumentException>(() => EmbeddingDiagnostics.Compute(new float[4], 4, null));
        Assert.Throws<ArgumentException>(() => EmbeddingDiagnostics.Compute(new float[8], 4, null)); // zero vectors
    }

    [Fact]
    public void Effective_rank_of_an_isotropic_and_a_rank_one_set()
    {
        const int d = 8;
        var iso = new float[d * d];
        for (int i = 0; i < d; i++) iso[i * d + i] = 1; // identity rows: all singular values equal
        Assert.Equal(d, EmbeddingDiagnostics.Compute(iso, d, null).EffectiveRank, 1e-4);
        var line = Enumerable.Range(0, 20 * d).Select(i => (float)((i / d + 1) * (i % d + 1))).ToArray();
        Assert.Equal(1.0, EmbeddingDiagnostics.Compute(line, d, null).EffectiveRank, 1e-3);
    }
}
