using Engine.Storage.Devices;
using Engine.Storage.Postings;

namespace Engine.Tests.Storage;

public class PostingStoreTests
{
    public static TheoryData<string> Devices => new() { "file", "memory", "slow-memory" };

    private static IStorageDevice Make(string kind, TestDirectory dir) => kind switch
    {
        "file" => new FileDevice(dir.File("p.dat")),
        "memory" => new MemoryDevice(),
        _ => new MemoryDevice("slow", TimeSpan.FromMilliseconds(1)),
    };

    private static byte[] Payload(int seed, int length)
    {
        var r = new Random(seed);
        var b = new byte[length];
        // Half random, half repetitive, so both the compressed and the raw block paths run.
        r.NextBytes(b.AsSpan(0, length / 2));
        for (int i = length / 2; i < length; i++) b[i] = (byte)(i % 7);
        return b;
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public async Task Blocks_RoundTrip_AlignedAndCached(string kind)
    {
        using var dir = new TestDirectory();
        using var store = new PostingStore(Make(kind, dir), new PostingCache(1 << 20));
        var locs = new List<PostingLocation>();
        var keys = new List<int>();
        for (int i = 0; i < 20; i++)
        {
            locs.Add(store.Write(i, Payload(i, 100 + i * 997)));
            keys.Add(i);
        }
        Assert.All(locs, l => Assert.Equal(0, l.Offset % store.PageSize));
        var results = new byte[20][];
        var (hits, bytes) = await store.ReadManyAsync(locs, keys, results);
        Assert.True(bytes > 0);
        for (int i = 0; i < 20; i++) Assert.Equal(Payload(i, 100 + i * 997), results[i]);
        // Second read comes from the cache.
        Assert.Equal(Payload(3, 100 + 3 * 997), store.Read(locs[3], 3, out bool cached));
        Assert.True(cached);
        Assert.Equal(0, hits);
    }

    [Fact]
    public void FlippedByte_InFile_ReportsFileAndOffset()
    {
        using var dir = new TestDirectory();
        string path = dir.File("p.dat");
        PostingLocation a, b;
        using (var store = new PostingStore(new FileDevice(path)))
        {
            a = store.Write(1, Payload(1, 5000));
            b = store.Write(2, Payload(2, 5000));
        }
        var bytes = File.ReadAllBytes(path);
        bytes[b.Offset + 40] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        using var reopened = new PostingStore(new FileDevice(path, create: false));
        Assert.Equal(Payload(1, 5000), reopened.Read(a, 1, out _));
        var e = Assert.Throws<CorruptIndexException>(() => reopened.Read(b, 2, out _));
        Assert.Equal(Path.GetFullPath(path), e.FilePath);
        Assert.Equal(b.Offset, e.Offset);
        Assert.Throws<CorruptIndexException>(() => reopened.Read(a, 7, out _)); // wrong key
        Assert.Throws<CorruptIndexException>(() => reopened.Read(new PostingLocation(1 << 30, 1), 1, out _));
    }

    [Fact]
    public void BitFlips_FromDevice_AreAlwaysDetected()
    {
        var mem = new MemoryDevice();
        var faulty = new FaultInjectingDevice(mem, seed: 7);
        using var store = new PostingStore(faulty);
        var locs = Enumerable.Range(0, 50).Select(i => store.Write(i, Payload(i, 3000))).ToArray();
        faulty.BitFlipRate = 1.0;
        int detected = 0;
        for (int i = 0; i < locs.Length; i++)
        {
            // A flip in the zero padding after the payload is harmless; anywhere else it must be caught.
            try { Assert.Equal(Payload(i, 3000), store.Read(locs[i], i, out _)); }
            catch (CorruptIndexException) { detected++; }
        }
        Assert.True(detected >= 15, $"only {detected} of 50 flips detected");
        faulty.BitFlipRate = 0;
        faulty.ReadFailureRate = 1.0;
        Assert.Throws<IOException>(() => store.Read(locs[0], 0, out _));
    }

    [Fact]
    public void TornWrite_LeavesEarlierBlocksReadable()
    {
        var mem = new MemoryDevice();
        var faulty = new FaultInjectingDevice(mem) { FailAfterBytesWritten = 3 * 4096 + 100 };
        var store = new PostingStore(faulty);
        var ok = store.Write(1, Payload(1, 4000));
        Assert.Throws<IOException>(() => { for (int i = 0; i < 10; i++) store.Write(2, Payload(2, 4000)); });
        var fresh = new PostingStore(mem);
        Assert.Equal(Payload(1, 4000), fresh.Read(ok, 1, out _));
    }

    [Fact]
    public void Cache_RespectsByteBudget()
    {
        var cache = new PostingCache(10_000);
        for (int i = 0; i < 100; i++) cache.Add(i * 4096, new byte[1000]);
        Assert.True(cache.Bytes <= 10_000);
        Assert.True(cache.TryGet(99 * 4096, out _));
        Assert.False(cache.TryGet(0, out _));
    }
    // Raw postings are written with BlockCompression.WhenWorthIt: a payload LZ4 shrinks by less than an eighth is stored as
    // it is (flag bit 0 set, stored length = raw length); one it shrinks by more stays compressed; coded postings are
    // written with BlockCompression.Never; all read back equal.
    [Fact]
    public void CompressionOnlyWhenItSavesAnEighth_OrNever()
    {
        var r = new Random(5);
        var mostlyRandom = new byte[4400];
        r.NextBytes(mostlyRandom.AsSpan(0, 4000)); // 400 zero bytes at the end: LZ4 saves ~9 %
        var compressible = Payload(6, 4400);        // half repetitive: LZ4 saves far more than an eighth
        var device = new MemoryDevice();
        using var store = new PostingStore(device, cache: null, ownsDevice: false);
        (uint Flags, int Stored) Header(PostingLocation at)
        {
            var h = new byte[PostingStore.HeaderSize];
            device.Read(at.Offset, h);
            return (BitConverter.ToUInt32(h, 20), BitConverter.ToInt32(h, 16));
        }
        var plain = store.Write(1, mostlyRandom);
        var worth = store.Write(2, mostlyRandom, compression: BlockCompression.WhenWorthIt);
        var packed = store.Write(3, compressible, compression: BlockCompression.WhenWorthIt);
        Assert.Equal(0u, Header(plain).Flags & 1);        // the default compresses whenever it helps at all
        Assert.True(Header(plain).Stored < mostlyRandom.Length);
        Assert.Equal((1u, mostlyRandom.Length), Header(worth));
        Assert.Equal(0u, Header(packed).Flags & 1);
        Assert.True(Header(packed).Stored < compressible.Length * 7 / 8);
        Assert.Equal(mostlyRandom, store.Read(plain, 1, out _));
        Assert.Equal(mostlyRandom, store.Read(worth, 2, out _));
        Assert.Equal(compressible, store.Read(packed, 3, out _));
        var never = store.Write(4, compressible, compression: BlockCompression.Never);
        Assert.Equal((1u, compressible.Length), Header(never));
        Assert.Equal(compressible, store.Read(never, 4, out _));
    }
    // A block's CRC32C is summed on its first read only (blocks are never overwritten); the header, key and the
    // table's checksum are checked every time. A flipped payload byte is therefore caught by the first read, by
    // ReadFromDevice (the path Verify() takes) and by any store opened afterwards.
    [Fact]
    public void ChecksumIsSummedOnTheFirstReadAndAlwaysByVerify()
    {
        using var dir = new TestDirectory();
        string path = dir.File("p.dat");
        var payload = Payload(9, 5000);
        PostingLocation at;
        using (var store = new PostingStore(new FileDevice(path)))
        {
            at = store.Write(4, payload);
            Assert.Equal(payload, store.Read(at, 4, out _));
            Assert.Equal(payload, store.Read(at, 4, out _)); // second read: checksum known good
            using (var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
            {
                f.Position = at.Offset + PostingStore.HeaderSize + 10;
                int b = f.ReadByte();
                f.Position--;
                f.WriteByte((byte)(b ^ 0x5A));
            }
            Assert.Throws<CorruptIndexException>(() => store.ReadFromDevice(at, 4));
        }
        using var reopened = new PostingStore(new FileDevice(path));
        Assert.Throws<CorruptIndexException>(() => reopened.Read(at, 4, out _));
        using var fresh = new PostingStore(new MemoryDevice());
        var bad = fresh.Write(1, payload);
        var image = new byte[bad.Pages * fresh.PageSize];
        fresh.Device.Read(bad.Offset, image);
        image[PostingStore.HeaderSize + 3] ^= 1;
        fresh.Device.Write(bad.Offset, image);
        Assert.Throws<CorruptIndexException>(() => fresh.Read(bad, 1, out _)); // never read before: summed
    }

    // In-place reads: an uncompressed block the mapping covers is served from it (same bytes as Read, same checks:
    // key, table checksum, CRC32C on the first read); a compressed block, a block written after the mapping or any
    // block of an unmappable device is not (the caller reads it with Read). Truncation drops the mapping.
    [Fact]
    public void InPlaceReads_MatchRead_CheckBlocks_AndCoverOnlyMappedUncompressedBlocks()
    {
        using var dir = new TestDirectory();
        string path = dir.File("p.dat");
        var random = new byte[6000];
        new Random(11).NextBytes(random);
        var compressible = Payload(12, 6000);
        using var store = new PostingStore(new FileDevice(path));
        var raw = store.Write(1, random, compression: BlockCompression.WhenWorthIt);
        var packed = store.Write(2, compressible, compression: BlockCompression.WhenWorthIt);
        var bad = store.Write(3, random, compression: BlockCompression.WhenWorthIt);
        Assert.False(store.TryReadInPlace(raw, 1, out _)); // nothing mapped yet
        store.MapForReads();
        Assert.Equal(store.Length, store.MappedLength);
        Assert.True(store.TryReadInPlace(raw, 1, out var view));
        Assert.Equal(random, view.ToArray());
        Assert.Equal(store.Read(raw, 1, out _), view.ToArray());
        Assert.True(store.TryReadInPlace(default, 1, out var empty));
        Assert.True(empty.IsEmpty);
        Assert.False(store.TryReadInPlace(packed, 2, out _));
        Assert.Throws<CorruptIndexException>(() => store.TryReadInPlace(raw, 9, out _)); // wrong key
        Assert.Throws<CorruptIndexException>(() => store.TryReadInPlace(raw with { Checksum = raw.Checksum ^ 1 }, 1, out _));
        using (var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            f.Position = bad.Offset + PostingStore.HeaderSize + 100;
            int b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x21));
        }
        var e = Assert.Throws<CorruptIndexException>(() => store.TryReadInPlace(bad, 3, out _)); // first read sums
        Assert.Equal(bad.Offset, e.Offset);
        var later = store.Write(4, random, compression: BlockCompression.WhenWorthIt);
        Assert.False(store.TryReadInPlace(later, 4, out _)); // written after the mapping
        store.MapForReads();
        Assert.True(store.TryReadInPlace(later, 4, out var again));
        Assert.Equal(random, again.ToArray());
        store.TruncateTo(later.Offset);
        Assert.Equal(0, store.MappedLength);
        Assert.False(store.TryReadInPlace(raw, 1, out _));
        using var memory = new PostingStore(new MemoryDevice());
        var m = memory.Write(1, random, compression: BlockCompression.WhenWorthIt);
        memory.MapForReads();
        Assert.False(memory.TryReadInPlace(m, 1, out _)); // a device that cannot be mapped
    }
}
