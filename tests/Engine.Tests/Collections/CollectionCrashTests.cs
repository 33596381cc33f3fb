using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

public class CollectionCrashTests
{
    /// <summary>
    /// SIGKILL a child process at random points of upserts, deletes and checkpoints (auto-checkpoint every 1 MiB of
    /// log): after every kill the collection must open with every acknowledged write (0 lost, payloads intact), an
    /// interrupted batch all or nothing... or a prefix (a batch is durable as a whole only once acknowledged), and the
    /// store and the HNSW index must agree. 12 kills in CI, 100 with ENGINE_LONG_TESTS=1.
    /// </summary>
    [Fact]
    public async Task Sigkill_DuringWrites_LosesNoAcknowledgedRecord_AndStoreAndIndexAgree()
    {
        bool longRun = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
        using var dir = new TempDir();
        var present = new HashSet<long>();
        await KillAndVerify(Path.Combine(dir.Path, "c"), longRun ? 100 : 12, new Random(99), present, check: null);
        Assert.True(present.Count > 0, "children acknowledged no writes");
    }

    /// <summary>
    /// One open collection per directory: a second open, in this process or in another one, is refused with an
    /// IOException naming the directory (two writers on one log lost acknowledged writes or left a collection that no
    /// longer opened); disposing frees the directory, and so does a holder killed with SIGKILL (the OS drops the lock).
    /// </summary>
    [Fact]
    public async Task ASecondOpen_IsRefused_InThisProcessAndAnother_UntilTheHolderIsDisposedOrKilled()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "c");
        using (var first = RecordCollection<string>.Open(path, CollectionTestData.Schema("HNSW8"), CollectionCrashChild.Options))
        {
            await first.UpsertAsync(CollectionTestData.Make("k1", 1));
            var e = Assert.Throws<IOException>(() => RecordCollection<string>.Open(path, null, CollectionCrashChild.Options));
            Assert.Contains("is in use", e.Message);
            Assert.Contains(Path.GetFullPath(path), e.Message);
            await first.UpsertAsync(CollectionTestData.Make("k2", 2)); // the refused open touched nothing
        }
        using (var again = RecordCollection<string>.Open(path, null, CollectionCrashChild.Options))
            Assert.Equal(2, again.Count);
        using (var child = new KilledChild("collection-crash-child", path, "1", "1001"))
        {
            child.WaitReady(TimeSpan.FromSeconds(120));
            var e = Assert.Throws<IOException>(() => RecordCollection<string>.Open(path, null, CollectionCrashChild.Options));
            Assert.Contains("is in use", e.Message);
            child.Kill();
        }
        using var after = RecordCollection<string>.Open(path, null, CollectionCrashChild.Options);
        after.VerifyConsistency();
        Assert.NotNull(await after.GetAsync("k2"));
    }

    /// <summary>
    /// Runs <paramref name="kills"/> child processes on the collection in <paramref name="path"/>, each SIGKILLed at a
    /// random point; after each kill opens the collection and checks that every acknowledged write is there (payload and
    /// vector), that an interrupted batch is all or nothing, and that the store and the index agree. <paramref name="present"/>
    /// holds the acknowledged numbers (records "k{n}") and is kept up to date; <paramref name="check"/> runs on each reopened collection.
    /// </summary>
    internal static async Task KillAndVerify(string path, int kills, Random rng, HashSet<long> present, Action<RecordCollection<string>, int>? check)
    {
        for (int run = 1; run <= kills; run++)
        {
            using var child = new KilledChild("collection-crash-child", path, run.ToString(), (1000 + run).ToString());
            child.WaitReady(TimeSpan.FromSeconds(120));
            await Task.Delay(rng.Next(50, 600));
            string[] snapshot = child.Kill();
            var (inFlightInsert, inFlightDelete) = CrashLog.Apply(snapshot, present);
            RecordCollection<string> opened;
            try { opened = RecordCollection<string>.Open(path, CollectionTestData.Schema("HNSW8"), CollectionCrashChild.Options); }
            catch (CorruptIndexException e)
            {
                var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories).Select(f => $"{Path.GetRelativePath(path, f)} ({new FileInfo(f).Length})");
                throw new Xunit.Sdk.XunitException($"run {run}: the collection cannot be opened after SIGKILL: {e.Message}\nfiles: {string.Join(", ", files)}\nchild: {string.Join(" | ", snapshot.TakeLast(4))}");
            }
            using var c = opened;
            c.VerifyConsistency(); // store, key map and index agree
            check?.Invoke(c, run);
            // The interrupted batch was committed whole (one fsync) or not at all.
            if (inFlightInsert is not null)
            {
                int visible = (await c.GetBatchAsync(inFlightInsert.Select(n => "k" + n))).Count(r => r is not null);
                Assert.True(visible == 0 || visible == inFlightInsert.Length, $"run {run}: {visible} of {inFlightInsert.Length} records of an unacknowledged batch are visible");
                if (visible > 0) foreach (var n in inFlightInsert) present.Add(n);
            }
            if (inFlightDelete is not null)
            {
                var afterDelete = await c.GetBatchAsync(inFlightDelete.Select(n => "k" + n));
                int gone = inFlightDelete.Where((n, j) => present.Contains(n) && afterDelete[j] is null).Count();
                int candidates = inFlightDelete.Count(present.Contains);
                Assert.True(gone == 0 || gone == candidates, $"run {run}: {gone} of {candidates} deletes of an unacknowledged batch applied");
                if (gone > 0) foreach (var n in inFlightDelete) present.Remove(n);
            }
            Assert.Equal(present.Count, c.Count);
            var got = await c.GetBatchAsync(present.Select(n => "k" + n), includeVectors: true);
            int i = 0;
            foreach (var n in present)
            {
                var r = got[i++];
                Assert.True(r is not null, $"run {run}: acknowledged record k{n} is missing after SIGKILL");
                Assert.Equal(n, r!.Data["n"]);
                Assert.Equal("body of " + n, r.Data["body"]);
                Assert.Equal(CollectionTestData.VectorOf(n), r.Vectors["embedding"]);
            }
            foreach (var n in present.Take(3))
            {
                var hits = await c.SearchAsync(CollectionTestData.VectorOf(n), 1);
                Assert.Equal("k" + n, hits[0].Record.Key);
            }
        }
    }
}
