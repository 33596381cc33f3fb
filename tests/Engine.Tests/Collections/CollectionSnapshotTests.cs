using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>Index snapshots at checkpoints: reopen loads them and replays only the log after them; damaged, foreign,
/// stale or missing snapshots fall back to a rebuild from the records, with the reason in <see cref="CollectionRecovery"/>.</summary>
public class CollectionSnapshotTests
{
    private static readonly CollectionOptions NoSnapshots = new() { IndexSnapshots = false };

    private static RecordCollection<string> Open(string dir, string spec, int trainingSize = 0, CollectionOptions? options = null) =>
        RecordCollection<string>.Open(dir, CollectionTestData.Schema(spec, trainingSize: trainingSize), options);

    // Inserts 0..n-1, replaces every 7th, deletes every 11th: ids with holes, replaced vectors gone from the index.
    private static async Task Fill(RecordCollection<string> c, int n)
    {
        for (int start = 0; start < n; start += 100)
            await c.UpsertBatchAsync(Enumerable.Range(start, Math.Min(100, n - start)).Select(i => CollectionTestData.Make("k" + i, i)));
        await c.UpsertBatchAsync(Enumerable.Range(0, n).Where(i => i % 7 == 3).Select(i => CollectionTestData.Make("k" + i, 5000 + i)));
        await c.DeleteBatchAsync(Enumerable.Range(0, n).Where(i => i % 11 == 5).Select(i => "k" + i));
    }

    private static readonly Filter SomeTags = Filter.And(Filter.ContainsTag("tags", "m3"), Filter.GreaterThan("n", 100L));

    /// <summary>Keys and distances of 12 unfiltered and 12 filtered searches, plus the keys a filter selects.</summary>
    private static async Task<List<string>> Answers(RecordCollection<string> c)
    {
        var lines = new List<string>();
        var p = new CollectionSearchOptions { Parameters = c.IndexDescription().StartsWith("HNSW", StringComparison.Ordinal) ? new Engine.Index.Hnsw.HnswSearchParameters { Ef = 64 } : null };
        var pf = p with { Filter = SomeTags };
        for (int q = 0; q < 12; q++)
        {
            var v = CollectionTestData.VectorOf(90_000 + q);
            lines.Add(string.Join(" ", (await c.SearchAsync(v, 10, p)).Select(h => $"{h.Record.Key}:{h.Distance:R}")));
            lines.Add(string.Join(" ", (await c.SearchAsync(v, 10, pf)).Select(h => $"{h.Record.Key}:{h.Distance:R}")));
        }
        lines.Add(string.Join(" ", (await c.GetWhereAsync(Filter.Or(SomeTags, Filter.Equal("title", "t4")), 10_000)).Select(r => r.Key)));
        lines.Add($"count {c.Count}");
        return lines;
    }

    [Theory]
    [InlineData("Flat", 0)]
    [InlineData("HNSW8", 0)]
    [InlineData("IVF8,Flat", 300)]      // trained before the snapshot
    [InlineData("IVF8,Flat", 5000)]     // still staged on the exact Flat index
    public async Task ReopenAfterACheckpoint_LoadsTheSnapshot_AndAnswersAsBeforeClose(string spec, int trainingSize)
    {
        using var dir = new TempDir();
        List<string> before;
        string description;
        using (var c = Open(dir.Path, spec, trainingSize))
        {
            await Fill(c, 700);
            await c.CheckpointAsync();
            before = await Answers(c);
            description = c.IndexDescription();
            Assert.True(c.SnapshotState.LogAddress > 0);
            Assert.Null(c.SnapshotState.LastError);
        }
        using (var c = Open(dir.Path, spec, trainingSize))
        {
            Assert.Equal(CollectionIndexSource.Snapshot, c.Recovery.IndexSource);
            Assert.Null(c.Recovery.SnapshotRejectedReason);
            Assert.Equal(0, c.Recovery.TailRecordsReplayed);
            Assert.True(c.Recovery.SnapshotLogAddress > 0);
            Assert.Equal(description, c.IndexDescription());
            Assert.Equal(before, await Answers(c));
            c.VerifyConsistency();
            // New writes get fresh ids after the snapshot's (no id is reused).
            await c.UpsertAsync(CollectionTestData.Make("fresh", 777_777));
            Assert.Equal("fresh", (await c.SearchAsync(CollectionTestData.VectorOf(777_777), 1))[0].Record.Key);
            c.VerifyConsistency();
        }
        Assert.Single(Directory.GetDirectories(Path.Combine(dir.Path, "snapshots")));
    }

    [Theory]
    [InlineData("Flat")]
    [InlineData("HNSW8")]
    public async Task WritesAfterTheSnapshot_AreReplayedFromTheLogTail_AfterACrash(string spec)
    {
        using var dir = new TempDir();
        using var crash = new TempDir();
        using var rebuilt = new TempDir();
        List<string> expected;
        using (var c = Open(dir.Path, spec))
        {
            await Fill(c, 500);
            await c.CheckpointAsync();
            // After the snapshot: inserts, a replacement, deletes (one of a record inserted after the snapshot).
            await c.UpsertBatchAsync(Enumerable.Range(600, 40).Select(i => CollectionTestData.Make("k" + i, i)));
            await c.UpsertAsync(CollectionTestData.Make("k10", 10_010));
            await c.DeleteBatchAsync(["k20", "k605", "absent"]);
            expected = await Answers(c);
            // A crash image: the files as they are while the collection is open (no dispose, no final checkpoint).
            TempDir.CopyTree(dir.Path, crash.Path);
            TempDir.CopyTree(dir.Path, rebuilt.Path);
        }
        using (var c = Open(crash.Path, spec))
        {
            Assert.Equal(CollectionIndexSource.Snapshot, c.Recovery.IndexSource);
            Assert.Equal(44, c.Recovery.TailRecordsReplayed); // 40 inserts, 1 replacement, 2 deletes and 1 absent key
            Assert.Equal(c.Recovery.LogRecordsReplayed, c.Recovery.TailRecordsReplayed);
            c.VerifyConsistency();
            Assert.Null(await c.GetAsync("k20"));
            Assert.Null(await c.GetAsync("k605"));
            Assert.Equal(10_010L, (await c.GetAsync("k10"))!.Data["n"]);
            foreach (var n in new[] { 600L, 639L, 10_010L })
            {
                var hit = await c.SearchAsync(CollectionTestData.VectorOf(n), 1);
                Assert.Equal(n == 10_010 ? "k10" : "k" + n, hit[0].Record.Key);
            }
            Assert.DoesNotContain(await c.SearchAsync(CollectionTestData.VectorOf(10), 50), h => (long)h.Record.Data["n"]! == 10);
            var answers = await Answers(c);
            if (spec == "Flat") Assert.Equal(expected, answers); // exact: the same answers as before the crash
            // The same crash image rebuilt from the records agrees with the snapshot + tail (exactly, for Flat).
            using var r = Open(rebuilt.Path, spec, options: NoSnapshots);
            Assert.Equal(CollectionIndexSource.Rebuild, r.Recovery.IndexSource);
            Assert.Equal(r.Count, c.Count);
            if (spec == "Flat") Assert.Equal(await Answers(r), answers);
        }
    }

    [Theory]
    [InlineData("vector-0.idx")]
    [InlineData("state.snap")]
    public async Task ACorruptSnapshot_FallsBackToARebuild_WithIdenticalResults(string file)
    {
        using var dir = new TempDir();
        List<string> before;
        using (var c = Open(dir.Path, "Flat"))
        {
            await Fill(c, 400);
            before = await Answers(c);
        }
        string snap = Directory.GetDirectories(Path.Combine(dir.Path, "snapshots")).Single();
        string path = Path.Combine(snap, file);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length * 2 / 3] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
        using (var c = Open(dir.Path, "Flat"))
        {
            Assert.Equal(CollectionIndexSource.Rebuild, c.Recovery.IndexSource);
            Assert.Contains("rejected", c.Recovery.SnapshotRejectedReason);
            Assert.Contains(file, c.Recovery.SnapshotRejectedReason);
            Assert.Equal(before, await Answers(c));
            c.VerifyConsistency();
        }
        // Closing the rebuilt collection (nothing written) replaced the damaged snapshot with a good one.
        using (var c = Open(dir.Path, "Flat"))
        {
            Assert.Equal(CollectionIndexSource.Snapshot, c.Recovery.IndexSource);
            Assert.Equal(before, await Answers(c));
        }
    }

    [Fact]
    public async Task ATruncatedOrMissingSnapshot_FallsBackToARebuild_NamingTheReason()
    {
        using var dir = new TempDir();
        List<string> before;
        using (var c = Open(dir.Path, "HNSW8"))
        {
            await Fill(c, 300);
            before = await Answers(c);
        }
        string snap = Directory.GetDirectories(Path.Combine(dir.Path, "snapshots")).Single();
        string index = Path.Combine(snap, "vector-0.idx");
        var bytes = File.ReadAllBytes(index);
        File.WriteAllBytes(index, bytes[..(bytes.Length / 2)]);
        using (var c = Open(dir.Path, "HNSW8", options: NoSnapshots)) // disabled: rebuild, and the files are left alone
        {
            Assert.Equal(CollectionIndexSource.Rebuild, c.Recovery.IndexSource);
            Assert.Contains("disabled", c.Recovery.SnapshotRejectedReason);
        }
        using (var c = Open(dir.Path, "HNSW8"))
        {
            Assert.Equal(CollectionIndexSource.Rebuild, c.Recovery.IndexSource);
            Assert.Contains("vector-0.idx", c.Recovery.SnapshotRejectedReason);
            Assert.Contains("Corrupt file", c.Recovery.SnapshotRejectedReason, StringComparison.Ordinal);
            Assert.Equal(Enumerable.Range(0, 300).Count(i => i % 11 != 5), c.Count);
            c.VerifyConsistency();
        }
        Directory.Delete(Path.Combine(dir.Path, "snapshots"), recursive: true);
        using (var c = Open(dir.Path, "HNSW8"))
        {
            Assert.Equal(CollectionIndexSource.Rebuild, c.Recovery.IndexSource);
            Assert.Equal("no index snapshot", c.Recovery.SnapshotRejectedReason);
            Assert.Equal(before.Count, (await Answers(c)).Count);
            c.VerifyConsistency();
        }
    }

    [Fact]
    public async Task ASnapshotOlderThanTheCheckpoint_IsNotUsed_SoNoWriteIsLost()
    {
        using var dir = new TempDir();
        using (var c = Open(dir.Path, "Flat")) await Fill(c, 200);
        // Writes and a checkpoint while snapshots are off: the old snapshot stays, behind the KV checkpoint and the
        // truncated log. Loading it would lose these writes.
        using (var c = Open(dir.Path, "Flat", options: NoSnapshots))
        {
            await c.UpsertBatchAsync(Enumerable.Range(1000, 30).Select(i => CollectionTestData.Make("k" + i, i)));
            await c.CheckpointAsync();
            await c.UpsertAsync(CollectionTestData.Make("late", 4242));
        }
        using (var c = Open(dir.Path, "Flat"))
        {
            Assert.Equal(CollectionIndexSource.Rebuild, c.Recovery.IndexSource);
            Assert.Contains("outside the recovered range", c.Recovery.SnapshotRejectedReason);
            Assert.Equal("k1017", (await c.SearchAsync(CollectionTestData.VectorOf(1017), 1))[0].Record.Key);
            Assert.Equal("late", (await c.SearchAsync(CollectionTestData.VectorOf(4242), 1))[0].Record.Key);
            c.VerifyConsistency();
        }
    }

    [Fact]
    public async Task ASnapshotForAnotherSchema_IsRejectedClearly()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using (var c = Open(a.Path, "Flat")) await Fill(c, 150);
        using (var c = RecordCollection<string>.Open(b.Path, CollectionTestData.Schema("Flat", metric: Metric.InnerProduct))) await Fill(c, 150);
        // Put a's snapshot under the name of b's, so that only the schema tells them apart.
        string bSnap = Directory.GetDirectories(Path.Combine(b.Path, "snapshots")).Single();
        Directory.Delete(bSnap, recursive: true);
        Directory.CreateDirectory(bSnap);
        TempDir.CopyTree(Directory.GetDirectories(Path.Combine(a.Path, "snapshots")).Single(), bSnap);
        using var opened = RecordCollection<string>.Open(b.Path);
        Assert.Equal(CollectionIndexSource.Rebuild, opened.Recovery.IndexSource);
        Assert.Contains("different schema", opened.Recovery.SnapshotRejectedReason);
        Assert.Equal(Metric.InnerProduct, opened.Schema.Vectors[0].Metric);
        opened.VerifyConsistency();
    }

    [Fact]
    public async Task ADamagedPayload_IsRejectedAtOpen_EvenWithASnapshot_OrOnReadWhenTheCheckIsOff()
    {
        using var dir = new TempDir();
        using (var c = Open(dir.Path, "HNSW8")) await Fill(c, 120);
        string kvLog = Directory.GetFiles(Path.Combine(dir.Path, "kv"), "kv.log*").Single(f => File.ReadAllBytes(f).AsSpan().IndexOf("body of 18"u8) >= 0);
        var bytes = File.ReadAllBytes(kvLog);
        bytes[bytes.AsSpan().IndexOf("body of 18"u8) + 2] ^= 0x20;
        File.WriteAllBytes(kvLog, bytes);
        // The store's page checksums catch it first, before FASTER reads the page.
        var first = Assert.Throws<CorruptIndexException>(() => Open(dir.Path, "HNSW8"));
        Assert.Equal(kvLog, first.FilePath);
        Assert.Contains("CRC-32C", first.Message);
        // Without them (a collection from before the page checksum files) the payload checksums do.
        Directory.Delete(Path.Combine(dir.Path, "kv", "checksums"), recursive: true);
        var e = Assert.Throws<CorruptIndexException>(() => Open(dir.Path, "HNSW8"));
        Assert.Contains("checksum", e.Message);
        Assert.DoesNotContain("CRC-32C (stored", e.Message);
        using var c2 = Open(dir.Path, "HNSW8", options: new CollectionOptions { VerifyPayloadsOnOpen = false });
        Assert.Equal(CollectionIndexSource.Snapshot, c2.Recovery.IndexSource);
        Assert.NotNull(await c2.GetAsync("k19"));
        var onRead = await Assert.ThrowsAsync<CorruptIndexException>(() => c2.GetAsync("k18"));
        Assert.Contains("checksum", onRead.Message);
        Assert.Throws<CorruptIndexException>(c2.VerifyConsistency);
    }

    [Fact]
    public async Task ASpannField_IsSnapshottedWhileStaged_AndRebuiltOnceTrained_SayingWhy()
    {
        using var dir = new TempDir();
        const string Spec = "SPANN(postings=16)";
        using (var c = Open(dir.Path, Spec, trainingSize: 300))
            await c.UpsertBatchAsync(Enumerable.Range(0, 200).Select(n => CollectionTestData.Make("k" + n, n)));
        using (var c = Open(dir.Path, Spec, trainingSize: 300))
        {
            Assert.Equal(CollectionIndexSource.Snapshot, c.Recovery.IndexSource); // the Flat staging index
            Assert.Equal("Flat", c.IndexDescription());
            await c.UpsertBatchAsync(Enumerable.Range(200, 200).Select(n => CollectionTestData.Make("k" + n, n)));
            Assert.NotEqual("Flat", c.IndexDescription());
        }
        Assert.Empty(Directory.Exists(Path.Combine(dir.Path, "snapshots")) ? Directory.GetDirectories(Path.Combine(dir.Path, "snapshots")) : []);
        using (var c = Open(dir.Path, Spec, trainingSize: 300))
        {
            Assert.Equal(CollectionIndexSource.Rebuild, c.Recovery.IndexSource);
            Assert.Contains("SPANN", c.Recovery.SnapshotRejectedReason);
            Assert.Equal(400, c.Count);
            c.VerifyConsistency();
        }
    }
}
