using Engine.Collections;
using Engine.Faster;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>
/// A manifest write that fails (a full disk) after a FASTER KV checkpoint, and hand-made directory states around it.
/// Before the fix a failed first manifest write followed by a second checkpoint left two store checkpoints and no
/// manifest, and the reopen refused ("the checkpoint manifest is missing") although the log was never truncated. The
/// open now decides by the log's begin address: a completed store checkpoint that covers the log from its begin is
/// recovered (its cookie names the log address), a log never truncated is replayed whole, and only a truncated log that
/// no checkpoint covers is refused.
/// </summary>
public class CollectionManifestRecoveryTests
{
    private static readonly CollectionOptions Options = new() { CheckpointLogBytes = 1L << 40 };

    private static Task Put(RecordCollection<string> c, int from, int count) =>
        c.UpsertBatchAsync(Enumerable.Range(from, count).Select(n => CollectionTestData.Make("k" + n, n)));

    private static async Task AssertHolds(string path, int records, int? replayed = null)
    {
        using var c = RecordCollection<string>.Open(path, options: Options);
        Assert.Equal(records, c.Count);
        if (replayed is int r) Assert.Equal(r, c.Recovery.LogRecordsReplayed);
        var got = await c.GetBatchAsync(Enumerable.Range(0, records).Select(n => "k" + n), includeVectors: true);
        for (int n = 0; n < records; n++)
        {
            Assert.NotNull(got[n]);
            Assert.Equal((long)n, got[n]!.Data["n"]);
            Assert.Equal(CollectionTestData.VectorOf(n), got[n]!.Vectors["embedding"]);
        }
        c.VerifyConsistency();
    }

    [Fact]
    public async Task FailedManifestWrites_FromTheFirstCheckpointOn_LeaveNoManifest_AndTheReopenLosesNothing()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        using (WriteFaults.FailFileWrites(dir, "manifest.json"))
        {
            var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options);
            await Put(c, 0, 10);
            var e = await Assert.ThrowsAnyAsync<IOException>(() => c.CheckpointAsync());
            Assert.Contains("manifest.json", e.Message);
            await Put(c, 10, 10); // the collection goes on: the failed manifest write lost nothing
            await Assert.ThrowsAnyAsync<IOException>(() => c.CheckpointAsync());
            await Put(c, 20, 5);
            Assert.ThrowsAny<IOException>(c.Dispose); // its final checkpoint's manifest fails too; the files are closed
        }
        Assert.False(File.Exists(Path.Combine(dir, "manifest.json")));
        var checkpoints = FasterKeyValueStore.ListCheckpoints(Path.Combine(dir, "kv"));
        Assert.Equal(3, checkpoints.Count(cp => cp.Completed));
        // The newest completed checkpoint covers all 25 records: nothing is replayed from the log.
        await AssertHolds(dir, 25, replayed: 0);
        await AssertHolds(dir, 25); // and once more: the reopen's own files are consistent
    }

    [Fact]
    public async Task AFailedManifestWrite_AfterTheLogWasTruncated_KeepsTheOldManifest_AndLosesNothing()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        using (var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options))
        {
            for (int g = 0; g < 3; g++)
            {
                await Put(c, g * 10, 10);
                await c.CheckpointAsync();
            }
        }
        string before = File.ReadAllText(Path.Combine(dir, "manifest.json"));
        using (WriteFaults.FailFileWrites(dir, "manifest.json"))
        {
            var c = RecordCollection<string>.Open(dir, options: Options);
            await Put(c, 30, 10);
            await Assert.ThrowsAnyAsync<IOException>(() => c.CheckpointAsync());
            await Put(c, 40, 10);
            Assert.ThrowsAny<IOException>(c.Dispose);
        }
        Assert.Equal(before, File.ReadAllText(Path.Combine(dir, "manifest.json")));
        await AssertHolds(dir, 50, replayed: 20);
    }

    /// <summary>A store checkpoint whose write failed part-way is never a candidate: only checkpoints whose page
    /// checksum file was written (after every write of the checkpoint succeeded) are.</summary>
    [Fact]
    public async Task ACheckpointWhoseChecksumFileFailed_IsNotUsed_WithoutAManifest()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        using (WriteFaults.FailFileWrites(dir, "manifest.json"))
        {
            var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options);
            await Put(c, 0, 10);
            await Assert.ThrowsAnyAsync<IOException>(() => c.CheckpointAsync());
            await Put(c, 10, 10);
            using (WriteFaults.FailFileWrites(Path.Combine(dir, "kv", "checksums"), "*"))
            {
                var e = await Assert.ThrowsAnyAsync<IOException>(() => c.CheckpointAsync());
                Assert.Contains("checksums", e.Message);
                Assert.ThrowsAny<IOException>(c.Dispose); // its final checkpoint fails the same way
            }
        }
        var checkpoints = FasterKeyValueStore.ListCheckpoints(Path.Combine(dir, "kv"));
        Assert.Equal([false, false, true], checkpoints.Select(cp => cp.Completed));
        // The oldest, completed one is recovered and the 10 records after it are replayed from the log.
        await AssertHolds(dir, 20, replayed: 10);
    }

    /// <summary>An automatic checkpoint (a write past CheckpointLogBytes) that fails writing its checksum file does not
    /// fail the write that triggered it: that write is in the log and applied (it used to throw, so a caller retried or
    /// gave up on a write that had in fact succeeded). The error is kept; the next write past the threshold retries.</summary>
    [Fact]
    public async Task AFailedAutomaticCheckpoint_DoesNotFailTheWriteThatTriggeredIt()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        var options = new CollectionOptions { CheckpointLogBytes = 1L << 20 };
        // 100 KB per record: 12 records pass the 1 MiB threshold
        Task PutLarge(RecordCollection<string> c, int from, int count) =>
            c.UpsertBatchAsync(Enumerable.Range(from, count).Select(n =>
            {
                var r = CollectionTestData.Make("k" + n, n);
                r.Data["body"] = new string((char)('a' + n % 26), 100_000);
                return r;
            }));
        using (var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), options))
        {
            await PutLarge(c, 0, 5);
            Assert.Null(c.LastAutomaticCheckpointError);
            using (WriteFaults.FailFileWrites(Path.Combine(dir, "kv", "checksums"), "*"))
            {
                await PutLarge(c, 5, 12); // past the threshold: its checkpoint fails
                var e = Assert.IsAssignableFrom<IOException>(c.LastAutomaticCheckpointError);
                Assert.Contains("checksums", e.Message);
                Assert.Equal(17, c.Count);
            }
            await PutLarge(c, 17, 12); // past it again: this one succeeds
            Assert.Null(c.LastAutomaticCheckpointError);
            await Put(c, 29, 16);
        }
        await AssertHolds(dir, 45);
    }

    [Fact]
    public async Task AMissingManifest_WhenNoCheckpointCoversTheTruncatedLog_IsRefused_AndNothingIsDeleted()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c"), kv = Path.Combine(dir, "kv"), saved = tmp.File("first-checkpoint");
        using (var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options))
        {
            await Put(c, 0, 10);
            await c.CheckpointAsync();
            // the first checkpoint only (covering the log up to the 10th record), kept aside
            TempDir.CopyTree(Path.Combine(kv, "checkpoints"), Path.Combine(saved, "checkpoints"));
            TempDir.CopyTree(Path.Combine(kv, "checksums"), Path.Combine(saved, "checksums"));
            for (int g = 1; g < 3; g++)
            {
                await Put(c, g * 10, 10);
                await c.CheckpointAsync(); // the third truncates the log past the first checkpoint
            }
        }
        string manifest = Path.Combine(dir, "manifest.json");
        string manifestText = File.ReadAllText(manifest);
        var newest = new[] { "checkpoints", "checksums" }.ToDictionary(d => d, d => tmp.File("newest-" + d));
        foreach (var (d, copy) in newest) TempDir.CopyTree(Path.Combine(kv, d), copy);

        // (1) the manifest and every store checkpoint lost
        File.Delete(manifest);
        foreach (var d in newest.Keys) Directory.Delete(Path.Combine(kv, d), recursive: true);
        var e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(dir, options: Options));
        Assert.Equal(manifest, e.FilePath);
        Assert.Contains("would be lost", e.Message);
        Assert.True(File.Exists(Path.Combine(kv, "kv.log.0")), "the refused open deleted the store's log");

        // (2) only the first checkpoint, which the truncated log no longer continues
        foreach (var d in newest.Keys) TempDir.CopyTree(Path.Combine(saved, d), Path.Combine(kv, d));
        Assert.Single(FasterKeyValueStore.ListCheckpoints(kv), cp => cp.Completed);
        e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(dir, options: Options));
        Assert.Equal(manifest, e.FilePath);

        // restored: every record is still there
        foreach (var (d, copy) in newest) TempDir.CopyTree(copy, Path.Combine(kv, d));
        File.WriteAllText(manifest, manifestText);
        await AssertHolds(dir, 30);
    }

    [Fact]
    public async Task AMissingManifest_AndNoCheckpoint_BeforeAnyTruncation_ReplaysTheWholeLog()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        using (var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options))
        {
            await Put(c, 0, 10);
            await Put(c, 10, 10);
        } // one checkpoint (Dispose's): the log was never truncated
        File.Delete(Path.Combine(dir, "manifest.json"));
        Directory.Delete(Path.Combine(dir, "kv", "checkpoints"), recursive: true);
        await AssertHolds(dir, 20, replayed: 20);
    }
}
