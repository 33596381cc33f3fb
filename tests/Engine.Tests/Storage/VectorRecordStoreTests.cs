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
}
