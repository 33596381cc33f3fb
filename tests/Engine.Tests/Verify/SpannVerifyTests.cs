using Engine.Index.Spann;
using Engine.Storage.Devices;
using Engine.Storage.Postings;
using Engine.Tests.Spann;
using Engine.Tests.Support;

namespace Engine.Tests.Verify;

/// <summary>Defect 10 of issue 11 (SPANN): diagnostics name the right file and deep checks find planted damage.</summary>
public class SpannVerifyTests
{
    private const int D = 16;
    private static readonly SpannOptions Options = new() { PostingSize = 8, MaxPostingSize = 32, CacheBytes = 0 };

    private static float[] Build(string dir, int n = 600)
    {
        var data = SpannTestData.Clustered(n, D, seed: 41);
        using var idx = SpannIndex.Create(dir, D, Metric.L2, Options);
        idx.Train(data);
        idx.Add(data, Enumerable.Range(0, n).Select(i => (long)i).ToArray());
        idx.WaitForMaintenance();
        idx.Checkpoint();
        return data;
    }

    private static string Meta(TempDir tmp) => tmp.File(SpannIndex.MetaFileName);

    // A posting that holds entries, preferring one with several pages.
    private static int PostingWithBlock(string meta) =>
        Enumerable.Range(0, IndexFileEditor.Read(meta, "PPAG").Length / 4).First(p => IndexFileEditor.Get<int>(meta, "PPAG", p) > 0 && IndexFileEditor.Get<int>(meta, "PENT", p) > 0);

    [Fact]
    public void Clean_index_verifies_clean_with_every_vector_checked()
    {
        using var tmp = new TempDir();
        Build(tmp.Path);
        using var idx = SpannIndex.Open(tmp.Path);
        var report = idx.Verify();
        Assert.True(report.IsClean, string.Join("\n", report.Problems));
        Assert.True(report.VectorsChecked >= 600, $"{report.VectorsChecked} vectors checked");
        Assert.Equal(idx.PostingCount, report.PartsChecked);
        idx.Dispose();
        var output = new StringWriter();
        Assert.Equal(0, Engine.Cli.VerifyCommand.Run(tmp.Path, null, output));
        Assert.Contains("verify: OK", output.ToString());
    }

    [Fact]
    public void Metadata_written_before_block_checksums_still_opens_and_verifies()
    {
        using var tmp = new TempDir();
        var data = Build(tmp.Path);
        IndexFileEditor.RemoveLastSection(Meta(tmp), "PCRC");
        using var idx = SpannIndex.Open(tmp.Path);
        Assert.Equal(600, idx.Count);
        Assert.True(idx.Verify().IsClean);
        SearchAll(idx, data);
    }

    [Fact]
    public void Truncated_posting_file_is_reported_as_the_posting_file_not_the_metadata()
    {
        using var tmp = new TempDir();
        Build(tmp.Path);
        string postings = tmp.File("postings-0.dat");
        long length = new FileInfo(postings).Length;
        using (var f = new FileStream(postings, FileMode.Open)) f.SetLength(length / 2);
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(tmp.Path));
        Assert.Equal(postings, e.FilePath);
        Assert.Contains("truncated", e.Message);
        Assert.Equal(length / 2, e.Offset);
        var output = new StringWriter();
        Assert.Equal(Engine.Cli.VerifyCommand.Corrupt, Engine.Cli.VerifyCommand.Run(null, tmp.Path, output));
        Assert.Contains($"{postings} at offset {length / 2}", output.ToString());
    }

    [Fact]
    public void Posting_with_entries_but_zero_pages_is_refused_at_open_naming_the_metadata()
    {
        using var tmp = new TempDir();
        Build(tmp.Path);
        int p = PostingWithBlock(Meta(tmp));
        IndexFileEditor.Set(Meta(tmp), "PPAG", p, 0); // checksums re-sealed: only the structural check can tell
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(tmp.Path));
        Assert.Equal(Meta(tmp), e.FilePath);
        Assert.Contains($"posting {p} records", e.Message);
        Assert.True(e.Offset > 0);
    }

    [Fact]
    public void Posting_table_pointing_at_a_stale_block_is_found_by_verify_and_by_search()
    {
        using var tmp = new TempDir();
        var data = Build(tmp.Path);
        string meta = Meta(tmp);
        var before = File.ReadAllBytes(meta);
        // Rewrite some postings by adding a few vectors (too little garbage for a compaction), then checkpoint.
        using (var idx = SpannIndex.Open(tmp.Path))
        {
            idx.BackgroundMaintenance = false;
            var extra = SpannTestData.Clustered(20, D, seed: 42);
            idx.Add(extra, Enumerable.Range(1000, 20).Select(i => (long)i).ToArray());
            idx.Checkpoint();
        }
        string old = tmp.File("old.meta");
        File.WriteAllBytes(old, before);
        Assert.Equal(IndexFileEditor.Get<long>(old, "STAT", 0), IndexFileEditor.Get<long>(meta, "STAT", 0)); // same generation
        int np = IndexFileEditor.Read(old, "POFF").Length / 8;
        int p = Enumerable.Range(0, np).First(i => IndexFileEditor.Get<int>(old, "PPAG", i) > 0
            && IndexFileEditor.Get<long>(old, "POFF", i) != IndexFileEditor.Get<long>(meta, "POFF", i));
        // Point posting p back at its previous block, with that block's page and entry counts: a consistent-looking table.
        IndexFileEditor.Set(meta, "POFF", p, IndexFileEditor.Get<long>(old, "POFF", p));
        IndexFileEditor.Set(meta, "PPAG", p, IndexFileEditor.Get<int>(old, "PPAG", p));
        IndexFileEditor.Set(meta, "PENT", p, IndexFileEditor.Get<int>(old, "PENT", p));
        File.Delete(old);
        string postings = tmp.File("postings-0.dat");
        using (var idx = SpannIndex.Open(tmp.Path))
        {
            idx.BackgroundMaintenance = false;
            var report = idx.Verify();
            Assert.False(report.IsClean);
            Assert.Contains(report.Problems, x => x.File == postings && x.What.Contains("stale", StringComparison.Ordinal)
                && x.Offset == IndexFileEditor.Get<long>(meta, "POFF", p));
            // Searching never serves the stale block: a query near posting p's vectors reports the damage.
            var ex = Assert.Throws<CorruptIndexException>(() => SearchAll(idx, data));
            Assert.Equal(postings, ex.FilePath);
            Assert.Throws<CorruptIndexException>(() => report.ThrowIfCorrupt());
        }
    }

    private static void SearchAll(SpannIndex idx, float[] data)
    {
        var dd = new float[10];
        var ll = new long[10];
        var all = new SpannSearchParameters { Probes = idx.PostingCount, Threads = 1 };
        for (int q = 0; q < data.Length / D; q += 10) idx.Search(data.AsSpan(q * D, D), 10, dd, ll, all);
    }

    [Fact]
    public void Nan_vector_in_a_posting_is_found_by_verify_naming_the_posting_file_and_block()
    {
        using var tmp = new TempDir();
        Build(tmp.Path);
        string meta = Meta(tmp), postings = tmp.File("postings-0.dat");
        int p = PostingWithBlock(meta);
        long offset = IndexFileEditor.Get<long>(meta, "POFF", p);
        int pages = IndexFileEditor.Get<int>(meta, "PPAG", p);
        // Decode posting p, poison one vector component, append it as a new block and point the table at it.
        PostingLocation planted;
        using (var store = new PostingStore(new FileDevice(postings, create: false)))
        {
            var payload = store.Read(new PostingLocation(offset, pages), p, out _);
            int n = BitConverter.ToInt32(payload, 0);
            int vectorsAt = 8 + n * 8 + ((n + 7) & ~7);
            BitConverter.TryWriteBytes(payload.AsSpan(vectorsAt + 4 * 3), float.NaN);
            planted = store.Write(p, payload);
            store.Flush();
        }
        IndexFileEditor.Set(meta, "POFF", p, planted.Offset);
        IndexFileEditor.Set(meta, "PPAG", p, planted.Pages);
        IndexFileEditor.Set(meta, "PCRC", p, (long)planted.Checksum!.Value);
        using var idx = SpannIndex.Open(tmp.Path);
        var report = idx.Verify();
        // Open's background maintenance may already have merged posting p into another block: the NaN travels along.
        var problem = Assert.Single(report.Problems);
        Assert.Equal(postings, problem.File);
        Assert.True(problem.Offset >= planted.Offset, problem.ToString());
        Assert.Contains("not finite", problem.What);
    }

    [Fact]
    public void Nan_head_is_refused_at_open()
    {
        using var tmp = new TempDir();
        Build(tmp.Path);
        int p = PostingWithBlock(Meta(tmp));
        IndexFileEditor.Set(Meta(tmp), "HEAD", p * D + 2, float.NaN);
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(tmp.Path));
        Assert.Equal(Meta(tmp), e.FilePath);
        Assert.Contains($"head of posting {p}", e.Message);
    }

    [Fact]
    public void Live_id_whose_posting_lost_it_is_found_by_verify()
    {
        using var tmp = new TempDir();
        Build(tmp.Path);
        string meta = Meta(tmp);
        // Move id table entry 0 to another existing posting that does not hold it.
        int posting = IndexFileEditor.Get<int>(meta, "IDSP", 0);
        int np = IndexFileEditor.Read(meta, "PEXI").Length;
        int other = Enumerable.Range(0, np).First(i => i != posting && IndexFileEditor.Read(meta, "PEXI")[i] == 1);
        IndexFileEditor.Set(meta, "IDSP", 0, other);
        using var idx = SpannIndex.Open(tmp.Path);
        var report = idx.Verify();
        long id = IndexFileEditor.Get<long>(meta, "IDSK", 0);
        Assert.Contains(report.Problems, x => x.What.Contains($"id {id} is recorded in posting {other}", StringComparison.Ordinal));
    }
}
