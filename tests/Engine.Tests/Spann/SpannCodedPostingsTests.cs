using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Spann;
using Engine.Storage.Postings;
using Engine.Storage.Wal;
using Engine.Tests.Storage;
using Xunit.Abstractions;

namespace Engine.Tests.Spann;

/// <summary>The spec grammar of coded SPANN postings (<c>codec=</c>, <c>rerank=</c>).</summary>
public class SpannCodedSpecTests
{
    [Theory]
    [InlineData("SPANN(codec=SQ8)")]
    [InlineData("SPANN(codec=PQ8)")]
    [InlineData("SPANN(codec=PQ16x4)")]
    [InlineData("SPANN(codec=RaBitQ)")]
    [InlineData("SPANN(codec=RaBitQ4)")]
    [InlineData("SPANN(codec=RaBitQfs1)")]
    [InlineData("SPANN(codec=RaBitQfs4)")]
    [InlineData("SPANN(codec=BIN2)")]
    [InlineData("SPANN(probes=12,codec=PQ8,rerank=4)")]
    [InlineData("SPANN(postings=100,closure=0.25,codec=SQ8,rerank=2)")]
    [InlineData("SPANN(codec=OPQ8,PQ8)")]
    [InlineData("SPANN(codec=OPQ8,PQ16x4)")]
    [InlineData("SPANN(codec=OPQ4,SQ8)")]
    [InlineData("SPANN(codec=OPQ8,BIN2)")]
    [InlineData("SPANN(probes=12,codec=OPQ8,PQ8,rerank=4)")]
    public void Format_OfParse_GivesTheSpecBack(string spec)
    {
        Assert.True(SpannSpec.TryParse(spec, out var o));
        Assert.True(o.IsCoded);
        Assert.Equal(spec, SpannSpec.Format(o));
        Assert.True(SpannSpec.TryParse(SpannSpec.Format(o), out var again));
        Assert.Equal(o, again);
    }

    [Theory]
    [InlineData("SPANN(codec=sq8)", "SPANN(codec=SQ8)")]
    [InlineData("SPANN(codec=rabitq1)", "SPANN(codec=RaBitQ)")]
    [InlineData("SPANN(codec=rabitqFS4)", "SPANN(codec=RaBitQfs4)")]
    [InlineData("SPANN(codec=pq8x8)", "SPANN(codec=PQ8)")]
    [InlineData("SPANN(codec=none)", "SPANN")]
    [InlineData("SPANN(codec=opq8,pq8x8)", "SPANN(codec=OPQ8,PQ8)")]
    [InlineData("SPANN(codec=OPQ8, PQ8 ,rerank=4)", "SPANN(codec=OPQ8,PQ8,rerank=4)")]
    public void Parse_Canonicalises(string spec, string canonical)
    {
        Assert.True(SpannSpec.TryParse(spec, out var o));
        Assert.Equal(canonical, SpannSpec.Format(o));
    }

    [Theory]
    [InlineData("SPANN(codec=LSH)", "codec='LSH'")]
    [InlineData("SPANN(codec=PQ0)", "codec='PQ0'")]
    [InlineData("SPANN(codec=PQ8x3)", "codec='PQ8x3'")]
    [InlineData("SPANN(codec=RaBitQ9)", "codec='RaBitQ9'")]
    [InlineData("SPANN(codec=RaBitQfs2)", "codec='RaBitQfs2'")]
    [InlineData("SPANN(codec=RaBitQfs)", "codec='RaBitQfs'")]
    [InlineData("SPANN(codec=BIN5)", "codec='BIN5'")]
    [InlineData("SPANN(codec=BIN0)", "codec='BIN0'")]
    [InlineData("SPANN(codec=)", "codec=''")]
    [InlineData("SPANN(codec=SQ8,rerank=0)", "Rerank=0")]
    [InlineData("SPANN(codec=SQ8,rerank=x)", "rerank='x'")]
    [InlineData("SPANN(rerank=8)", "rerank applies to coded postings only")]
    [InlineData("SPANN(rerank=2,codec=none)", "rerank applies to coded postings only")]
    [InlineData("SPANN(codec=OPQ8)", "OPQ8 needs the codec")]
    [InlineData("SPANN(codec=OPQ0,PQ8)", "OPQ sub-quantizer count '0'")]
    [InlineData("SPANN(codec=OPQx,PQ8)", "OPQ sub-quantizer count 'x'")]
    [InlineData("SPANN(codec=OPQ8,OPQ8,PQ8)", "one OPQ rotation at most")]
    [InlineData("SPANN(codec=OPQ8,PQ8x3)", "PQ bits '3'")]
    [InlineData("SPANN(codec=OPQ8,RaBitQ)", "random rotation")]
    [InlineData("SPANN(codec=OPQ8,RaBitQfs4)", "random rotation")]
    [InlineData("SPANN(codec=PQ8,PQ8)", "'PQ8' is not key=value")]
    [InlineData("SPANN(codec=OPQ8,PQ8,rerank)", "'rerank' is not key=value")]
    public void BadCodecValues_AreNamed(string spec, string named)
    {
        var e = Assert.Throws<ArgumentException>(() => SpannSpec.TryParse(spec, out _));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void PQ_NotDividingTheDimension_IsRejectedAtCreate()
    {
        var e = Assert.Throws<ArgumentException>(() => new SpannIndex(30, Metric.L2, new SpannOptions { Codec = "PQ7" }));
        Assert.Contains("PQ7", e.Message);
        using var dir = new TestDirectory();
        Assert.Throws<ArgumentException>(() => SpannIndex.Create(dir.Path, 30, Metric.L2, new SpannOptions { Codec = "PQ7" }));
        Assert.False(File.Exists(Path.Combine(dir.Path, SpannIndex.MetaFileName)));
        var bad = Assert.Throws<ArgumentException>(() => new SpannOptions { Codec = "OPQ" }.Validate());
        Assert.Equal("Codec", bad.ParamName);
    }

    [Fact]
    public void SearchParameters_RejectABadRerank_AndTheFactoryMapsIt()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpannSearchParameters { Rerank = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpannSearchParameters { Rerank = SpannOptions.MaxRerank + 1 }.Validate());
        using var coded = new SpannIndex(8, Metric.L2, new SpannOptions { Codec = "SQ8" });
        var p = (SpannSearchParameters)IndexFactory.CreateParameters(coded, new Dictionary<string, string> { ["probes"] = "4", ["rerank"] = "3" }, 1);
        Assert.Equal(3, p.Rerank);
        using var raw = new SpannIndex(8, Metric.L2);
        Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(raw, new Dictionary<string, string> { ["rerank"] = "3" }, 1));
        using var viaFactory = IndexFactory.Create("SPANN(codec=PQ4,rerank=2)", 8, Metric.L2);
        Assert.Equal("SPANN(codec=PQ4,rerank=2)", viaFactory.Description);
    }
}

/// <summary>Coded SPANN postings: recall, persistence, updates with splits and merges, recovery, raw files unchanged.</summary>
public class SpannCodedPostingsTests(ITestOutputHelper output)
{
    private const int D = 32;

    private static long[] Range(long start, int count) => Enumerable.Range(0, count).Select(i => start + i).ToArray();

    // A durable index at dir/idx (file log, postings of 16, no read cache) holding the first rows of data, maintained
    // and checkpointed, then closed; returns its directory.
    private static string BuildDurable(TestDirectory dir, float[] data, int rows, string? codec, int d = D)
    {
        string idx = Path.Combine(dir.Path, "idx");
        using var built = SpannIndex.Create(idx, d, Metric.L2, new SpannOptions { PostingSize = 16, Codec = codec, CacheBytes = 0 }, FileWriteAheadLogProvider.Instance);
        built.Train(data);
        built.Add(data.AsSpan(0, rows * d), Range(0, rows));
        built.Maintain();
        built.Checkpoint();
        return idx;
    }

    private static (float[] Data, float[] Queries, FlatIndex Exact) Set(int n, Metric metric = Metric.L2)
    {
        var data = SpannTestData.Clustered(n, D, seed: 71, clusters: 100);
        var queries = SpannTestData.Clustered(200, D, seed: 72, clusters: 100);
        var exact = new FlatIndex(D, metric);
        exact.Add(data, Range(0, n));
        return (data, queries, exact);
    }

    [Theory]
    [InlineData("SQ8", Metric.L2, 0.90)]
    [InlineData("PQ8", Metric.L2, 0.90)]
    [InlineData("PQ16x4", Metric.L2, 0.90)]
    [InlineData("RaBitQ4", Metric.L2, 0.90)]
    [InlineData("RaBitQ", Metric.L2, 0.80)]
    [InlineData("RaBitQfs4", Metric.L2, 0.90)]
    [InlineData("RaBitQfs1", Metric.L2, 0.80)]
    [InlineData("RaBitQfs4", Metric.Cosine, 0.90)]
    [InlineData("RaBitQfs4", Metric.InnerProduct, 0.85)]
    [InlineData("BIN2", Metric.L2, 0.80)]
    [InlineData("BIN4", Metric.Cosine, 0.85)]
    [InlineData("SQ8", Metric.Cosine, 0.90)]
    [InlineData("PQ8", Metric.InnerProduct, 0.85)]
    [InlineData("OPQ8,PQ8", Metric.L2, 0.90)]
    [InlineData("OPQ8,PQ16x4", Metric.L2, 0.90)]
    [InlineData("OPQ8,PQ8", Metric.InnerProduct, 0.85)]
    [InlineData("OPQ4,SQ8", Metric.Cosine, 0.90)]
    [InlineData("OPQ8,BIN2", Metric.L2, 0.80)]
    public void Recall_IsCloseToRawPostings_AndAboveAFloor(string codec, Metric metric, double floor)
    {
        var (data, queries, exact) = Set(4000, metric);
        using var _ = exact;
        var options = new SpannOptions { PostingSize = 32, Codec = codec };
        using var coded = new SpannIndex(D, metric, options) { BackgroundMaintenance = false };
        coded.Train(data);
        coded.Add(data, Range(0, 4000));
        using var raw = new SpannIndex(D, metric, options with { Codec = null }) { BackgroundMaintenance = false };
        raw.Train(data);
        raw.Add(data, Range(0, 4000));
        var stats = new SearchStats();
        var p = new SpannSearchParameters { Probes = 16, Threads = 1, Stats = stats };
        double rCoded = SpannTestData.Recall(coded, exact, queries, 10, p);
        double rRaw = SpannTestData.Recall(raw, exact, queries, 10, new SpannSearchParameters { Probes = 16, Threads = 1 });
        output.WriteLine($"{codec} {metric}: recall@10 coded {rCoded:F4}, raw {rRaw:F4}; per query {stats.CodesScanned / 200.0:F0} codes, {stats.Refined / 200.0:F1} refined");
        Assert.True(rCoded >= floor, $"{codec} recall {rCoded:F4} is below {floor}");
        // 1-bit codes of whole vectors (center at the origin) estimate coarsely: they need a wider re-rank for the same recall.
        double gap = codec is "RaBitQ" or "RaBitQfs1" ? 0.12 : 0.05;
        Assert.True(rCoded >= rRaw - gap, $"{codec} recall {rCoded:F4} is more than {gap} below raw postings' {rRaw:F4}");
        Assert.True(stats.CodesScanned > 0);
        Assert.InRange(stats.Refined, 1, 200L * 10 * SpannOptions.DefaultRerank);
        // A larger per-call re-rank factor never lowers recall much and reads more refine records (RaBitQ: at least as
        // many, since its re-ranking stops at the first candidate whose lower bound cannot beat the k-th).
        var wide = new SearchStats();
        double rWide = SpannTestData.Recall(coded, exact, queries, 10, new SpannSearchParameters { Probes = 16, Threads = 1, Rerank = 32, Stats = wide });
        if (codec.StartsWith("RaBitQ", StringComparison.Ordinal)) Assert.True(wide.Refined >= stats.Refined);
        else Assert.True(wide.Refined > stats.Refined);
        Assert.True(rWide >= rCoded - 0.01, $"rerank=32 recall {rWide:F4} is below rerank=8's {rCoded:F4}");
        // Distances come from the refine file: they are the exact ones.
        var d1 = new float[10]; var l1 = new long[10]; var d2 = new float[10]; var l2 = new long[10];
        coded.Search(queries.AsSpan(0, D), 10, d1, l1, p);
        exact.Search(queries.AsSpan(0, D), 10, d2, l2);
        for (int i = 0; i < 10; i++)
        {
            int at = Array.IndexOf(l2, l1[i]);
            if (at >= 0) Assert.Equal(d2[at], d1[i], 3);
        }
    }

    [Theory]
    [InlineData("PQ8")]
    [InlineData("SQ8")]
    [InlineData("RaBitQ2")]
    [InlineData("RaBitQfs4")]
    [InlineData("BIN3")]
    [InlineData("OPQ8,PQ8")]
    [InlineData("OPQ4,BIN2")]
    public void SaveAndReopen_GiveBitIdenticalResults_AndExactVectors(string codec)
    {
        var (data, queries, exact) = Set(3000);
        using var _ = exact;
        using var dir = new TestDirectory();
        string idx = Path.Combine(dir.Path, "idx"), copy = Path.Combine(dir.Path, "copy");
        var options = new SpannOptions { PostingSize = 32, Codec = codec };
        float[] d0 = new float[200 * 10]; long[] l0 = new long[200 * 10];
        var p = new SpannSearchParameters { Probes = 12, Threads = 1 };
        long memory;
        using (var built = SpannIndex.Create(idx, D, Metric.L2, options, FileWriteAheadLogProvider.Instance))
        {
            built.Train(data);
            built.Add(data, Range(0, 3000));
            built.Maintain();
            built.Checkpoint();
            built.Search(queries, 10, d0, l0, p);
            built.Save(copy);
            memory = built.MemoryBytes;
            Assert.True(built.RefineBytes >= 3000L * (24 + 4 * D));
            Assert.True(memory < 3000L * D * 4, $"resident {memory} bytes is not below the raw vectors' {3000L * D * 4}");
        }
        foreach (string path in new[] { idx, copy })
        {
            using var reopened = SpannIndex.Open(path);
            Assert.True(reopened.IsCoded);
            Assert.Equal(SpannSpec.Format(options), reopened.Description);
            var d1 = new float[200 * 10]; var l1 = new long[200 * 10];
            reopened.Search(queries, 10, d1, l1, p);
            Assert.Equal(l0, l1);
            Assert.Equal(d0, d1);
            var v = new float[D];
            foreach (long id in new long[] { 0, 17, 1234, 2999 })
            {
                Assert.True(reopened.TryReconstruct(id, v));
                Assert.Equal(data.AsSpan((int)id * D, D).ToArray(), v);
            }
            var verify = reopened.Verify();
            Assert.True(verify.IsClean, $"{verify.ProblemCount} problems: " + string.Join("; ", verify.Problems));
        }
        // The copy holds only live records: one per id.
        Assert.Equal(3000L * (24 + 4 * D), new FileInfo(Path.Combine(copy, "vectors-0.dat")).Length);
    }

    /// <summary>
    /// +20 % inserts and −10 % deletes (plus a whole neighbourhood, so postings empty and merge) on an index trained on a
    /// quarter of the data, so inserts overfill postings and split them. Splits and merges of coded postings read the
    /// exact vectors from the refine file, so the coded index makes the very same splits and merges as one with raw
    /// postings given the same operations: same posting count, and recall within 0.03 of it at the same probes.
    /// </summary>
    [Theory]
    [InlineData("PQ8")]
    [InlineData("SQ8")]
    [InlineData("RaBitQfs4")]
    public void Inserts20_Deletes10_WithSplitsAndMerges_MatchRawPostingsUnderTheSameUpdates(string codec)
    {
        const int n = 4000;
        var data = SpannTestData.Clustered(n, D, seed: 41, clusters: 150);
        var extra = SpannTestData.Clustered(n / 5, D, seed: 42, clusters: 150);
        var queries = SpannTestData.Clustered(200, D, seed: 43, clusters: 150);
        var options = new SpannOptions { PostingSize = 16, MaxPostingSize = 48, MinPostingSize = 4, Codec = codec };
        var search = new SpannSearchParameters { Probes = 10, Threads = 1 };
        var rng = new Random(44);
        var deletedSet = new HashSet<long>(Range(0, n).OrderBy(_ => rng.Next()).Take(n / 10));
        using (var all = new FlatIndex(D, Metric.L2))
        {
            all.Add(data, Range(0, n));
            var nd = new float[200]; var nl = new long[200];
            all.Search(data.AsSpan(0, D), 200, nd, nl);
            deletedSet.UnionWith(nl);
        }
        var deleted = deletedSet.Order().ToArray();

        SpannIndex Updated(SpannOptions o, out int headsBefore, out int headsAfterInsert)
        {
            var index = new SpannIndex(D, Metric.L2, o) { BackgroundMaintenance = false };
            index.Train(data.AsSpan(0, n / 4 * D)); // few heads, so inserts overfill postings and split them
            headsBefore = index.PostingCount;
            index.Add(data, Range(0, n));
            index.Add(extra, Range(n, n / 5));
            index.WaitForMaintenance();
            headsAfterInsert = index.PostingCount;
            Assert.Equal(deleted.Length, index.Remove(deleted));
            index.Maintain();
            return index;
        }
        using var updated = Updated(options, out int before, out int afterInsert);
        using var raw = Updated(options with { Codec = null }, out _, out _);
        Assert.True(afterInsert > before, $"no posting was split ({before} heads before, {afterInsert} after)");
        Assert.True(updated.PostingCount < afterInsert, $"no posting was merged ({afterInsert} heads before the deletes, {updated.PostingCount} after)");
        Assert.Equal(raw.PostingCount, updated.PostingCount);
        var verify = updated.Verify();
        Assert.True(verify.IsClean, $"{verify.ProblemCount} problems: " + string.Join("; ", verify.Problems));

        var (liveIds, liveVectors) = SpannTestData.Live(data, extra, D, deleted);
        var v = new float[D];
        foreach (long id in liveIds.Where(i => i % 37 == 0))
        {
            Assert.True(updated.TryReconstruct(id, v));
            Assert.Equal(liveVectors.AsSpan(Array.IndexOf(liveIds, id) * D, D).ToArray(), v);
        }
        foreach (long id in deleted.Take(50)) Assert.False(updated.TryReconstruct(id, v));
        using var exact = new FlatIndex(D, Metric.L2);
        exact.Add(liveVectors, liveIds);
        Assert.Equal(exact.Count, updated.Count);
        double rUpdated = SpannTestData.Recall(updated, exact, queries, 10, search);
        double rRaw = SpannTestData.Recall(raw, exact, queries, 10, search);
        output.WriteLine($"{codec}: recall@10 coded {rUpdated:F4}, raw {rRaw:F4} after the same updates ({updated.PostingCount} postings; {before} → {afterInsert} by splits)");
        Assert.True(rRaw < 0.995, $"raw recall {rRaw:F4} is saturated; the comparison would prove nothing");
        Assert.True(rUpdated >= rRaw - 0.03, $"coded recall after updates {rUpdated:F4} is more than 0.03 below raw postings' {rRaw:F4}");
    }

    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void AcknowledgedWrites_SurviveACrash_AndATornRefineTailIsCut(string kind)
    {
        var (data, _, exact) = Set(2000);
        using var __ = exact;
        using var dir = new TestDirectory();
        var options = new SpannOptions { PostingSize = 16, MaxPostingSize = 48, MinPostingSize = 4, Codec = "PQ8" };
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, options, TestLogs.Provider(kind)))
        {
            idx.BackgroundMaintenance = false;
            idx.Train(data);
            idx.Add(data.AsSpan(0, 1000 * D), Range(0, 1000));
            idx.Checkpoint();
            idx.Add(data.AsSpan(1000 * D, 1000 * D), Range(1000, 1000)); // logged, not checkpointed
            Assert.Equal(100, idx.Remove(Range(0, 100)));
            idx.WaitForMaintenance(); // splits after the checkpoint write postings and refine reads the open must redo
            // "Crash": no checkpoint; Dispose closes the files as a kill would leave them.
        }
        // A record torn half-way after the committed length (an append the kill interrupted).
        string refine = Path.Combine(dir.Path, "vectors-0.dat");
        using (var f = new FileStream(refine, FileMode.Append)) f.Write(new byte[(24 + 4 * D) / 2 + 3]);
        using var reopened = SpannIndex.Open(dir.Path);
        Assert.Equal(1900, reopened.Count);
        Assert.True(reopened.Recovery!.RecordsReplayed > 0);
        var v = new float[D];
        for (long id = 0; id < 2000; id += 7)
        {
            bool found = reopened.TryReconstruct(id, v);
            Assert.Equal(id >= 100, found);
            if (found) Assert.Equal(data.AsSpan((int)id * D, D).ToArray(), v);
        }
        reopened.WaitForMaintenance();
        var verify = reopened.Verify();
        Assert.True(verify.IsClean, $"{verify.ProblemCount} problems: " + string.Join("; ", verify.Problems));
        var dd = new float[5]; var ll = new long[5];
        foreach (long id in new long[] { 150, 999, 1500, 1999 })
        {
            reopened.Search(data.AsSpan((int)id * D, D), 5, dd, ll);
            Assert.Equal(id, ll[0]);
        }
    }

    [Fact]
    public void ACorruptRefineRecord_IsReportedNamingTheFile_AndACutFileIsRefused()
    {
        var (data, _, exact) = Set(1000);
        using var __ = exact;
        using var dir = new TestDirectory();
        string idx = Path.Combine(dir.Path, "idx");
        using (var built = SpannIndex.Create(idx, D, Metric.L2, new SpannOptions { PostingSize = 16, Codec = "SQ8" }, FileWriteAheadLogProvider.Instance))
        {
            built.Train(data);
            built.Add(data, Range(0, 1000));
            built.Maintain();
            built.Checkpoint();
        }
        string refine = Path.Combine(idx, "vectors-0.dat");
        long recordSize = 24 + 4 * D;
        var bytes = File.ReadAllBytes(refine);
        bytes[5 * recordSize + 40] ^= 0x5A; // a value byte of the sixth record
        File.WriteAllBytes(refine, bytes);
        using (var damaged = SpannIndex.Open(idx))
        {
            var report = damaged.Verify();
            Assert.False(report.IsClean);
            Assert.Contains(report.Problems, p => p.File.EndsWith("vectors-0.dat", StringComparison.Ordinal) && p.Offset == 5 * recordSize);
            var v = new float[D];
            var e = Assert.Throws<CorruptIndexException>(() => damaged.TryReconstruct(5, v));
            Assert.Contains("vectors-0.dat", e.FilePath);
        }
        File.WriteAllBytes(refine, bytes.AsSpan(0, bytes.Length - 10).ToArray());
        var cut = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(idx));
        Assert.Contains("vectors-0.dat", cut.FilePath);
        File.Delete(refine);
        var missing = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(idx));
        Assert.Contains("vectors-0.dat", missing.Message);
    }

    // Mapped load = copied load: the same index opened with in-place posting reads (the default) and with
    // MapPostings = false gives bit-identical results, before and after inserts that land beyond the mapping.
    [Theory]
    [InlineData(null)]
    [InlineData("RaBitQfs4")]
    [InlineData("SQ8")]
    public void MappedAndCopiedPostingReads_GiveIdenticalResults(string? codec)
    {
        var (data, queries, exact) = Set(2000);
        using var __ = exact;
        using var dir = new TestDirectory();
        string idx = BuildDurable(dir, data, 1500, codec);
        (float[] D, long[] L) SearchAll(SpannIndex index)
        {
            var dd = new float[200 * 10]; var ll = new long[200 * 10];
            index.Search(queries, 10, dd, ll, new SpannSearchParameters { Probes = 8, Threads = 1 });
            return (dd, ll);
        }
        string copyDir = Path.Combine(dir.Path, "copy");
        foreach (var f in Directory.GetFiles(idx, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(copyDir, Path.GetRelativePath(idx, f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        using var mapped = SpannIndex.Open(idx);
        using var copied = SpannIndex.Open(copyDir, new SpannOpenOptions { MapPostings = false });
        mapped.BackgroundMaintenance = copied.BackgroundMaintenance = false;
        void Same()
        {
            var a = SearchAll(mapped);
            var b = SearchAll(copied);
            Assert.Equal(b.L, a.L);
            Assert.Equal(b.D.Select(BitConverter.SingleToInt32Bits), a.D.Select(BitConverter.SingleToInt32Bits));
        }
        Same();
        foreach (var index in new[] { mapped, copied }) index.Add(data.AsSpan(1500 * D), Range(1500, 500)); // blocks past the mapping
        Same();
        Assert.True(SpannTestData.Recall(mapped, exact, queries, 10, new SpannSearchParameters { Probes = 8, Threads = 1 }) > 0.5);
    }

    // Disposing an index while other threads search it never crashes the process (postings and refine records are read
    // in place from mappings that Dispose releases only once searches in flight are done); the searches either finish
    // or fail with ObjectDisposedException.
    [Theory]
    [InlineData(null)]
    [InlineData("RaBitQfs4")]
    public void DisposeDuringSearches_EndsThemWithObjectDisposedException_NeverACrash(string? codec)
    {
        var (data, queries, exact) = Set(2000);
        using var __ = exact;
        using var dir = new TestDirectory();
        string idx = BuildDurable(dir, data, 2000, codec);
        for (int round = 0; round < 5; round++)
        {
            var index = SpannIndex.Open(idx);
            index.BackgroundMaintenance = false;
            Hardening.DisposeDuringSearchTests.SearchWhileDisposing(index, () =>
            {
                var dd = new float[200 * 5]; var ll = new long[200 * 5];
                var p = new SpannSearchParameters { Probes = 8, Threads = 1 };
                return () => index.Search(queries, 5, dd, ll, p);
            }, 5 + 7 * round);
        }
    }

    // Coded postings are stored uncompressed, so an opened index searches them in place from the mapped posting file;
    // a flipped payload byte is still caught by the block's checksum on its first read, naming the posting file.
    [Fact]
    public void ACorruptCodedPostingBlock_FailsTheMappedSearch_NamingTheFile()
    {
        const int d = 128; // 8-bit codes of 128 dimensions: LZ4 saves less than an eighth, so blocks stay uncompressed
        var data = SpannTestData.Clustered(1000, d, seed: 73, clusters: 40);
        using var dir = new TestDirectory();
        string idx = BuildDurable(dir, data, 1000, "RaBitQ8", d);
        var dd = new float[5]; var ll = new long[5];
        using (var clean = SpannIndex.Open(idx))
        {
            clean.BackgroundMaintenance = false;
            foreach (int id in new[] { 7, 500, 999 })
            {
                clean.Search(data.AsSpan(id * d, d), 5, dd, ll);
                Assert.Equal(id, ll[0]);
            }
        }
        string postings = Directory.GetFiles(idx, "postings-*.dat").Single();
        var bytes = File.ReadAllBytes(postings);
        int inPlace = 0;
        for (int at = 0; at + 4096 <= bytes.Length; at += 4096)
        {
            if (BitConverter.ToUInt32(bytes, at) != 0x42545350) continue; // "PSTB": a block starts here
            if ((BitConverter.ToUInt32(bytes, at + 20) & 1) != 0) inPlace++; // stored uncompressed: read in place
            bytes[at + PostingStore.HeaderSize + 200] ^= 0x40; // a payload byte of every block
        }
        Assert.True(inPlace > 0, "no coded posting block is stored uncompressed");
        File.WriteAllBytes(postings, bytes);
        using var damaged = SpannIndex.Open(idx);
        damaged.BackgroundMaintenance = false;
        var e = Assert.Throws<CorruptIndexException>(() => damaged.Search(data.AsSpan(7 * d, d), 5, dd, ll));
        Assert.Equal(postings, e.FilePath);
    }

    [Fact]
    public void RawPostings_WriteNoCodecSections_AndReopenedCopiesAreByteIdentical()
    {
        var (data, _, exact) = Set(1500);
        using var __ = exact;
        using var dir = new TestDirectory();
        string a = Path.Combine(dir.Path, "a"), b = Path.Combine(dir.Path, "b"), c = Path.Combine(dir.Path, "c");
        using (var raw = new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 16 }) { BackgroundMaintenance = false })
        {
            raw.Train(data);
            raw.Add(data, Range(0, 1500));
            raw.Maintain();
            raw.Save(a);
        }
        using (var reopened = SpannIndex.Open(a)) { Assert.False(reopened.IsCoded); Assert.Equal(0, reopened.RefineBytes); reopened.Save(b); }
        // Read before b is opened (opening a saved copy gives it a log and checkpoints it in place).
        var metaB = File.ReadAllBytes(Path.Combine(b, SpannIndex.MetaFileName));
        var postingsB = File.ReadAllBytes(Path.Combine(b, "postings-0.dat"));
        using (var again = SpannIndex.Open(b)) again.Save(c);
        Assert.Equal(metaB, File.ReadAllBytes(Path.Combine(c, SpannIndex.MetaFileName)));
        Assert.Equal(postingsB, File.ReadAllBytes(Path.Combine(c, "postings-0.dat")));
        Assert.Equal(-1, System.Text.Encoding.ASCII.GetString(metaB).IndexOf("CODC", StringComparison.Ordinal));
        Assert.Empty(Directory.GetFiles(b, "vectors-*.dat"));
    }

    // Re-inserted and deleted ids leave dead copies in the postings (older versions) until a compaction: searches
    // never return them, before and after reopening (the liveness summary is rebuilt from the id map at open), and
    // the re-inserted ids come back at their new vectors' exact distances.
    [Theory]
    [InlineData("RaBitQ4")]
    [InlineData("RaBitQfs1")]
    [InlineData(null)]
    public void DeadCopies_AreNeverReturned_BeforeOrAfterReopen(string? codec)
    {
        const int n = 2000;
        var (data, _, exact) = Set(n, Metric.L2);
        using var _e = exact;
        using var dir = new TestDirectory();
        string idx = Path.Combine(dir.Path, "idx");
        var options = new SpannOptions { PostingSize = 32, Codec = codec };
        var moved = new float[100 * D];
        var rng = new Random(5);
        for (int i = 0; i < moved.Length; i++) moved[i] = (float)(rng.NextDouble() * 40 + 100); // far from every old vector
        var p = new SpannSearchParameters { Probes = 64, Threads = 1 };
        void Check(SpannIndex index)
        {
            var dist = new float[200 * 5];
            var lab = new long[200 * 5];
            index.Search(data.AsSpan(0, 200 * D), 5, dist, lab, p); // the old vectors of ids 0..199 as queries
            for (int q = 0; q < 200; q++)
                for (int j = 0; j < 5; j++)
                {
                    long id = lab[q * 5 + j];
                    Assert.False(id is >= 100 and < 200, $"deleted id {id} returned");
                    if (id is >= 0 and < 100)
                    {
                        float want = 0;
                        for (int t = 0; t < D; t++) { float e = data[q * D + t] - moved[id * D + t]; want += e * e; }
                        Assert.Equal(want, dist[q * 5 + j], want * 1e-4f + 1e-3f);
                    }
                }
        }
        using (var index = SpannIndex.Create(idx, D, Metric.L2, options, FileWriteAheadLogProvider.Instance))
        {
            index.BackgroundMaintenance = false;
            index.Train(data);
            index.Add(data, Range(0, n));
            index.Remove(Range(0, 200));        // tombstones; the copies stay in their postings
            index.Add(moved, Range(0, 100));    // re-inserted at version 1, far away
            Check(index);
            index.Checkpoint();
        }
        using (var reopened = SpannIndex.Open(idx)) Check(reopened);
    }
}
