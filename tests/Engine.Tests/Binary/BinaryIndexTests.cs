using Engine.Data;
using Engine.Index;
using Engine.Index.Binary;
using Engine.Tests.Support;

namespace Engine.Tests.Binary;

public class BinaryIndexTests
{
    private const int D = 48;

    private static (float[] Base, float[] Queries, int[] Truth) Data(int n, int nq, Metric metric, int seed)
    {
        var all = SyntheticData.Clustered(n + nq, D, 20, seed);
        var b = all[..(n * D)];
        var q = all[(n * D)..];
        return (b, q, GroundTruth.Compute(b, q, D, metric, 10, 1));
    }

    private static double Recall(IVectorIndex index, float[] q, int[] truth, SearchParameters? p = null)
    {
        int nq = q.Length / D;
        var dist = new float[nq * 10];
        var lab = new long[nq * 10];
        index.Search(q, 10, dist, lab, p);
        return GroundTruth.RecallAtK(lab, 10, truth, 10, 10);
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void Binary_recall_grows_with_bits_and_refine_reaches_the_floor(Metric metric)
    {
        var (b, q, truth) = Data(3000, 50, metric, 4);
        double previous = -1;
        foreach (int bits in new[] { 1, 2, 4 })
        {
            using var index = IndexFactory.Create($"BIN{bits}", D, metric);
            IndexBuild.Build(index, b);
            double r = Recall(index, q, truth, new SearchParameters { Threads = 1 });
            Assert.True(r > previous, $"BIN{bits} recall {r:F3} is not above {previous:F3} ({metric})");
            previous = r;
        }
        using var refined = IndexFactory.Create("BIN2,RFlat", D, metric);
        IndexBuild.Build(refined, b);
        var stats = new SearchStats();
        double recall = Recall(refined, q, truth, new BinarySearchParameters { RefineFactor = 20, Threads = 2, Stats = stats });
        Assert.True(recall >= 0.95, $"BIN2,RFlat refine 20 recall {recall:F3} < 0.95 ({metric})");
        Assert.Equal(50L * 3000, stats.CodesScanned);
        Assert.Equal(50L * 200, stats.Refined);
        double symmetric = Recall(refined, q, truth, new BinarySearchParameters { RefineFactor = 10, Symmetric = true, Threads = 1 });
        Assert.True(symmetric >= 0.85, $"symmetric recall {symmetric:F3} < 0.85 ({metric})");
        Assert.True(Recall(refined, q, truth, new BinarySearchParameters { RefineFactor = 1, Threads = 1 }) < recall);
    }

    [Fact]
    public void Binary_specs_round_trip_and_bad_specs_name_the_part()
    {
        foreach (var s in new[] { "BIN1", "BIN4", "BIN2,RFlat", "BIN3,Refine(F16)", "BIN1,Refine(SQ8)", "BIN2,Refine(Flat)" })
        {
            Assert.Equal(s, BinarySpec.Parse(s).ToString());
            using var index = IndexFactory.Create(s, 16, Metric.L2);
            Assert.Equal(s, index.Description);
        }
        Assert.Contains("1..4", Assert.Throws<ArgumentException>(() => IndexFactory.Create("BIN5", 8, Metric.L2)).Message);
        Assert.Contains("1..4", Assert.Throws<ArgumentException>(() => IndexFactory.Create("BIN0", 8, Metric.L2)).Message);
        Assert.Contains("Refine", Assert.Throws<ArgumentException>(() => IndexFactory.Create("BIN2,PQ8", 8, Metric.L2)).Message);
        Assert.Contains("trailing", Assert.Throws<ArgumentException>(() => IndexFactory.Create("BIN2,RFlat,RFlat", 8, Metric.L2)).Message);
        Assert.False(BinarySpec.TryParse("HNSW32", out _));
    }

    [Theory]
    [InlineData("BIN2,RFlat")]
    [InlineData("BIN3,Refine(SQ8)")]
    [InlineData("BIN1")]
    public void Binary_save_load_round_trip_gives_identical_results(string spec)
    {
        using var dir = new TempDir();
        var (b, q, _) = Data(600, 10, Metric.L2, 8);
        using var index = IndexFactory.Create(spec, D, Metric.L2);
        IndexBuild.Build(index, b);
        Assert.Equal(3, index.Remove([5, 17, 999_999, 300]));
        var d1 = new float[100];
        var l1 = new long[100];
        index.Search(q, 10, d1, l1);
        index.Save(dir.File("bin.idx"));
        using var loaded = IndexFactory.Load(dir.File("bin.idx"));
        Assert.IsType<BinaryIndex>(loaded);
        Assert.Equal((spec, 597L), (loaded.Description, loaded.Count));
        var d2 = new float[100];
        var l2 = new long[100];
        loaded.Search(q, 10, d2, l2);
        Assert.Equal(l1, l2);
        Assert.Equal(d1, d2);
        var x1 = new float[D];
        var x2 = new float[D];
        Assert.True(index.TryReconstruct(42, x1));
        Assert.True(loaded.TryReconstruct(42, x2));
        Assert.Equal(x1, x2);
        Assert.False(loaded.TryReconstruct(5, x2));

        var bytes = File.ReadAllBytes(dir.File("bin.idx"));
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(dir.File("bad.idx"), bytes);
        Assert.Throws<CorruptIndexException>(() => IndexFactory.Load(dir.File("bad.idx")));
    }

    [Fact]
    public void Binary_bad_inputs_and_parameters_get_clear_errors()
    {
        using var index = IndexFactory.Create("BIN2", 8, Metric.L2);
        Assert.Contains("not trained", Assert.Throws<InvalidOperationException>(() => index.Add(new float[8], [1])).Message);
        index.Train(SyntheticData.Clustered(50, 8, 3, 1));
        index.Add(SyntheticData.Clustered(10, 8, 3, 2), Enumerable.Range(0, 10).Select(i => (long)i).ToArray());
        Assert.Throws<ArgumentException>(() => index.Add(new float[8], [3]));
        Assert.Throws<ArgumentException>(() => index.Add(new float[8], [-3]));
        Assert.Throws<ArgumentException>(() => index.Add(new float[7], [30]));
        Assert.Throws<ArgumentException>(() => index.Add([float.NaN, 0, 0, 0, 0, 0, 0, 0], [30]));
        var d = new float[5];
        var l = new long[5];
        Assert.Contains("no refine stage", Assert.Throws<ArgumentException>(() => index.Search(new float[8], 5, d, l, new BinarySearchParameters { RefineFactor = 2 })).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[8], 5, d, l, new BinarySearchParameters { RefineFactor = 0 }));
        Assert.Throws<ArgumentException>(() => index.Search(new float[8], 5, d, l, new Engine.Index.Ivf.IvfSearchParameters()));
        Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["refine"] = "2" }, 1));
        var p = IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["symmetric"] = "1" }, 1);
        Assert.True(((BinarySearchParameters)p).Symmetric);
        index.Search(new float[8], 5, d, l, p);
        Assert.All(l, id => Assert.InRange(id, 0, 9));
        Assert.Equal(10, index.Count); // rejected calls changed nothing
        // More results than vectors: padded.
        var dd = new float[12];
        var ll = new long[12];
        index.Search(new float[8], 12, dd, ll);
        Assert.Equal(-1, ll[11]);
        Assert.Equal(float.PositiveInfinity, dd[11]);
    }
}
