using System.Diagnostics;
using Engine.Index.Spann;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

public class SpannCrashTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int D = CrashChild.Dimension;

    /// <summary>
    /// SIGKILL at random points of add, delete, checkpoint, maintenance (background and <c>Maintain()</c>) and open (one
    /// kill in five lands before the child reports READY), for every log kind: 20 kills per kind in CI, 200 with
    /// ENGINE_LONG_TESTS=1. After every kill the index must open (0 unopenable) with every acknowledged write (0 lost).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void Sigkill_AtRandomPoints_KeepsEveryAcknowledgedWrite(string kind)
    {
        bool longRun = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
        RunKills(kind, longRun ? 200 : 20, seed: 2024);
    }

    /// <summary>The kill loop (also run for coded postings by <see cref="SpannCodedCrashTests"/>): codec null = raw postings.</summary>
    internal void RunKills(string kind, int kills, int seed, string? codec = null)
    {
        using var dir = new TestDirectory();
        var train = SpannTestData.Clustered(600, D, seed: 3);
        var options = new SpannOptions { PostingSize = 8, MaxPostingSize = 32, MinPostingSize = 2, Codec = codec };
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, options, TestLogs.Provider(kind)))
            idx.Train(train);
        int duringOpen = 0, torn = 0;
        var present = new HashSet<long>();
        var maybe = new HashSet<long>(); // deletes begun but not acknowledged
        var history = new List<(bool Insert, long[] Ids)>(); // the writes that reached the index, in order
        var rng = new Random(seed);
        string self = typeof(CrashChild).Assembly.Location;
        for (int run = 1; run <= kills; run++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "exec", self, "spann-crash-child", dir.Path, run.ToString(), (seed + run).ToString() }) psi.ArgumentList.Add(a);
            using var child = Process.Start(psi)!;
            var lines = new List<string>();
            var ready = new ManualResetEventSlim();
            child.OutputDataReceived += (_, e) => { if (e.Data is null) return; lock (lines) lines.Add(e.Data); if (e.Data == "READY") ready.Set(); };
            child.BeginOutputReadLine();
            string err = "";
            child.ErrorDataReceived += (_, e) => { if (e.Data is not null) err += e.Data + "\n"; };
            child.BeginErrorReadLine();
            if (rng.Next(5) == 0)
            {
                Thread.Sleep(rng.Next(0, 250)); // during start-up and open (recovery, replay, the open's maintenance)
                if (!ready.IsSet) duringOpen++;
            }
            else
            {
                if (!ready.Wait(TimeSpan.FromSeconds(60)))
                {
                    child.Kill();
                    Assert.Fail($"child {run} did not open the index: {err}");
                }
                Thread.Sleep(rng.Next(20, 400));
            }
            Assert.False(child.HasExited, $"child {run} exited early: {err}");
            child.Kill(); // SIGKILL on Unix
            child.WaitForExit();
            string[] snapshot;
            lock (lines) snapshot = lines.ToArray();
            long[]? inFlightInsert = null, inFlightDelete = null;
            foreach (var line in snapshot)
            {
                if (line.Length < 5 || !line.EndsWith(" E", StringComparison.Ordinal)) continue; // cut by the kill
                var ids = line[2..^2].Split(',').Select(long.Parse).ToArray();
                switch (line[0])
                {
                    case 'A': inFlightInsert = ids; break;
                    case 'I': foreach (var id in ids) present.Add(id); inFlightInsert = null; history.Add((true, ids)); break;
                    case 'B': foreach (var id in ids) maybe.Add(id); inFlightDelete = ids; break;
                    case 'D': foreach (var id in ids) { present.Remove(id); maybe.Remove(id); } inFlightDelete = null; history.Add((false, ids)); break;
                }
            }
            SpannIndex reopened;
            try { reopened = SpannIndex.Open(dir.Path); }
            catch (CorruptIndexException e) { throw new Xunit.Sdk.XunitException($"{kind} log, run {run}: the index cannot be opened after SIGKILL: {e.Message}"); }
            using var _ = reopened;
            Assert.Equal(kind, reopened.LogKind);
            Assert.False(reopened.Recovery!.LogLossAccepted);
            if (reopened.Recovery.TornBytesDropped > 0) torn++;
            var v = new float[D];
            // An operation the kill interrupted is all or nothing: never part of a batch.
            if (inFlightInsert is not null)
            {
                int visible = inFlightInsert.Count(id => reopened.TryReconstruct(id, v));
                Assert.True(visible == 0 || visible == inFlightInsert.Length, $"run {run}: {visible} of {inFlightInsert.Length} ids of an unacknowledged insert are visible");
                if (visible > 0) { foreach (var id in inFlightInsert) present.Add(id); history.Add((true, inFlightInsert)); } // committed before the kill
            }
            if (inFlightDelete is not null)
            {
                int gone = inFlightDelete.Count(id => present.Contains(id) && !reopened.TryReconstruct(id, v));
                int candidates = inFlightDelete.Count(present.Contains);
                Assert.True(gone == 0 || gone == candidates, $"run {run}: {gone} of {candidates} ids of an unacknowledged delete are gone");
            }
            foreach (var id in present)
            {
                bool found = reopened.TryReconstruct(id, v);
                if (maybe.Contains(id)) continue;
                Assert.True(found, $"run {run}: acknowledged id {id} is missing after SIGKILL");
                Assert.Equal(SpannTestData.VectorOf(id, D), v);
            }
            var goneNow = maybe.Where(i => !reopened.TryReconstruct(i, v)).ToArray();
            foreach (var id in goneNow) { present.Remove(id); maybe.Remove(id); }
            if (goneNow.Length > 0) history.Add((false, goneNow));
            Assert.Equal(present.Count, reopened.Count); // nothing unacknowledged beyond the in-flight batch
            var dd = new float[5]; var ll = new long[5];
            var some = present.Where(i => !maybe.Contains(i)).Take(3).ToArray();
            foreach (var id in some)
            {
                reopened.Search(SpannTestData.VectorOf(id, D), 5, dd, ll);
                Assert.Equal(id, ll[0]);
            }
        }
        Assert.True(present.Count > 0, "children acknowledged no inserts");
        output.WriteLine($"{kind} log: {kills} SIGKILLs ({duringOpen} before the child was READY, {torn} opens dropped a torn tail): " +
                         $"0 acknowledged writes lost, 0 unopenable indexes; {present.Count} vectors acknowledged");
        CheckRecallAgainstCleanBuild(dir.Path, present, history, train);
    }

    /// <summary>
    /// After all the kills, recall of the recovered index is within 0.02 of a clean build: the same training set and
    /// the same writes in the same order, in one process that never crashed. (A from-scratch build of the final
    /// vectors is printed too; its gap is the cost of growing by splits, which the update tests cover.)
    /// </summary>
    private void CheckRecallAgainstCleanBuild(string path, HashSet<long> present, List<(bool Insert, long[] Ids)> history, float[] train)
    {
        var ids = present.Order().ToArray();
        var vectors = new float[ids.Length * D];
        for (int i = 0; i < ids.Length; i++) SpannTestData.VectorOf(ids[i], D).CopyTo(vectors, i * D);
        var queries = new float[200 * D];
        for (int q = 0; q < 200; q++) SpannTestData.VectorOf(900_000_000 + q, D).CopyTo(queries, q * D);
        using var recovered = SpannIndex.Open(path);
        recovered.WaitForMaintenance();
        using var clean = new SpannIndex(D, Metric.L2, recovered.Options) { BackgroundMaintenance = false };
        clean.Train(train);
        foreach (var (insert, batch) in history)
        {
            if (insert)
            {
                var bv = new float[batch.Length * D];
                for (int i = 0; i < batch.Length; i++) SpannTestData.VectorOf(batch[i], D).CopyTo(bv, i * D);
                clean.Add(bv, batch);
            }
            else clean.Remove(batch);
            clean.WaitForMaintenance();
        }
        clean.Maintain();
        using var fresh = new SpannIndex(D, Metric.L2, recovered.Options) { BackgroundMaintenance = false };
        fresh.Train(vectors);
        fresh.Add(vectors, ids);
        fresh.Maintain();
        using var exact = new Engine.Index.Flat.FlatIndex(D, Metric.L2);
        exact.Add(vectors, ids);
        Assert.Equal(exact.Count, recovered.Count);
        Assert.Equal(exact.Count, clean.Count);
        // Compare at the operating point where the clean build first reaches recall 0.95 (the two indexes have
        // different posting counts, so a fixed probe count would compare their granularity, not their health). At
        // 0.9 the recall curve is steep enough that posting granularity alone moved the gap past 0.02 (a CI run:
        // recovered 0.8825 with 238 postings vs clean 0.9055 with 318, both at 32 probes); lost or misplaced vectors
        // still cap the recovered index's recall at 0.95.
        double rClean = 0, rRecovered = 0;
        int probes = 0;
        foreach (int p in new[] { 2, 4, 8, 16, 32, 64, 128 })
        {
            probes = p;
            rClean = SpannTestData.Recall(clean, exact, queries, 10, new SpannSearchParameters { Probes = p, Threads = 1 });
            if (rClean >= 0.95) break;
        }
        // The kills land at random points of maintenance, so the recovered index may have split postings more or less
        // than the clean build. With more postings it is probed over the same fraction of them (probes scaled by the
        // posting-count ratio); with fewer (larger) postings at the clean build's probe count. That compares health,
        // not granularity; lost or misplaced vectors still cap its recall.
        int recoveredProbes = Math.Max(probes, (int)Math.Ceiling(probes * (double)recovered.PostingCount / clean.PostingCount));
        rRecovered = SpannTestData.Recall(recovered, exact, queries, 10, new SpannSearchParameters { Probes = recoveredProbes, Threads = 1 });
        double rFresh = SpannTestData.Recall(fresh, exact, queries, 10, new SpannSearchParameters { Probes = probes, Threads = 1 });
        output.WriteLine($"{ids.Length} vectors after the kills: recall@10 recovered {rRecovered:F4} at probes={recoveredProbes} ({recovered.PostingCount} postings), " +
                         $"clean build {rClean:F4} at probes={probes} ({clean.PostingCount} postings), from-scratch build {rFresh:F4} ({fresh.PostingCount} postings)");
        Assert.True(rRecovered >= rClean - 0.02, $"recall after crashes {rRecovered:F4} (probes={recoveredProbes}, {recovered.PostingCount} postings) is more than 0.02 below a clean build's {rClean:F4} (probes={probes}, {clean.PostingCount} postings; {ids.Length} vectors)");
    }
}
