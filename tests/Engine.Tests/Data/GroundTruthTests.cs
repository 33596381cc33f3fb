using Engine.Data;

namespace Engine.Tests.Data;

public sealed class GroundTruthTests
{
    // Brute force in double: (distance key, row) sorted, smaller key first.
    private static int[] Reference(float[] xb, float[] xq, int d, Metric metric, int k)
    {
        int n = xb.Length / d, nq = xq.Length / d;
        var result = new int[nq * k];
        Array.Fill(result, -1);
        for (int q = 0; q < nq; q++)
        {
            var keys = new (double Key, int Row)[n];
            for (int i = 0; i < n; i++)
            {
                double l2 = 0, dot = 0, nx = 0, nqq = 0;
                for (int j = 0; j < d; j++)
                {
                    double a = xq[q * d + j], b = xb[i * d + j];
                    l2 += (a - b) * (a - b); dot += a * b; nx += b * b; nqq += a * a;
                }
                keys[i] = (metric switch { Metric.L2 => l2, Metric.InnerProduct => -dot, _ => -dot / Math.Sqrt(nx * nqq) }, i);
            }
            Array.Sort(keys);
            for (int j = 0; j < Math.Min(k, n); j++) result[q * k + j] = keys[j].Row;
        }
        return result;
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void MatchesDoubleBruteForce(Metric metric)
    {
        const int n = 2000, nq = 40, d = 24, k = 25;
        var xb = SyntheticData.Clustered(n, d, 10, seed: 11);
        var xq = SyntheticData.ClusteredQueries(nq, d, 10, seed: 11);
        var gt = GroundTruth.Compute(xb, xq, d, metric, k, threads: 2);
        Assert.Equal(Reference(xb, xq, d, metric, k), gt);
    }

    [Fact]
    public void IntegerDataWithTiesBreaksBySmallerRow()
    {
        // Pixel-like integer data produces exact ties; rows must come out in ascending order within a tie.
        const int n = 500, nq = 10, d = 6;
        var rng = new Random(5);
        var xb = Enumerable.Range(0, n * d).Select(_ => (float)rng.Next(0, 3)).ToArray();
        var xq = Enumerable.Range(0, nq * d).Select(_ => (float)rng.Next(0, 3)).ToArray();
        Assert.Equal(Reference(xb, xq, d, Metric.L2, 50), GroundTruth.Compute(xb, xq, d, Metric.L2, 50, threads: 1));
    }

    [Fact]
    public void SameResultAtAnyThreadCountAndPaddedWhenFewRows()
    {
        var xb = SyntheticData.Clustered(1500, 8, 4, seed: 3);
        var xq = SyntheticData.ClusteredQueries(1100, 8, 4, seed: 3);
        Assert.Equal(GroundTruth.Compute(xb, xq, 8, Metric.L2, 10, threads: 1), GroundTruth.Compute(xb, xq, 8, Metric.L2, 10, threads: 3));

        var few = GroundTruth.Compute(xb.AsSpan(0, 3 * 8), xq.AsSpan(0, 2 * 8), 8, Metric.L2, 5);
        Assert.Equal(10, few.Length);
        Assert.Equal(new[] { -1, -1 }, few[3..5]);
        Assert.Equal(new[] { 0, 1, 2 }, few[..3].Order().ToArray());
    }

    [Fact]
    public void RejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => GroundTruth.Compute(new float[7], new float[4], 4, Metric.L2));
        Assert.Throws<ArgumentOutOfRangeException>(() => GroundTruth.Compute(new float[8], new float[4], 4, Metric.L2, k: 0));
        Assert.Throws<ArgumentException>(() => GroundTruth.Compute(new float[8], new float[] { 1, float.NaN, 0, 0 }, 4, Metric.L2));
    }

    [Fact]
    public void RecallCountsDistinctHitsInTopK()
    {
        int[] gt = [1, 2, 3, 9, /* q1 */ 4, 5, 6, 9];
        // q0: top-3 results {1, 7, 3} ∩ gt top-3 {1,2,3} = 2; q1: {6, 6, -1}: 6 counted once, -1 never = 1.
        long[] labels = [1, 7, 3, 2, 6, 6, -1, 4];
        Assert.Equal(3.0 / 6, GroundTruth.RecallAtK(labels, 4, gt, 4, 3), 12);
        Assert.Equal(1.0, GroundTruth.RecallAtK([3, 2, 1, 6, 5, 4], 3, gt, 4, 3), 12);
        Assert.Equal(0.5, GroundTruth.RecallAtK([1, 0, 4, 0], 2, gt, 4, 2), 12);
    }

    // A row padded with -1 (fewer base rows than k) is divided by its real ids, so the exact answer scores 1; a
    // ground truth with no ids at all is an error, and a data set refuses -1 anywhere but at the end of a row.
    [Fact]
    public void PaddedTruthIsDividedByItsRealIds_AndMisplacedPaddingIsRefused()
    {
        int[] gt = [4, 2, -1, -1, /* q1 */ 0, 1, 3, -1];
        Assert.Equal(1.0, GroundTruth.RecallAtK([2, 4, -1, -1, 1, 0, 3, -1], 4, gt, 4, 4), 12);
        Assert.Equal(3.0 / 5, GroundTruth.RecallAtK([2, 7, -1, -1, 1, 5, 6, 3], 4, gt, 4, 4), 12);
        var none = Assert.Throws<ArgumentException>(() => GroundTruth.RecallAtK([1, 2], 2, [-1, -1], 2, 2));
        Assert.Contains("no ids", none.Message);

        var set = new DataSet("padded", Metric.L2, 2, new float[5 * 2], new float[2 * 2]);
        set.SetGroundTruth(gt, 4);
        var allPadding = Assert.Throws<ArgumentException>(() => set.SetGroundTruth([-1, -1, -1, -1, 0, 1, 2, 3], 4));
        Assert.Contains("query 0 starts with -1", allPadding.Message);
        var inside = Assert.Throws<ArgumentException>(() => set.SetGroundTruth([0, -1, 2, 3, 0, 1, 2, 3], 4));
        Assert.Contains("follows a -1", inside.Message);
    }

    [Fact]
    public void RecallRejectsMismatchedShapes()
    {
        int[] gt = [1, 2, 3, 4];
        Assert.Throws<ArgumentException>(() => GroundTruth.RecallAtK(new long[4], 2, gt, 2, 3));
        Assert.Throws<ArgumentException>(() => GroundTruth.RecallAtK(new long[6], 2, gt, 2, 2));
        Assert.Throws<ArgumentException>(() => GroundTruth.RecallAtK(new long[4], 4, gt, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => GroundTruth.RecallAtK(new long[4], 2, gt, 2, 0));
    }

    [Fact]
    public void DataSetRecallOfExactIndexIsOne()
    {
        var set = SyntheticData.ClusteredDataSet("r", 800, 30, 12, 6, 9, Metric.InnerProduct, groundTruthK: 20, threads: 1);
        using var index = new Engine.Index.Flat.FlatIndex(12, Metric.InnerProduct);
        index.Add(set.Base, Enumerable.Range(0, set.Count).Select(i => (long)i).ToArray());
        var labels = new long[30 * 10];
        index.Search(set.Queries, 10, new float[30 * 10], labels);
        Assert.InRange(set.RecallAtK(labels, 10, 10), 0.99, 1.0);
        Array.Fill(labels, 0);
        Assert.InRange(set.RecallAtK(labels, 10, 10), 0.0, 0.11);
    }
}
