using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

public class IvfBehaviourTests
{
    private const int N = 3000, D = 32, NQ = 50, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 30, seed: 21);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 30, seed: 22);
    private static readonly long[] Ids = IvfTestData.Ids(N);

    private static IvfIndex Build(string spec, bool attributes = false)
    {
        var index = new IvfIndex(spec, D);
        index.Train(Data);
        if (attributes) index.Add(Data, Ids, Ids.Select(i => (double)i).ToArray());
        else index.Add(Data, Ids);
        return index;
    }

    [Theory]
    [InlineData("Flat")]
    [InlineData("IVF64,Flat")]
    [InlineData("IVF64,PQ8")]
    [InlineData("IVF64,PQ8x4")]
    [InlineData("IVF64,PQ16x4fs")]
    [InlineData("IVF1024,PQ98x4fs,RFlat")]
    [InlineData("OPQ16,IVF256,PQ16x4fs,Refine(Flat)")]
    [InlineData("OPQ8,IVF8,PQ16x4fs,Refine(SQ8)")]
    [InlineData("IVF8,PQ4,Refine(F16)")]
    [InlineData("IVF64,PQ16x4fsnr,RFlat")]
    [InlineData("IVF64,PQ8nr")]
    [InlineData("OPQ8,IVF64,PQ8x4nr,Refine(SQ8)")]
    public void SpecsRoundTrip(string spec)
    {
        int d = spec.Contains("PQ98") ? 784 : 32;
        using var index = IndexFactory.Create(spec, d, Metric.L2);
        Assert.Equal(spec, index.Description);
        if (spec != "Flat") Assert.Equal(spec, IvfSpec.Parse(spec).ToString());
    }

    // The search reads the caller's query rows in place (no copy) unless distances or labels overlap them: results
    // written over the queries must not change rows still to be read.
    [Theory]
    [InlineData("IVF64,PQ16x4fsnr,RFlat")]
    [InlineData("IVF64,Flat")]
    [InlineData("IVF64,PQ8")]
    public void ResultsWrittenOverTheQueriesEqualSeparateBuffers(string spec)
    {
        using var index = Build(spec);
        var parameters = new IvfSearchParameters { Probes = 8, RefineFactor = IvfTestData.Refine(index, 4), Threads = 2 };
        var expectedKeys = new float[NQ * K];
        var expectedIds = new long[NQ * K];
        index.Search(Queries, K, expectedKeys, expectedIds, parameters);
        var shared = (float[])Queries.Clone();
        var ids = new long[NQ * K];
        index.Search(shared, K, shared.AsSpan(0, NQ * K), ids, parameters);
        Assert.Equal(expectedIds, ids);
        Assert.Equal(expectedKeys, shared.AsSpan(0, NQ * K).ToArray());
        // labels over the queries' bytes
        var sharedLabels = new long[NQ * D / 2];
        System.Runtime.InteropServices.MemoryMarshal.Cast<float, long>(Queries.AsSpan()).CopyTo(sharedLabels);
        var keys = new float[NQ * K];
        index.Search(System.Runtime.InteropServices.MemoryMarshal.Cast<long, float>(sharedLabels.AsSpan()), K, keys, sharedLabels.AsSpan(0, NQ * K), parameters);
        Assert.Equal(expectedIds, sharedLabels.AsSpan(0, NQ * K).ToArray());
        Assert.Equal(expectedKeys, keys);
    }

    [Theory]
    [InlineData("IVF0,Flat")]
    [InlineData("IVF8")]
    [InlineData("IVF8,PQ5")]            // 5 does not divide 32
    [InlineData("IVF8,PQ8x6")]          // nbits not 4/8
    [InlineData("IVF8,PQ8x8fs")]        // fast-scan needs 4 bits
    [InlineData("IVF8,PQ8,Refine(PQ)")]
    [InlineData("OPQ5,IVF8,Flat")]      // 5 does not divide 32
    [InlineData("IVF8,Flat,RFlat,RFlat")]
    [InlineData("IVF8,PQ8r")]           // 'r' is faiss' residual fast-scan spelling only
    [InlineData("IVF8,PQ8x4r")]
    [InlineData("IVF8,PQ8x4fsrnr")]
    [InlineData("IVF8,Flatnr")]
    public void BadSpecsAreRejected(string spec) =>
        Assert.Throws<ArgumentException>(() => IndexFactory.Create(spec, D, Metric.L2));

    [Fact]
    public void CreateParametersReturnsIvfParameters()
    {
        using var index = Build("IVF64,PQ8x4fs,RFlat");
        var p = IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["probes"] = "16", ["refine"] = "4", ["maxcodes"] = "500" }, 2);
        var ivf = Assert.IsType<IvfSearchParameters>(p);
        Assert.Equal(16, ivf.Probes);
        Assert.Equal(4, ivf.RefineFactor);
        Assert.Equal(500, ivf.MaxCodes);
        Assert.Equal(2, ivf.Threads);
        Assert.Throws<ArgumentOutOfRangeException>(() => IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["probes"] = "65" }, 1));
        Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["ef"] = "1" }, 1));
    }

    [Fact]
    public void MaxCodesLimitsTheScan()
    {
        using var index = Build("IVF64,PQ8x4fs,RFlat");
        var limited = new SearchStats();
        var full = new SearchStats();
        IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 32, MaxCodes = 100, Stats = limited });
        IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 32, Stats = full });
        Assert.True(limited.CodesScanned < full.CodesScanned / 4, $"{limited.CodesScanned} vs {full.CodesScanned}");
    }

    [Fact]
    public void BadInputIsRejected()
    {
        using var untrained = new IvfIndex("IVF16,PQ8x4fs", D);
        var dist = new float[K];
        var lab = new long[K];
        Assert.Throws<InvalidOperationException>(() => untrained.Search(Queries.AsSpan(0, D), K, dist, lab));
        Assert.Throws<InvalidOperationException>(() => untrained.Add(Data.AsSpan(0, D), [1]));
        Assert.Throws<ArgumentException>(() => untrained.Train(Data.AsSpan(0, 10 * D))); // fewer points than lists
        Assert.Throws<ArgumentException>(() => new IvfIndex("IVF16,PQ7", D));
        Assert.Throws<ArgumentException>(() => new IvfIndex("IVF16,PQ8x3", D));

        using var index = Build("IVF16,PQ8x4fs,RFlat");
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(Queries.AsSpan(0, D), K, dist, lab, new IvfSearchParameters { Probes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(Queries.AsSpan(0, D), K, dist, lab, new IvfSearchParameters { Probes = 17 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(Queries.AsSpan(0, D), K, dist, lab, new IvfSearchParameters { RefineFactor = 0 }));
        Assert.Throws<ArgumentException>(() => index.Search(Queries.AsSpan(0, D - 1), K, dist, lab));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(Queries.AsSpan(0, D), 0, dist, lab));
        Assert.Throws<ArgumentException>(() => index.Add(Data.AsSpan(0, D + 1), [N + 1]));
        Assert.Throws<ArgumentException>(() => index.Add(Data.AsSpan(0, D), [0])); // duplicate id
        Assert.Throws<ArgumentException>(() => index.Add(Data.AsSpan(0, D), [-5]));
        var nan = Data.AsSpan(0, D).ToArray();
        nan[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => index.Add(nan, [N + 1]));
        Assert.Throws<ArgumentException>(() => index.Add(Data.AsSpan(0, D), [N + 1], [double.NaN]));
        Assert.Throws<ArgumentException>(() => index.Search(Queries.AsSpan(0, D), K, dist, lab, new IvfSearchParameters { AttributeMin = 5, AttributeMax = 1 }));
        Assert.Equal(N, index.Count);
    }

    [Fact]
    public void RemoveAndUpsertKeepListsConsistent()
    {
        using var index = Build("IVF16,PQ8x4fs,RFlat");
        var removed = Ids.Where(i => i % 3 == 0).ToArray();
        Assert.Equal(removed.Length, index.Remove(removed));
        Assert.Equal(0, index.Remove(removed)); // already gone
        Assert.Equal(N - removed.Length, index.Count);
        var got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 16, RefineFactor = 20 });
        Assert.DoesNotContain(got, id => id >= 0 && id % 3 == 0);

        // Exact refine over all lists equals exact search over the survivors.
        var keep = Ids.Where(i => i % 3 != 0).ToArray();
        var keepData = keep.SelectMany(i => Data.AsSpan((int)i * D, D).ToArray()).ToArray();
        var truth = IvfTestData.GroundTruth(keepData, keep, Queries, D, K, Metric.L2);
        Assert.True(IvfTestData.Recall(truth, got, NQ, K) >= 0.97);

        // Every surviving vector is still found where the direct map says (reconstruct = stored vector).
        var buf = new float[D];
        Assert.True(index.TryReconstruct(1, buf));
        Assert.Equal(Data.AsSpan(D, D).ToArray(), buf);
        Assert.False(index.TryReconstruct(0, buf));

        // Upsert: id 1 now holds the first query; searching for it returns id 1 at distance 0.
        index.Upsert(Queries.AsSpan(0, D), [1]);
        Assert.Equal(N - removed.Length, index.Count);
        var dist = new float[K];
        var lab = new long[K];
        index.Search(Queries.AsSpan(0, D), K, dist, lab, new IvfSearchParameters { Probes = 4, RefineFactor = 4 });
        Assert.Equal(1, lab[0]);
        Assert.Equal(0, dist[0], 4);
        // Re-adding a removed id works.
        index.Add(Data.AsSpan(0, D), [0]);
        Assert.True(index.Contains(0));
    }

    [Fact]
    public void AllowListAndWindowFiltersOnlyReturnAllowedIds()
    {
        using var index = Build("IVF16,PQ8x4fs,RFlat", attributes: true);
        var allowed = new IdAllowListFilter(Ids.Where(i => i % 2 == 0));
        var got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 8, RefineFactor = 8, Filter = allowed });
        Assert.All(got, id => Assert.True(id >= 0 && id % 2 == 0));

        var stats = new SearchStats();
        got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 4, RefineFactor = 8, AttributeMin = 1000, AttributeMax = 2499, Stats = stats });
        Assert.All(got, id => Assert.InRange(id, 1000, 2499));
        Assert.Equal(0, stats.ExactFallbacks); // half the corpus, a quarter of the lists probed: probing is the cheaper plan

        // Both at once.
        got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 8, RefineFactor = 8, AttributeMin = 1000, AttributeMax = 2499, Filter = allowed });
        Assert.All(got, id => Assert.True(id >= 1000 && id <= 2499 && id % 2 == 0));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OnePercentSelectivityFallsBackToExactSearch(bool window)
    {
        using var index = Build("IVF16,PQ8x4fs,RFlat", attributes: true);
        var rng = new Random(5);
        var chosen = window ? Ids.Where(i => i >= 1000 && i < 1030).ToArray() : Ids.OrderBy(_ => rng.Next()).Take(30).ToArray();
        var stats = new SearchStats();
        var p = window
            ? new IvfSearchParameters { Probes = 1, AttributeMin = 1000, AttributeMax = 1029, Stats = stats }
            : new IvfSearchParameters { Probes = 1, Filter = new IdAllowListFilter(chosen), Stats = stats };
        var got = IvfTestData.SearchLabels(index, Queries, K, p);
        Assert.Equal(1, stats.ExactFallbacks);
        // With one probe the IVF scan would miss most allowed vectors; the exact plan finds the true top-k.
        var sub = chosen.SelectMany(i => Data.AsSpan((int)i * D, D).ToArray()).ToArray();
        var truth = IvfTestData.GroundTruth(sub, chosen, Queries, D, K, Metric.L2);
        Assert.Equal(1.0, IvfTestData.Recall(truth, got, NQ, K), 6);
    }

    [Fact]
    public async Task ConcurrentSearchesWhileOneWriterMutates()
    {
        using var index = Build("IVF16,PQ8x4fs,RFlat");
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var got = IvfTestData.SearchLabels(index, Queries.AsSpan(0, 8 * D).ToArray(), K, new IvfSearchParameters { Probes = 4, RefineFactor = 2, Threads = 1 });
                    if (got.Any(id => id < -1)) throw new InvalidOperationException("bad label");
                }
            }
            catch (Exception e) { errors.Enqueue(e); }
        })).ToArray();
        for (int round = 0; round < 20; round++)
        {
            var batch = Ids.Skip(round * 50).Take(50).ToArray();
            index.Remove(batch);
            index.Add(batch.SelectMany(i => Data.AsSpan((int)i * D, D).ToArray()).ToArray(), batch);
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Empty(errors);
        Assert.Equal(N, index.Count);
    }

    [Fact]
    public void SameSeedBuildsIdenticalIndexesAtAnyThreadCount()
    {
        using var a = new IvfIndex("IVF16,PQ8x4fs", D) { TrainingThreads = 1 };
        using var b = new IvfIndex("IVF16,PQ8x4fs", D) { TrainingThreads = 2 };
        a.Train(Data); a.Add(Data, Ids);
        b.Train(Data); b.Add(Data, Ids);
        Assert.Equal(a.ListSizes(), b.ListSizes());
        var p = new IvfSearchParameters { Probes = 4 };
        Assert.Equal(IvfTestData.SearchLabels(a, Queries, K, p), IvfTestData.SearchLabels(b, Queries, K, p));
    }
}
