using Engine.Distributed;
using Engine.Storage.Format;

namespace Engine.Distributed.Tests;

/// <summary>A plain-vector replica on disk: vectors in a checksummed slot file, the index saved with each snapshot (SPANN
/// in its own directory), the log replayed over both; damage to derived state is rebuilt, damage to vectors is named.</summary>
public class DistributedShardDiskTests : IDisposable
{
    private const int D = 8;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-dist-disk-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static ShardLayout Layout(string spec, int trainingSize = 400) =>
        new() { Name = "s", Dimension = D, Metric = Metric.L2, Spec = spec, Shards = 1, Replicas = 1, TrainingSize = trainingSize };

    private static WriteOp Upsert(long seq, long[] ids, float[] vectors) =>
        new() { Sequence = seq, Epoch = 1, PreviousEpoch = seq == 1 ? 0 : 1, Kind = WriteKind.Upsert, Ids = ids, Vectors = vectors };

    private static WriteOp Delete(long seq, long[] ids) =>
        new() { Sequence = seq, Epoch = 1, PreviousEpoch = 1, Kind = WriteKind.Delete, Ids = ids, Vectors = [] };

    private static Dictionary<string, string>? Knob(string spec) =>
        spec.StartsWith("HNSW", StringComparison.Ordinal) ? new() { ["ef"] = "64" }
        : spec.StartsWith("IVF", StringComparison.Ordinal) ? new() { ["probes"] = spec.StartsWith("IVF4,", StringComparison.Ordinal) ? "4" : "8" }
        : spec.StartsWith("SPANN", StringComparison.Ordinal) ? new() { ["probes"] = "16" }
        : null;

    [Theory]
    [InlineData("Flat")]
    [InlineData("HNSW16")]
    [InlineData("IVF8,Flat")]
    [InlineData("IVF8,PQ4x4fs,RFlat")]
    [InlineData("SPANN(postings=16)")]
    public void Reopen_LoadsTheSavedIndex_AndReplaysTheWritesAfterIt(string spec)
    {
        var layout = Layout(spec);
        var vectors = TestData.Gaussian(820, D, seed: 71);
        var ids = TestData.Ids(820, offset: 5000);
        using (var s = ShardStore.Open(_dir, layout))
        {
            s.Append(Upsert(1, ids[..800], vectors[..(800 * D)]));
            s.Checkpoint();
            Assert.Single(Directory.GetFileSystemEntries(_dir, "index-*"));
            // After the snapshot: 10 deletes and 20 new vectors, in the log only.
            s.Append(Delete(2, ids[..10]));
            s.Append(Upsert(3, ids[800..], vectors[(800 * D)..]));
        }
        using var reopened = ShardStore.Open(_dir, layout);
        Assert.StartsWith("loaded index-", reopened.IndexRecovery);
        Assert.Equal((3L, 810L, 810L), (reopened.Sequence, reopened.Count, reopened.IndexCount));
        // Every live vector is its own nearest neighbour; no deleted one is ever returned.
        var live = ids[10..];
        var got = reopened.Search(new SearchRequest { Queries = vectors[(10 * D)..], K = 1, Settings = Knob(spec) }).Labels;
        Assert.True(live.Zip(got).Count(p => p.First == p.Second) >= live.Length * 0.98, $"{spec}: self-recall below 0.98");
        var deleted = reopened.Search(new SearchRequest { Queries = vectors[..(10 * D)], K = 20, Settings = Knob(spec) }).Labels;
        Assert.DoesNotContain(deleted, l => l >= 5000 && l < 5010);
        Assert.Equal(vectors[(800 * D)..(801 * D)], reopened.Get([ids[800]]).Vectors);
    }

    [Fact]
    public void ADamagedIndexFile_IsRebuiltFromTheVectors_ADamagedVectorSlotIsNamed()
    {
        var layout = Layout("HNSW16");
        var vectors = TestData.Gaussian(300, D, seed: 72);
        var ids = TestData.Ids(300);
        using (var s = ShardStore.Open(_dir, layout))
        {
            s.Append(Upsert(1, ids, vectors));
            s.Checkpoint();
        }
        string index = Directory.GetFiles(_dir, "index-*.idx").Single();
        var bytes = File.ReadAllBytes(index);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(index, bytes);
        using (var s = ShardStore.Open(_dir, layout))
        {
            Assert.StartsWith("rebuilt from the vectors (index-", s.IndexRecovery);
            Assert.Equal(ids[..20], s.Search(new SearchRequest { Queries = vectors[..(20 * D)], K = 1 }).Labels);
            s.Checkpoint();
        }
        // Slot 7 (id 7: the ids went in ascending, one slot each) loses a bit of its vector.
        string file = Directory.GetFiles(_dir, "vectors-*.dat").Single();
        int slot = VectorStore.SlotBytes(D);
        using (var f = new FileStream(file, FileMode.Open))
        {
            f.Position = 7L * slot + 8 + 3;
            int b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x10));
        }
        using (var s = ShardStore.Open(_dir, layout))
        {
            Assert.StartsWith("loaded", s.IndexRecovery);
            var e = Assert.Throws<CorruptIndexException>(() => s.Get([7]));
            Assert.Contains("vector 7", e.Message);
            Assert.Equal(Path.GetFullPath(file), e.FilePath);
            Assert.Equal(vectors[(8 * D)..(9 * D)], s.Get([8]).Vectors);
        }
        // Without a saved index the rebuild reads every vector: the open itself names the damage.
        foreach (var e in Directory.GetFiles(_dir, "index-*")) File.Delete(e);
        Assert.Throws<CorruptIndexException>(() => ShardStore.Open(_dir, layout));
    }

    /// <summary>The law of the log: whatever the interleaving of writes, snapshots, copies and crashes (close without a
    /// snapshot), a reopened replica holds exactly the vectors of a model that applied the same writes.</summary>
    [Theory]
    [InlineData("Flat", 1)]
    [InlineData("HNSW16", 2)]
    [InlineData("IVF4,Flat", 3)]
    public async Task RandomWritesSnapshotsCopiesAndCrashes_ReopenToTheModel(string spec, int seed)
    {
        var layout = Layout(spec, trainingSize: 120);
        var rng = new Random(seed);
        var model = new Dictionary<long, float[]>();
        long seq = 0;
        var s = ShardStore.Open(_dir, layout, checkpointLogBytes: 4096);
        try
        {
            for (int step = 0; step < 400; step++)
            {
                int what = rng.Next(100);
                if (what < 55)
                {
                    int n = rng.Next(1, 12);
                    var ids = Enumerable.Range(0, n).Select(_ => (long)rng.Next(250)).Distinct().ToArray();
                    n = ids.Length;
                    var v = TestData.Gaussian(n, D, rng.Next());
                    s.Append(Upsert(++seq, ids, v));
                    for (int i = 0; i < n; i++) model[ids[i]] = v[(i * D)..((i + 1) * D)];
                }
                else if (what < 80)
                {
                    var ids = Enumerable.Range(0, rng.Next(1, 8)).Select(_ => (long)rng.Next(250)).ToArray();
                    s.Append(Delete(++seq, ids));
                    foreach (var id in ids) model.Remove(id);
                }
                else if (what < 88) s.Checkpoint();
                else if (what < 91)
                {
                    // A snapshot copy of the model (what a peer sends), then the writes go on.
                    var ids = model.Keys.Order().ToArray();
                    if (rng.Next(2) == 0) s.Install(ids, ids.SelectMany(id => model[id]).ToArray(), seq, 1);
                    else
                    {
                        // Streamed in slices of 7, as a catch-up copies them from a peer.
                        int at = 0;
                        long copied = await s.InstallAsync(() =>
                        {
                            if (at >= ids.Length) return Task.FromResult<VectorRows?>(null);
                            var part = ids[at..Math.Min(ids.Length, at + 7)];
                            at += part.Length;
                            return Task.FromResult<VectorRows?>(new VectorRows { Ids = part, Vectors = part.SelectMany(id => model[id]).ToArray() });
                        }, seq, 1);
                        Assert.Equal(ids.Length, copied);
                    }
                }
                else
                {
                    s.Dispose();
                    s = ShardStore.Open(_dir, layout, checkpointLogBytes: 4096);
                    Check(s, model, seq, spec);
                }
            }
            s.Dispose();
            s = ShardStore.Open(_dir, layout, checkpointLogBytes: 4096);
            Check(s, model, seq, spec);
            // Only the current generations remain.
            Assert.Single(Directory.GetFiles(_dir, "vectors-*.dat"));
            Assert.True(Directory.GetFileSystemEntries(_dir, "index-*").Length <= 1);
        }
        finally { s.Dispose(); }
    }

    private static void Check(ShardStore s, Dictionary<long, float[]> model, long seq, string spec)
    {
        Assert.Equal(seq, s.Sequence);
        Assert.Equal(model.Count, s.Count);
        Assert.Equal(model.Count, s.IndexCount);
        var ids = model.Keys.Order().ToArray();
        var got = s.Get(Enumerable.Range(0, 250).Select(i => (long)i).ToArray());
        Assert.Equal(ids, got.Ids);
        Assert.Equal(ids.SelectMany(id => model[id]).ToArray(), got.Vectors);
        if (ids.Length == 0) return;
        var labels = s.Search(new SearchRequest { Queries = got.Vectors, K = 1, Settings = s.Trained ? Knob(spec) : null }).Labels;
        Assert.True(ids.Zip(labels).Count(p => p.First == p.Second) >= ids.Length * 0.95, $"{spec}: self-recall below 0.95 after reopen");
    }

    [Theory]
    [InlineData("HNSW16")]
    [InlineData("IVF8,PQ4x4fs,RFlat")]
    public async Task ASnapshotCopy_ShipsThePeersIndex_InsteadOfRebuildingIt(string spec)
    {
        var layout = Layout(spec);
        var vectors = TestData.Gaussian(700, D, seed: 75);
        var ids = TestData.Ids(700, offset: 100);
        using var peer = ShardStore.Open(Path.Combine(_dir, "peer"), layout);
        peer.Append(Upsert(1, ids[..600], vectors[..(600 * D)]));
        peer.Append(Delete(2, ids[..5]));
        var answer = peer.CatchUpFrom(1, 99);   // its write 1 came from another primary: a snapshot copy
        Assert.NotNull(answer.SnapshotIds);
        Assert.True(answer.IndexGeneration > 0 && answer.IndexBytes > 0);
        using var fresh = ShardStore.Open(Path.Combine(_dir, "fresh"), layout);
        int at = 0;
        long copied = await fresh.InstallAsync(() =>
        {
            if (at >= answer.SnapshotIds!.Length) return Task.FromResult<VectorRows?>(null);
            var part = answer.SnapshotIds[at..Math.Min(answer.SnapshotIds.Length, at + 100)];
            at += part.Length;
            return Task.FromResult<VectorRows?>(peer.Get(part));
        }, answer.SnapshotSequence, answer.SnapshotEpoch, async target =>
        {
            for (long off = 0; off < answer.IndexBytes; off += 1000)
                await target.WriteAsync(peer.ReadIndexChunk(answer.IndexGeneration, off, 1000));
        });
        Assert.Equal(595, copied);
        Assert.True(fresh.IndexShipped);
        Assert.StartsWith("shipped by the peer", fresh.IndexRecovery);
        // The same index: the same answers, to the last id and distance.
        var q = new SearchRequest { Queries = TestData.Gaussian(40, D, 76), K = 10, Settings = Knob(spec) };
        var (a, b) = (peer.Search(q), fresh.Search(q));
        Assert.Equal(a.Labels, b.Labels);
        Assert.Equal(a.Distances, b.Distances);
        // The writes after the copy reach both; a reopened copy loads its index (saved with the copy's snapshot).
        foreach (var s in new[] { peer, fresh }) s.Append(Upsert(3, ids[600..], vectors[(600 * D)..]));
        fresh.Dispose();
        using var reopened = ShardStore.Open(Path.Combine(_dir, "fresh"), layout);
        Assert.StartsWith("loaded", reopened.IndexRecovery);
        Assert.Equal((3L, 695L, 695L), (reopened.Sequence, reopened.Count, reopened.IndexCount));
        var self = reopened.Search(new SearchRequest { Queries = vectors[(5 * D)..], K = 1, Settings = Knob(spec) }).Labels;
        Assert.True(ids[5..].Zip(self).Count(p => p.First == p.Second) >= 695 * 0.97);
        // A newer index on the peer retires the old generation: a copy still reading it starts again.
        peer.Checkpoint();
        Assert.Throws<InvalidOperationException>(() => peer.ReadIndexChunk(answer.IndexGeneration, 0, 10));
        // Flat ships no index (it is its vectors).
        using var flat = ShardStore.Open(Path.Combine(_dir, "flat"), Layout("Flat"));
        flat.Append(Upsert(1, ids[..10], vectors[..(10 * D)]));
        Assert.Equal(0, flat.CatchUpFrom(0, 99).IndexGeneration);
    }

    [Fact]
    public void WritesBeyondTheMemoryHistory_ComeFromTheLog_AndASnapshotCopyKeepsTheLogForItsWrites()
    {
        var layout = Layout("Flat");
        // A memory history of one write and a snapshot every ~2 KiB of log: only the log can serve older writes.
        using var peer = ShardStore.Open(Path.Combine(_dir, "peer"), layout, checkpointLogBytes: 2048, tailLimitBytes: 1);
        for (int i = 1; i <= 5; i++) peer.Append(Upsert(i, [i], TestData.Gaussian(1, D, i)));
        var fromLog = peer.CatchUpFrom(2, 1);
        Assert.Equal(new long[] { 3, 4, 5 }, fromLog.Ops!.Select(o => o.Sequence));
        Assert.Null(peer.CatchUpFrom(2, 77).Ops);                   // its write 2 came from another epoch: no link
        peer.Checkpoint();                                          // the log now starts after write 5
        peer.Append(Upsert(6, [6], TestData.Gaussian(1, D, 6)));
        Assert.Equal(new long[] { 6 }, peer.CatchUpFrom(5, 1).Ops!.Select(o => o.Sequence));   // linked at the snapshot
        var copy = peer.CatchUpFrom(1, 99);                         // diverged: a snapshot copy at write 6, which pins the log
        Assert.Equal(6, copy.SnapshotSequence);
        // Writes during the copy, enough for several snapshots (each of 2 KiB of log): none truncates the log now.
        for (int i = 7; i <= 60; i++) peer.Append(Upsert(i, Enumerable.Range(0, 8).Select(j => (long)(i * 10 + j)).ToArray(), TestData.Gaussian(8, D, i)));
        var after = peer.CatchUpFrom(copy.SnapshotSequence, copy.SnapshotEpoch);
        Assert.Equal(Enumerable.Range(7, 54).Select(i => (long)i), after.Ops!.Select(o => o.Sequence));
        Assert.False(after.More);
        // The same history in parts, as a peer limited to ~1 KiB of writes per answer sends it.
        using (var small = ShardStore.Open(Path.Combine(_dir, "small"), layout, tailLimitBytes: 1, maxOpsBytesPerAnswer: 1024))
        {
            for (int i = 1; i <= 30; i++) small.Append(Upsert(i, [i, i + 100], TestData.Gaussian(2, D, i)));
            var got = new List<long>();
            long at = 0;
            CatchUp part;
            do
            {
                part = small.CatchUpFrom(at, at == 0 ? 0 : 1);
                Assert.InRange(part.Ops!.Length, 1, 10);
                got.AddRange(part.Ops.Select(o => o.Sequence));
                at = got[^1];
            }
            while (part.More);
            Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), got);
        }
        // The copy is complete: the next snapshot truncates again, and the old writes are gone from the log.
        peer.Append(Upsert(61, [1], TestData.Gaussian(1, D, 61)));
        peer.Checkpoint();
        Assert.Null(peer.CatchUpFrom(copy.SnapshotSequence, copy.SnapshotEpoch).Ops);
    }

    [Fact]
    public void ASnapshotOfTheFirstFormat_IsReadAndRewritten()
    {
        var layout = Layout("Flat");
        var vectors = TestData.Gaussian(40, D, seed: 73);
        var ids = TestData.Ids(40, offset: 10);
        using (var s = ShardStore.Open(_dir, layout)) s.Append(Upsert(1, ids[..30], vectors[..(30 * D)]));
        // Format 1 held every vector in the snapshot: [sequence, epoch, covered log address], ids, vectors.
        using (var w = new IndexFileWriter(Path.Combine(_dir, ShardStore.SnapshotFile),
                   new IndexFileHeader(ShardStore.SnapshotKind, "Flat", Metric.L2, D, 30, IndexFile.FormatVersion)))
        {
            w.WriteArray<long>("META", [1, 1, 0]);
            w.WriteArray<long>("IDS\0", ids[..30]);
            w.WriteArray<float>("VECS", vectors[..(30 * D)]);
            w.Commit();
        }
        using (var s = ShardStore.Open(_dir, layout))
        {
            Assert.Equal((1L, 30L), (s.Sequence, s.Count));
            Assert.Equal(vectors[..(30 * D)], s.Get(ids[..30]).Vectors);
            s.Append(Upsert(2, ids[30..], vectors[(30 * D)..]));
        }
        using (var r = new IndexFileReader(Path.Combine(_dir, ShardStore.SnapshotFile), ShardStore.SnapshotKind))
            Assert.Equal(7, r.ReadArray<long>("META").Length);
        using var again = ShardStore.Open(_dir, layout);
        Assert.Equal(vectors, again.Get(ids).Vectors);
    }

    [Fact]
    public void SpannShard_KeepsItsPostingsOnDisk()
    {
        const int n = 20000, d = 128;
        var layout = new ShardLayout { Name = "s", Dimension = d, Metric = Metric.L2, Spec = "SPANN", Shards = 1, Replicas = 1, TrainingSize = 1000 };
        var vectors = TestData.Gaussian(n, d, seed: 74);
        var ids = TestData.Ids(n);
        using (var s = ShardStore.Open(_dir, layout))
        {
            for (int b = 0; b < n; b += 5000)
                s.Append(Upsert(b / 5000 + 1, ids[b..(b + 5000)], vectors[(b * d)..((b + 5000) * d)]));
            s.Checkpoint();
        }
        using var reopened = ShardStore.Open(_dir, layout);
        Assert.StartsWith("loaded index-", reopened.IndexRecovery);
        Assert.True(Directory.GetFiles(Directory.GetDirectories(_dir, "index-*").Single(), "postings-*.dat").Length == 1);
        long raw = (long)n * d * 4;
        Console.WriteLine($"spann shard resident {reopened.MemoryBytes} of {raw}");
        Assert.True(reopened.MemoryBytes < raw * 4 / 10, $"resident {reopened.MemoryBytes} B of {raw} B raw");
        var labels = reopened.Search(new SearchRequest { Queries = vectors[..(100 * d)], K = 1, Settings = new() { ["probes"] = "16" } }).Labels;
        Assert.True(ids[..100].Zip(labels).Count(p => p.First == p.Second) >= 95);
    }
}
