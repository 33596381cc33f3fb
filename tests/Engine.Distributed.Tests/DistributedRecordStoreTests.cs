using Engine.Collections;
using Engine.Distributed;

namespace Engine.Distributed.Tests;

/// <summary>A record replica's disk state without Orleans: log replay over a collection that may already hold the
/// writes, snapshots, snapshot copies into a new generation, catch-up answers, refusals.</summary>
public class DistributedRecordStoreTests : IDisposable
{
    private const int D = 6;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-dist-rstore-" + Guid.NewGuid().ToString("N")[..8]);
    private static readonly CollectionSchema Schema = new(typeof(long), [new DataField("n", FieldType.Int32, Indexed: true)], [new VectorField("v", D)]);
    private static readonly ShardLayout Layout = DistributedRecordCollection<long>.LayoutFor("r", Schema, shards: 1, replicas: 2);
    private static readonly RecordSerializer Serializer = new(Schema);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static byte[][] Records(long from, int n, int version) => Enumerable.Range(0, n).Select(i => Serializer.Serialize(new Record<long>(from + i)
    {
        Data = { ["n"] = version },
        Vectors = { ["v"] = TestData.Gaussian(1, D, (int)(from + i) * 10 + version) },
    })).ToArray();

    private static WriteOp Op(long seq, long epoch, long prev, WriteKind kind, byte[][] items) =>
        new() { Sequence = seq, Epoch = epoch, PreviousEpoch = prev, Kind = kind, Ids = [], Vectors = [], Records = items };

    private static byte[][] Keys(params long[] keys) => keys.Select(k => RecordSerializer.SerializeKey(k)).ToArray();

    private static async Task<int?> VersionOf(ShardStore s, long key)
    {
        var found = await s.ReadRecords(r => r.GetAsync(Keys(key), includeVectors: false));
        return found[0] is { } blob ? (int?)Serializer.Deserialize<long>(blob).Data["n"] : null;
    }

    [Fact]
    public async Task Reopen_ReplaysTheLogOverTheCollection_AndSnapshotsTruncateIt()
    {
        using (var s = ShardStore.Open(_dir, Layout))
        {
            await s.AppendAsync(Op(1, 7, 0, WriteKind.Upsert, Records(0, 40, 1)));
            await s.AppendAsync(Op(2, 7, 7, WriteKind.Upsert, Records(10, 5, 2)));
            await s.AppendAsync(Op(3, 7, 7, WriteKind.Delete, Keys(0, 1, 999)));
        }   // no snapshot: the collection holds the writes already and the log replays them again
        using (var s = ShardStore.Open(_dir, Layout))
        {
            Assert.Equal((3L, 7L, 38L), (s.Sequence, s.Epoch, s.Count));
            Assert.Equal(2, await VersionOf(s, 12));
            Assert.Equal(1, await VersionOf(s, 20));
            Assert.Null(await VersionOf(s, 0));
            await s.CheckpointAsync();
            await s.AppendAsync(Op(4, 9, 7, WriteKind.Upsert, Records(12, 1, 3)));
        }
        using (var s = ShardStore.Open(_dir, Layout))
        {
            Assert.Equal((4L, 9L, 38L), (s.Sequence, s.Epoch, s.Count));
            Assert.Equal(3, await VersionOf(s, 12));
            // A search over the reopened replica sees every record once.
            var hits = await s.ReadRecords(r => r.SearchAsync(new RecordSearchRequest { Queries = TestData.Gaussian(1, D, 5), K = 100 }));
            Assert.Equal(38, hits.Records.Length);
            Assert.Equal(38, hits.Keys.Select(k => Convert.ToHexString(k)).Distinct().Count());
            // Plain-vector calls are refused on a record replica.
            Assert.Throws<InvalidOperationException>(() => s.Search(new SearchRequest { Queries = new float[D], K = 1 }));
            Assert.Throws<InvalidOperationException>(() => s.Get([1]));
        }
    }

    [Fact]
    public async Task SnapshotCopy_BuildsTheNextGeneration_AndALeftoverGenerationIsRemoved()
    {
        using (var s = ShardStore.Open(_dir, Layout))
        {
            await s.AppendAsync(Op(1, 5, 0, WriteKind.Upsert, Records(0, 20, 1)));
            // A peer's snapshot at write 8 of another epoch replaces everything.
            var slices = new Queue<byte[][]>([Records(100, 20, 4), [], Records(120, 10, 4)]);
            Assert.Equal(30, await s.InstallRecordsAsync(() => Task.FromResult(slices.TryDequeue(out var x) ? x : null), sequence: 8, epoch: 6));
            Assert.Equal((8L, 6L, 30L), (s.Sequence, s.Epoch, s.Count));
            Assert.Null(await VersionOf(s, 0));
            await s.AppendAsync(Op(9, 6, 6, WriteKind.Delete, Keys(100)));
        }
        Directory.CreateDirectory(Path.Combine(_dir, "records-7"));   // as if a later copy was interrupted
        using (var s = ShardStore.Open(_dir, Layout))
        {
            Assert.Equal((9L, 6L, 29L), (s.Sequence, s.Epoch, s.Count));
            Assert.Equal(4, await VersionOf(s, 101));
            Assert.Equal(["records-1"], Directory.GetDirectories(_dir, "records-*").Select(Path.GetFileName));
            // A copy that fails part-way leaves the current generation in force; the next one takes a new number.
            await Assert.ThrowsAsync<IOException>(() => s.InstallRecordsAsync(() => throw new IOException("peer lost"), sequence: 20, epoch: 8));
            Assert.Equal((9L, 6L, 29L), (s.Sequence, s.Epoch, s.Count));
            Assert.Equal(4, await VersionOf(s, 101));
            await s.CheckpointAsync();
        }
        using (var s = ShardStore.Open(_dir, Layout))
        {
            Assert.Equal((9L, 6L, 29L), (s.Sequence, s.Epoch, s.Count));
            // Catch-up answers: the writes when linked, every live key when the asker diverged.
            Assert.Empty((await s.CatchUpFromAsync(9, 6)).Ops!);
            var snap = await s.CatchUpFromAsync(3, 99);
            Assert.Null(snap.Ops);
            Assert.True(snap.RecordSnapshot);
            Assert.Equal(9, snap.SnapshotSequence);
            // The copy's pages: every record once, in small pages, all from one generation.
            var seen = new List<long>();
            long cursor = -1, generation = -1;
            do
            {
                var page = await s.ScanRecordsAsync(cursor, maxBytes: 200, generation);
                Assert.NotEmpty(page.Records);
                seen.AddRange(page.Records.Select(r => Serializer.Deserialize<long>(r).Key));
                (cursor, generation) = (page.Next, page.Generation);
            }
            while (cursor >= 0);
            Assert.Equal(Enumerable.Range(101, 29).Select(i => (long)i).Order(), seen.Order());
            Assert.Equal(1, generation);
            await Assert.ThrowsAsync<InvalidOperationException>(() => s.ScanRecordsAsync(-1, 200, generation: 0));
        }
    }

    [Fact]
    public async Task AMissingGeneration_IsDamage_NotAnEmptyShard()
    {
        using (var s = ShardStore.Open(_dir, Layout))
        {
            await s.AppendAsync(Op(1, 5, 0, WriteKind.Upsert, Records(0, 5, 1)));
            await s.CheckpointAsync();
        }
        Directory.Delete(Path.Combine(_dir, "records-0"), recursive: true);
        Assert.Throws<CorruptIndexException>(() => ShardStore.Open(_dir, Layout));
    }

    [Fact]
    public async Task BadWrites_NeverReachTheLog()
    {
        using var s = ShardStore.Open(_dir, Layout);
        var nan = Serializer.Serialize(new Record<long>(1) { Data = { ["n"] = 1 }, Vectors = { ["v"] = new float[D] } });
        // Flip a vector value to NaN and fix the checksum: it decodes, but the collection must refuse it.
        var body = nan.AsSpan(0, nan.Length - 4);
        BitConverter.TryWriteBytes(body[^4..], float.NaN);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(nan.AsSpan(nan.Length - 4), Engine.Storage.Format.Crc32C.Compute(body));
        await Assert.ThrowsAsync<ArgumentException>(() => s.ReadRecords(r => { r.Validate(WriteKind.Upsert, [nan]); return Task.FromResult(0); }));
        await Assert.ThrowsAsync<ArgumentException>(() => s.ReadRecords(r => { r.Validate(WriteKind.Upsert, [[1, 2]]); return Task.FromResult(0); }));
        await Assert.ThrowsAsync<ArgumentException>(() => s.ReadRecords(r => { r.Validate(WriteKind.Delete, [[1, 2, 3]]); return Task.FromResult(0); }));
        await s.ReadRecords(r => { r.Validate(WriteKind.Delete, Keys(5)); return Task.FromResult(0); });
        // A record past the store's entry limit (a 5 MiB field) is refused before the log, not after it.
        var schema = new CollectionSchema(typeof(long), [new DataField("body", FieldType.String)], [new VectorField("v", D)]);
        var big = new RecordSerializer(schema).Serialize(new Record<long>(1) { Data = { ["body"] = new string('x', 5 << 20) }, Vectors = { ["v"] = new float[D] } });
        using var s2 = ShardStore.Open(Path.Combine(_dir, "big"), DistributedRecordCollection<long>.LayoutFor("big", schema, 1, 1));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => s2.ReadRecords(r => { r.Validate(WriteKind.Upsert, [big]); return Task.FromResult(0); }));
        Assert.Contains("at most", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => s.ReadRecords(r => r.GetAsync([[1, 2, 3]], includeVectors: false)));
        Assert.Equal(0L, s.Sequence);
    }
}
