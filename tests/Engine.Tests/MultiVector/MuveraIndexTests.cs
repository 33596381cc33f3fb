using Engine.Index.MultiVector;
using Engine.MultiVector;
using Engine.Tests.Support;

namespace Engine.Tests.MultiVector;

public class MuveraIndexTests
{
    private static readonly MuveraOptions Options = new() { SimHashBits = 4, ProjectionDimension = 16, Repetitions = 10, Seed = 7 };

    private static double Recall(long[] labels, MultiVectorSet docs, MultiVectorSet queries, int k)
    {
        int hits = 0;
        for (int i = 0; i < queries.Count; i++)
        {
            var truth = MuveraTestData.ExactTopK(docs, queries.Item(i), k).ToHashSet();
            for (int j = 0; j < k; j++) if (truth.Contains(labels[i * k + j])) hits++;
        }
        return hits / (double)(queries.Count * k);
    }

    [Theory]
    [InlineData("Flat", TokenEncoding.F32)]
    [InlineData("Flat", TokenEncoding.F16)]
    [InlineData("HNSW16", TokenEncoding.F16)]
    [InlineData("IVF8,Flat", TokenEncoding.F32)]
    public void Muvera_search_reaches_the_recall_floor_with_few_chamfer_evaluations(string spec, TokenEncoding tokens)
    {
        var (docs, queries) = MuveraTestData.Make(600, 40, 32, seed: 17);
        using var index = new MultiVectorIndex(32, Options, spec, tokens);
        index.Build(docs, threads: 2);
        Assert.Equal(600, index.Count);
        const int k = 10;
        var scores = new float[queries.Count * k];
        var labels = new long[queries.Count * k];
        var stats = new SearchStats();
        var fdeParameters = spec.StartsWith("IVF") ? new Engine.Index.Ivf.IvfSearchParameters { Probes = 8, Threads = 2 } : null;
        index.Search(queries, k, scores, labels, new MuveraSearchParameters { Candidates = 60, Threads = 2, Stats = stats, FdeParameters = fdeParameters });
        double recall = Recall(labels, docs, queries, k);
        Assert.True(recall >= 0.9, $"recall@10 {recall:F3} < 0.9 with N=60 ({spec}, {tokens})");
        Assert.Equal(queries.Count * 60L, stats.DistancesComputed); // 10x fewer Chamfer evaluations than brute force
        for (int i = 0; i < queries.Count; i++)
            for (int j = 1; j < k; j++) Assert.True(scores[i * k + j - 1] >= scores[i * k + j]);
        // The reported scores are exact Chamfer similarities of the returned items.
        double expected = MuveraTestData.Chamfer(queries.Item(0), docs.Item((int)labels[0]), 32);
        Assert.Equal(expected, scores[0], tokens == TokenEncoding.F32 ? 1e-4 : 2e-2);
    }

    [Fact]
    public void Muvera_fewer_candidates_lose_recall_and_exact_search_is_the_ground_truth()
    {
        var (docs, queries) = MuveraTestData.Make(400, 30, 24, seed: 5);
        using var index = new MultiVectorIndex(24, Options, "Flat", TokenEncoding.F32);
        index.Build(docs, threads: 2);
        const int k = 10;
        var s = new float[queries.Count * k];
        var l = new long[queries.Count * k];
        index.SearchExact(queries, k, s, l, new SearchParameters { Threads = 2 });
        Assert.Equal(1.0, Recall(l, docs, queries, k), 3);
        index.Search(queries, k, s, l, new MuveraSearchParameters { Candidates = 10, Repetitions = 2, Threads = 1 });
        double low = Recall(l, docs, queries, k);
        index.Search(queries, k, s, l, new MuveraSearchParameters { Candidates = 400, Threads = 1 });
        Assert.Equal(1.0, Recall(l, docs, queries, k), 3); // all items re-ranked = exact
        Assert.True(low < 0.95, $"N=10 with 2 repetitions still reached recall {low:F3}: the knobs do nothing");
    }

    [Fact]
    public void Muvera_save_and_load_round_trip_gives_identical_results()
    {
        using var dir = new TempDir();
        var (docs, queries) = MuveraTestData.Make(200, 10, 16, seed: 9);
        var ids = Enumerable.Range(0, docs.Count).Select(i => 1000L + 3 * i).ToArray();
        using var index = new MultiVectorIndex(16, Options with { FinalDimension = 256 }, "HNSW8", TokenEncoding.F16);
        index.Train(docs);
        index.Add(docs.Slice(0, 120), ids.AsSpan(0, 120));
        index.Add(docs.Slice(120, 80), ids.AsSpan(120, 80));
        var p = new MuveraSearchParameters { Candidates = 30, Threads = 1 };
        var s1 = new float[10 * 5];
        var l1 = new long[10 * 5];
        index.Search(queries, 5, s1, l1, p);
        string path = dir.File("mv");
        index.Save(path);
        using var loaded = MultiVectorIndex.Load(path);
        Assert.Equal(index.Description, loaded.Description);
        Assert.Equal(200, loaded.Count);
        var s2 = new float[10 * 5];
        var l2 = new long[10 * 5];
        loaded.Search(queries, 5, s2, l2, p);
        Assert.Equal(l1, l2);
        Assert.Equal(s1, s2);
        Assert.Equal(index.GetTokens(ids[130]), loaded.GetTokens(ids[130]));
        Assert.Null(loaded.GetTokens(1));
    }

    [Fact]
    public void Muvera_corrupt_or_inconsistent_files_are_rejected()
    {
        using var dir = new TempDir();
        var (docs, _) = MuveraTestData.Make(50, 1, 8, seed: 2);
        using (var index = new MultiVectorIndex(8, Options, "Flat", TokenEncoding.F32))
        {
            index.Build(docs);
            index.Save(dir.File("a"));
            index.Save(dir.File("b"));
        }
        string tokens = Path.Combine(dir.File("a"), MultiVectorIndex.TokensFileName);
        var bytes = File.ReadAllBytes(tokens);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(tokens, bytes);
        Assert.Throws<CorruptIndexException>(() => MultiVectorIndex.Load(dir.File("a")));
        // An FDE index that does not belong to the token file (another item count) is caught.
        using (var other = new MultiVectorIndex(8, Options, "Flat", TokenEncoding.F32))
        {
            other.Build(docs.Slice(0, 40));
            other.FdeIndex.Save(Path.Combine(dir.File("b"), MultiVectorIndex.FdeFileName));
        }
        var e = Assert.Throws<CorruptIndexException>(() => MultiVectorIndex.Load(dir.File("b")));
        Assert.Contains("40", e.Message);
        Assert.Throws<FileNotFoundException>(() => MultiVectorIndex.Load(dir.File("missing")));
    }

    [Fact]
    public void Muvera_bad_inputs_get_clear_errors()
    {
        var (docs, queries) = MuveraTestData.Make(30, 2, 8, seed: 3);
        using var index = new MultiVectorIndex(8, Options, "IVF4,Flat", TokenEncoding.F16);
        var notTrained = Assert.Throws<InvalidOperationException>(() => index.Add(docs, Enumerable.Range(0, 30).Select(i => (long)i).ToArray()));
        Assert.Contains("not trained", notTrained.Message);
        index.Build(docs);
        var other = MultiVectorSet.FromItems([[new float[5]]]);
        var mixed = Assert.Throws<ArgumentException>(() => index.Search(other, 1, new float[1], new long[1]));
        Assert.Contains("Mixed dimensions", mixed.Message);
        Assert.Throws<ArgumentException>(() => index.Add(docs.Slice(0, 2), [100, 100]));
        Assert.Throws<ArgumentException>(() => index.Add(docs.Slice(0, 1), [5]));
        Assert.Throws<ArgumentException>(() => index.Add(docs.Slice(0, 1), [-1]));
        var big = new MultiVectorSet(8, Enumerable.Repeat(70000f, 8).ToArray(), [1]);
        Assert.Contains("half-precision", Assert.Throws<ArgumentException>(() => index.Add(big, [500])).Message);
        var s = new float[2 * 5];
        var l = new long[2 * 5];
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(queries, 5, s, l, new MuveraSearchParameters { Candidates = 3 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(queries, 5, s, l, new MuveraSearchParameters { Candidates = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(queries, 5, s, l, new MuveraSearchParameters { Repetitions = 11 }));
        Assert.Throws<ArgumentException>(() => index.SearchExact(queries, 5, s, l, new MuveraSearchParameters()));
        Assert.Throws<ArgumentException>(() => new MultiVectorIndex(8, Options, "Nope"));
        Assert.Equal(30, index.Count); // rejected calls changed nothing
    }

    /// <summary>
    /// An empty batch (FromItems of no items cannot know d, so it carries a placeholder dimension) adds nothing and
    /// searching it finds nothing, as an empty batch does with the single-vector indexes; an untrained IVF FDE index
    /// still says so, as IVF does for an empty Add; a wrong id count is still an error.
    /// </summary>
    [Theory]
    [InlineData("Flat")]
    [InlineData("HNSW16")]
    [InlineData("IVF4,Flat")]
    public void Muvera_an_empty_batch_is_a_no_op(string spec)
    {
        var (docs, queries) = MuveraTestData.Make(40, 2, 32, seed: 5);
        var empty = MultiVectorSet.FromItems([]);
        Assert.Equal(0, empty.Count);
        using var index = new MultiVectorIndex(32, Options, spec);
        if (!index.IsTrained) Assert.Contains("not trained", Assert.Throws<InvalidOperationException>(() => index.Add(empty, [])).Message);
        index.Build(docs);
        index.Add(empty, []);
        index.Add(new MultiVectorSet(32, [], []), ReadOnlySpan<long>.Empty);
        Assert.Equal(40, index.Count);
        Assert.Throws<ArgumentException>(() => index.Add(empty, [1000]));
        index.Search(empty, 5, [], []);
        index.SearchExact(empty, 5, [], []);
        // The index is unchanged: a search still finds the same items.
        var s = new float[2 * 5];
        var l = new long[2 * 5];
        index.SearchExact(queries, 5, s, l);
        Assert.All(l, id => Assert.InRange(id, 0, 39));
        index.Add(docs.Slice(0, 1), [1000]);
        Assert.Equal(41, index.Count);
    }
}
