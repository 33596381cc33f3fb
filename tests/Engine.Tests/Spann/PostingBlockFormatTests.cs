using System.Runtime.InteropServices;
using Engine.Index.Lists;
using Engine.Index.Spann;
using Engine.Quantization;
using Engine.Storage.Devices;
using Engine.Storage.Postings;
using Engine.Tests.Storage;
using Engine.Tests.Support;
using FsCheck.Xunit;

namespace Engine.Tests.Spann;

/// <summary>
/// SPANN's posting block format has one writer (<see cref="PostingBuffer.Encode"/>, which build, updates, maintenance
/// and compaction use) and one parser (<see cref="PostingCodec.Sections"/>, the locator through which searches and
/// writes alike acquire a posting as a <see cref="DeviceBlockInvertedList"/>). Laws: a written block is the documented
/// layout byte for byte (laid out by hand here, so the format cannot drift unnoticed); located and
/// acquired — from the payload in hand, from a store's copy or in place from its mapping — gives back the same ids,
/// versions, refine offsets and codes, at the placement <see cref="PostingCodec.Place"/> defines, and re-encodes byte
/// for byte; a payload damaged in its count, dimension, code size or length is <see cref="CorruptIndexException"/>
/// naming the file and block, as is any byte flipped inside a stored block; and an index whose writes read their
/// postings in place ends bit-identical to the same index whose writes read copies.
/// </summary>
public class PostingBlockFormatTests
{
    private const string Source = "postings-7.dat";

    // Entries of one posting: raw (f32 rows), coded in rows (any code size) or coded in fast-scan blocks (RaBitQfs1/4).
    private sealed record Entries(int D, CodeLayout? Layout, long[] Ids, byte[] Versions, long[] Offsets, byte[] Codes, float[] Vectors)
    {
        public int Count => Ids.Length;
        public int CodeSize => Layout?.CodeSize ?? D * sizeof(float);
    }

    private static Entries RandomEntries(Random rng)
    {
        int d = 1 + rng.Next(70), n = rng.Next(0, 100), kind = rng.Next(3);
        var ids = Enumerable.Range(0, n).Select(_ => rng.NextInt64(0, long.MaxValue)).ToArray();
        var versions = Enumerable.Range(0, n).Select(_ => (byte)rng.Next(256)).ToArray();
        if (kind == 0)
        {
            var vectors = Enumerable.Range(0, n * d).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray();
            return new Entries(d, null, ids, versions, [], MemoryMarshal.AsBytes(vectors.AsSpan()).ToArray(), vectors);
        }
        var offsets = Enumerable.Range(0, n).Select(_ => rng.NextInt64(0, 1L << 40)).ToArray();
        if (kind == 1)
        {
            int size = 1 + rng.Next(40);
            var rows = new byte[n * size];
            rng.NextBytes(rows);
            return new Entries(d, CodeLayout.Rows(size), ids, versions, offsets, rows, []);
        }
        int bits = rng.Next(2) == 0 ? 1 : 4;
        var codec = new RaBitQFastScanCodec(d, bits, Metric.L2);
        int cs = codec.CodeSize, pb = (d + 7) / 8;
        var codes = new byte[n * cs];
        rng.NextBytes(codes);
        // Valid row codes: the padding bits of each bit plane's last byte clear (the blocks keep d dimensions only).
        for (int i = 0; i < n; i++)
            for (int b = 0; b < bits; b++)
                if (d % 8 != 0) codes[i * cs + RaBitQCodec.FactorBytes + b * pb + pb - 1] &= (byte)((1 << (d % 8)) - 1);
        return new Entries(d, codec.Layout, ids, versions, offsets, codes, []);
    }

    // The one writer, as the index calls it: entries added to a posting buffer, then encoded.
    private static byte[] Write(Entries e)
    {
        var buffer = new PostingBuffer(e.D, e.Layout, withVectors: false, capacity: 1);
        for (int i = 0; i < e.Count; i++)
        {
            if (e.Layout is null) buffer.Add(e.Ids[i], e.Versions[i], e.Vectors.AsSpan(i * e.D, e.D));
            else buffer.Add(e.Ids[i], e.Versions[i], e.Offsets[i], e.Codes.AsSpan(i * e.CodeSize, e.CodeSize), default);
        }
        return buffer.Encode();
    }

    // The documented payload layout (docs/spann.md, "Posting store"), laid out by hand: pins the format the writer and
    // the parser share (a change to PostingCodec.Place would otherwise round-trip and go unnoticed).
    private static byte[] Reference(Entries e)
    {
        int n = e.Count, header = e.Layout is null ? 8 : 16, versions = (n + 7) / 8 * 8;
        int codeBytes = e.Layout is null ? n * e.D * 4 : (int)e.Layout.Bytes(n);
        var bytes = new byte[header + n * (e.Layout is null ? 8 : 16) + versions + codeBytes];
        var w = new BinaryWriter(new MemoryStream(bytes));
        w.Write(n);
        w.Write(e.D);
        if (e.Layout is not null) { w.Write(e.Layout.CodeSize); w.Write(0); }
        foreach (long id in e.Ids) w.Write(id);
        foreach (long offset in e.Offsets) w.Write(offset);
        w.Write(e.Versions);
        w.Write(new byte[versions - n]);
        if (e.Layout is null) w.Write(e.Codes);
        else for (int i = 0; i < n; i++) e.Layout.Write(bytes.AsSpan((int)w.BaseStream.Position), i, e.Codes.AsSpan(i * e.CodeSize, e.CodeSize));
        return bytes;
    }

    private static BlockSectionLocator Locator(Entries e) => (payload, offset) => PostingCodec.Sections(payload, e.D, e.Layout, Source, offset);

    // The acquired list holds exactly the entries (codes read back in row format, whatever the layout).
    private static bool Holds(DeviceBlockInvertedList list, Entries e)
    {
        if (list.Count != e.Count || !list.Ids.SequenceEqual(e.Ids) || !list.Versions.SequenceEqual(e.Versions)
            || !list.RefineOffsets.SequenceEqual(e.Offsets)) return false;
        if (e.Layout is null) return list.Codes.SequenceEqual(e.Codes);
        var code = new byte[e.CodeSize];
        for (int i = 0; i < e.Count; i++)
        {
            e.Layout.Read(list.Codes, i, code);
            if (!code.AsSpan().SequenceEqual(e.Codes.AsSpan(i * e.CodeSize, e.CodeSize))) return false;
        }
        return true;
    }

    // A buffer filled from the acquired list's view, re-encoded (what splits, merges and compaction do to untouched entries).
    private static byte[] Reencode(DeviceBlockInvertedList list, Entries e)
    {
        var view = PostingView.Of(list, e.Layout);
        var copy = new PostingBuffer(e.D, e.Layout, withVectors: false, capacity: 1);
        for (int i = 0; i < view.Count; i++) copy.AddFrom(view, i);
        return copy.Encode();
    }

    [Property(MaxTest = 60, Replay = "(20261207,11)")]
    public bool WrittenBlocks_LocateAndAcquire_ToTheSameEntries_InHandCopiedAndInPlace(int seed)
    {
        var e = RandomEntries(new Random(seed));
        var payload = Write(e);
        var placed = PostingCodec.Place(e.Count, e.D, e.Layout);
        if (!payload.AsSpan().SequenceEqual(Reference(e)) || payload.Length != PostingCodec.Size(e.Count, e.D, e.Layout)
            || PostingCodec.Sections(payload, e.D, e.Layout, Source, 4096) != placed)
            return false;
        var list = new DeviceBlockInvertedList();
        list.Acquire(payload, 4096, Locator(e));
        if (list.Sections != placed || !Holds(list, e) || !Reencode(list, e).AsSpan().SequenceEqual(payload)) return false;
        // Through a store: copied from a file device, then in place from its mapping, and copied from a memory device.
        using var dir = new TestDirectory();
        using var file = new PostingStore(new FileDevice(dir.File(Source)));
        using var memory = new PostingStore(new MemoryDevice(Source));
        foreach (var store in new[] { file, memory })
        {
            store.Write(3, new byte[5000]); // the block under test does not start at offset 0
            var at = store.Write(9, payload, BlockCompression.WhenSmaller);
            list.Acquire(store, at, 9, Locator(e));
            if (list.InPlace || !Holds(list, e) || !Reencode(list, e).AsSpan().SequenceEqual(payload)) return false;
        }
        var inPlace = file.Write(9, payload, BlockCompression.Never);
        file.MapForReads();
        list.Acquire(file, inPlace, 9, Locator(e));
        bool held = list.InPlace && Holds(list, e) && Reencode(list, e).AsSpan().SequenceEqual(payload);
        list.Release();
        return held && list.Count == 0 && list.Payload.IsEmpty;
    }

    [Property(MaxTest = 200, Replay = "(20261207,15)")]
    public bool DamagedPayloads_AreCorrupt_NamingTheFileAndBlock(int seed)
    {
        var rng = new Random(seed);
        var e = RandomEntries(rng);
        var payload = Write(e);
        byte[] bad;
        int damage = rng.Next(e.Layout is null ? 4 : 5);
        switch (damage)
        {
            case 0: // cut short
                bad = payload.AsSpan(0, rng.Next(1, payload.Length)).ToArray();
                break;
            case 1: // trailing bytes
                bad = [.. payload, .. new byte[1 + rng.Next(40)]];
                break;
            case 2: // another count (the size grows strictly with the count, so no other count fits the length)
                bad = (byte[])payload.Clone();
                int count = rng.Next(4) == 0 ? -1 - rng.Next(1000) : rng.Next(2) == 0 ? int.MaxValue - rng.Next(8) : rng.Next(0, 200);
                if (count == e.Count) count = e.Count + 1;
                BitConverter.TryWriteBytes(bad.AsSpan(0, 4), count);
                break;
            case 3: // another dimension
                bad = (byte[])payload.Clone();
                BitConverter.TryWriteBytes(bad.AsSpan(4, 4), e.D + 1 + rng.Next(100));
                break;
            default: // another code size (coded postings)
                bad = (byte[])payload.Clone();
                BitConverter.TryWriteBytes(bad.AsSpan(8, 4), e.CodeSize + 1 + rng.Next(100));
                break;
        }
        long blockOffset = 4096L * rng.Next(1, 1000);
        try
        {
            PostingCodec.Sections(bad, e.D, e.Layout, Source, blockOffset);
            return false;
        }
        catch (CorruptIndexException x) when (x.FilePath == Source && x.Offset == blockOffset) { }
        var list = new DeviceBlockInvertedList();
        list.Acquire(payload, blockOffset, Locator(e)); // a list holding a good block refuses the bad one and drops both
        try
        {
            list.Acquire(bad, blockOffset, Locator(e));
            return false;
        }
        catch (CorruptIndexException x) when (x.FilePath == Source && x.Offset == blockOffset)
        {
            return list.Count == 0 && list.Payload.IsEmpty && list.Ids.IsEmpty;
        }
    }

    [Property(MaxTest = 200, Replay = "(20261207,13)")]
    public bool AByteFlippedInsideAStoredBlock_IsCorrupt_NamingTheDevice(int seed)
    {
        var rng = new Random(seed);
        var e = RandomEntries(rng);
        var payload = Write(e);
        using var store = new PostingStore(new MemoryDevice(Source));
        store.Write(1, new byte[100]);
        var at = store.Write(2, payload, BlockCompression.Never); // stored as is: header and payload are checksummed
        long flip = at.Offset + rng.Next(PostingStore.HeaderSize + payload.Length);
        var one = new byte[1];
        store.Device.Read(flip, one);
        one[0] ^= (byte)rng.Next(1, 256);
        store.Device.Write(flip, one);
        var list = new DeviceBlockInvertedList();
        try
        {
            list.Acquire(store, at, 2, Locator(e));
            return false;
        }
        catch (CorruptIndexException x) when (x.FilePath == Source && x.Offset == at.Offset)
        {
            return list.Count == 0 && list.Payload.IsEmpty;
        }
    }

    // An index's writes (inserts, deletes, splits, merges, reassignments, a compacting checkpoint, Verify) read the
    // postings they rewrite through the same acquire as searches: in place from the mapped posting file by default,
    // copied with MapPostings = false. Both end with bit-identical results, the same reconstructed vectors and a clean Verify.
    [Theory]
    [InlineData(null)]
    [InlineData("RaBitQfs4")]
    [InlineData("SQ8")]
    public void WritesReadingPostingsInPlace_AndReadingCopies_EndIdentical(string? codec)
    {
        const int D = 16, N = 2400;
        var data = SpannTestData.Clustered(N, D, seed: 71);
        var queries = SpannTestData.Clustered(60, D, seed: 72);
        using var dir = new TestDirectory();
        string mappedDir = dir.File("mapped"), copiedDir = dir.File("copied");
        var options = new SpannOptions { PostingSize = 16, MaxPostingSize = 40, MinPostingSize = 6, Codec = codec, CacheBytes = 0 };
        using (var built = SpannIndex.Create(mappedDir, D, Metric.L2, options))
        {
            built.BackgroundMaintenance = false;
            built.Train(data.AsSpan(0, 1200 * D));
            built.Add(data.AsSpan(0, 1200 * D), Range(0, 1200));
            built.Maintain();
            built.Checkpoint();
        }
        TempDir.CopyTree(mappedDir, copiedDir);
        using var mapped = SpannIndex.Open(mappedDir);
        using var copied = SpannIndex.Open(copiedDir, new SpannOpenOptions { MapPostings = false });
        foreach (var index in new[] { mapped, copied })
        {
            index.BackgroundMaintenance = false;
            index.WaitForMaintenance();
            index.Add(data.AsSpan(1200 * D), Range(1200, N - 1200)); // appends, then splits of the postings they overfill
            index.WaitForMaintenance();
            Assert.Equal(300, index.Remove(Range(0, 300)));           // near-empty postings merge into their neighbours
            index.Add(data.AsSpan(0, 100 * D), Range(0, 100));         // re-inserted ids: new versions beside stale copies
            index.Maintain();
            index.Checkpoint();
            Assert.True(index.Verify().IsClean);
        }
        var a = Search(mapped, queries);
        var b = Search(copied, queries);
        Assert.Equal(b.Labels, a.Labels);
        Assert.Equal(b.Distances.Select(BitConverter.SingleToInt32Bits), a.Distances.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(copied.PostingCount, mapped.PostingCount);
        var va = new float[D]; var vb = new float[D];
        for (long id = 0; id < N; id += 13)
        {
            Assert.Equal(copied.TryReconstruct(id, vb), mapped.TryReconstruct(id, va));
            Assert.Equal(vb, va);
            if (id is < 100 or >= 300) Assert.Equal(data.AsSpan((int)id * D, D).ToArray(), va);
        }
    }

    private static long[] Range(int start, int count) => Enumerable.Range(start, count).Select(i => (long)i).ToArray();

    private static (float[] Distances, long[] Labels) Search(SpannIndex index, float[] queries)
    {
        int nq = queries.Length / index.Dimension;
        var d = new float[nq * 10]; var l = new long[nq * 10];
        index.Search(queries, 10, d, l, new SpannSearchParameters { Probes = 8, Threads = 1 });
        return (d, l);
    }
}
