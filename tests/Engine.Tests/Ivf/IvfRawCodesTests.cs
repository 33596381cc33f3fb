using Engine;
using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

/// <summary>PQ codes of the vectors themselves ("nr" specs) next to residual codes: same contract, other tables.</summary>
public class IvfRawCodesTests
{
    private const int N = 3000, D = 32, NQ = 40, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 30, seed: 31);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 30, seed: 32);
    private static readonly long[] Ids = IvfTestData.Ids(N);

    // Without a refine store the keys a search returns are the ADC distances to the codes, so each must equal the
    // distance to the index's reconstruction of that id, computed in double (raw: the decoded vector; residual:
    // centroid + decoded residual). Fast-scan re-scores its survivors with the float table, so it holds there too.
    [Theory]
    [InlineData("IVF16,PQ8nr", Metric.L2)]
    [InlineData("IVF16,PQ8x4nr", Metric.L2)]
    [InlineData("IVF16,PQ16x4fsnr", Metric.L2)]
    [InlineData("IVF16,PQ16x4fsnr", Metric.InnerProduct)]
    [InlineData("IVF16,PQ8nr", Metric.InnerProduct)]
    [InlineData("IVF16,PQ16x4fs", Metric.L2)]
    [InlineData("IVF16,PQ16x4fs", Metric.InnerProduct)]
    [InlineData("IVF16,PQ8", Metric.L2)]
    public void ReturnedDistancesAreTheDistancesToTheReconstruction(string spec, Metric metric)
    {
        using var index = new IvfIndex(spec, D, metric);
        index.Train(Data);
        index.Add(Data, Ids);
        var dist = new float[NQ * K];
        var lab = new long[NQ * K];
        index.Search(Queries, K, dist, lab, new IvfSearchParameters { Probes = 6, Threads = 1 });
        var rec = new float[D];
        for (int i = 0; i < NQ * K; i++)
        {
            Assert.True(lab[i] >= 0, $"{spec}: query {i / K} found fewer than {K} neighbours");
            Assert.True(index.TryReconstruct(lab[i], rec));
            double want = 0;
            for (int j = 0; j < D; j++)
            {
                double q = Queries[(i / K) * D + j], x = rec[j];
                want += metric == Metric.L2 ? (q - x) * (q - x) : q * x;
            }
            Assert.True(Math.Abs(dist[i] - want) <= 1e-3 * Math.Max(1, Math.Abs(want)), $"{spec} {metric}: row {i}: key {dist[i]} vs {want}");
        }
    }

    [Fact]
    public void RawCodesDoNotDependOnTheList()
    {
        // Two indexes with different coarse quantizers but the same PQ training rows and seed: raw codes decode to
        // the same vector whichever list holds it.
        using var a = new IvfIndex("IVF16,PQ8nr", D) { TrainingSeed = 5 };
        using var b = new IvfIndex("IVF4,PQ8nr", D) { TrainingSeed = 5 };
        a.Train(Data);
        b.Train(Data);
        a.Add(Data.AsSpan(0, 50 * D), Ids.AsSpan(0, 50));
        b.Add(Data.AsSpan(0, 50 * D), Ids.AsSpan(0, 50));
        var ra = new float[D];
        var rb = new float[D];
        for (long id = 0; id < 50; id++)
        {
            Assert.True(a.TryReconstruct(id, ra));
            Assert.True(b.TryReconstruct(id, rb));
            Assert.Equal(ra, rb); // same codebooks (same seed, same raw training sample), same code
        }
    }

    [Fact]
    public void FaissResidualSpellingIsAnAliasOfTheDefault()
    {
        var alias = IvfSpec.Parse("IVF8,PQ8x4fsr,RFlat");
        Assert.True(alias.ByResidual);
        Assert.Equal(IvfSpec.Parse("IVF8,PQ8x4fs,RFlat"), alias);
        Assert.Equal("IVF8,PQ8x4fs,RFlat", alias.ToString());
        var raw = IvfSpec.Parse("IVF8,PQ8x4fsnr,RFlat");
        Assert.False(raw.ByResidual);
        Assert.NotEqual(alias, raw);
        Assert.Equal("IVF8,PQ8x4fsnr,RFlat", raw.ToString());
    }

    [Fact]
    public void ALoadedRawIndexIsNotMistakenForAResidualOne()
    {
        using var dir = new IvfTestData.TempDir();
        string path = Path.Combine(dir.Path, "raw.ivf");
        using (var index = new IvfIndex("IVF16,PQ8x4fsnr", D))
        {
            index.Train(Data);
            index.Add(Data, Ids);
            index.Save(path);
        }
        using var loaded = IvfIndex.Load(path);
        Assert.False(loaded.Spec.ByResidual);
        Assert.Throws<IndexFormatException>(() => IvfIndex.Load(path, expectedSpec: "IVF16,PQ8x4fs"));
    }
}
