using Engine.Index;
using Engine.Index.Hnsw;
using Engine.Storage.Format;
using Engine.Tests.Ivf;
using Engine.Tests.Support;

namespace Engine.Tests.Hnsw;

public class HnswPersistenceTests
{
    private const int N = 1200, D = 16, NQ = 30, K = 5;
    private static readonly (float[] Data, float[] Queries) Set = HnswTestData.Split(N, NQ, D, 12, seed: 61);
    private static readonly float[] Data = Set.Data, Queries = Set.Queries;
    private static readonly long[] Ids = IvfTestData.Ids(N, 10);

    private static HnswIndex Build(string spec, Metric metric = Metric.L2)
    {
        var index = new HnswIndex(spec, D, metric) { BuildThreads = 1, RepairThreshold = 1, DefaultEf = 40 };
        index.Train(Data);
        index.Add(Data, Ids, Ids.Select(i => (double)(i % 100)).ToArray());
        index.Remove(Ids.Where(i => i % 7 == 0).ToArray()); // tombstones are saved as they are
        return index;
    }

    private static (float[] D, long[] L) Search(IVectorIndex index)
    {
        var d = new float[NQ * K];
        var l = new long[NQ * K];
        index.Search(Queries, K, d, l, new SearchParameters { Threads = 1 });
        return (d, l);
    }

    [Theory]
    [InlineData("HNSW8,efC40", Metric.L2)]
    [InlineData("HNSW8,efC40,SQ8", Metric.Cosine)]
    [InlineData("HNSW8,efC40,F16", Metric.InnerProduct)]
    public void SaveLoadGivesTheSameIndex(string spec, Metric metric)
    {
        using var dir = new TempDir();
        using var index = Build(spec, metric);
        string path = dir.File("a.hnsw");
        index.Save(path);
        using var loaded = HnswIndex.Load(path);
        using var viaFactory = IndexFactory.Load(path);
        Assert.IsType<HnswIndex>(viaFactory);
        Assert.Equal(spec, loaded.Description);
        Assert.Equal(metric, loaded.Metric);
        Assert.Equal(index.Count, loaded.Count);
        Assert.Equal(index.DeletedCount, loaded.DeletedCount);
        Assert.Equal(index.TopLevel, loaded.TopLevel);
        Assert.Equal(40, loaded.DefaultEf);
        var (d0, l0) = Search(index);
        var (d1, l1) = Search(loaded);
        var (d2, l2) = Search(viaFactory);
        Assert.Equal(l0, l1);
        Assert.Equal(d0, d1);
        Assert.Equal(l0, l2);
        var window = new HnswSearchParameters { AttributeMin = 10, AttributeMax = 12, Threads = 1 }; // attributes are saved
        Assert.Equal(IvfTestData.SearchLabels(index, Queries, K, window), IvfTestData.SearchLabels(loaded, Queries, K, window));
        Assert.All(IvfTestData.SearchLabels(loaded, Queries, K, window), l => Assert.InRange(l % 100, 10, 12));
        var a = new float[D];
        var b = new float[D];
        Assert.True(index.TryReconstruct(11, a));
        Assert.True(loaded.TryReconstruct(11, b));
        Assert.Equal(a, b);

        // Saving the loaded index gives the same bytes; it keeps accepting inserts (reusing no slot: none is free).
        loaded.Save(dir.File("b.hnsw"));
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(dir.File("b.hnsw")));
        loaded.Add(Queries, IvfTestData.Ids(NQ, 100_000));
        Assert.Equal(index.Count + NQ, loaded.Count);
        if (metric != Metric.InnerProduct) // a query is its own nearest neighbour (not so for inner product)
            Assert.Equal(100_000 + 3, IvfTestData.SearchLabels(loaded, Queries.AsSpan(3 * D, D).ToArray(), 1)[0]);
    }

    [Theory]
    [InlineData("HNSW8,efC40")]
    [InlineData("HNSW8,efC40,F16")]
    [InlineData("HNSW8,efC40,SQ8")]
    public void MappedLoadSearchesLikeAHeapLoadUntilTheFirstInsert(string spec)
    {
        using var dir = new TempDir();
        using var index = Build(spec);
        string path = dir.File("m.hnsw");
        index.Save(path);
        using var heap = HnswIndex.Load(path);
        using var mapped = HnswIndex.Load(path, mapped: true);
        Assert.False(heap.IsMapped);
        Assert.True(mapped.IsMapped);
        Assert.Equal(0, heap.MappedBytes);
        Assert.True(mapped.MappedBytes >= (long)N * D, $"mapped {mapped.MappedBytes}");
        Assert.True(mapped.MemoryBytes < heap.MemoryBytes - mapped.MappedBytes / 2, $"heap {heap.MemoryBytes}, mapped {mapped.MemoryBytes}");
        var (d0, l0) = Search(heap);
        var (d1, l1) = Search(mapped);
        Assert.Equal(l0, l1);
        Assert.Equal(d0, d1);

        // Saving over the mapped file is safe (rename); the first insert copies the rows to the heap and unmaps.
        mapped.Save(path);
        Assert.Equal(l0, Search(mapped).L);
        mapped.Remove([11]);
        Assert.True(mapped.IsMapped); // removal writes no vector
        mapped.Add(Queries.AsSpan(0, D), [1_000_000]);
        Assert.False(mapped.IsMapped);
        Assert.Equal(0, mapped.MappedBytes);
        Assert.Equal(1_000_000, IvfTestData.SearchLabels(mapped, Queries.AsSpan(0, D).ToArray(), 1)[0]);
        using var again = IndexFactory.Load(path);
        Assert.True(((HnswIndex)again).IsMapped);
        Assert.Equal(l0, Search(again).L);
    }

    [Fact]
    public void EmptyIndexRoundTrips()
    {
        using var dir = new TempDir();
        using var index = new HnswIndex("HNSW16", D);
        index.Save(dir.File("e.hnsw"));
        using var loaded = HnswIndex.Load(dir.File("e.hnsw"));
        Assert.Equal(0, loaded.Count);
        Assert.Equal(-1, loaded.TopLevel);
        loaded.Add(Data.AsSpan(0, 10 * D), Ids.AsSpan(0, 10));
        Assert.Equal(10, loaded.Count);
    }

    [Fact]
    public void FlippedByteOrTruncationIsRejected()
    {
        using var dir = new TempDir();
        using var index = Build("HNSW8,efC40");
        string path = dir.File("c.hnsw");
        index.Save(path);
        var bytes = File.ReadAllBytes(path);
        for (int at = 200; at < bytes.Length; at += bytes.Length / 7)
        {
            var bad = (byte[])bytes.Clone();
            bad[at] ^= 0x5A;
            File.WriteAllBytes(path, bad);
            var ex = Assert.Throws<CorruptIndexException>(() => HnswIndex.Load(path));
            Assert.Equal(path, ex.FilePath);
        }
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Throws<CorruptIndexException>(() => HnswIndex.Load(path));
    }

    [Theory]
    [InlineData(0, "links to")]        // a level-0 link past the slots
    [InlineData(1, "links")]           // a link count above the capacity
    [InlineData(2, "entry point")]     // the entry point outside the slots
    public void InconsistentFileWithValidChecksumsIsRejected(int damage, string problem)
    {
        using var dir = new TempDir();
        using var index = Build("HNSW8,efC40");
        string good = dir.File("good.hnsw"), bad = dir.File("bad.hnsw");
        index.Save(good);
        RewriteSections(good, bad, damage);
        var ex = Assert.Throws<CorruptIndexException>(() => HnswIndex.Load(bad));
        Assert.Contains(problem, ex.Problem);
        Assert.Equal(bad, ex.FilePath);
        if (damage != 2) Assert.True(ex.Offset > 0, $"offset {ex.Offset}");
    }

    // Copies an index file section by section (fresh checksums), damaging one field.
    private static void RewriteSections(string from, string to, int damage)
    {
        using var r = new IndexFileReader(from, "hnsw");
        var hver = r.ReadArray<int>("HVER");
        var sqrg = r.ReadArray<float>("SQRG");
        var ids = r.ReadArray<long>("IDS ");
        var attr = r.ReadArray<double>("ATTR");
        var stat = r.ReadArray<byte>("STAT");
        var lvls = r.ReadArray<int>("LVLS");
        var lnk0 = r.ReadArray<int>("LNK0");
        var lnku = r.ReadArray<int>("LNKU");
        var vecs = r.ReadSection("VECS");
        r.VerifyEnd();
        int stride = 1 + 2 * hver[1];
        int node = Array.FindIndex(stat, s => s == 0);
        switch (damage)
        {
            case 0: lnk0[node * stride + 1] = ids.Length + 5; break;
            case 1: lnk0[node * stride] = stride; break;
            default: hver[10] = ids.Length; break;
        }
        using var w = new IndexFileWriter(to, r.Header);
        w.WriteArray<int>("HVER", hver);
        w.WriteArray<float>("SQRG", sqrg);
        w.WriteArray<long>("IDS ", ids);
        w.WriteArray<double>("ATTR", attr);
        w.WriteArray<byte>("STAT", stat);
        w.WriteArray<int>("LVLS", lvls);
        w.WriteArray<int>("LNK0", lnk0);
        w.WriteArray<int>("LNKU", lnku);
        w.WriteSection("VECS", vecs);
        w.Commit();
    }
}
