using Engine.Data;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Mining;
using Engine.Tests.Support;

namespace Engine.Tests.Beyond;

public class EvalMiningAuditTests
{
    private const int N = 6000, D = 16;

    private static (float[] X, long[] Ids, MiningInput Input) Data()
    {
        var x = SyntheticData.Clustered(N, D, clusters: 60, seed: 12);
        var ids = TestData.Sequential(N);
        var q = SyntheticData.ClusteredQueries(200, D, clusters: 60, seed: 12);
        using var flat = new FlatIndex(D);
        flat.Add(x, ids);
        var dist = new float[200];
        var lab = new long[200];
        flat.Search(q, 1, dist, lab);
        return (x, ids, MiningInput.FromVectors(q, D, lab.Select(l => new[] { l }).ToArray()));
    }

    [Fact]
    public void Exact_against_exact_flips_nothing()
    {
        var (x, ids, input) = Data();
        using var a = new FlatIndex(D);
        using var b = new FlatIndex(D);
        a.Add(x, ids);
        b.Add(x, ids);
        var report = MiningAudit.Run(a, b, input, new MiningOptions { NumNegatives = 5, RangeMin = 2, RangeMax = 30, AbsoluteMargin = 0.1f });
        Assert.Equal(0, report.SetFlips);
        Assert.Equal(0, report.ThresholdFlips);
        Assert.Equal(0, report.RowsChanged);
        Assert.True(report.ApproximateNegatives > 0);
        Assert.True(report.Band < 1e-3);
    }

    [Fact]
    public void A_coarse_approximate_index_flips_decisions_and_more_probes_flip_fewer()
    {
        var (x, ids, input) = Data();
        using var exact = new FlatIndex(D);
        exact.Add(x, ids);
        using var ivf = IndexFactory.Create("IVF64,PQ4x4fs", D, Metric.L2);
        ivf.Train(x);
        ivf.Add(x, ids);
        MiningAuditReport At(int probes) => MiningAudit.Run(ivf, exact, input, new MiningOptions
        {
            NumNegatives = 5, RangeMin = 2, RangeMax = 30, AbsoluteMargin = 0.05f,
            SearchParameters = IndexFactory.CreateParameters(ivf, new Dictionary<string, string> { ["probes"] = probes.ToString() }, 1),
        });
        var coarse = At(1);
        var fine = At(64);
        Assert.True(coarse.SetFlips > 0 && coarse.FlipRate > 0, coarse.ToJson());
        Assert.True(coarse.MeanScoreError > 0 && coarse.Band >= coarse.MeanScoreError);
        Assert.True(coarse.InBand >= coarse.ThresholdFlips);
        Assert.True(fine.FlipRate <= coarse.FlipRate, $"{fine.FlipRate} vs {coarse.FlipRate}");
        using var doc = System.Text.Json.JsonDocument.Parse(coarse.ToJson());
        Assert.Equal(coarse.SetFlips, doc.RootElement.GetProperty("set_flips").GetInt64());
    }

    [Fact]
    public void Mismatched_indexes_are_rejected()
    {
        var (x, ids, input) = Data();
        using var a = new FlatIndex(D);
        a.Add(x, ids);
        using var b = new FlatIndex(D, Metric.InnerProduct);
        b.Add(x, ids);
        Assert.Throws<ArgumentException>(() => MiningAudit.Run(a, b, input, new MiningOptions()));
    }
}

public class EvalMiningAuditCliTests
{
    [Fact]
    public void Mine_audit_writes_the_audit_report()
    {
        using var tmp = new TempDir();
        const int n = 3000, d = 8;
        var x = SyntheticData.Clustered(n, d, clusters: 30, seed: 3);
        VectorFiles.Write(tmp.File("corpus.fvecs"), x, d);
        // Each corpus item's positive: its exact nearest other item.
        using var flat = new FlatIndex(d);
        flat.Add(x, TestData.Sequential(n));
        var dist = new float[n * 2];
        var lab = new long[n * 2];
        flat.Search(x, 2, dist, lab);
        var positives = Enumerable.Range(0, n).Select(i => (int)(lab[i * 2] == i ? lab[i * 2 + 1] : lab[i * 2])).ToArray();
        VectorFiles.Write(tmp.File("pos.ivecs"), positives, 1);
        int rc = Engine.Cli.Program.Main(["mine", "--corpus", tmp.File("corpus.fvecs"), "--anchors", "corpus", "--positives", tmp.File("pos.ivecs"),
            "--index", "IVF32,Flat", "--probes", "1", "--negatives", "3", "--range", "0:20", "--out", tmp.File("mined.jsonl"), "--audit"]);
        Assert.Equal(0, rc);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(tmp.File("mined.jsonl.audit.json")));
        Assert.Equal(n, doc.RootElement.GetProperty("anchors").GetInt32());
        Assert.True(doc.RootElement.GetProperty("flip_rate").GetDouble() > 0, "one probe of 32 lists misses neighbours");
    }
}
