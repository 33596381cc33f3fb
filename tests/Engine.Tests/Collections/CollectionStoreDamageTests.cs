using Engine.Collections;
using Engine.Faster;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>
/// Damaged store and log files of a closed collection. 8 KiB of zeros inside <c>kv/kv.log.0</c> crashed the process
/// during FASTER's recovery with an AccessViolationException (uncatchable: the whole test host died); the pages a
/// checkpoint covers are now checked against its page checksum file first, and the open fails with a
/// CorruptIndexException naming the file.
/// </summary>
public class CollectionStoreDamageTests
{
    private static readonly CollectionOptions Options = new() { CheckpointLogBytes = 1L << 40 };

    // About 9 MB of payload per checkpoint: the store's log spans several 4 MiB pages.
    private static async Task<string> Write(TempDir tmp, int checkpoints = 1)
    {
        string dir = tmp.File("c");
        using var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options);
        for (int g = 0; g < checkpoints; g++)
        {
            await c.UpsertBatchAsync(Enumerable.Range(g * 150, 150).Select(n =>
            {
                var r = CollectionTestData.Make("k" + n, n);
                r.Data["body"] = new string((char)('a' + n % 26), 60_000);
                return r;
            }));
            await c.CheckpointAsync();
        }
        return dir;
    }

    private static void Overwrite(string file, long offset, byte[] bytes)
    {
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Write);
        fs.Position = offset;
        fs.Write(bytes);
    }

    [Theory]
    [InlineData(1L << 20, 0)]     // zeros in the first page
    [InlineData(5L << 20, 0)]     // zeros in the second
    [InlineData(6L << 20, 0x5A)]  // other bytes
    public async Task ADamagedStoreLog_IsACorruptIndexException_NamingTheFile_NotACrash(long offset, byte fill)
    {
        using var tmp = new TempDir();
        string dir = await Write(tmp, checkpoints: 2);
        string log = Path.Combine(dir, "kv", "kv.log.0");
        Assert.True(new FileInfo(log).Length > offset + 8192);
        Overwrite(log, offset, Enumerable.Repeat(fill, 8192).ToArray());
        var e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(dir, options: Options));
        Assert.Equal(log, e.FilePath);
        Assert.Contains("CRC-32C", e.Message);
    }

    /// <summary>Damage only the newest checkpoint covers: the previous one (which does not reach it) is recovered and
    /// the longer log replayed, with every record.</summary>
    [Fact]
    public async Task DamageOnlyTheNewestCheckpointCovers_FallsBackToThePreviousOne_WithEveryRecord()
    {
        using var tmp = new TempDir();
        string dir = await Write(tmp, checkpoints: 2);
        string kv = Path.Combine(dir, "kv");
        var newest = FasterKeyValueStore.ListCheckpoints(kv)[0];
        long end = EndOf(kv, newest.Token);
        Assert.True(end > 12L << 20);
        Overwrite(Path.Combine(kv, "kv.log.0"), end - 8192, new byte[8192]);
        using var c = RecordCollection<string>.Open(dir, options: Options);
        Assert.True(c.Recovery.UsedPreviousCheckpoint);
        Assert.Equal(300, c.Count);
        var got = await c.GetBatchAsync(Enumerable.Range(0, 300).Select(n => "k" + n));
        Assert.All(got, r => Assert.NotNull(r));
    }

    private static long EndOf(string kv, Guid token)
    {
        // the checksum file names its own range; read it raw
        var b = File.ReadAllBytes(KvPageChecksums.FileOf(kv, token));
        return BitConverter.ToInt64(b, 40);
    }

    /// <summary>Collections from before the page checksum files still open (unchecked); the next checkpoint writes the
    /// file, and damage is caught from then on.</summary>
    [Fact]
    public async Task AStoreWithoutChecksumFiles_StillOpens_AndTheNextCheckpointWritesOne()
    {
        using var tmp = new TempDir();
        string dir = await Write(tmp);
        string sums = Path.Combine(dir, "kv", "checksums");
        Directory.Delete(sums, recursive: true);
        using (var c = RecordCollection<string>.Open(dir, options: Options))
        {
            Assert.Equal(150, c.Count);
            await c.UpsertAsync(CollectionTestData.Make("late", 1));
        } // its checkpoint writes the file
        Assert.Single(Directory.GetFiles(sums, "*.crc"));
        // one more generation, so that the manifest's previous checkpoint has a file too (else the open would fall back
        // to the unchecked one, whose damaged payloads the payload checksums still catch, naming kv/)
        using (var c = RecordCollection<string>.Open(dir, options: Options))
            await c.UpsertAsync(CollectionTestData.Make("later", 2));
        Assert.Equal(2, Directory.GetFiles(sums, "*.crc").Length);
        Overwrite(Path.Combine(dir, "kv", "kv.log.0"), 1L << 20, new byte[8192]);
        var e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(dir, options: Options));
        Assert.EndsWith("kv.log.0", e.FilePath);
    }

    [Fact]
    public async Task ADamagedChecksumFile_IsACorruptIndexException_NamingIt()
    {
        using var tmp = new TempDir();
        string dir = await Write(tmp);
        string file = Directory.GetFiles(Path.Combine(dir, "kv", "checksums"), "*.crc").Single();
        var b = File.ReadAllBytes(file);
        b[^6] ^= 1;
        File.WriteAllBytes(file, b);
        var e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(dir, options: Options));
        Assert.Equal(file, e.FilePath);
    }

    /// <summary>The write-ahead log (FasterLog) damaged the same ways: a CorruptIndexException naming its segment, never
    /// a crash (FASTER's scan trusts the entry lengths it reads; ours are checked first).</summary>
    [Theory]
    [InlineData(100_000, 0)]
    [InlineData(300_000, 0x5A)]
    [InlineData(700_000, 0xFF)]
    public async Task ADamagedLogSegment_IsACorruptIndexException_NotACrash(long offset, byte fill)
    {
        using var tmp = new TempDir();
        string dir = tmp.File("c");
        using (var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema(), Options))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 20).Select(n => CollectionTestData.Make("k" + n, n)));
            await c.CheckpointAsync(); // the records below go only to the log
            for (int n = 20; n < 60; n++)
            {
                var r = CollectionTestData.Make("k" + n, n);
                r.Data["body"] = new string('x', 20_000);
                await c.UpsertAsync(r);
            }
            File.Copy(Path.Combine(dir, "manifest.json"), tmp.File("manifest"));
        }
        // the close's checkpoint covers everything: put the first manifest back so that the reopen replays the log
        File.Copy(tmp.File("manifest"), Path.Combine(dir, "manifest.json"), overwrite: true);
        string segment = Path.Combine(dir, "wal", "wal.log.0");
        Assert.True(new FileInfo(segment).Length > offset + 8192);
        Overwrite(segment, offset, Enumerable.Repeat(fill, 8192).ToArray());
        var e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(dir, options: Options));
        Assert.Contains("wal.log.0", e.FilePath);
    }
}
