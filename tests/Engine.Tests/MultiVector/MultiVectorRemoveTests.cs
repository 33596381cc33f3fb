using Engine.Index.MultiVector;
using Engine.MultiVector;
using Engine.Tests.Support;

namespace Engine.Tests.MultiVector;

public class MultiVectorRemoveTests
{
    private static readonly MuveraOptions Options = new() { SimHashBits = 3, ProjectionDimension = 8, Repetitions = 6, Seed = 11 };

    /// <summary>The items of <paramref name="set"/> whose numbers are in <paramref name="keep"/>, in order.</summary>
    private static MultiVectorSet Select(MultiVectorSet set, IReadOnlyList<int> keep)
    {
        var items = new List<float[][]>();
        foreach (int i in keep)
        {
            var tokens = new float[set.TokenCount(i)][];
            for (int t = 0; t < tokens.Length; t++) tokens[t] = set.Item(i).Slice(t * set.Dimension, set.Dimension).ToArray();
            items.Add(tokens);
        }
        return MultiVectorSet.FromItems(items);
    }

    private static (float[] Scores, long[] Labels) Search(MultiVectorIndex index, MultiVectorSet queries, int k, int candidates, bool exact = false, SearchParameters? fde = null)
    {
        var s = new float[queries.Count * k];
        var l = new long[queries.Count * k];
        if (exact) index.SearchExact(queries, k, s, l, new SearchParameters { Threads = 1 });
        else index.Search(queries, k, s, l, new MuveraSearchParameters { Candidates = candidates, Threads = 1, FdeParameters = fde });
        return (s, l);
    }

    [Theory]
    [InlineData("Flat", TokenEncoding.F32)]
    [InlineData("Flat", TokenEncoding.F16)]
    [InlineData("HNSW8", TokenEncoding.F16)]
    [InlineData("IVF4,Flat", TokenEncoding.F32)]
    public void Removed_items_are_never_returned_and_the_rest_match_an_index_built_without_them(string spec, TokenEncoding tokens)
    {
        var (docs, queries) = MuveraTestData.Make(120, 12, 16, seed: 23);
        var ids = Enumerable.Range(0, docs.Count).Select(i => 500L + 2 * i).ToArray();
        using var index = new MultiVectorIndex(16, Options, spec, tokens);
        index.Train(docs);
        index.Add(docs, ids);
        long tokensBefore = index.TokenCount;
        // Every third item, plus ids that are absent or repeated (ignored).
        var gone = Enumerable.Range(0, docs.Count).Where(i => i % 3 == 1).ToArray();
        var request = gone.Select(i => ids[i]).Concat([ids[gone[0]], 7L, -4L, 10_000L]).ToArray();
        Assert.Equal(gone.Length, index.Remove(request));
        Assert.Equal(docs.Count - gone.Length, index.Count);
        Assert.Equal(docs.Count - gone.Length, index.FdeIndex.Count);
        Assert.Equal(tokensBefore - gone.Sum(docs.TokenCount), index.TokenCount);
        Assert.Equal(0, index.Remove(request)); // already gone
        foreach (int i in gone) Assert.Null(index.GetTokens(ids[i]));

        var keep = Enumerable.Range(0, docs.Count).Where(i => i % 3 != 1).ToArray();
        var goneIds = gone.Select(i => ids[i]).ToHashSet();
        foreach (int i in keep.Take(10))
        {
            var expected = Select(docs, [i]).Tokens.ToArray();
            var got = index.GetTokens(ids[i])!;
            Assert.Equal(expected.Length, got.Length);
            for (int j = 0; j < got.Length; j++) Assert.Equal(expected[j], got[j], tokens == TokenEncoding.F32 ? 0f : 1e-3f);
        }

        // Re-ranking every remaining item is exact: the same answer as brute force over a fresh index of the rest.
        using var fresh = new MultiVectorIndex(16, Options, "Flat", tokens);
        fresh.Build(Select(docs, keep));
        const int k = 10;
        var (es, el) = Search(fresh, queries, k, 0, exact: true);
        // (IVF probes every list so that all remaining items are candidates.)
        var all = spec.StartsWith("IVF") ? new Engine.Index.Ivf.IvfSearchParameters { Probes = 4, Threads = 1 } : null;
        var (fs, fl) = Search(index, queries, k, docs.Count, fde: all);
        var (xs, xl) = Search(index, queries, k, 0, exact: true);
        Assert.Equal(el.Select(row => row < 0 ? -1 : ids[keep[row]]).ToArray(), xl);
        Assert.Equal(es, xs);
        Assert.Equal(xl, fl);
        Assert.Equal(xs, fs);
        // Narrow candidate lists never bring a removed id back either.
        var (_, nl) = Search(index, queries, k, 20);
        Assert.DoesNotContain(nl, goneIds.Contains);
    }

    [Fact]
    public void Removal_persists_across_save_and_load_and_a_removed_id_can_come_back()
    {
        using var dir = new TempDir();
        var (docs, queries) = MuveraTestData.Make(80, 8, 12, seed: 31);
        using var index = new MultiVectorIndex(12, Options with { FinalDimension = 128 }, "HNSW8", TokenEncoding.F16);
        index.Build(docs);
        Assert.Equal(3, index.Remove([0, 40, 79]));
        index.Save(dir.File("mv"));
        using (var loaded = MultiVectorIndex.Load(dir.File("mv")))
        {
            Assert.Equal(77, loaded.Count);
            Assert.Equal(index.TokenCount, loaded.TokenCount);
            Assert.Null(loaded.GetTokens(40));
            Assert.Equal(index.GetTokens(41), loaded.GetTokens(41));
            var (s1, l1) = Search(index, queries, 5, 30);
            var (s2, l2) = Search(loaded, queries, 5, 30);
            Assert.Equal(l1, l2);
            Assert.Equal(s1, s2);
            Assert.DoesNotContain(l2, id => id is 0 or 40 or 79);
            var (_, all) = Search(loaded, queries, 77, 77, exact: true);
            Assert.DoesNotContain(all, id => id is 0 or 40 or 79 or -1);
        }
        // Removing after a load works on the loaded files' index too, and the id can be added again.
        using var again = MultiVectorIndex.Load(dir.File("mv"));
        Assert.Equal(1, again.Remove([41]));
        again.Add(docs.Slice(40, 1), [40]);
        Assert.Equal(77, again.Count);
        Assert.Equal(docs.Item(40).Length, again.GetTokens(40)!.Length);
        var (_, top) = Search(again, docs.Slice(40, 1), 1, 77);
        Assert.Equal(40, top[0]); // an item is its own best Chamfer match among unit-token sets of this data
    }

    [Fact]
    public void Removing_every_item_leaves_an_empty_index_that_searches_and_saves()
    {
        using var dir = new TempDir();
        var (docs, queries) = MuveraTestData.Make(20, 3, 8, seed: 41);
        using var index = new MultiVectorIndex(8, Options, "Flat", TokenEncoding.F32);
        index.Build(docs);
        Assert.Equal(20, index.Remove(Enumerable.Range(0, 20).Select(i => (long)i).ToArray()));
        Assert.Equal(0, index.Count);
        Assert.Equal(0, index.TokenCount);
        var (s, l) = Search(index, queries, 4, 10);
        Assert.All(l, id => Assert.Equal(-1, id));
        Assert.All(s, v => Assert.Equal(float.NegativeInfinity, v));
        index.Save(dir.File("empty"));
        using var loaded = MultiVectorIndex.Load(dir.File("empty"));
        Assert.Equal(0, loaded.Count);
        Assert.Equal(0, loaded.Remove([3]));
    }
}
