using Engine.Distributed;

namespace Engine.Distributed.Tests;

/// <summary>A replica's disk state without Orleans: log replay, snapshots, catch-up answers, refusals.</summary>
public class DistributedShardStoreTests : IDisposable
{
    private const int D = 8;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-dist-store-" + Guid.NewGuid().ToString("N")[..8]);
    private static readonly ShardLayout Layout = new() { Name = "s", Dimension = D, Metric = Metric.L2, Spec = "Flat", Shards = 1, Replicas = 2 };

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static WriteOp Upsert(long seq, long epoch, long prevEpoch, long[] ids, int seed) =>
        new() { Sequence = seq, Epoch = epoch, PreviousEpoch = prevEpoch, Kind = WriteKind.Upsert, Ids = ids, Vectors = TestData.Gaussian(ids.Length, D, seed) };

    [Fact]
    public void Reopen_ReplaysTheLog_AndSnapshotsTruncateIt()
    {
        long[] firstIds = TestData.Ids(50), secondIds = TestData.Ids(30, 100);
        using (var s = ShardStore.Open(_dir, Layout))
        {
            s.Append(Upsert(1, 7, 0, firstIds, 1));
            s.Append(new WriteOp { Sequence = 2, Epoch = 7, PreviousEpoch = 7, Kind = WriteKind.Delete, Ids = [3, 4, 999], Vectors = [] });
        }   // no checkpoint: reopening must redo the log
        using (var s = ShardStore.Open(_dir, Layout))
        {
            Assert.Equal((2L, 7L, 48L), (s.Sequence, s.Epoch, s.Count));
            Assert.Empty(s.Get([3, 4]).Ids);
            s.Checkpoint();
            s.Append(Upsert(3, 9, 7, secondIds, 2));
        }
        using (var s = ShardStore.Open(_dir, Layout, checkpointLogBytes: 1 << 16))
        {
            Assert.Equal((3L, 9L, 78L), (s.Sequence, s.Epoch, s.Count));
            var got = s.Get([100]);
            Assert.Equal(TestData.Gaussian(30, D, 2)[..D], got.Vectors);
            // A search over the reopened replica equals a fresh Flat index over the same vectors.
            var all = s.Get(TestData.Ids(200));
            using var single = TestData.Reference(all.Vectors, all.Ids, D, Metric.L2);
            var q = TestData.Gaussian(5, D, 3);
            Assert.Equal(TestData.Search(single, q, 4).Labels, s.Search(new SearchRequest { Queries = q, K = 4 }).Labels);
        }
    }

    [Fact]
    public void CatchUp_SendsOpsWhenLinked_AndASnapshotWhenTheTailDiverged()
    {
        using var s = ShardStore.Open(_dir, Layout);
        s.Append(Upsert(1, 5, 0, TestData.Ids(10), 1));
        s.Append(Upsert(2, 5, 5, TestData.Ids(10, 10), 2));
        s.Append(Upsert(3, 6, 5, TestData.Ids(10, 20), 3));
        Assert.Equal(new long[] { 2, 3 }, s.CatchUpFrom(1, 5).Ops!.Select(o => o.Sequence));
        Assert.Equal(3, s.CatchUpFrom(0, 0).Ops!.Length);
        Assert.Empty(s.CatchUpFrom(3, 6).Ops!);
        var diverged = s.CatchUpFrom(2, 99);       // its write 2 came from another primary epoch
        Assert.Null(diverged.Ops);
        Assert.Equal(30, diverged.SnapshotIds!.Length);
        Assert.Equal((3L, 6L), (diverged.SnapshotSequence, diverged.SnapshotEpoch));
        Assert.Null(s.CatchUpFrom(4, 6).Ops);      // ahead of this replica: it gets this replica's state
        Assert.Throws<InvalidOperationException>(() => s.Append(Upsert(5, 6, 6, [1], 4)));
    }

    [Fact]
    public void Open_RefusesAnotherLayout_AndADamagedSnapshot()
    {
        using (var s = ShardStore.Open(_dir, Layout))
        {
            s.Append(Upsert(1, 5, 0, TestData.Ids(10), 1));
            s.Checkpoint();
        }
        var e = Assert.Throws<InvalidOperationException>(() => ShardStore.Open(_dir, Layout with { Spec = "HNSW16" }));
        Assert.Contains("HNSW16", e.Message);
        string snap = Path.Combine(_dir, ShardStore.SnapshotFile);
        var bytes = File.ReadAllBytes(snap);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(snap, bytes);
        Assert.Throws<CorruptIndexException>(() => ShardStore.Open(_dir, Layout));
    }

    [Fact]
    public void StagedSpec_TrainsAtTrainingSize_AndTheReplicasBuildTheSameIndex()
    {
        var layout = Layout with { Spec = "IVF8,Flat", TrainingSize = 300 };
        using var a = ShardStore.Open(Path.Combine(_dir, "a"), layout);
        a.Append(Upsert(1, 1, 0, TestData.Ids(200), 1));
        Assert.False(a.Trained);
        a.Append(Upsert(2, 1, 1, TestData.Ids(200, 200), 2));
        Assert.True(a.Trained);
        // A peer that installs the same vectors from a snapshot trains on them in id order: same answers.
        var rows = a.Get(TestData.Ids(400));
        using var b = ShardStore.Open(Path.Combine(_dir, "b"), layout);
        b.Install(rows.Ids, rows.Vectors, 2, 1);
        var q = new SearchRequest { Queries = TestData.Gaussian(10, D, 9), K = 5, Settings = new() { ["probes"] = "2" } };
        using var reopened = ShardStore.Open(Path.Combine(_dir, "c"), layout);
        reopened.Install(rows.Ids, rows.Vectors, 2, 1);
        Assert.Equal(b.Search(q).Labels, reopened.Search(q).Labels);
        Assert.Equal(a.Search(q).Labels, b.Search(q).Labels);   // trained at the threshold on the same 400 vectors
        Assert.Throws<ArgumentException>(() => b.Search(q with { Settings = new() { ["ef"] = "3" } }));
    }
}

/// <summary>Every index family works as a shard's local index, staged, trained, reopened.</summary>
public class DistributedShardSpecTests : IDisposable
{
    private const int D = 8;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-dist-spec-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Theory]
    [InlineData("Flat", null)]
    [InlineData("HNSW16", "ef=64")]
    [InlineData("IVF8,Flat", "probes=8")]
    [InlineData("SPANN(postings=16)", "probes=16")]
    public void AnySpec_FindsEachVectorAsItsOwnNearestNeighbour_AfterReopen(string spec, string? knob)
    {
        var layout = new ShardLayout { Name = "s", Dimension = D, Metric = Metric.L2, Spec = spec, Shards = 1, Replicas = 1, TrainingSize = 400 };
        var vectors = TestData.Gaussian(800, D, seed: 61);
        var ids = TestData.Ids(800, offset: 1000);
        var settings = knob is null ? null : new Dictionary<string, string> { [knob.Split('=')[0]] = knob.Split('=')[1] };
        var queries = vectors[..(50 * D)];
        long[] before;
        using (var s = ShardStore.Open(_dir, layout))
        {
            s.Append(new WriteOp { Sequence = 1, Epoch = 1, Kind = WriteKind.Upsert, Ids = ids[..300], Vectors = vectors[..(300 * D)] });
            Assert.False(s.Trained && spec != "Flat" && spec != "HNSW16");
            s.Append(new WriteOp { Sequence = 2, Epoch = 1, PreviousEpoch = 1, Kind = WriteKind.Upsert, Ids = ids[300..], Vectors = vectors[(300 * D)..] });
            Assert.True(s.Trained);
            before = s.Search(new SearchRequest { Queries = queries, K = 1, Settings = settings }).Labels;
        }
        Assert.Equal(ids[..50], before);
        using var reopened = ShardStore.Open(_dir, layout);
        Assert.Equal(800, reopened.Count);
        Assert.Equal(before, reopened.Search(new SearchRequest { Queries = queries, K = 1, Settings = settings }).Labels);
    }
}

/// <summary>The placement rule without a cluster: distinct silos per shard, even spread, few moves when a silo joins.</summary>
public class ShardPlacementTests
{
    private static Orleans.Runtime.SiloAddress Silo(int port) =>
        Orleans.Runtime.SiloAddress.New(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port), 1);

    [Fact]
    public void Replicas_OnDistinctSilos_SpreadEvenly_AndAJoinMovesFew()
    {
        const int S = 400, R = 2;
        var four = Enumerable.Range(0, 4).Select(i => Silo(11111 + i)).ToArray();
        var five = four.Append(Silo(11200)).ToArray();
        var load = new Dictionary<string, int>();
        int moved = 0;
        for (int s = 0; s < S; s++)
        {
            var here = Enumerable.Range(0, R).Select(r => ShardPlacementDirector.Pick(four, "c", s, r)!).ToArray();
            Assert.Equal(R, here.Distinct().Count());
            foreach (var silo in here) load[silo.ToString()] = load.GetValueOrDefault(silo.ToString()) + 1;
            // The order of the silo list does not matter; a restarted silo (new generation, same endpoint) ranks the same.
            Assert.Equal(here, Enumerable.Range(0, R).Select(r => ShardPlacementDirector.Pick(four.Reverse().ToArray(), "c", s, r)!));
            var restarted = four.Select(x => x.Endpoint.Port == 11112 ? Orleans.Runtime.SiloAddress.New(x.Endpoint, 7) : x).ToArray();
            Assert.Equal(here.Select(x => x.Endpoint), Enumerable.Range(0, R).Select(r => ShardPlacementDirector.Pick(restarted, "c", s, r)!.Endpoint));
            moved += Enumerable.Range(0, R).Count(r => !ShardPlacementDirector.Pick(five, "c", s, r)!.Equals(here[r]));
        }
        // Expected per silo: S·R/4 = 200; a join touches about R/5 of the shards with ≤ R moves each (the mod rule: ~all).
        Assert.All(load.Values, n => Assert.InRange(n, 150, 250));
        Assert.InRange(moved, S * R / 10, S * R / 2);
    }
}
