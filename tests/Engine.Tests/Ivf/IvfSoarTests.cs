using Engine.Index;
using Engine.Index.Ivf;
using Engine.Storage;
using Engine.Tests.Support;

namespace Engine.Tests.Ivf;

/// <summary>
/// SOAR spilling (<c>IVF{n}(soar[=λ])</c>): every vector is filed under its own list and a second one chosen by the
/// orthogonality-amplified residual loss; searches, range searches, filters, removes, upserts and files see each id
/// once.
/// </summary>
public class IvfSoarTests
{
    private const int N = 3000, D = 24, NQ = 120, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 30, seed: 71, spread: 0.45f);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 30, seed: 72, spread: 0.45f);
    private static readonly long[] Ids = IvfTestData.Ids(N, offset: 1000);

    [Theory]
    [InlineData("IVF64(soar),Flat")]
    [InlineData("IVF64(soar=0.5),PQ8x4fs,RFlat")]
    [InlineData("IVF64_HNSW16(soar=2.25),PQ8")]
    [InlineData("OPQ8,IVF64(soar=0),PQ8x4fsnr,Refine(SQ8)")]
    [InlineData("IVF1(soar),RaBitQfs4,RFlat")]
    public void SpecsPrintBackAsParsed(string spec)
    {
        var parsed = IvfSpec.Parse(spec);
        Assert.Equal(spec, parsed.ToString());
        Assert.NotNull(parsed.SpillLambda);
        Assert.Equal("IVF64(soar),Flat", IvfSpec.Parse("IVF64(soar=1),Flat").ToString());
        Assert.Null(IvfSpec.Parse("IVF64,Flat").SpillLambda);
    }

    [Theory]
    [InlineData("IVF64(soar=-1),Flat", "SOAR weight")]
    [InlineData("IVF64(soar=),Flat", "SOAR weight")]
    [InlineData("IVF64(soar=x),Flat", "SOAR weight")]
    [InlineData("IVF64(soar=101),Flat", "SOAR weight")]
    [InlineData("IVF64(spill),Flat", "expected 'IVF{nlist}'")]
    public void BadSoarWeights_AreRejectedByName(string spec, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => IvfSpec.Parse(spec));
        Assert.Contains(message, e.Message);
    }

    // The second list is the loss minimiser over every list but the first (nlist ≤ SpillCandidates: all are candidates),
    // checked against a double reference; the first list is the nearest centroid.
    [Theory]
    [InlineData(1.0, Metric.L2)]
    [InlineData(0.0, Metric.L2)]
    [InlineData(4.0, Metric.InnerProduct)]
    public void TheSecondListMinimisesTheSoarLoss(double lambda, Metric metric)
    {
        string spec = $"IVF{IvfIndex.SpillCandidates}(soar={lambda.ToString(System.Globalization.CultureInfo.InvariantCulture)}),Flat".Replace("(soar=1)", "(soar)");
        using var index = IvfTestData.Build(spec, D, metric, Data, Ids);
        var c = index.CoarseCentroids.ToArray();
        int nl = index.ListCount, mismatches = 0;
        for (int i = 0; i < N; i++)
        {
            var (first, second) = index.ListsOf(Ids[i]);
            Assert.NotEqual(first, second);
            var x = Data.AsSpan(i * D, D);
            var r = new double[D];
            double rr = 0;
            for (int j = 0; j < D; j++) { r[j] = x[j] - c[first * D + j]; rr += r[j] * r[j]; }
            int best = -1;
            double bestLoss = double.PositiveInfinity, chosenLoss = double.NaN;
            for (int l = 0; l < nl; l++)
            {
                if (l == first) continue;
                double dist = 0, along = 0;
                for (int j = 0; j < D; j++)
                {
                    double diff = x[j] - c[l * D + j];
                    dist += diff * diff;
                    along += r[j] * diff;
                }
                double loss = dist + (rr > 0 ? lambda * along * along / rr : 0);
                if (loss < bestLoss) { bestLoss = loss; best = l; }
                if (l == second) chosenLoss = loss;
            }
            // float arithmetic may pick a near-tie the other way; the loss it chose must then equal the best.
            if (best != second)
            {
                mismatches++;
                Assert.True(chosenLoss <= bestLoss * (1 + 1e-4) + 1e-6, $"row {i}: list {second} has loss {chosenLoss}, list {best} {bestLoss}");
            }
        }
        Assert.True(mismatches <= N / 200, $"{mismatches} rows disagree with the reference");
        Assert.Equal(2 * N, index.ListSizes().Sum());
        Assert.Equal(N, index.Count);
        Assert.True(index.Verify().IsClean);
    }

    [Theory]
    [InlineData("IVF48(soar),Flat", Metric.L2, 1)]
    [InlineData("IVF48(soar),PQ8", Metric.L2, 1)]
    [InlineData("IVF48(soar),PQ12x4fs", Metric.L2, 1)]
    [InlineData("IVF48(soar),PQ12x4fs,RFlat", Metric.L2, 1)]
    [InlineData("IVF48(soar),PQ12x4fs,RFlat", Metric.InnerProduct, 4)]
    [InlineData("IVF48(soar),PQ12x4fsnr,Refine(SQ8)", Metric.Cosine, 4)]
    [InlineData("IVF48(soar),RaBitQ4,RFlat", Metric.L2, 3)]
    [InlineData("IVF48(soar),RaBitQfs1,RFlat", Metric.InnerProduct, 4)]
    [InlineData("IVF48(soar),BIN2,Refine(F16)", Metric.L2, 4)]
    [InlineData("IVF48_HNSW8(soar),Flat", Metric.Cosine, 1)]
    public void EveryIdComesOnce_AndRecallBeatsTheUnspilledIndexAtEqualProbes(string spec, Metric metric, int refine)
    {
        using var soar = IvfTestData.Build(spec, D, metric, Data, Ids);
        using var plain = IvfTestData.Build(spec.Replace("(soar)", ""), D, metric, Data, Ids);
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, metric);
        foreach (int threads in new[] { 1, 2 })
        {
            var p = new IvfSearchParameters { Probes = 3, RefineFactor = refine, Threads = threads };
            var (sd, sl) = Search(soar, Queries, p);
            var (_, pl) = Search(plain, Queries, p);
            AssertDistinctAndSorted(sd, sl, NQ, metric);
            double rs = IvfTestData.Recall(truth, sl, NQ, K), rp = IvfTestData.Recall(truth, pl, NQ, K);
            // With exact keys (Flat lists, a PQ or binary code with a refine store) the second copies only add
            // neighbours. Codes alone rank by estimates, and a second copy's residual from a farther centroid is coded
            // less accurately: its underestimates can push true neighbours out of the candidates. RaBitQ ranks its
            // candidates by lower bounds, and the long residual of a second copy has a wide bound that does the same.
            // There SOAR need not gain (docs/ivf.md: it is meant for PQ and Flat lists with a refine store).
            bool exactKeys = (spec.Contains(",Flat") || spec.Contains(",R")) && !spec.Contains("RaBitQ");
            Assert.True(exactKeys ? rs >= rp + 0.02 : rs >= rp - 0.08, $"SOAR recall {rs:F3} vs {rp:F3} unspilled at 3 probes");
            // One query at a time (query-major) equals the batch (list-major where it applies).
            var od = new float[K];
            var ol = new long[K];
            for (int i = 0; i < NQ; i += 7)
            {
                soar.Search(Queries.AsSpan(i * D, D), K, od, ol, p);
                Assert.Equal(sl.AsSpan(i * K, K).ToArray(), ol);
            }
        }
        // All lists probed: the exact answer for Flat lists and PQ codes with an exact refine store.
        if (spec.Contains(",Flat") || (spec.Contains("RFlat") && !spec.Contains("RaBitQ")))
        {
            var all = new IvfSearchParameters { Probes = soar.ListCount, RefineFactor = IvfTestData.Refine(soar, 20) };
            var (_, al) = Search(soar, Queries, all);
            Assert.True(IvfTestData.Recall(truth, al, NQ, K) >= 0.999);
        }
    }

    // One list leaves no second list: nothing spills, and coded lists (whose codes are residuals from a list's
    // centroid) still add, search and verify.
    [Theory]
    [InlineData("IVF1(soar),PQ12x4fs,RFlat")]
    [InlineData("IVF1(soar),RaBitQ4")]
    [InlineData("IVF1(soar),Flat")]
    public void OneList_SpillsNothing(string spec)
    {
        using var index = IvfTestData.Build(spec, D, Metric.L2, Data, Ids);
        Assert.Equal(N, index.ListSizes().Sum());
        Assert.Equal((0, -1), index.ListsOf(Ids[5]));
        Assert.True(index.Verify().IsClean);
        var (d, l) = Search(index, Queries, new IvfSearchParameters { Probes = 1, RefineFactor = IvfTestData.Refine(index, 4) });
        AssertDistinctAndSorted(d, l, NQ, Metric.L2);
    }

    [Fact]
    public void AskingForMoreThanTheVectorsHeld_ReturnsEachOnceThenPads()
    {
        using var index = IvfTestData.Build("IVF4(soar),Flat", D, Metric.L2, Data[..(5 * D)], Ids[..5]);
        var d = new float[8];
        var l = new long[8];
        index.Search(Queries.AsSpan(0, D), 8, d, l, new IvfSearchParameters { Probes = 4 });
        Assert.Equal(Ids[..5].Order(), l[..5].Order());
        Assert.All(l[5..], x => Assert.Equal(-1, x));
    }

    [Theory]
    [InlineData("IVF48(soar),Flat", Metric.L2)]
    [InlineData("IVF48(soar),PQ12x4fs,RFlat", Metric.InnerProduct)]
    [InlineData("IVF48(soar),PQ12x4fs", Metric.L2)]
    public void RangeSearch_ReturnsEachIdOnce_AndEveryNeighbourInsideTheRadius(string spec, Metric metric)
    {
        using var soar = IvfTestData.Build(spec, D, metric, Data, Ids);
        using var flat = new Engine.Index.Flat.FlatIndex(D, metric);
        flat.Add(Data, Ids);
        float radius = metric == Metric.L2 ? 4f : 2.5f;
        var p = new IvfSearchParameters { Probes = soar.ListCount };
        var got = soar.RangeSearch(Queries, radius, p);
        var exact = flat.RangeSearch(Queries, radius);
        for (int i = 0; i < NQ; i++)
        {
            var ids = got.IdsOf(i).ToArray();
            Assert.Equal(ids.Length, ids.Distinct().Count());
            if (spec.EndsWith(",Flat") || spec.EndsWith("RFlat"))
                Assert.Equal(exact.IdsOf(i).ToArray().Order(), ids.Order());
        }
    }

    [Fact]
    public void Filters_AndAttributeWindows_ReturnEachIdOnce()
    {
        using var index = new IvfIndex("IVF48(soar),PQ12x4fs,RFlat", D);
        index.Train(Data);
        var attrs = Enumerable.Range(0, N).Select(i => (double)(i % 100)).ToArray();
        index.Add(Data, Ids, attrs);
        var allow = Ids.Where(i => i % 5 == 0).ToArray();
        var cases = new[]
        {
            new IvfSearchParameters { Probes = 6, RefineFactor = 4, Filter = new IdAllowListFilter(allow) },                 // exact over the allowed ids
            new IvfSearchParameters { Probes = 6, RefineFactor = 4, Filter = new IdAllowListFilter(allow), ExactFallbackSelectivity = 0 }, // filtered scan
            new IvfSearchParameters { Probes = 6, RefineFactor = 4, AttributeMin = 10, AttributeMax = 10 },                  // exact over a narrow window
            new IvfSearchParameters { Probes = 6, RefineFactor = 4, AttributeMin = 0, AttributeMax = 60, ExactFallbackSelectivity = 0 },
        };
        foreach (var p in cases)
        {
            var (d, l) = Search(index, Queries, p);
            AssertDistinctAndSorted(d, l, NQ, Metric.L2);
            Assert.All(l.Where(x => x >= 0), x => Assert.True(p.Filter is null ? attrs[x - 1000] >= p.AttributeMin && attrs[x - 1000] <= p.AttributeMax : x % 5 == 0));
        }
    }

    [Fact]
    public void RemoveAndUpsert_TakeBothCopies()
    {
        using var index = IvfTestData.Build("IVF48(soar),PQ12x4fs,RFlat", D, Metric.L2, Data, Ids);
        var gone = Ids.Where(i => i % 3 == 0).ToArray();
        Assert.Equal(gone.Length, index.Remove(gone));
        Assert.Equal(N - gone.Length, index.Count);
        Assert.Equal(2 * (N - gone.Length), index.ListSizes().Sum());
        Assert.True(index.Verify().IsClean);
        var (_, l) = Search(index, Queries, new IvfSearchParameters { Probes = 48, RefineFactor = 4 });
        Assert.DoesNotContain(l, x => x % 3 == 0 && x >= 0);
        // Upsert moves a vector (both copies) to where its new value belongs.
        var moved = Ids.Where(i => i % 3 == 1).Take(200).ToArray();
        var values = moved.Select((id, j) => Queries.AsSpan((j % NQ) * D, D).ToArray()).SelectMany(v => v).ToArray();
        index.Upsert(values, moved);
        Assert.True(index.Verify().IsClean);
        Assert.Equal(2 * (N - gone.Length), index.ListSizes().Sum());
        var (d, l2) = Search(index, values[..(5 * D)], new IvfSearchParameters { Probes = 4, RefineFactor = 8 });
        AssertDistinctAndSorted(d, l2, 5, Metric.L2);
        for (int j = 0; j < 5; j++) Assert.Contains(moved[j], l2.AsSpan(j * K, K).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SaveAndLoad_KeepBothCopies_AndTheAnswers(bool mapped)
    {
        using var dir = new TempDir();
        using var index = IvfTestData.Build("IVF48(soar=1.5),PQ12x4fs,RFlat", D, Metric.InnerProduct, Data, Ids);
        index.Remove(Ids.Where(i => i % 7 == 0).ToArray());
        var p = new IvfSearchParameters { Probes = 4, RefineFactor = 4 };
        var (bd, bl) = Search(index, Queries, p);
        string path = dir.File("soar.ivf");
        index.Save(path);
        using var loaded = IvfIndex.Load(path, mapped: mapped);
        Assert.Equal("IVF48(soar=1.5),PQ12x4fs,RFlat", loaded.Description);
        Assert.Equal(index.Count, loaded.Count);
        Assert.True(loaded.Verify().IsClean);
        var (ld, ll) = Search(loaded, Queries, p);
        Assert.Equal(bl, ll);
        Assert.Equal(bd, ld);
        // The same two lists (a load calls the copy in the lower-numbered list the first).
        for (int i = 0; i < N; i += 97)
        {
            var (a, b) = index.ListsOf(Ids[i]);
            var (c, e) = loaded.ListsOf(Ids[i]);
            Assert.Equal(new[] { a, b }.Order(), new[] { c, e }.Order());
        }
        // A removal after a mapped load copies the lists it touches and still takes both copies.
        loaded.Remove([Ids[1]]);
        Assert.Equal((-1, -1), loaded.ListsOf(Ids[1]));
        Assert.True(loaded.Verify().IsClean);
    }

    private static (float[] Distances, long[] Labels) Search(IvfIndex index, float[] queries, SearchParameters p)
    {
        int nq = queries.Length / D;
        var d = new float[nq * K];
        var l = new long[nq * K];
        index.Search(queries, K, d, l, p);
        return (d, l);
    }

    // Each row: no id twice, best first (distances ascending for L2, similarities descending otherwise).
    private static void AssertDistinctAndSorted(float[] d, long[] l, int nq, Metric metric)
    {
        float sign = metric == Metric.L2 ? 1 : -1;
        for (int i = 0; i < nq; i++)
        {
            var row = l.AsSpan(i * K, K).ToArray().Where(x => x >= 0).ToArray();
            Assert.Equal(row.Length, row.Distinct().Count());
            for (int j = 1; j < K; j++)
                Assert.True(l[i * K + j] < 0 || sign * d[i * K + j - 1] <= sign * d[i * K + j], $"row {i} is out of order at {j}");
        }
    }
}
