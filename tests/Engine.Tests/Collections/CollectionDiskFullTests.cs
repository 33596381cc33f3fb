using Engine.Collections;
using Engine.Faster;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>
/// A full disk, injected: FASTER device writes under the collection's directory fail once a byte budget is spent
/// (<see cref="WriteFaults"/>, as ENOSPC does). Before the fix FASTER KV's checkpoint waited forever for a flush that had
/// failed (a real 8 MiB tmpfs hung a collection for over 120 s). Now the failing call throws an
/// <see cref="IOException"/> naming the directory, the collection refuses further calls, Dispose returns, and a reopen
/// with the disk freed holds every acknowledged write.
/// </summary>
public class CollectionDiskFullTests
{
    // A hang is what this bounds (each call takes milliseconds alone); CI runs the whole suite in parallel on 2 cores
    // with other tests' disk traffic, where one checkpoint once took over 10 s, so the bound is generous.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static T Within<T>(Func<T> f, string what)
    {
        var t = Task.Run(f);
        Assert.True(t.Wait(Bound) || t.IsCompleted, $"{what} hung (no result within {Bound.TotalSeconds} s)");
        return t.GetAwaiter().GetResult();
    }

    private static Exception? Throws(Action a, string what) => Within(() =>
    {
        try { a(); return null; }
        catch (Exception e) { return e; }
    }, what);

    // Budgets land the failure in different places: the log's flush, the KV checkpoint's index, log or metadata writes.
    [Theory]
    [InlineData(3L << 20, 1)]
    [InlineData(6L << 20, 2)]
    [InlineData(9L << 20, 3)]
    [InlineData(13L << 20, 4)]
    public void A_full_disk_fails_the_write_with_an_IOException_and_loses_nothing(long budget, int seed)
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        var options = new CollectionOptions { CheckpointLogBytes = 1L << 20, StoreMemoryBytes = 16L << 20 };
        var acknowledged = new Dictionary<string, long>();
        string[] maybe = [];
        long n = 0;
        var rng = new Random(seed);
        Exception? failure = null;
        using (WriteFaults.FailWritesUnder(dir, budget))
        {
            var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), options);
            for (int batch = 0; batch < 400 && failure is null; batch++)
            {
                var records = Enumerable.Range(0, rng.Next(1, 8)).Select(_ =>
                {
                    var r = CollectionTestData.Make("k" + rng.Next(300), ++n);
                    r.Data["body"] = new string((char)('a' + n % 26), 20_000);
                    return r;
                }).GroupBy(r => r.Key).Select(g => g.Last()).ToArray();
                failure = Throws(() => c.UpsertBatchAsync(records).GetAwaiter().GetResult(), $"upsert batch {batch}");
                if (failure is null) foreach (var r in records) acknowledged[r.Key] = (long)r.Data["n"]!;
                else maybe = records.Select(r => r.Key + ":" + r.Data["n"]).ToArray();
                if (failure is null && batch % 25 == 24)
                    failure = Throws(() => c.CheckpointAsync().GetAwaiter().GetResult(), $"checkpoint after batch {batch}");
            }
            Assert.NotNull(failure);
            var io = Assert.IsAssignableFrom<IOException>(failure);
            Assert.Contains(dir, io.Message);
            Assert.Contains("disk is full", io.Message);
            Assert.NotNull(io.InnerException);

            // Refused from now on, at once, with the same kind of exception.
            var again = Throws(() => c.UpsertAsync(CollectionTestData.Make("late", 1)).GetAwaiter().GetResult(), "write after the failure");
            Assert.IsAssignableFrom<IOException>(again);
            Assert.NotNull(Throws(() => c.CheckpointAsync().GetAwaiter().GetResult(), "checkpoint after the failure"));
            Assert.Null(Throws(c.Dispose, "Dispose on a full disk"));
        }

        // The disk has room again: everything acknowledged is there; the batch that failed is all there or not at all.
        using var reopened = Within(() => RecordCollection<string>.Open(dir, CollectionTestData.Schema(), options), "reopen");
        var keys = acknowledged.Keys.Concat(maybe.Select(m => m.Split(':')[0])).Distinct().ToArray();
        var got = Within(() => reopened.GetBatchAsync(keys).GetAwaiter().GetResult(), "read back").Where(r => r is not null).ToDictionary(r => r!.Key, r => (long)r!.Data["n"]!);
        int maybeApplied = maybe.Count(m => got.TryGetValue(m.Split(':')[0], out var v) && v == long.Parse(m.Split(':')[1]));
        Assert.True(maybeApplied == 0 || maybeApplied == maybe.Length, $"the failed batch is half applied ({maybeApplied}/{maybe.Length})");
        foreach (var (key, value) in acknowledged)
        {
            if (maybeApplied > 0 && maybe.Any(m => m.StartsWith(key + ":", StringComparison.Ordinal))) continue;
            Assert.True(got.TryGetValue(key, out var v) && v == value, $"acknowledged {key} = {value} lost (found {(got.TryGetValue(key, out var w) ? w : "nothing")})");
        }
        Assert.Equal(acknowledged.Keys.Union(maybeApplied > 0 ? maybe.Select(m => m.Split(':')[0]) : []).Count(), reopened.Count);
        reopened.VerifyConsistency();
        Assert.Null(Throws(() => reopened.UpsertAsync(CollectionTestData.Make("after", 1)).GetAwaiter().GetResult(), "write after the reopen"));
    }
}
