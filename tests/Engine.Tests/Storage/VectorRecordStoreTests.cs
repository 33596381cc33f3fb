using Engine.Storage.Devices;
using Engine.Storage.Postings;

namespace Engine.Tests.Storage;

/// <summary>The refine file of coded SPANN postings: round trips, recovery cut, corruption detection.</summary>
public class VectorRecordStoreTests
{
    private const int D = 13;

    private static (long[] Ids, byte[] Versions, float[] Vectors) Rows(int seed, int n)
    {
        var r = new Random(seed);
        var ids = new long[n];
        var versions = new byte[n];
        var vectors = new float[n * D];
        for (int i = 0; i < n; i++) { ids[i] = 1000 + seed * 100 + i; versions[i] = (byte)r.Next(256); }
        for (int i = 0; i < vectors.Length; i++) vectors[i] = (float)(r.NextDouble() * 2 - 1);
        return (ids, versions, vectors);
    }

    private static void AssertReads(VectorRecordStore store, long[] offsets, (long[] Ids, byte[] Versions, float[] Vectors) rows)
    {
        var v = new float[D];
        for (int i = 0; i < offsets.Length; i++)
        {
            store.Read(offsets[i], rows.Ids[i], rows.Versions[i], v);
            Assert.Equal(rows.Vectors.AsSpan(i * D, D).ToArray(), v);
        }
    }

    [Fact]
    public void Records_RoundTrip_AndSurviveReopenAtCommittedLength()
    {
        using var dir = new TestDirectory();
        string path = dir.File("vectors-0.dat");
        var a = Rows(1, 40);
        var b = Rows(2, 7);
        var offA = new long[40];
        var offB = new long[7];
        long committed;
        using (var store = new VectorRecordStore(new FileDevice(path), D, 0))
        {
            store.Append(a.Ids, a.Versions, a.Vectors, offA);
            store.Flush();
            committed = store.Length;
            Assert.Equal(40L * store.RecordSize, committed);
            store.Append(b.Ids, b.Versions, b.Vectors, offB); // written after the "checkpoint"
            AssertReads(store, offA, a);
            AssertReads(store, offB, b);
        }
        using (var store = new VectorRecordStore(new FileDevice(path, create: false), D, committed))
        {
            Assert.Equal(committed, store.Length);
            Assert.Equal(committed, new FileInfo(path).Length);
            AssertReads(store, offA, a);
            // A record past the committed length is gone, not served.
            Assert.Throws<CorruptIndexException>(() => store.Read(offB[0], b.Ids[0], b.Versions[0], new float[D]));
            // Appends continue at the committed end.
            var again = new long[7];
            store.Append(b.Ids, b.Versions, b.Vectors, again);
            Assert.Equal(offB, again);
            AssertReads(store, again, b);
        }
    }

    [Fact]
    public void EveryFlippedByte_OfARecord_IsCorruptIndexException()
    {
        var rows = Rows(3, 3);
        var offsets = new long[3];
        var device = new MemoryDevice("vectors-mem");
        using var store = new VectorRecordStore(device, D, 0, ownsDevice: true);
        store.Append(rows.Ids, rows.Versions, rows.Vectors, offsets);
        var one = new byte[1];
        var v = new float[D];
        long start = offsets[1];
        for (int i = 0; i < store.RecordSize; i++)
        {
            device.Read(start + i, one);
            byte original = one[0];
            one[0] = (byte)(original ^ 0x5A);
            device.Write(start + i, one);
            var e = Assert.Throws<CorruptIndexException>(() => store.Read(start, rows.Ids[1], rows.Versions[1], v));
            Assert.Equal("vectors-mem", e.FilePath);
            Assert.Equal(start, e.Offset);
            one[0] = original;
            device.Write(start + i, one);
        }
        AssertReads(store, offsets, rows);
    }

    [Fact]
    public void WrongIdVersionOrOffset_IsReported_NotServed()
    {
        var rows = Rows(4, 4);
        var offsets = new long[4];
        using var store = new VectorRecordStore(new MemoryDevice(), D, 0);
        store.Append(rows.Ids, rows.Versions, rows.Vectors, offsets);
        var v = new float[D];
        Assert.Contains("expected id", Assert.Throws<CorruptIndexException>(() => store.Read(offsets[2], rows.Ids[1], rows.Versions[2], v)).Message);
        Assert.Throws<CorruptIndexException>(() => store.Read(offsets[2], rows.Ids[2], (byte)(rows.Versions[2] + 1), v));
        Assert.Throws<CorruptIndexException>(() => store.Read(offsets[1] + 4, rows.Ids[1], rows.Versions[1], v));
        Assert.Throws<CorruptIndexException>(() => store.Read(-store.RecordSize, rows.Ids[0], rows.Versions[0], v));
        Assert.Throws<CorruptIndexException>(() => store.Read(store.Length, rows.Ids[0], rows.Versions[0], v));
        Assert.Throws<ArgumentException>(() => store.Read(offsets[0], rows.Ids[0], rows.Versions[0], new float[D - 1]));
    }

    [Fact]
    public void TruncatedFile_OrRaggedCommittedLength_IsCorruptIndexException()
    {
        using var dir = new TestDirectory();
        string path = dir.File("vectors-0.dat");
        var rows = Rows(5, 5);
        long length;
        using (var store = new VectorRecordStore(new FileDevice(path), D, 0))
        {
            store.Append(rows.Ids, rows.Versions, rows.Vectors, new long[5]);
            length = store.Length;
        }
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(length - 1);
        var e = Assert.Throws<CorruptIndexException>(() => new VectorRecordStore(new FileDevice(path, create: false), D, length));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("truncated", e.Message);
        Assert.Throws<CorruptIndexException>(() => new VectorRecordStore(new MemoryDevice(), D, 5));
    }

    [Fact]
    public void BadInput_IsArgumentException_AndWritesNothing()
    {
        using var store = new VectorRecordStore(new MemoryDevice(), D, 0);
        var rows = Rows(6, 2);
        Assert.Throws<ArgumentException>(() => store.Append(rows.Ids, rows.Versions, rows.Vectors.AsSpan(1).ToArray(), new long[2]));
        Assert.Throws<ArgumentException>(() => store.Append(rows.Ids, new byte[1], rows.Vectors, new long[2]));
        Assert.Throws<ArgumentException>(() => store.Append(rows.Ids, rows.Versions, rows.Vectors, new long[1]));
        Assert.Throws<ArgumentException>(() => store.Append([-1, 2], rows.Versions, rows.Vectors, new long[2]));
        var nan = (float[])rows.Vectors.Clone();
        nan[D + 3] = float.NaN;
        Assert.Throws<ArgumentException>(() => store.Append(rows.Ids, rows.Versions, nan, new long[2]));
        Assert.Equal(0, store.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => new VectorRecordStore(new MemoryDevice(), 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VectorRecordStore(new MemoryDevice(), D, -1));
    }

    // A file store is read through a memory mapping, re-mapped as it grows (appends past 4 MiB and a quarter of the
    // mapping): every record reads back, whether inside the first mapping, a later one, or past the newest (positional I/O).
    [Fact]
    public void GrowingFileStore_ReadsEveryRecord_AcrossRemaps()
    {
        using var dir = new TestDirectory();
        string path = dir.File("vectors-grow.dat");
        const int d = 256, batch = 1000, batches = 24; // 1 048-byte records, 25 MB in all
        var rng = new Random(7);
        var all = new List<(long Offset, long Id, float[] V)>();
        using (var store = new VectorRecordStore(new FileDevice(path), d, 0))
        {
            for (int b = 0; b < batches; b++)
            {
                var ids = new long[batch];
                var versions = new byte[batch];
                var vectors = new float[batch * d];
                for (int i = 0; i < batch; i++) ids[i] = b * batch + i;
                for (int i = 0; i < vectors.Length; i++) vectors[i] = (float)rng.NextDouble();
                var offsets = new long[batch];
                store.Append(ids, versions, vectors, offsets);
                for (int i = 0; i < batch; i++) all.Add((offsets[i], ids[i], vectors.AsSpan(i * d, d).ToArray()));
                var v = new float[d];
                for (int t = 0; t < 50; t++) // reads interleaved with growth, old and new records
                {
                    var (off, id, want) = all[rng.Next(all.Count)];
                    store.Read(off, id, 0, v);
                    Assert.Equal(want, v);
                }
            }
            var w = new float[d];
            foreach (var (off, id, want) in all) { store.Read(off, id, 0, w); Assert.Equal(want, w); }
        }
        using (var reopened = new VectorRecordStore(new FileDevice(path, create: false), d, (long)batch * batches * (24 + 4 * d)))
        {
            var w = new float[d];
            foreach (var (off, id, want) in all) { reopened.Read(off, id, 0, w); Assert.Equal(want, w); }
        }
    }

    // Mapped reads check the same things as buffered ones: a flipped byte anywhere in a record not read before is a
    // CorruptIndexException naming the file and offset; after a good read (checksum and values checked once, the
    // record is never rewritten) a flipped magic, id, version or dimension byte is still caught.
    [Fact]
    public void MappedFileStore_ReportsFlippedBytes()
    {
        using var dir = new TestDirectory();
        string path = dir.File("vectors-map.dat");
        var rows = Rows(4, 3);
        var offsets = new long[3];
        using (var store = new VectorRecordStore(new FileDevice(path), D, 0)) store.Append(rows.Ids, rows.Versions, rows.Vectors, offsets);
        long committed = 3L * (24 + 4 * D);
        var v = new float[D];
        using var writer = new FileDevice(path, create: false);
        var one = new byte[1];
        for (int i = 0; i < 24 + 4 * D; i++)
        {
            using var store = new VectorRecordStore(new FileDevice(path, create: false), D, committed);
            writer.Read(offsets[1] + i, one);
            byte original = one[0];
            one[0] = (byte)(original ^ 0x5A);
            writer.Write(offsets[1] + i, one);
            var e = Assert.Throws<CorruptIndexException>(() => store.Read(offsets[1], rows.Ids[1], rows.Versions[1], v));
            Assert.Equal(path, e.FilePath);
            Assert.Equal(offsets[1], e.Offset);
            one[0] = original;
            writer.Write(offsets[1] + i, one);
        }
        using (var store = new VectorRecordStore(new FileDevice(path, create: false), D, committed))
        {
            AssertReads(store, offsets, rows);
            foreach (int at in new[] { 0, 8, 16, 20 }) // magic, id, version, dimension
            {
                writer.Read(offsets[2] + at, one);
                byte original = one[0];
                one[0] = (byte)(original ^ 0x01);
                writer.Write(offsets[2] + at, one);
                Assert.Throws<CorruptIndexException>(() => store.Read(offsets[2], rows.Ids[2], rows.Versions[2], v));
                one[0] = original;
                writer.Write(offsets[2] + at, one);
            }
            AssertReads(store, offsets, rows);
        }
    }
}
