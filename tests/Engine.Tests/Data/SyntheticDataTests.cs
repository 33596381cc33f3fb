using Engine.Data;

namespace Engine.Tests.Data;

public sealed class SyntheticDataTests
{
    [Fact]
    public void SameSeedSameRowsAtAnyThreadCountAndOffset()
    {
        var a = SyntheticData.Clustered(3000, 10, 7, seed: 123, threads: 1);
        var b = SyntheticData.Clustered(3000, 10, 7, seed: 123, threads: 4);
        Assert.Equal(a, b);
        var dist = new ClusteredDistribution(10, 7, 123);
        var middle = dist.Sample(SampleStream.Base, 500, firstRow: 1000);
        Assert.Equal(a.AsSpan(1000 * 10, 500 * 10).ToArray(), middle);
        Assert.NotEqual(a, SyntheticData.Clustered(3000, 10, 7, seed: 124));
    }

    [Fact]
    public void QueriesComeFromAnIndependentStream()
    {
        var xb = SyntheticData.Clustered(100, 6, 3, seed: 5);
        var xq = SyntheticData.ClusteredQueries(100, 6, 3, seed: 5);
        Assert.NotEqual(xb, xq);
        Assert.Equal(xq, SyntheticData.ClusteredQueries(100, 6, 3, seed: 5, threads: 3));
    }

    [Fact]
    public void RowsClusterAroundTheirCentres()
    {
        const int d = 32;
        var dist = new ClusteredDistribution(d, 8, seed: 1, spread: 0.2f);
        var rows = new float[2000 * d];
        var cluster = new int[2000];
        dist.Sample(SampleStream.Base, 0, rows, cluster);
        int nearestIsOwn = 0;
        for (int i = 0; i < 2000; i++)
        {
            int best = -1;
            double bestD = double.MaxValue;
            for (int c = 0; c < 8; c++)
            {
                double s = 0;
                for (int j = 0; j < d; j++) { double t = rows[i * d + j] - dist.Centers[c * d + j]; s += t * t; }
                if (s < bestD) { bestD = s; best = c; }
            }
            if (best == cluster[i]) nearestIsOwn++;
        }
        Assert.Equal(2000, nearestIsOwn);
        Assert.Equal(8, cluster.Distinct().Count()); // every component is used
    }

    [Fact]
    public void CosineDataSetIsUnitLengthWithLabels()
    {
        var set = SyntheticData.ClusteredDataSet("c", 200, 10, 5, 4, 2, Metric.Cosine, groundTruthK: 5, threads: 1);
        for (int i = 0; i < set.Count; i++)
        {
            double s = 0;
            for (int j = 0; j < 5; j++) s += set.Base[i * 5 + j] * (double)set.Base[i * 5 + j];
            Assert.Equal(1.0, s, 4);
        }
        Assert.NotNull(set.BaseLabels);
        Assert.All(set.BaseLabels!, l => Assert.InRange(l, 0, 3));
        Assert.Equal(10 * 5, set.GroundTruth!.Length);
    }

    [Fact]
    public void RejectsBadParameters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClusteredDistribution(0, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClusteredDistribution(2, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClusteredDistribution(2, 1, 1, spread: float.NaN));
        Assert.Throws<ArgumentException>(() => new ClusteredDistribution(2, 1, 1).Sample(SampleStream.Base, 0, new float[3]));
    }
}
