using Engine.Index;
using Engine.Tests.Support;
using Engine.Mining;
using Engine.Mining.Refresh;
using static Engine.Tests.Mining.Refresh.MiningRefresherKit;

namespace Engine.Tests.Mining.Refresh;

/// <summary>Rows never mix snapshots while a trainer pushes and refreshes concurrently.</summary>
public class MiningRefresherConsistencyTests
{
    private const int N = 300, D = 16, Pushes = 24, PerPush = 60;

    [Theory]
    [InlineData("Flat")]
    [InlineData("HNSW16")]
    [InlineData("IVF4,Flat")]
    public async Task RowsNeverMixSnapshotsUnderConcurrentUpserts(string spec)
    {
        // Push p (step p) re-embeds PerPush seeded ids; the vector of (id, step) is distinct, so every score of a row
        // names the version of the item the index held. A row is consistent when one push prefix explains all of
        // the versions seen in every row of its snapshot.
        var pushed = new long[Pushes + 1][];
        for (int p = 1; p <= Pushes; p++)
        {
            var rng = new Random(1000 + p);
            pushed[p] = Enumerable.Range(0, N).OrderBy(_ => rng.Next()).Take(PerPush).Select(i => (long)i).ToArray();
        }
        var input = Anchors(40, N, D, seed: 5);
        await using var refresher = new MiningRefresher(Corpus(N, D), D, Factory(spec),
            new MiningRefresherOptions { Mining = TestMining, ChunkSize = 8 });

        var trainer = Task.Run(async () =>
        {
            for (int p = 1; p <= Pushes; p++)
            {
                refresher.Push(pushed[p], Vectors(pushed[p], p, D), p, refresh: true);
                if (p % 6 == 0) await refresher.RefreshAsync();
            }
        });
        var results = new List<RefreshedMining>();
        while (!trainer.IsCompleted || results.Count < 3)
            results.Add(await Within(refresher.MineAsync(input)));
        await Within(trainer);
        var final = await Within(refresher.RefreshAsync());
        results.Add(await Within(refresher.MineAsync(input)));

        // Pass 1: the versions each score allows (usually one; two only when two versions of an item happen to
        // score the same against the anchor), intersected over all rows of a snapshot: never empty.
        var versions = new Dictionary<long, Dictionary<long, HashSet<long>>>(); // snapshot → id → possible steps
        foreach (var result in results)
        {
            foreach (var r in result.Rows)
            {
                int anchor = checked((int)r.Row.Anchor);
                Assert.Equal(result.Snapshots[anchor / 8], r.Snapshot); // each chunk on one snapshot, rows say which
                var q = input.Vectors.AsSpan(anchor * D, D);
                var seen = versions.TryGetValue(r.Snapshot, out var m) ? m : versions[r.Snapshot] = [];
                var (ids, scores) = IdsAndScores(r.Row);
                for (int j = 0; j < ids.Length; j++)
                {
                    var possible = VersionsOf(ids[j], scores[j], q, pushed);
                    if (seen.TryGetValue(ids[j], out var before)) before.IntersectWith(possible);
                    else seen[ids[j]] = possible;
                    Assert.True(seen[ids[j]].Count > 0, $"snapshot {r.Snapshot}: rows saw different versions of id {ids[j]} (mixed)");
                }
            }
        }
        // Pass 2: staleness is the call's step minus the oldest version the row used.
        foreach (var result in results)
        {
            foreach (var r in result.Rows)
            {
                var seen = versions[r.Snapshot];
                var (ids, _) = IdsAndScores(r.Row);
                long newest = ids.Min(id => seen[id].Max()), oldest = ids.Min(id => seen[id].Min());
                Assert.InRange(r.Staleness, result.Step - newest, result.Step - oldest);
            }
        }
        foreach (var (snapshot, seen) in versions)
        {
            // Some prefix of the pushes explains every version seen on this snapshot.
            long lo = 0, hi = Pushes;
            foreach (var (id, steps) in seen)
            {
                if (steps.Count != 1) continue;
                long step = steps.Single();
                long next = Enumerable.Range((int)step + 1, Pushes - (int)step).FirstOrDefault(p => pushed[p].Contains(id), Pushes + 1);
                lo = Math.Max(lo, step);
                hi = Math.Min(hi, next - 1);
            }
            Assert.True(lo <= hi, $"snapshot {snapshot} mixes pushes: no prefix explains it ({lo} > {hi})");
        }
        Assert.True(final.Number > 1);
        Assert.Equal(Pushes, final.Step);
        Assert.All(results[^1].Rows, r => Assert.Equal(final.Number, r.Snapshot));
    }

    private static (long[] Ids, float[] Scores) IdsAndScores(MinedRow row) =>
        ([.. row.Positives, .. row.Negatives], [.. row.PositiveScores, .. row.Scores]);

    // The push steps whose vector of `id` gives `score` against `q` (float rounding apart): at least one.
    private static HashSet<long> VersionsOf(long id, float score, ReadOnlySpan<float> q, long[][] pushed)
    {
        var steps = new List<long> { 0 };
        for (int p = 1; p < pushed.Length; p++)
            if (pushed[p].Contains(id)) steps.Add(p);
        var matches = new HashSet<long>();
        var dots = new List<string>();
        foreach (long s in steps)
        {
            var v = Vector(id, s, q.Length);
            double dot = 0;
            for (int j = 0; j < q.Length; j++) dot += q[j] * v[j];
            dots.Add($"{s}:{dot:F5}");
            if (Math.Abs(dot - score) <= 2e-5 * (1 + Math.Abs(dot))) matches.Add(s);
        }
        Assert.True(matches.Count > 0, $"id {id} score {score}: no version of it has that score ({string.Join(", ", dots)})");
        return matches;
    }
}

/// <summary>Without pushes a refresher mines exactly what the miner mines on a plain index.</summary>
public class MiningRefresherParityTests
{
    [Theory]
    [InlineData(SamplingStrategy.Top)]
    [InlineData(SamplingStrategy.Uniform)]
    public async Task SameRowsAsTheMinerOnOneIndex(SamplingStrategy sampling)
    {
        const int n = 200, d = 10;
        var corpus = Corpus(n, d);
        var input = Anchors(50, n, d, seed: 9);
        var options = TestMining with { Sampling = sampling, RangeMin = 2, AnchorIdOffset = 1000 };
        using var plain = IndexFactory.Create("Flat", d, Metric.InnerProduct);
        plain.Add(corpus, TestData.Sequential(n));
        var expected = new HardNegativeMiner(plain, options).MineAll(input, out var report);

        await using var refresher = new MiningRefresher(corpus, d, Factory("Flat"), new MiningRefresherOptions { Mining = options, ChunkSize = 7 });
        var got = await Within(refresher.MineAsync(input, step: 3));
        Assert.Equal(expected.Count, got.Rows.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Anchor, got.Rows[i].Row.Anchor);
            Assert.Equal(expected[i].Negatives, got.Rows[i].Row.Negatives);
            // Equal up to float rounding: a chunk of 7 queries and one of 50 run the scan with other block shapes.
            for (int j = 0; j < expected[i].Scores.Length; j++) Assert.Equal(expected[i].Scores[j], got.Rows[i].Row.Scores[j], 4);
            Assert.Equal(1, got.Rows[i].Snapshot);
            Assert.Equal(3, got.Rows[i].Staleness); // initial vectors are from step 0
        }
        Assert.Equal(8, got.Snapshots.Count); // ceil(50 / 7) chunks
        Assert.Equal(report.NegativesWritten, got.Report.NegativesWritten);
        Assert.Equal(3, refresher.Step);
    }
}

/// <summary>A swap takes effect between chunks: a chunk keeps its snapshot, and a refresh never waits for mining
/// except to reuse the copy a chunk still holds.</summary>
public class MiningRefresherSwapTests
{
    [Fact]
    public async Task ChunkInFlightKeepsItsSnapshotAndTheNextChunksUseTheNewOne()
    {
        const int n = 120, d = 8;
        var hooks = new IndexHooks();
        var input = Anchors(24, n, d, seed: 3);
        await using var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(),
            new MiningRefresherOptions { Mining = TestMining, ChunkSize = 8 });
        hooks.BlockNextSearch();
        var mining = refresher.MineAsync(input, step: 1);
        Assert.True(hooks.SearchEntered.Wait(TimeSpan.FromSeconds(60)));

        // Chunk 1 holds snapshot 1. Re-embedding every item and refreshing does not wait for it.
        var all = TestData.Sequential(n);
        refresher.Push(all, Vectors(all, 2, d), 2);
        var second = await Within(refresher.RefreshAsync());
        Assert.Equal(2, second.Number);
        Assert.Equal(2, second.OldestStep);
        Assert.False(mining.IsCompleted);

        // The next refresh must write the copy chunk 1 still reads: it waits for that chunk.
        refresher.Push([0L], Vectors([0L], 3, d), 3);
        var third = refresher.RefreshAsync();
        await Task.Delay(200);
        Assert.False(third.IsCompleted, "a refresh overwrote a copy while a chunk was mining on it");

        hooks.SearchRelease.Set();
        var result = await Within(mining);
        await Within(third);
        Assert.Equal(1, result.Snapshots[0]);
        Assert.True(result.Snapshots.Skip(1).All(s => s >= 2));
        foreach (var r in result.Rows)
        {
            long expectedStep = r.Snapshot == 1 ? 0 : 2;
            var q = input.Vectors.AsSpan((int)r.Row.Anchor * d, d);
            for (int j = 0; j < r.Row.Negatives.Length; j++)
            {
                long id = r.Row.Negatives[j];
                // Snapshot 3 differs from 2 only in item 0 (step 3).
                var v = Vector(id, r.Snapshot == 3 && id == 0 ? 3 : expectedStep, d);
                float dot = 0;
                for (int k = 0; k < d; k++) dot += q[k] * v[k];
                Assert.Equal(dot, r.Row.Scores[j], 3);
            }
        }
        Assert.Equal(3, refresher.Current.Number);
        var stats = refresher.Statistics;
        Assert.Equal(2, stats.Refreshes);
        Assert.Equal(2 * n, stats.VectorsWritten); // copy B got all n, then copy A all n (it had missed the first push)
        Assert.Equal(0, stats.Failures);
    }
}

/// <summary>The staleness bound: mining refuses old snapshots, <c>Due</c> names the oldest items first.</summary>
public class MiningRefresherStalenessTests
{
    [Fact]
    public async Task BoundIsEnforcedAndDueListsTheOldestFirst()
    {
        const int n = 50, d = 8;
        await using var refresher = new MiningRefresher(Corpus(n, d), d, Factory("Flat"),
            new MiningRefresherOptions { Mining = TestMining, MaxStaleness = 3 });
        var input = Anchors(10, n, d, seed: 4);
        long[] first = [.. Enumerable.Range(0, 10).Select(i => (long)i)];
        refresher.Push(first, Vectors(first, 2, d), 2);

        var stale = Assert.Throws<StaleSnapshotException>(() => { _ = refresher.MineAsync(input, step: 4); });
        Assert.Equal(1, stale.Snapshot);
        Assert.Equal(n, stale.Overdue); // the snapshot still holds only step-0 vectors
        Assert.Contains("MaxStaleness=3", stale.Message);
        Assert.Equal(40, refresher.Overdue(4)); // the live table: ids 10..49 are from step 0 < 4 - 3
        Assert.Equal(Enumerable.Range(10, 40).Select(i => (long)i), refresher.Due(40));
        Assert.Equal(Enumerable.Range(10, 40).Concat(Enumerable.Range(0, 10)).Select(i => (long)i), refresher.Due(n));

        var due = refresher.Due(refresher.Overdue(4));
        refresher.Push(due, Vectors(due, 4, d), 4);
        var snap = await Within(refresher.RefreshAsync());
        Assert.Equal(2, snap.OldestStep);
        var mined = await Within(refresher.MineAsync(input, step: 4));
        Assert.NotEmpty(mined.Rows);
        Assert.All(mined.Rows, r => Assert.InRange(r.Staleness, 0, 3));
        Assert.Equal(0, refresher.Overdue());

        // Two steps on, the step-2 items fall out of the bound: Due names exactly them.
        Assert.Throws<StaleSnapshotException>(() => { _ = refresher.MineAsync(input, step: 6); });
        Assert.Equal(10, refresher.Overdue(6));
        Assert.Equal(first, refresher.Due(10));
    }

    [Fact]
    public async Task UnboundedRefresherReportsStalenessWithoutRefusing()
    {
        const int n = 40, d = 6;
        await using var refresher = new MiningRefresher(Corpus(n, d), d, Factory("Flat"), new MiningRefresherOptions { Mining = TestMining, InitialStep = 100 });
        var mined = await Within(refresher.MineAsync(Anchors(5, n, d, seed: 2), step: 1100));
        Assert.All(mined.Rows, r => Assert.Equal(1000, r.Staleness));
        Assert.Equal(1000, mined.MaxStaleness);
        Assert.Equal(0, refresher.Overdue(5000));
    }
}

/// <summary>Cancellation of mining calls and of refresh waits.</summary>
public class MiningRefresherCancellationTests
{
    [Fact]
    public async Task CancelledBeforeStartAndBetweenChunks()
    {
        const int n = 100, d = 8;
        var hooks = new IndexHooks();
        await using var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(), new MiningRefresherOptions { Mining = TestMining, ChunkSize = 4 });
        var input = Anchors(20, n, d, seed: 6);
        using (var cancelled = new CancellationTokenSource())
        {
            cancelled.Cancel();
            var t = refresher.MineAsync(input, cancellationToken: cancelled.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => t);
        }

        using var cts = new CancellationTokenSource();
        hooks.BlockNextSearch();
        var mining = refresher.MineAsync(input, cancellationToken: cts.Token);
        Assert.True(hooks.SearchEntered.Wait(TimeSpan.FromSeconds(60)));
        cts.Cancel();
        hooks.SearchRelease.Set();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(mining));

        // The cancelled call released its snapshot: two refreshes (both copies written) complete.
        for (long step = 1; step <= 2; step++)
        {
            refresher.Push([1L], Vectors([1L], step, d), step);
            Assert.Equal(step + 1, (await Within(refresher.RefreshAsync())).Number);
        }
    }

    [Fact]
    public async Task CancellingARefreshWaitLeavesTheRefreshRunning()
    {
        const int n = 60, d = 8;
        var hooks = new IndexHooks();
        await using var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(), new MiningRefresherOptions { Mining = TestMining, ChunkSize = 4 });
        hooks.BlockNextSearch();
        var mining = refresher.MineAsync(Anchors(8, n, d, seed: 1));
        Assert.True(hooks.SearchEntered.Wait(TimeSpan.FromSeconds(60)));
        refresher.Push([2L], Vectors([2L], 1, d), 1);
        await Within(refresher.RefreshAsync()); // snapshot 2, on the free copy
        refresher.Push([3L], Vectors([3L], 2, d), 2);
        using var cts = new CancellationTokenSource();
        var waiting = refresher.RefreshAsync(cts.Token); // needs the copy the blocked chunk holds
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(waiting));
        Assert.Equal(2, refresher.Current.Number);
        hooks.SearchRelease.Set();
        await Within(mining);
        var done = await Within(refresher.RefreshAsync());
        Assert.Equal(3, done.Number);
        Assert.Equal(2, done.Step);
    }
}

/// <summary>Failures in the background surface on the next call, and the refresher recovers.</summary>
public class MiningRefresherErrorTests
{
    [Fact]
    public async Task RefreshFailureReachesTheWaiterAndTheNextRefreshRebuilds()
    {
        const int n = 50, d = 8;
        var hooks = new IndexHooks();
        await using var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(), new MiningRefresherOptions { Mining = TestMining });
        var all = TestData.Sequential(n);
        hooks.FailAdds = true;
        refresher.Push(all, Vectors(all, 1, d), 1);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Within(refresher.RefreshAsync()));
        Assert.IsType<IOException>(e.InnerException);
        Assert.Contains("device is full", e.Message);
        Assert.Equal(1, refresher.Current.Number); // mining goes on with the old snapshot
        Assert.NotEmpty((await Within(refresher.MineAsync(Anchors(4, n, d, seed: 2)))).Rows);

        hooks.FailAdds = false;
        var snap = await Within(refresher.RefreshAsync()); // the broken copy is rebuilt from the live table
        Assert.Equal(2, snap.Number);
        Assert.Equal(1, snap.OldestStep);
        Assert.Equal(3, hooks.Made.Count);
        Assert.True(hooks.Made[1].Disposed);
        var mined = await Within(refresher.MineAsync(Anchors(4, n, d, seed: 2), step: 1));
        Assert.All(mined.Rows, r => Assert.Equal(0, r.Staleness));
        Assert.Equal(new RefresherStatistics(1, n, 1, refresher.Statistics.RefreshTime), refresher.Statistics);
    }

    [Fact]
    public async Task UnwatchedRefreshFailureSurfacesOnTheNextCallOnce()
    {
        const int n = 50, d = 8;
        var hooks = new IndexHooks();
        await using var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(), new MiningRefresherOptions { Mining = TestMining });
        hooks.FailAdds = true;
        refresher.Push([5L], Vectors([5L], 1, d), 1, refresh: true);
        Assert.True(SpinWait.SpinUntil(() => !refresher.IsRefreshing, TimeSpan.FromSeconds(60)));
        var e = Assert.Throws<InvalidOperationException>(() => refresher.Push([6L], Vectors([6L], 2, d), 2));
        Assert.IsType<IOException>(e.InnerException);
        Assert.Equal(1, refresher.Step); // the failed call stored nothing
        hooks.FailAdds = false;
        refresher.Push([6L], Vectors([6L], 2, d), 2);
        Assert.Equal(2, (await Within(refresher.RefreshAsync())).Number);
    }

    [Fact]
    public async Task MiningFailureFaultsTheMiningTask()
    {
        const int n = 50, d = 8;
        var hooks = new IndexHooks();
        await using var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(), new MiningRefresherOptions { Mining = TestMining });
        hooks.FailSearches = true;
        var e = await Assert.ThrowsAsync<IOException>(() => Within(refresher.MineAsync(Anchors(4, n, d, seed: 2))));
        Assert.Contains("search failed", e.Message);
        hooks.FailSearches = false;
        refresher.Push([1L], Vectors([1L], 1, d), 1);
        Assert.Equal(2, (await Within(refresher.RefreshAsync())).Number); // the failed call released its snapshot
    }

    [Fact]
    public async Task DisposeWaitsForTheRefreshAndFreesBothCopies()
    {
        const int n = 50, d = 8;
        var hooks = new IndexHooks();
        var refresher = new MiningRefresher(Corpus(n, d), d, hooks.Factory(), new MiningRefresherOptions { Mining = TestMining });
        refresher.Push([1L], Vectors([1L], 1, d), 1, refresh: true);
        await refresher.DisposeAsync();
        refresher.Dispose(); // idempotent
        Assert.All(hooks.Made, i => Assert.True(i.Disposed));
        Assert.Throws<ObjectDisposedException>(() => refresher.Push([1L], Vectors([1L], 2, d), 2));
        Assert.Throws<ObjectDisposedException>(() => { _ = refresher.MineAsync(Anchors(2, n, d, seed: 1)); });
        Assert.Throws<ObjectDisposedException>(() => refresher.Due(1));
    }
}

/// <summary>Bad input gets a clear exception and changes nothing.</summary>
public class MiningRefresherBadInputTests
{
    private const int N = 30, D = 6;

    private static MiningRefresher Make(MiningRefresherOptions? options = null) => new(Corpus(N, D), D, Factory("Flat"), options ?? new MiningRefresherOptions { Mining = TestMining });

    [Fact]
    public void Construction()
    {
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => new MiningRefresher([], D, Factory("Flat"))).Message);
        var nan = Corpus(N, D);
        nan[7] = float.NaN;
        Assert.Contains("non-finite", Assert.Throws<ArgumentException>(() => new MiningRefresher(nan, D, Factory("Flat"))).Message);
        Assert.Contains("Dimension mismatch", Assert.Throws<ArgumentException>(() => new MiningRefresher(new float[13], D, Factory("Flat"))).Message);
        Assert.Contains("8-dimensional", Assert.Throws<InvalidOperationException>(() =>
            new MiningRefresher(Corpus(N, D), D, _ => IndexFactory.Create("Flat", 8, Metric.InnerProduct))).Message);
        Assert.Throws<InvalidOperationException>(() => new MiningRefresher(Corpus(N, D), D, _ => null!));
        Assert.Equal("ChunkSize", Assert.Throws<ArgumentOutOfRangeException>(() => Make(new MiningRefresherOptions { ChunkSize = 0 })).ParamName);
        Assert.Equal("MaxStaleness", Assert.Throws<ArgumentOutOfRangeException>(() => Make(new MiningRefresherOptions { MaxStaleness = -1 })).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => Make(new MiningRefresherOptions { Mining = new MiningOptions { NumNegatives = 0 } }));
    }

    [Fact]
    public void IndexWithoutUpsertsIsRefusedUpFront()
    {
        var hooks = new IndexHooks { RemoveUnsupported = true };
        var e = Assert.Throws<NotSupportedException>(() => new MiningRefresher(Corpus(N, D), D, hooks.Factory()));
        Assert.Contains("cannot be updated in place", e.Message);
        Assert.Contains("read-only", e.Message);
        Assert.All(hooks.Made, i => Assert.True(i.Disposed));
    }

    [Fact]
    public void PushRejectsBadBatchesAndStoresNothing()
    {
        using var r = Make();
        r.Push([1L], Vectors([1L], 5, D), 5);
        var before = r.Due(N);
        Assert.Contains("Dimension mismatch", Assert.Throws<ArgumentException>(() => r.Push([2L], new float[D + 1], 6)).Message);
        Assert.Contains("one vector per id", Assert.Throws<ArgumentException>(() => r.Push([2L, 3L], Vectors([2L], 6, D), 6)).Message);
        var nan = Vectors([2L], 6, D);
        nan[2] = float.PositiveInfinity;
        Assert.Contains("non-finite", Assert.Throws<ArgumentException>(() => r.Push([2L], nan, 6)).Message);
        Assert.Contains("not a corpus id", Assert.Throws<ArgumentException>(() => r.Push([N], Vectors([2L], 6, D), 6)).Message);
        Assert.Contains("not a corpus id", Assert.Throws<ArgumentException>(() => r.Push([-1L], Vectors([2L], 6, D), 6)).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => r.Push([2L, 2L], Vectors([2L, 2L], 6, D), 6)).Message);
        Assert.Contains("steps only go forward", Assert.Throws<ArgumentException>(() => r.Push([2L], Vectors([2L], 4, D), 4)).Message);
        Assert.Equal(5, r.Step);
        Assert.Equal(before, r.Due(N));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Due(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Due(N + 1));
    }

    [Fact]
    public void MineRejectsBadInputBeforeAnyWork()
    {
        using var r = Make();
        Assert.Contains("dimension", Assert.Throws<ArgumentException>(() => { _ = r.MineAsync(MiningInput.FromVectors(new float[D + 2], D + 2, [[0L]])); }).Message);
        var q = TestData.Gaussian(2, D, 1);
        q[3] = float.NaN;
        Assert.Contains("non-finite", Assert.Throws<ArgumentException>(() => { _ = r.MineAsync(MiningInput.FromVectors(q, D, [[0L], [1L]])); }).Message);
        Assert.Contains("not in the index", Assert.Throws<ArgumentException>(() => { _ = r.MineAsync(MiningInput.FromVectors(TestData.Gaussian(1, D, 1), D, [[N + 5L]])); }).Message);
        Assert.Contains("not in the index", Assert.Throws<ArgumentException>(() => { _ = r.MineAsync(MiningInput.FromCorpusIds([N + 1L], [[0L]])); }).Message);
        Assert.Throws<ArgumentException>(() => { _ = r.MineAsync(MiningInput.FromCorpusIds([N + 1L], [[0L]]), step: 7); });
        Assert.Equal(0, r.Step); // a rejected call records no step
        r.Push([1L], Vectors([1L], 9, D), 9);
        Assert.Contains("steps only go forward", Assert.Throws<ArgumentException>(() => { _ = r.MineAsync(Anchors(2, N, D, 1), step: 8); }).Message);
        Assert.Equal(9, r.Step);
    }

    [Fact]
    public async Task CorpusAnchorsCountTheAnchorVectorInStaleness()
    {
        using var r = Make();
        r.Push([0L, 1L, 2L, 3L, 4L], Vectors([0L, 1L, 2L, 3L, 4L], 4, D), 4);
        long[] others = [.. Enumerable.Range(5, N - 5).Select(i => (long)i)];
        r.Push(others, Vectors(others, 6, D), 6);
        await Within(r.RefreshAsync());
        // Anchor 0 (step 4) with positive 5 (step 6): the row's oldest vector is the anchor's.
        var mined = await Within(r.MineAsync(MiningInput.FromCorpusIds([0L], [[5L]], [[1L, 2L, 3L, 4L]]), step: 10));
        Assert.Equal(6, Assert.Single(mined.Rows).Staleness);
    }
}

/// <summary><c>engine demo refresh</c>: the protocol as a runnable training loop.</summary>
public class MiningRefresherDemoTests
{
    [Fact]
    public void DemoTrainsThroughTheRefresherAndReportsStalenessAndOverhead()
    {
        var sw = new StringWriter();
        var settings = new Engine.Cli.RefreshDemoSettings(N: 1200, HeldOut: 200, D: 24, Classes: 6, Distractors: 6, Hidden: 24, Dim: 12,
            Steps: 60, Batch: 32, Negatives: 4, RefreshEvery: 10, Fraction: 0.3, MaxStaleness: 25, ChunkSize: 8, Seed: 3, Threads: 2);
        Assert.Equal(0, Engine.Cli.RefreshDemoCommand.Run(settings, sw, out var result));
        var text = sw.ToString();
        Assert.Contains("before   held-out precision@10", text);
        Assert.Contains("refresher overhead", text);
        Assert.True(result.SnapshotsUsed > 1, text);
        Assert.InRange(result.MaxStaleness, 1, 25); // the bound held on every row
        Assert.True(result.BackgroundRefreshMsPerStep > 0, text);
        Assert.True(result.After > result.Before, text);
    }

    [Fact]
    public void DemoRejectsBadSettings()
    {
        var sw = new StringWriter();
        Assert.Contains("--fraction", Assert.Throws<ArgumentException>(() =>
            Engine.Cli.RefreshDemoCommand.Run(new Engine.Cli.RefreshDemoSettings(Fraction: 0), sw, out _)).Message);
        Assert.Contains("--steps", Assert.Throws<ArgumentException>(() =>
            Engine.Cli.RefreshDemoCommand.Run(new Engine.Cli.RefreshDemoSettings(Steps: 0), sw, out _)).Message);
        Assert.Contains("--refresh-every", Assert.Throws<ArgumentException>(() =>
            Engine.Cli.RefreshDemoCommand.Run(new Engine.Cli.RefreshDemoSettings(RefreshEvery: -1), sw, out _)).Message);
    }
}
