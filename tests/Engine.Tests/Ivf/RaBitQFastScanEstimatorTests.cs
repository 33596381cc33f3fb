using Engine.Quantization;

namespace Engine.Tests.Ivf;

/// <summary>
/// SPANN's block estimator for RaBitQ fast-scan codes (center at the origin): its keys equal the row estimator's
/// estimate minus its bound and the table's rounding bound, up to the table's byte rounding, at every SIMD level (CI runs
/// this class with AVX-512, AVX2 and all intrinsics switched off); the masks mark exactly the keys at or below the
/// threshold among the rows given; and the keys (and <c>UpperKey</c>) bound the exact distance from below (above) at the
/// stated confidence.
/// </summary>
public class RaBitQFastScanEstimatorTests
{
    public static TheoryData<int, Metric, int> Cases()
    {
        var data = new TheoryData<int, Metric, int>();
        foreach (int bits in new[] { 1, 4 })
            foreach (var metric in new[] { Metric.L2, Metric.InnerProduct })
                foreach (int d in new[] { 37, 100 })
                    data.Add(bits, metric, d);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LowerBoundKeys_MatchTheRowEstimator_MaskTheThreshold_AndBoundTheExactDistance(int bits, Metric metric, int d)
    {
        const int n = 205; // six full blocks and a partial one
        var rng = new Random(17 + bits + d);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++) x[i] = IvfTestData.Gaussian(rng);
        var codec = new RaBitQFastScanCodec(d, bits, metric);
        codec.Train(x, seed: 3, threads: 1);
        var rows = new byte[n * codec.CodeSize];
        codec.Encode(x, rows);
        var blocks = new byte[codec.Layout.Bytes(n)];
        for (int i = 0; i < n; i++) codec.Layout.Write(blocks, i, rows.AsSpan(i * codec.CodeSize, codec.CodeSize));
        var estimator = new RaBitQFastScanEstimator(codec, metric);
        var rowEstimator = (IBoundedDistanceEstimator)codec.CreateEstimator(metric);
        var tables = new RaBitQFastScanTables(codec);
        var keys = new float[(n + 31) / 32 * 32];
        var masks = new uint[(n + 31) / 32];
        float eps = RaBitQCodec.DefaultEpsilon, scale = metric == Metric.L2 ? 2 : 1;
        long pairs = 0, below = 0, above = 0;
        for (int qi = 0; qi < 8; qi++)
        {
            var q = new float[d];
            for (int j = 0; j < d; j++) q[j] = IvfTestData.Gaussian(rng);
            estimator.SetQuery(q);
            rowEstimator.SetQuery(q);
            tables.Set(q);
            float threshold = float.PositiveInfinity;
            estimator.LowerBoundKeys(blocks, n, threshold, keys, masks);
            var sorted = keys.Take(n).Order().ToArray();
            threshold = sorted[n / 3];
            estimator.LowerBoundKeys(blocks, n, threshold, keys, masks);
            for (int i = 0; i < n; i++)
            {
                var code = rows.AsSpan(i * codec.CodeSize, codec.CodeSize);
                var (_, f, _) = RaBitQCodec.Factors(code);
                double rounding = eps * Math.Sqrt(codec.Layout.M / 12.0) * tables.Inv * scale * Math.Abs(f);
                double reference = rowEstimator.Distance(code) - rowEstimator.Bound(code, eps) - rounding;
                double tolerance = scale * Math.Abs(f) * codec.Layout.M * 0.5 * tables.Inv + 1e-4 * Math.Max(1, Math.Abs(reference));
                Assert.True(Math.Abs(keys[i] - reference) <= tolerance, $"B={bits} {metric} d={d}: key {keys[i]} vs {reference} ± {tolerance} (row {i})");
                Assert.Equal(keys[i] <= threshold, (masks[i >> 5] >> (i & 31) & 1) == 1);
                double exact = 0;
                for (int j = 0; j < d; j++)
                    exact += metric == Metric.L2 ? (q[j] - x[i * d + j]) * (double)(q[j] - x[i * d + j]) : -q[j] * (double)x[i * d + j];
                pairs++;
                if (keys[i] <= exact + 1e-4 * Math.Max(1, Math.Abs(exact))) below++;
                float upper = estimator.UpperKey(blocks, i, keys[i]);
                Assert.True(upper >= keys[i]);
                if (upper >= exact - 1e-4 * Math.Max(1, Math.Abs(exact))) above++;
            }
            for (int i = n; i < masks.Length * 32; i++) Assert.Equal(0u, masks[i >> 5] >> (i & 31) & 1); // rows past n
        }
        double rate = below / (double)pairs, upperRate = above / (double)pairs, stated = RaBitQCodec.Confidence(RaBitQCodec.DefaultEpsilon);
        Assert.True(rate >= stated - 0.01, $"B={bits} {metric} d={d}: the key was a lower bound on {rate:P2} of {pairs} pairs");
        Assert.True(upperRate >= stated - 0.01, $"B={bits} {metric} d={d}: UpperKey was an upper bound on {upperRate:P2} of {pairs} pairs");
        Assert.Throws<ArgumentOutOfRangeException>(() => estimator.UpperKey(blocks, (n + 31) / 32 * 32, 0));
    }

    [Fact]
    public void CodesOfAnotherMetricFamily_OrTooFewBytes_AreRefused()
    {
        var codec = new RaBitQFastScanCodec(16, 4, Metric.L2);
        codec.Train(new float[64 * 16], seed: 1, threads: 1);
        Assert.Throws<ArgumentException>(() => new RaBitQFastScanEstimator(codec, Metric.InnerProduct));
        var estimator = new RaBitQFastScanEstimator(codec, Metric.L2);
        estimator.SetQuery(new float[16]);
        Assert.Throws<ArgumentException>(() => estimator.LowerBoundKeys(new byte[10], 5, 0, new float[32], new uint[1]));
    }
}
