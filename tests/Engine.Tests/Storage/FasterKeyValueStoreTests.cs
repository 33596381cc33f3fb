using Engine.Faster;
using Engine.Tests.Support;

namespace Engine.Tests.Storage;

/// <summary>The FASTER KV store's page checksum files.</summary>
public class FasterKeyValueStoreTests
{
    private static void Fill(FasterKeyValueStore store, int from, int count, int seed)
    {
        var rng = new Random(seed);
        var value = new byte[50_000];
        for (int i = from; i < from + count; i++)
        {
            rng.NextBytes(value);
            store.Upsert(BitConverter.GetBytes(i), value);
        }
    }

    /// <summary>Each checkpoint hashes only the pages new or changed since the previous one; the result must equal a
    /// hash of everything, and a reopen checks the whole covered range.</summary>
    [Fact]
    public async Task IncrementalPageChecksums_EqualAFullRecomputation_AndAreCheckedOnOpen()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("kv");
        Guid token = default;
        using (var store = FasterKeyValueStore.Open(dir, null, 16L << 20))
        {
            for (int g = 0; g < 4; g++)
            {
                Fill(store, g * 100, 100, seed: g); // 5 MB per round: page boundaries fall inside and between rounds
                token = await store.CheckpointAsync();
                var sums = ReadSums(dir, token);
                var full = KvPageChecksums.Compute(token, sums.Begin, sums.End, sums.Tail, previous: null, dir, Path.Combine(dir, "kv.log"), 1L << 30);
                Assert.Equal(full.Pages, sums.Pages);
                Assert.Equal(full.TailCrc, sums.TailCrc);
                Assert.Equal(full.Files, sums.Files);
                Assert.True(sums.End > (g * 5L + 4) << 20);
            }
        }
        using (var again = FasterKeyValueStore.Open(dir, token, 16L << 20))
        {
            Assert.Equal(ReadSums(dir, token).Tail - ReadSums(dir, token).Begin, again.VerifiedLogBytes);
            Assert.NotNull(again.Read(BitConverter.GetBytes(399)));
        }
    }

    /// <summary>The tail of a checkpoint's range (the bytes after its last whole 4 KiB) and its FASTER files (metadata,
    /// hash table) keep their checksums while the store goes on: the next flush rewrites the sector holding the tail, and
    /// updates, deletes and later checkpoints must not change a byte any earlier checkpoint covers.</summary>
    [Fact]
    public async Task TailAndCheckpointFileChecksums_HoldForEveryEarlierCheckpoint_WhileTheStoreGoesOn()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("kv");
        var tokens = new List<Guid>();
        var rng = new Random(5);
        // two lives of the store: a reopen recovers the last checkpoint (FASTER clears the Dirty flag of the records it
        // loads, and the next flush writes the tail's sector again with them)
        for (int life = 0; life < 2; life++)
        {
            using var store = FasterKeyValueStore.Open(dir, life == 0 ? null : tokens[^1], 16L << 20);
            for (int g = 0; g < 4; g++)
            {
                // small odd-sized records, so that checkpoints end inside a sector; updates and deletes of keys written by
                // earlier rounds (records now in the read-only region) and new keys
                for (int i = 0; i < 300; i++)
                {
                    int key = rng.Next(0, 200 * (tokens.Count + 1));
                    if (rng.Next(8) == 0) store.Delete(BitConverter.GetBytes(key));
                    else store.Upsert(BitConverter.GetBytes(key), new byte[37 + rng.Next(300)]);
                }
                var token = await store.CheckpointAsync();
                tokens.Add(token);
                var sums = ReadSums(dir, token);
                Assert.Equal(2, sums.Version);
                Assert.Contains(sums.Files, f => f.Path.EndsWith("/ht.dat.0", StringComparison.Ordinal));
                Assert.Equal(2, sums.Files.Count(f => f.Path.Contains("/info.dat", StringComparison.Ordinal)));
                foreach (var t in tokens) ReadSums(dir, t).Verify(dir, Path.Combine(dir, "kv.log"), 1L << 30);
            }
        }
        Assert.Contains(tokens, t => ReadSums(dir, t).Tail > ReadSums(dir, t).End); // the tail is exercised
        foreach (var t in tokens) ReadSums(dir, t).Verify(dir, Path.Combine(dir, "kv.log"), 1L << 30);
        using (var again = FasterKeyValueStore.Open(dir, tokens[^1], 16L << 20))
            Assert.Equal(ReadSums(dir, tokens[^1]).Tail - ReadSums(dir, tokens[^1]).Begin, again.VerifiedLogBytes);
    }

    /// <summary>A damaged hash table or metadata file of a checkpoint, or damaged bytes in the tail of its range, is a
    /// CorruptIndexException naming the file before FASTER reads it (it follows hash-table addresses and record lengths
    /// unchecked).</summary>
    [Theory]
    [InlineData("ht")]
    [InlineData("index-info")]
    [InlineData("log-info")]
    [InlineData("tail")]
    [InlineData("missing-ht")]
    public async Task DamagedCheckpointFilesOrTail_AreACorruptIndexException_NamingTheFile(string what)
    {
        using var tmp = new TempDir();
        var (dir, token) = await OneCheckpoint(tmp, store => { for (int i = 0; i < 500; i++) store.Upsert(BitConverter.GetBytes(i), new byte[101]); });
        var sums = ReadSums(dir, token);
        string cpr = Path.Combine(dir, "checkpoints", "cpr-checkpoints", token.ToString());
        string idx = Path.Combine(dir, "checkpoints", "index-checkpoints", token.ToString());
        string file = what switch
        {
            "ht" or "missing-ht" => Path.Combine(idx, "ht.dat.0"),
            "index-info" => Path.Combine(idx, "info.dat.0"),
            "log-info" => Path.Combine(cpr, "info.dat.0"),
            _ => Path.Combine(dir, "kv.log.0"),
        };
        if (what == "missing-ht") File.Delete(file);
        else
        {
            var b = File.ReadAllBytes(file);
            // the tail: a byte of a record length or previous address (an 8-byte word's low bytes; its top two are not covered)
            long at = what == "tail" ? (sums.End + (sums.Tail - sums.End) / 2) & ~7L : what == "ht" ? b.Length / 2 : 8;
            Assert.True(what != "tail" || sums.Tail > sums.End);
            b[at] ^= 0x40;
            File.WriteAllBytes(file, b);
        }
        var e = Assert.Throws<CorruptIndexException>(() => FasterKeyValueStore.Open(dir, token, 16L << 20));
        Assert.Equal(file, e.FilePath); // also the metadata: its checksum is checked before it is parsed
    }

    /// <summary>A version 1 checksum file (page checksums only, written before the tail and files were covered) still
    /// opens its checkpoint and checks its pages.</summary>
    [Fact]
    public async Task AVersion1ChecksumFile_StillOpens_AndChecksItsPages()
    {
        using var tmp = new TempDir();
        var (dir, token) = await OneCheckpoint(tmp, store => { Fill(store, 0, 120, seed: 3); });
        var sums = ReadSums(dir, token);
        var v1 = new byte[48 + 4 * sums.Pages.Length + 4];
        File.ReadAllBytes(KvPageChecksums.FileOf(dir, token)).AsSpan(0, 48).CopyTo(v1);
        BitConverter.TryWriteBytes(v1.AsSpan(4), 1u);
        for (int i = 0; i < sums.Pages.Length; i++) BitConverter.TryWriteBytes(v1.AsSpan(48 + 4 * i), sums.Pages[i]);
        BitConverter.TryWriteBytes(v1.AsSpan(v1.Length - 4), Engine.Storage.Format.Crc32C.Compute(v1.AsSpan(0, v1.Length - 4)));
        File.WriteAllBytes(KvPageChecksums.FileOf(dir, token), v1);
        using (var again = FasterKeyValueStore.Open(dir, token, 16L << 20))
        {
            Assert.Equal(sums.End - sums.Begin, again.VerifiedLogBytes);
            Assert.NotNull(again.Read(BitConverter.GetBytes(100)));
        }
        using (var fs = new FileStream(Path.Combine(dir, "kv.log.0"), FileMode.Open, FileAccess.Write)) { fs.Position = 1 << 20; fs.Write(new byte[4096]); }
        Assert.Throws<CorruptIndexException>(() => FasterKeyValueStore.Open(dir, token, 16L << 20));
    }

    /// <summary>A checksum file whose list names a file outside its checkpoint's folders (its own checksum made to
    /// match) is refused, not followed.</summary>
    [Fact]
    public async Task AChecksumFileNamingAFileOutsideItsCheckpoint_IsRefused()
    {
        using var tmp = new TempDir();
        var (dir, token) = await OneCheckpoint(tmp, store => { store.Upsert([1], [2]); });
        string path = KvPageChecksums.FileOf(dir, token);
        var b = File.ReadAllBytes(path);
        string text = System.Text.Encoding.Latin1.GetString(b);
        int at = text.IndexOf("/info.dat.0", StringComparison.Ordinal);
        Assert.True(at > 0);
        b[at + 1] = (byte)'.'; b[at + 2] = (byte)'.'; b[at + 3] = (byte)'/'; // ".../..//dat.0"-like: outside the folder
        BitConverter.TryWriteBytes(b.AsSpan(b.Length - 4), Engine.Storage.Format.Crc32C.Compute(b.AsSpan(0, b.Length - 4)));
        File.WriteAllBytes(path, b);
        var e = Assert.Throws<CorruptIndexException>(() => FasterKeyValueStore.Open(dir, token, 16L << 20));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("outside", e.Message);
    }

    // A store in tmp/kv written by `fill`, checkpointed once and closed.
    private static async Task<(string Dir, Guid Token)> OneCheckpoint(TempDir tmp, Action<FasterKeyValueStore> fill)
    {
        string dir = tmp.File("kv");
        using var store = FasterKeyValueStore.Open(dir, null, 16L << 20);
        fill(store);
        return (dir, await store.CheckpointAsync());
    }

    private static KvPageChecksums ReadSums(string dir, Guid token)
    {
        var b = File.ReadAllBytes(KvPageChecksums.FileOf(dir, token));
        long end = BitConverter.ToInt64(b, 40);
        long tail = BitConverter.ToInt32(b, 4) == 1 ? end : BitConverter.ToInt64(b, 48 + 4 * BitConverter.ToInt32(b, 12));
        return KvPageChecksums.Read(dir, token, BitConverter.ToInt64(b, 32), end, tail)!;
    }
}
