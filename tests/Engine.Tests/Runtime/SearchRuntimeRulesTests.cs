using System.Reflection;
using Engine.Index;
using Engine.Index.Binary;
using Engine.Index.Flat;
using Engine.Index.Hnsw;
using Engine.Index.Ivf;
using Engine.Index.MultiVector;
using Engine.Index.Spann;
using Engine.MultiVector;
using Engine.Tests.MultiVector;

namespace Engine.Tests.Runtime;

/// <summary>
/// The rules every index keeps through the shared search runtime (issue 12): scratch is rented per call, so a filter
/// that searches the same index again on the same thread gets correct results on both levels; parameters of another
/// index family are an <see cref="ArgumentException"/> naming both; "not set" is spelt null only.
/// </summary>
public class SearchRuntimeRulesTests
{
    private const int D = 16, N = 600, K = 10;
    private static readonly float[] Data = Ivf.IvfTestData.Clustered(N, D, clusters: 12, seed: 1201);
    private static readonly long[] Ids = Ivf.IvfTestData.Ids(N);

    public static TheoryData<string> Kinds() => new() { "Flat", "IVF", "HNSW", "SPANN", "SPANN-SQ8", "BIN" };

    private static IVectorIndex Build(string kind)
    {
        IVectorIndex index = kind switch
        {
            "Flat" => new FlatIndex(D),
            "IVF" => new IvfIndex("IVF8,Flat", D),
            "HNSW" => new HnswIndex("HNSW16", D),
            "SPANN" => new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 16 }) { BackgroundMaintenance = false },
            "SPANN-SQ8" => new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 16, Codec = "SQ8" }) { BackgroundMaintenance = false },
            "BIN" => IndexFactory.Create("BIN2,RFlat", D, Metric.L2),
            _ => throw new ArgumentException(kind),
        };
        index.Train(Data);
        index.Add(Data, Ids);
        return index;
    }

    // The index's own family knobs, set so that they change the search (more than the defaults).
    private static SearchParameters Own(IVectorIndex index, int threads, IIdFilter? filter) => index switch
    {
        IvfIndex => new IvfSearchParameters { Probes = 3, Threads = threads, Filter = filter },
        HnswIndex => new HnswSearchParameters { Ef = 40, Threads = threads, Filter = filter },
        SpannIndex => new SpannSearchParameters { Probes = 6, Threads = threads, Filter = filter },
        BinaryIndex => new BinarySearchParameters { RefineFactor = 3, Threads = threads, Filter = filter },
        _ => new SearchParameters { Threads = threads, Filter = filter },
    };

    private sealed class EvenIds : IIdFilter
    {
        public bool IsAllowed(long id) => id % 2 == 0;
    }

    /// <summary>Allows even ids; every few calls it first searches <see cref="Index"/> again (same thread) and checks
    /// that inner search against the answer the same search gave outside any filter.</summary>
    private sealed class ReentrantFilter(float[] innerQuery, long[] innerExpected, float[] innerExpectedDistances) : IIdFilter
    {
        public IVectorIndex? Index;
        public SearchParameters? InnerParameters;
        public int Calls, InnerSearches, Mismatches;
        public readonly int Thread = Environment.CurrentManagedThreadId;

        public bool IsAllowed(long id)
        {
            if (Environment.CurrentManagedThreadId == Thread && Calls++ % 13 == 0 && InnerSearches < 12)
            {
                InnerSearches++;
                var dist = new float[K];
                var lab = new long[K];
                Index!.Search(innerQuery, K, dist, lab, InnerParameters);
                if (!lab.SequenceEqual(innerExpected) || !dist.SequenceEqual(innerExpectedDistances)) Mismatches++;
            }
            return id % 2 == 0;
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AFilterThatSearchesTheSameIndexOnTheSameThread_GetsCorrectResults_AndSoDoesItsCaller(string kind)
    {
        using var index = Build(kind);
        var queries = Data.AsSpan(0, 6 * D).ToArray();
        for (int i = 0; i < queries.Length; i++) queries[i] += 0.01f * ((i * 7) % 5 - 2);
        var innerQuery = Data.AsSpan(101 * D, D).ToArray();
        var innerParameters = Own(index, threads: 1, filter: null);

        // What both levels must return: the same searches without re-entry.
        var innerD = new float[K];
        var innerL = new long[K];
        index.Search(innerQuery, K, innerD, innerL, innerParameters);
        foreach (int threads in new[] { 1, 2 })
        {
            var expectedD = new float[6 * K];
            var expectedL = new long[6 * K];
            index.Search(queries, K, expectedD, expectedL, Own(index, threads, new EvenIds()));
            Assert.All(expectedL, l => Assert.True(l >= 0 && l % 2 == 0));
            var filter = new ReentrantFilter(innerQuery, innerL, innerD) { InnerParameters = innerParameters };
            filter.Index = index;
            var gotD = new float[6 * K];
            var gotL = new long[6 * K];
            index.Search(queries, K, gotD, gotL, Own(index, threads, filter));
            Assert.True(filter.InnerSearches > 0, $"{kind}: the filter never re-entered the index");
            Assert.Equal(0, filter.Mismatches);
            Assert.Equal(expectedL, gotL);
            Assert.Equal(expectedD, gotD);
        }
    }

    /// <summary>A single-threaded search rents its scratch from the index's pool: after warm-up a call allocates nothing
    /// (the binary index still allocates its output copies per call).</summary>
    [Theory]
    [InlineData("Flat")]
    [InlineData("IVF")]
    [InlineData("HNSW")]
    [InlineData("SPANN")]
    [InlineData("SPANN-SQ8")]
    public void ASingleThreadedSearch_AllocatesNothingAfterWarmUp(string kind)
    {
        using var index = Build(kind);
        var q = Data.AsSpan(5 * D, 4 * D).ToArray();
        var dist = new float[4 * K];
        var lab = new long[4 * K];
        var p = Own(index, 1, null);
        for (int i = 0; i < 5; i++) index.Search(q, K, dist, lab, p);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) index.Search(q, K, dist, lab, p);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(5, lab[0]);
    }

    /// <summary>Results written over the queries (one buffer passed as both, k wider than d) equal those written to a
    /// buffer of their own, on one thread and on several: no chunk reads a query row another chunk overwrote.</summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void ResultsWrittenOverTheQueries_EqualSeparateBuffers(string kind)
    {
        using var index = Build(kind);
        const int nq = 40, k = 2 * D;
        var queries = Data.AsSpan(0, nq * D).ToArray();
        foreach (int threads in new[] { 1, 2 })
        {
            var p = Own(index, threads, null);
            var expectedD = new float[nq * k];
            var expectedL = new long[nq * k];
            index.Search(queries, k, expectedD, expectedL, p);
            var shared = new float[nq * k];
            queries.CopyTo(shared, 0);
            var labels = new long[nq * k];
            index.Search(shared.AsSpan(0, nq * D), k, shared, labels, p);
            Assert.Equal(expectedL, labels);
            Assert.Equal(expectedD, shared);
        }
    }

    public static TheoryData<string, string> WrongFamilies()
    {
        var data = new TheoryData<string, string>();
        string[] families = ["IVF", "HNSW", "SPANN", "BIN", "MUVERA"];
        foreach (var kind in new[] { "Flat", "IVF", "HNSW", "SPANN", "BIN" })
            foreach (var family in families)
                if (family != kind)
                    data.Add(kind, family);
        return data;
    }

    private static SearchParameters OfFamily(string family) => family switch
    {
        "IVF" => new IvfSearchParameters { Probes = 2 },
        "HNSW" => new HnswSearchParameters { Ef = 20 },
        "SPANN" => new SpannSearchParameters { Probes = 2 },
        "BIN" => new BinarySearchParameters { RefineFactor = 2 },
        "MUVERA" => new MuveraSearchParameters { Candidates = 20 },
        _ => throw new ArgumentException(family),
    };

    [Theory]
    [MemberData(nameof(WrongFamilies))]
    public void ParametersOfAnotherFamily_AreRejectedNamingBoth(string kind, string family)
    {
        using var index = Build(kind);
        var p = OfFamily(family);
        Assert.Equal(family, p.IndexFamily);
        var q = Data.AsSpan(0, D).ToArray();
        var e = Assert.Throws<ArgumentException>(() => index.Search(q, K, new float[K], new long[K], p));
        Assert.Equal("parameters", e.ParamName);
        Assert.Contains(p.GetType().Name, e.Message);
        Assert.Contains($"the {family} family", e.Message);
        Assert.Contains($"'{index.Description}'", e.Message);
        if (kind != "Flat") Assert.Contains($"the {kind} family's parameters", e.Message);
        else Assert.Contains("plain SearchParameters", e.Message);
        // Plain parameters and the index's own family are accepted.
        index.Search(q, K, new float[K], new long[K], new SearchParameters { Threads = 1 });
        index.Search(q, K, new float[K], new long[K], Own(index, 1, null));
    }

    [Fact]
    public void MultiVector_RejectsFdeParametersOfAnotherFamily_AndMuveraKnobsInItsExactSearch()
    {
        var (docs, queries) = MuveraTestData.Make(60, 2, 8, seed: 1202);
        using var index = new MultiVectorIndex(8, new MuveraOptions { SimHashBits = 2, ProjectionDimension = 4, Repetitions = 4 }, "IVF4,Flat");
        index.Train(docs);
        index.Add(docs, Enumerable.Range(0, docs.Count).Select(i => (long)i).ToArray());
        var s = new float[2 * 5];
        var l = new long[2 * 5];
        var e = Assert.Throws<ArgumentException>(() => index.Search(queries, 5, s, l, new MuveraSearchParameters { FdeParameters = new HnswSearchParameters { Ef = 20 } }));
        Assert.Contains("HnswSearchParameters", e.Message);
        Assert.Contains("IVF family", e.Message);
        Assert.Throws<ArgumentException>(() => index.Search(queries, 5, s, l, new MuveraSearchParameters { FdeParameters = new MuveraSearchParameters() }));
        e = Assert.Throws<ArgumentException>(() => index.SearchExact(queries, 5, s, l, new MuveraSearchParameters { Candidates = 20 }));
        Assert.Contains("MuveraSearchParameters", e.Message);
        index.Search(queries, 5, s, l, new MuveraSearchParameters { FdeParameters = new IvfSearchParameters { Probes = 2 }, Threads = 1 });
        Assert.True(l[0] >= 0);
        index.SearchExact(queries, 5, s, l, new SearchParameters { Threads = 1 });
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void NegativeThreads_AreRejectedByEveryIndex(string kind)
    {
        using var index = Build(kind);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(Data.AsSpan(0, D), K, new float[K], new long[K], Own(index, -1, null)));
        Assert.Equal("Threads", e.ParamName);
    }

    /// <summary>
    /// Every search-parameter type of the engine spells "not set" as null: an optional count (a nullable int or long)
    /// rejects 0 and -1 instead of reading them as "the default", and the only non-nullable count is
    /// <see cref="SearchParameters.Threads"/> (0 = all processors, documented as a value, not as "not set").
    /// </summary>
    [Fact]
    public void NotSet_IsSpeltNullOnly_InEveryParameterType()
    {
        var types = typeof(SearchParameters).Assembly.GetExportedTypes()
            .Where(t => typeof(SearchParameters).IsAssignableFrom(t) && !t.IsAbstract).ToList();
        Assert.Contains(typeof(IvfSearchParameters), types);
        Assert.True(types.Count >= 6, string.Join(", ", types.Select(t => t.Name)));
        var checkedKnobs = new List<string>();
        foreach (var type in types)
        {
            foreach (var prop in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
            {
                var pt = prop.PropertyType;
                if (pt == typeof(int) || pt == typeof(long))
                {
                    Assert.True(prop.Name == nameof(SearchParameters.Threads), $"{type.Name}.{prop.Name} is a non-nullable count: spell 'not set' as null");
                    continue;
                }
                if (pt != typeof(int?) && pt != typeof(long?)) continue;
                foreach (long bad in new[] { 0L, -1L })
                {
                    var p = (SearchParameters)Activator.CreateInstance(type)!;
                    object value = pt == typeof(int?) ? (object)(int)bad : bad;
                    try
                    {
                        prop.SetValue(p, value);
                    }
                    catch (TargetInvocationException ex) when (ex.InnerException is ArgumentOutOfRangeException)
                    {
                        continue; // rejected when set
                    }
                    var e = Assert.Throws<ArgumentOutOfRangeException>(() => p.Validate());
                    Assert.Equal(prop.Name, e.ParamName);
                }
                var unset = (SearchParameters)Activator.CreateInstance(type)!;
                prop.SetValue(unset, null);
                unset.Validate();
                checkedKnobs.Add($"{type.Name}.{prop.Name}");
            }
        }
        foreach (var knob in new[] { "IvfSearchParameters.Probes", "IvfSearchParameters.MaxCodes", "HnswSearchParameters.Ef", "SpannSearchParameters.Probes",
                     "SpannSearchParameters.Rerank", "BinarySearchParameters.RefineFactor", "MuveraSearchParameters.Candidates" })
            Assert.Contains(knob, checkedKnobs);
    }
}
