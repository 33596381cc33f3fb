using Engine.Distance;
using Engine.Index.Ivf;
using Engine.Index.Lists;
using Engine.Quantization;

namespace Engine.Tests.Ivf;

/// <summary>
/// The keys <see cref="RaBitQFastScanListScanner"/> offers with error bounds, as SPANN uses them (whole-vector codes, one
/// list centred at the origin, rows scanned into a caller's sink with <see cref="IvfListScanner.ScanTo{TSink}"/>): they
/// equal the row estimator's estimate minus its bound and the table's rounding bound, up to the table's byte rounding, at
/// every SIMD level (CI runs this class with AVX-512, AVX2 and all intrinsics switched off); exactly the rows whose key is
/// at or below the sink's threshold are offered; and the keys (and <see cref="RaBitQFastScanListScanner.UpperKey"/>)
/// bound the exact distance from below (above) at the stated confidence.
/// </summary>
public class RaBitQFastScanBoundsTests
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

    // Every (row, key) the scanner offers to a sink of fixed threshold, in row order.
    private static List<(float Key, long Label)> Offered(IvfListScanner scanner, InvertedList list, float threshold)
    {
        var offered = new List<(float Key, long Label)>();
        var sink = new RangeSink(offered, threshold);
        scanner.ScanTo(list, 0, ref sink);
        return offered;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Keys_MatchTheRowEstimator_FollowTheThreshold_AndBoundTheExactDistance(int bits, Metric metric, int d)
    {
        const int n = 205; // six full blocks and a partial one
        var rng = new Random(17 + bits + d);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++) x[i] = IvfTestData.Gaussian(rng);
        var codec = new RaBitQFastScanCodec(d, bits, metric);
        codec.Train(x, seed: 3, threads: 1);
        var rows = new byte[n * codec.CodeSize];
        codec.Encode(x, rows);
        var lists = new InvertedLists(1, codec.Layout, 0);
        var list = lists.Writable(0, n);
        for (int i = 0; i < n; i++) codec.Layout.Write(list.OwnedCodes, i, rows.AsSpan(i * codec.CodeSize, codec.CodeSize));
        list.Count = n;
        var scanner = new RaBitQFastScanListScanner(codec, new FlatCoarseQuantizer(1, d, metric), hasRefine: true);
        var rowEstimator = (IBoundedDistanceEstimator)codec.CreateEstimator(metric);
        var tables = new RaBitQFastScanTables(codec);
        float eps = RaBitQCodec.DefaultEpsilon, scale = metric == Metric.L2 ? 2 : 1;
        long pairs = 0, below = 0, above = 0;
        for (int qi = 0; qi < 8; qi++)
        {
            var q = new float[d];
            for (int j = 0; j < d; j++) q[j] = IvfTestData.Gaussian(rng);
            scanner.SetQuery(q);
            scanner.SetList(0, metric == Metric.L2 ? Distances.SquaredNorm(q) : 0);
            rowEstimator.SetQuery(q);
            tables.Set(q);
            var all = Offered(scanner, lists[0], float.PositiveInfinity);
            Assert.Equal(Enumerable.Range(0, n).Select(i => (long)i), all.Select(o => o.Label));
            var keys = all.Select(o => o.Key).ToArray();
            float threshold = keys.Order().ToArray()[n / 3];
            var under = Offered(scanner, lists[0], threshold);
            Assert.Equal(Enumerable.Range(0, n).Where(i => keys[i] <= threshold).Select(i => (long)i), under.Select(o => o.Label));
            Assert.All(under, o => Assert.Equal(keys[o.Label], o.Key));
            for (int i = 0; i < n; i++)
            {
                var code = rows.AsSpan(i * codec.CodeSize, codec.CodeSize);
                var (_, f, _) = RaBitQCodec.Factors(code);
                double rounding = eps * Math.Sqrt(codec.Layout.M / 12.0) * tables.Inv * scale * Math.Abs(f);
                double reference = rowEstimator.Distance(code) - rowEstimator.Bound(code, eps) - rounding;
                double tolerance = scale * Math.Abs(f) * codec.Layout.M * 0.5 * tables.Inv + 1e-4 * Math.Max(1, Math.Abs(reference));
                Assert.True(Math.Abs(keys[i] - reference) <= tolerance, $"B={bits} {metric} d={d}: key {keys[i]} vs {reference} ± {tolerance} (row {i})");
                double exact = 0;
                for (int j = 0; j < d; j++)
                    exact += metric == Metric.L2 ? (q[j] - x[i * d + j]) * (double)(q[j] - x[i * d + j]) : -q[j] * (double)x[i * d + j];
                pairs++;
                if (keys[i] <= exact + 1e-4 * Math.Max(1, Math.Abs(exact))) below++;
                float upper = scanner.UpperKey(lists[0], i, keys[i]);
                Assert.True(upper >= keys[i]);
                if (upper >= exact - 1e-4 * Math.Max(1, Math.Abs(exact))) above++;
            }
        }
        double rate = below / (double)pairs, upperRate = above / (double)pairs, stated = RaBitQCodec.Confidence(RaBitQCodec.DefaultEpsilon);
        Assert.True(rate >= stated - 0.01, $"B={bits} {metric} d={d}: the key was a lower bound on {rate:P2} of {pairs} pairs");
        Assert.True(upperRate >= stated - 0.01, $"B={bits} {metric} d={d}: UpperKey was an upper bound on {upperRate:P2} of {pairs} pairs");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => scanner.UpperKey(lists[0], n, 0));
        Assert.Equal("row", e.ParamName);
    }
}
