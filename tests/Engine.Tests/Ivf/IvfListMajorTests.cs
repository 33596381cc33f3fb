using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

/// <summary>
/// A batch of queries is scanned list by list (each probed list read once for all the queries of a chunk that probe
/// it; two queries on the same list are fast-scanned in one pass over its codes); one query alone goes through the
/// query-major loop. Both must give the same ids and distances.
/// </summary>
public class IvfListMajorTests
{
    private const int N = 4000, D = 32, NQ = 150, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 40, seed: 41);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 40, seed: 42);
    private static readonly long[] Ids = IvfTestData.Ids(N, offset: 7);

    // The chunk's (list, query) pairs are put in list order by a counting sort when they outnumber the 2 × nlist
    // buckets by half (IVF32 at 6 probes) and by a comparison sort otherwise (IVF256 at 2 probes): both are covered.
    [Theory]
    [InlineData("IVF32,PQ16x4fs", Metric.L2, 1, 6)]        // no refine store: query-major in both calls
    [InlineData("IVF32,PQ16x4fsnr,RFlat", Metric.L2, 1, 6)]
    [InlineData("IVF32,PQ16x4fs,RFlat", Metric.L2, 4, 6)]
    [InlineData("IVF32,PQ16x4fsnr,Refine(SQ8)", Metric.L2, 4, 6)]
    [InlineData("IVF32,PQ16x4fs,RFlat", Metric.InnerProduct, 4, 6)]
    [InlineData("IVF32,PQ16x4fsnr,RFlat", Metric.Cosine, 4, 6)]
    [InlineData("IVF256,PQ16x4fs,RFlat", Metric.L2, 4, 2)]
    [InlineData("IVF256,PQ16x4fs,RFlat", Metric.L2, 4, 9)]
    public void BatchSearchEqualsOneQueryAtATime(string spec, Metric metric, int refine, int probes)
    {
        using var index = new IvfIndex(spec, D, metric);
        index.Train(Data);
        index.Add(Data, Ids);
        foreach (var filter in new IIdFilter?[] { null, new IdAllowListFilter(Ids.Where(i => i % 3 != 0)) })
            foreach (int threads in new[] { 1, 2 })
            {
                var p = new IvfSearchParameters { Probes = probes, RefineFactor = refine, Threads = threads, Filter = filter, ExactFallbackSelectivity = 0 };
                var bd = new float[NQ * K];
                var bl = new long[NQ * K];
                index.Search(Queries, K, bd, bl, p);
                var od = new float[K];
                var ol = new long[K];
                for (int i = 0; i < NQ; i++)
                {
                    index.Search(Queries.AsSpan(i * D, D), K, od, ol, p);
                    Assert.Equal(ol, bl.AsSpan(i * K, K).ToArray());
                    Assert.Equal(od, bd.AsSpan(i * K, K).ToArray());
                }
            }
    }

    [Fact]
    public void StatsCountTheSameWorkInBothOrders()
    {
        using var index = new IvfIndex("IVF32,PQ16x4fsnr,RFlat", D);
        index.Train(Data);
        index.Add(Data, Ids);
        var batch = new SearchStats();
        var single = new SearchStats();
        var d = new float[NQ * K];
        var l = new long[NQ * K];
        index.Search(Queries, K, d, l, new IvfSearchParameters { Probes = 5, RefineFactor = 3, Threads = 1, Stats = batch });
        for (int i = 0; i < NQ; i++)
            index.Search(Queries.AsSpan(i * D, D), K, d.AsSpan(0, K), l.AsSpan(0, K), new IvfSearchParameters { Probes = 5, RefineFactor = 3, Threads = 1, Stats = single });
        Assert.Equal(single.CodesScanned, batch.CodesScanned);
        Assert.Equal(single.Refined, batch.Refined);
        Assert.Equal(single.ListsProbed, batch.ListsProbed);
    }
}
