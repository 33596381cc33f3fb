using System.Collections.Concurrent;
using System.Diagnostics;
using Engine.Distributed;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace Engine.Distributed.Tests;

/// <summary>
/// Losing a silo mid-search loses no query and no acknowledged write; a restarted silo catches up from a replica;
/// adding a silo and rebalancing moves replicas while searches and writes keep going.
/// </summary>
public class DistributedFailoverTests(ITestOutputHelper output)
{
    private const int D = 16, K = 10;

    /// <summary>ENGINE_LONG_TESTS=1: ten times the vectors and a ten times longer disruption (run once, reported in docs/scale-out.md).</summary>
    private static readonly bool Long = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
    private static readonly int N = Long ? 20000 : 2000;
    private static readonly int DisruptionMs = Long ? 15000 : 1500;

    /// <summary>Loads N Gaussian vectors; returns the collection, the queries and their exact answer.</summary>
    private static async Task<(DistributedCollection Coll, float[] Queries, long[] Expected)> Load(DistributedTestCluster c, string name, int shards)
    {
        var vectors = TestData.Gaussian(N, D, seed: 41);
        var ids = TestData.Ids(N);
        var queries = TestData.Gaussian(20, D, seed: 42);
        var layout = new ShardLayout { Name = name, Dimension = D, Metric = Metric.L2, Spec = "Flat", Shards = shards, Replicas = 2 };
        // A call stranded on the killed silo is given up after 15 s and sent again through a live gateway.
        var coll = await DistributedCollection.OpenAsync(c.Client, layout, callTimeout: TimeSpan.FromSeconds(15));
        await coll.UpsertAsync(vectors, ids);
        using var single = TestData.Reference(vectors, ids, D, Metric.L2);
        return (coll, queries, TestData.Search(single, queries, K).Labels);
    }

    /// <summary>Far-away vectors (every coordinate + 1000): written during the disruption, never in the queries' top-k.</summary>
    private static float[] Far(int n, int seed) => TestData.Gaussian(n, D, seed).Select(x => x + 1000f).ToArray();

    /// <summary>Searches and writes in a loop until stopped; records every answer and every acknowledged id.</summary>
    private sealed class Load_(DistributedCollection coll, float[] queries, long[] expected)
    {
        public readonly ConcurrentBag<string> Errors = [];
        public readonly ConcurrentBag<long> Acknowledged = [];
        public int Searches, Writes;
        private readonly CancellationTokenSource _stop = new();
        private Task? _search, _write;

        public void Start()
        {
            _search = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        var got = await coll.SearchAsync(queries, K);
                        if (!got.Labels.SequenceEqual(expected)) Errors.Add("a search returned other ids than the single index");
                        Interlocked.Increment(ref Searches);
                    }
                    catch (Exception e) { Errors.Add("search failed: " + e.GetType().Name + ": " + e.Message); }
                }
            });
            _write = Task.Run(async () =>
            {
                long next = 1_000_000;
                while (!_stop.IsCancellationRequested)
                {
                    var ids = TestData.Ids(8, next);
                    next += 8;
                    try
                    {
                        await coll.UpsertAsync(Far(8, (int)next), ids);
                        foreach (var id in ids) Acknowledged.Add(id);
                        Interlocked.Increment(ref Writes);
                    }
                    catch (Exception e) { Errors.Add("write failed: " + e.GetType().Name + ": " + e.Message); }
                }
            });
        }

        public async Task StopAsync()
        {
            _stop.Cancel();
            await Task.WhenAll(_search!, _write!);
        }
    }

    private async Task CheckEverything(DistributedCollection coll, float[] queries, long[] expected, IReadOnlyCollection<long> acknowledged)
    {
        Assert.Equal(expected, (await coll.SearchAsync(queries, K)).Labels);
        var want = TestData.Ids(N).Concat(acknowledged).ToArray();
        var rows = await coll.GetAsync(want);
        Assert.Equal(want.Length, rows.Ids.Length);
        var status = await coll.StatusAsync();
        int r = coll.Layout.Replicas;
        for (int s = 0; s < coll.Layout.Shards; s++)
            for (int i = 1; i < r; i++)
            {
                Assert.Equal(status[s * r].Sequence, status[s * r + i].Sequence);
                Assert.Equal(status[s * r].Count, status[s * r + i].Count);
            }
        Assert.Equal(want.Length, await coll.CountAsync());
        output.WriteLine("replicas: " + string.Join(", ", status.Select((st, i) => $"{i / r}/{i % r}@{st.Silo}:{st.Count} [{st.LastCatchUp}]")));
    }

    [Theory]
    [InlineData(false)]   // graceful stop: the silo hands its activations back
    [InlineData(true)]    // kill: the cluster has to detect the dead silo
    public async Task SiloLostMidSearch_LosesNoQueryAndNoAcknowledgedWrite(bool kill)
    {
        var clock = Stopwatch.StartNew();
        await using var c = await DistributedTestCluster.StartAsync(3, nameof(SiloLostMidSearch_LosesNoQueryAndNoAcknowledgedWrite) + kill);
        var (coll, queries, expected) = await Load(c, "lost", shards: 3);
        var load = new Load_(coll, queries, expected);
        load.Start();
        await Task.Delay(500);
        var victim = c.Cluster.Silos.First(s => s.SiloAddress != c.Cluster.Silos[0].SiloAddress);
        if (kill) await c.Cluster.KillSiloAsync(victim);
        else await c.Cluster.StopSiloAsync(victim);
        await Task.Delay(DisruptionMs);
        await load.StopAsync();
        output.WriteLine($"{load.Searches} searches, {load.Writes} write batches, {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(load.Errors.IsEmpty, string.Join("\n", load.Errors.Distinct()));
        Assert.True(load.Searches > 0 && load.Writes > 0);
        await CheckEverything(coll, queries, expected, load.Acknowledged);
        // Every replica now lives on a surviving silo; rebalancing puts the replicas of each shard on distinct silos
        // again (the replacement activation was placed without regard to where its sibling lives).
        Assert.DoesNotContain(await coll.StatusAsync(), st => st.Silo == victim.SiloAddress.Endpoint.ToString());
        await coll.RebalanceAsync();
        var status = await coll.StatusAsync();
        for (int s = 0; s < 3; s++) Assert.NotEqual(status[2 * s].Silo, status[2 * s + 1].Silo);
        await CheckEverything(coll, queries, expected, load.Acknowledged);
    }

    [Fact]
    public async Task RestartedSilo_CatchesUpFromAReplica()
    {
        await using var c = await DistributedTestCluster.StartAsync(3, nameof(RestartedSilo_CatchesUpFromAReplica));
        // 8 shards: with rendezvous placement the restarted silo holds some replica but with probability (1/3)^8.
        var (coll, queries, expected) = await Load(c, "restart", shards: 8);
        var victim = c.Cluster.Silos[1];
        string name = victim.Name, endpoint = victim.SiloAddress.Endpoint.ToString();
        int before = (await coll.StatusAsync()).Count(s => s.Silo == endpoint);
        Assert.True(before > 0);
        await c.Cluster.StopSiloAsync(victim);

        // Writes while the silo is down: acknowledged by the replicas that moved to the survivors.
        var acknowledged = new List<long>();
        for (int b = 0; b < 5; b++)
        {
            var ids = TestData.Ids(20, 2_000_000 + b * 20);
            await coll.UpsertAsync(Far(20, b), ids);
            acknowledged.AddRange(ids);
        }
        await coll.DeleteAsync(acknowledged.Take(10).ToArray());
        acknowledged.RemoveRange(0, 10);

        // The silo comes back on the same data directory; rebalancing moves its replicas home, where each opens its
        // stale local copy and catches up from a peer.
        var back = await c.RestartOnSameDiskAsync(name);
        await c.Cluster.WaitForLivenessToStabilizeAsync();
        int moved = await coll.RebalanceAsync();
        Assert.True(moved > 0, "rebalancing moved nothing to the restarted silo");
        var status = await coll.StatusAsync();
        string home = back.SiloAddress.Endpoint.ToString();
        Assert.Equal(before, status.Count(s => s.Silo == home));
        // Each replica back home opened its stale copy from the disk and needed only the writes it missed.
        Assert.All(status.Where(s => s.Silo == home), s => Assert.StartsWith("ops ", s.LastCatchUp));
        Assert.Contains(status, s => s.Silo == home && s.LastCatchUp != "ops 0 from replica 0" && s.LastCatchUp != "ops 0 from replica 1");
        await CheckEverything(coll, queries, expected, acknowledged);
        Assert.Empty((await coll.GetAsync(TestData.Ids(10, 2_000_000))).Ids);
    }

    [Fact]
    public async Task AddingASilo_RebalancesUnderLoad()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(AddingASilo_RebalancesUnderLoad));
        // 8 shards: the new silo ranks among the top two of a shard with probability 2/3, so it gets none with (1/3)^8.
        var (coll, queries, expected) = await Load(c, "grow", shards: 8);
        var load = new Load_(coll, queries, expected);
        load.Start();
        var added = await c.Cluster.StartAdditionalSiloAsync();
        await c.Cluster.WaitForLivenessToStabilizeAsync();
        int moved = await coll.RebalanceAsync();
        await Task.Delay(DisruptionMs / 5);
        await load.StopAsync();
        output.WriteLine($"moved {moved}; {load.Searches} searches, {load.Writes} write batches during the move");
        Assert.True(load.Errors.IsEmpty, string.Join("\n", load.Errors.Distinct()));
        Assert.True(moved > 0);
        var status = await coll.StatusAsync();
        Assert.Contains(status, s => s.Silo == added.SiloAddress.Endpoint.ToString());
        // Replicas of one shard on distinct silos after the move.
        for (int s = 0; s < 8; s++) Assert.NotEqual(status[2 * s].Silo, status[2 * s + 1].Silo);
        await CheckEverything(coll, queries, expected, load.Acknowledged);
        Assert.Equal(0, await coll.MisplacedAsync());
        Assert.Equal(0, await coll.RebalanceAsync());
    }

    [Fact]
    public async Task AMovedReplica_GetsThePeersBuiltIndex_NotARebuild()
    {
        // A history of one write in memory and a snapshot every 64 KiB of log: after six rounds of writes (~100 KiB of
        // log per shard) no peer can serve a moved replica by ops, so it copies a snapshot.
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(AMovedReplica_GetsThePeersBuiltIndex_NotARebuild),
            configure: o => { o.CatchUpTailBytes = 1024; o.CheckpointLogBytes = 1 << 16; });
        var vectors = TestData.Gaussian(N, D, seed: 43);
        var ids = TestData.Ids(N);
        var layout = new ShardLayout { Name = "graph", Dimension = D, Metric = Metric.L2, Spec = "HNSW16", Shards = 8, Replicas = 2 };
        var coll = await DistributedCollection.OpenAsync(c.Client, layout);
        for (int round = 0; round < 6; round++)
            for (int b = 0; b < 4; b++)
                await coll.UpsertAsync(vectors[(b * N / 4 * D)..((b + 1) * N / 4 * D)], ids[(b * N / 4)..((b + 1) * N / 4)]);
        var before = await coll.SearchAsync(vectors, 1);
        var added = await c.Cluster.StartAdditionalSiloAsync();
        await c.Cluster.WaitForLivenessToStabilizeAsync();
        Assert.True(await coll.RebalanceAsync() > 0);
        var status = await coll.StatusAsync();
        string home = added.SiloAddress.Endpoint.ToString();
        output.WriteLine(string.Join(", ", status.Select((st, i) => $"{i / 2}/{i % 2}@{st.Silo} [{st.LastCatchUp}]")));
        // Each replica on the new silo copied its peer's vectors and its HNSW graph (the same graph: the same answers).
        var moved = status.Where(s => s.Silo == home).ToArray();
        Assert.NotEmpty(moved);
        Assert.All(moved, s => Assert.Matches(@"^snapshot \d+ \+ index \d+ B, then ops \d+ from replica \d$", s.LastCatchUp));
        var after = await coll.SearchAsync(vectors, 1);
        Assert.Equal(before.Labels, after.Labels);
        Assert.True(ids.Zip(after.Labels).Count(p => p.First == p.Second) >= N * 0.98);
    }

    // Polls until nothing is misplaced and `done` holds (or the limit passes), then stops the load and logs where it stands.
    private async Task<(ReplicaStatus[] Status, bool Settled)> Settle(DistributedCollection coll, Load_ load, TimeSpan limit, int pollMs,
        Func<ReplicaStatus[], bool> done)
    {
        var clock = Stopwatch.StartNew();
        ReplicaStatus[] status;
        bool settled;
        do
        {
            await Task.Delay(pollMs);
            try
            {
                status = await coll.StatusAsync();
                settled = await coll.MisplacedAsync() == 0 && done(status);
            }
            catch (IOException e) when (clock.Elapsed < limit)
            {
                // A replica re-activated on a surviving silo while its peers were still moving says "retry" (the
                // client's own three attempts may all fall inside the move): a monitor polls again.
                output.WriteLine($"status not available at {clock.Elapsed.TotalSeconds:F1} s: {e.Message}");
                status = [];
                settled = false;
            }
        }
        while (!settled && clock.Elapsed < limit);
        await load.StopAsync();
        output.WriteLine($"settled {settled} after {clock.Elapsed.TotalSeconds:F1} s; {load.Searches} searches, {load.Writes} write batches; "
            + string.Join(", ", status.Select((st, i) => $"{i / 2}/{i % 2}@{st.Silo}")));
        return (status, settled);
    }

    [Fact]
    public async Task AddingASilo_MovesReplicasToIt_WithoutBeingAsked()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(AddingASilo_MovesReplicasToIt_WithoutBeingAsked),
            configure: o => { o.AutoRebalance = true; o.RebalanceDelay = TimeSpan.FromSeconds(1); });
        var (coll, queries, expected) = await Load(c, "auto", shards: 8);
        var load = new Load_(coll, queries, expected);
        load.Start();
        var added = await c.Cluster.StartAdditionalSiloAsync();
        string home = added.SiloAddress.Endpoint.ToString();
        // No RebalanceAsync: the silos see the new member and move its share of the replicas to it.
        var (status, _) = await Settle(coll, load, TimeSpan.FromSeconds(60), 250, st => st.Any(x => x.Silo == home));
        Assert.True(load.Errors.IsEmpty, string.Join("\n", load.Errors.Distinct()));
        Assert.Contains(status, s => s.Silo == home);
        for (int s = 0; s < 8; s++) Assert.NotEqual(status[2 * s].Silo, status[2 * s + 1].Silo);
        await CheckEverything(coll, queries, expected, load.Acknowledged);
    }

    [Fact]
    public async Task ASingleCopy_NeverMoves_WhenASiloJoins()
    {
        // R = 1: a move would hand off by catch-up from a peer, and there is none: the replica stays with its data.
        await using var c = await DistributedTestCluster.StartAsync(1, nameof(ASingleCopy_NeverMoves_WhenASiloJoins),
            configure: o => { o.AutoRebalance = true; o.RebalanceDelay = TimeSpan.FromMilliseconds(200); });
        var layout = new ShardLayout { Name = "single", Dimension = D, Metric = Metric.L2, Spec = "Flat", Shards = 6, Replicas = 1 };
        var coll = await DistributedCollection.OpenAsync(c.Client, layout);
        await coll.UpsertAsync(TestData.Gaussian(600, D, 3), TestData.Ids(600));
        string home = c.Cluster.Silos[0].SiloAddress.Endpoint.ToString();
        await c.Cluster.StartAdditionalSiloAsync();
        await c.Cluster.WaitForLivenessToStabilizeAsync();
        await Task.Delay(2000);   // ten rebalance delays
        Assert.Equal(0, await coll.MisplacedAsync());
        Assert.Equal(0, await coll.RebalanceAsync());
        var status = await coll.StatusAsync();
        Assert.All(status, st => Assert.Equal(home, st.Silo));
        Assert.Equal(600, await coll.CountAsync());
    }

    [Fact]
    public async Task AMove_WaitsForAPeerToHoldADurableCopy_AfterASiloLoss()
    {
        // A silo holding replica 0 of some shards is lost; before anything touches those replicas (re-created empty on
        // their next call), replica 1 of such a shard is told to move. Moving it then would leave both copies empty
        // (the move catches up from a peer, and the only peer has nothing yet): the move must first get that peer to
        // catch up, so the shard keeps every vector.
        await using var c = await DistributedTestCluster.StartAsync(3, nameof(AMove_WaitsForAPeerToHoldADurableCopy_AfterASiloLoss));
        var (coll, queries, expected) = await Load(c, "handoff", shards: 16);
        var layout = coll.Layout;
        var before = await coll.StatusAsync();
        var victim = c.Cluster.Silos[2];
        string gone = victim.SiloAddress.Endpoint.ToString();
        await c.Cluster.KillSiloAsync(victim);
        await c.Cluster.WaitForLivenessToStabilizeAsync();
        int moved = 0;
        for (int s = 0; s < layout.Shards; s++)
        {
            // one replica was on the lost silo (its next activation is empty); the other, if the smaller membership
            // places it elsewhere, is told to move before anything touched its sibling
            int lost = before[2 * s].Silo == gone ? 0 : before[2 * s + 1].Silo == gone ? 1 : -1;
            if (lost < 0) continue;
            var survivor = c.Client.GetGrain<IShardReplicaGrain>(layout.ReplicaKey(s, 1 - lost));
            if (!await survivor.Misplaced(layout) || !await survivor.Rebalance(layout)) continue;
            moved++;
            string from = before[2 * s + 1 - lost].Silo;
            var clock = Stopwatch.StartNew();
            while ((await survivor.Ready(layout)).Silo == from && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100);
        }
        output.WriteLine($"moved {moved} surviving replicas whose sibling was lost");
        Assert.True(moved > 0, "no surviving replica was misplaced after the loss: the test did not exercise a move");
        Assert.Equal(N, await coll.CountAsync());
        await CheckEverything(coll, queries, expected, Array.Empty<long>());
    }

    [Fact]
    public async Task LosingASilo_PutsEveryShardOnDistinctSilosAgain_WithoutBeingAsked()
    {
        await using var c = await DistributedTestCluster.StartAsync(3, nameof(LosingASilo_PutsEveryShardOnDistinctSilosAgain_WithoutBeingAsked),
            configure: o => { o.AutoRebalance = true; o.RebalanceDelay = TimeSpan.FromSeconds(1); });
        var (coll, queries, expected) = await Load(c, "loss", shards: 8);
        var load = new Load_(coll, queries, expected);
        load.Start();
        var victim = c.Cluster.Silos[2];
        string gone = victim.SiloAddress.Endpoint.ToString();
        await c.Cluster.KillSiloAsync(victim);
        // The lost replicas are re-activated where Orleans places them (possibly beside a sibling); the survivors then
        // see the smaller membership and move replicas until each shard's two sit on the two survivors.
        var (status, settled) = await Settle(coll, load, TimeSpan.FromSeconds(90), 500,
            st => st.All(x => x.Silo != gone) && Enumerable.Range(0, 8).All(s => st[2 * s].Silo != st[2 * s + 1].Silo));
        Assert.True(load.Errors.IsEmpty, string.Join("\n", load.Errors.Distinct()));
        Assert.True(settled, "the replicas did not settle on distinct surviving silos");
        await CheckEverything(coll, queries, expected, load.Acknowledged);
    }
}
