using Engine.Data;
using Engine.Index;
using Engine.Index.Ivf;
using Engine.Tests.Support;

namespace Engine.Tests.Ivf;

/// <summary>
/// Large batches on IVF-Flat lists go through the list-major GEMM join: the results must be the query-major scan's
/// (same probed rows, exact scores; only float rounding differs), on every metric, with removed rows gone, and the
/// search stats must count the rows scored.
/// </summary>
public class IvfListJoinTests
{
    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void Large_batches_equal_the_query_major_scan(Metric metric)
    {
        const int n = 6000, d = 24, nq = 2500, k = 12, probes = 6;
        var x = SyntheticData.Clustered(n, d, 40, seed: 5);
        var ids = TestData.Sequential(n, start: 500);
        using var index = (IvfIndex)IndexFactory.Create("IVF64,Flat", d, metric);
        index.Train(x);
        index.Add(x, ids);
        index.Remove(ids.AsSpan(0, 300)); // removed rows must not come back
        var q = SyntheticData.Clustered(nq, d, 40, seed: 6);
        var stats = new SearchStats();
        var p = new IvfSearchParameters { Probes = probes, Threads = 2, Stats = stats };
        var dist = new float[nq * k];
        var lab = new long[nq * k];
        index.Search(q, k, dist, lab, p); // one batch: the join
        Assert.Equal((long)nq * probes, stats.ListsProbed);
        Assert.True(stats.DistancesComputed > 0);
        Assert.Equal(nq, stats.Queries);

        // The query-major scan: batches below the join's threshold.
        var refDist = new float[nq * k];
        var refLab = new long[nq * k];
        for (int q0 = 0; q0 < nq; q0 += 100)
        {
            int qb = Math.Min(100, nq - q0);
            index.Search(q.AsSpan(q0 * d, qb * d), k, refDist.AsSpan(q0 * k, qb * k), refLab.AsSpan(q0 * k, qb * k), new IvfSearchParameters { Probes = probes, Threads = 2 });
        }
        int agree = 0;
        for (int i = 0; i < nq; i++)
        {
            agree += lab.AsSpan(i * k, k).ToArray().Intersect(refLab.AsSpan(i * k, k).ToArray()).Count();
            for (int j = 0; j < k; j++)
            {
                Assert.False(lab[i * k + j] is >= 500 and < 800, $"removed id {lab[i * k + j]}");
                Assert.Equal(refDist[i * k + j], dist[i * k + j], 1e-3f * Math.Max(1f, Math.Abs(refDist[i * k + j])));
            }
        }
        Assert.True(agree >= nq * k * 0.999, $"{agree} of {nq * k}");
    }

    [Fact]
    public void Queries_short_of_k_are_padded_like_the_scan()
    {
        const int d = 8, k = 20;
        var x = SyntheticData.Clustered(300, d, 16, seed: 8);
        using var index = (IvfIndex)IndexFactory.Create("IVF16,Flat", d, Metric.L2);
        index.Train(x);
        index.Add(x, TestData.Sequential(300));
        var q = SyntheticData.Clustered(1500, d, 16, seed: 9);
        var dist = new float[1500 * k];
        var lab = new long[1500 * k];
        index.Search(q, k, dist, lab, new IvfSearchParameters { Probes = 1 });
        var refDist = new float[k];
        var refLab = new long[k];
        for (int i = 0; i < 1500; i += 37)
        {
            index.Search(q.AsSpan(i * d, d), k, refDist, refLab, new IvfSearchParameters { Probes = 1 });
            Assert.Equal(refLab, lab.AsSpan(i * k, k).ToArray());
            for (int j = 0; j < k; j++)
                if (refLab[j] < 0) Assert.Equal(float.PositiveInfinity, dist[i * k + j]);
        }
    }
}
