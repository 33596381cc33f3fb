using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>SIGKILL with index snapshots: every reopen after a kill loads a snapshot (never rebuilds) and still loses no
/// acknowledged write — the log after the snapshot's address is replayed into the loaded HNSW index and columns.</summary>
public class CollectionSnapshotCrashTests
{
    [Fact]
    public async Task Sigkill_AfterSnapshots_ReopensFromASnapshot_AndLosesNoAcknowledgedRecord()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "c");
        var present = new HashSet<long>();
        // A collection with records and a snapshot (taken on dispose) before the first child runs.
        using (var c = RecordCollection<string>.Open(path, CollectionTestData.Schema("HNSW8"), CollectionCrashChild.Options))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 400).Select(n => CollectionTestData.Make("k" + n, n)));
            await c.DeleteBatchAsync(Enumerable.Range(0, 400).Where(n => n % 9 == 4).Select(n => "k" + n));
        }
        foreach (var n in Enumerable.Range(0, 400).Where(n => n % 9 != 4)) present.Add(n);
        var sources = new List<string>();
        await CollectionCrashTests.KillAndVerify(path, 4, new Random(1414), present, (c, run) =>
        {
            var r = c.Recovery;
            sources.Add($"run {run}: {r.IndexSource} at {r.SnapshotLogAddress}, {r.TailRecordsReplayed} of {r.LogRecordsReplayed} log records into the indexes ({r.SnapshotRejectedReason})");
            Assert.True(r.IndexSource == CollectionIndexSource.Snapshot, string.Join("\n", sources));
            Assert.InRange(r.TailRecordsReplayed, 0, r.LogRecordsReplayed);
        });
        Assert.Equal(4, sources.Count);
        for (int n = 0; n < 400; n += 37)
            if (present.Contains(n))
            {
                using var c = RecordCollection<string>.Open(path, CollectionTestData.Schema("HNSW8"), CollectionCrashChild.Options);
                Assert.Equal("k" + n, (await c.SearchAsync(CollectionTestData.VectorOf(n), 1))[0].Record.Key);
                break;
            }
    }
}
