using Engine.Storage.Wal;

namespace Engine.Tests.Storage;

public partial class WriteAheadLogTests
{
    private const int V3Header = 64;

    private static IWriteAheadLog Open(string kind, TestDirectory dir, bool acceptLoss = false) =>
        TestLogs.Provider(kind).Open(dir.File("wal"), acceptLoss);

    private static IWriteAheadLog Create(string kind, TestDirectory dir) => TestLogs.Provider(kind).Create(dir.File("wal"));

    private static List<byte[]> ReadAll(IWriteAheadLog log, long from)
    {
        var list = new List<byte[]>();
        log.Replay(from, (_, r) => list.Add(r.ToArray()));
        return list;
    }

    /// <summary>
    /// A truncation address beyond the tail is a caller's mistake: both logs refuse it and keep every record. The FASTER
    /// log used to accept it, commit a begin address past its committed tail and leave a log no open accepted (every
    /// record acknowledged since the last checkpoint lost; the segments below that address deleted).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void Truncate_BeyondTheTail_IsRefused_AndTheLogKeepsItsRecords(string kind)
    {
        using var dir = new TestDirectory();
        long tail;
        using (var log = Create(kind, dir))
        {
            for (int i = 0; i < 5; i++) log.Append(new byte[] { (byte)i, 7 });
            log.Commit();
            tail = log.TailAddress;
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => log.Truncate(tail + 100_000));
            Assert.Equal("untilAddress", e.ParamName);
            Assert.Equal(tail, log.TailAddress);
        }
        using var reopened = Open(kind, dir);
        Assert.Equal(tail, reopened.TailAddress);
        var records = ReadAll(reopened, 0);
        Assert.Equal(5, records.Count);
        for (int i = 0; i < 5; i++) Assert.Equal(new byte[] { (byte)i, 7 }, records[i]);
    }

    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void Committed_Records_SurviveReopen_AndTruncate(string kind)
    {
        using var dir = new TestDirectory();
        long mid;
        using (var log = Create(kind, dir))
        {
            for (int i = 0; i < 10; i++) log.Append(new byte[] { (byte)i, 1, 2, 3 });
            mid = log.TailAddress;
            for (int i = 10; i < 20; i++) log.Append(new byte[] { (byte)i, 9 });
            log.Commit();
        }
        using (var log = Open(kind, dir))
        {
            var all = ReadAll(log, 0);
            Assert.Equal(20, all.Count);
            Assert.Equal(new byte[] { 5, 1, 2, 3 }, all[5]);
            var tail = ReadAll(log, mid);
            Assert.Equal(10, tail.Count);
            Assert.Equal(10, tail[0][0]);
            log.Truncate(mid);
            log.Commit();
        }
        using (var log = Open(kind, dir))
        {
            var tail = ReadAll(log, mid);
            Assert.Equal(10, tail.Count);
        }
    }

    [Fact]
    public void FileLog_TornTail_IsDropped_MiddleDamage_IsCorrupt()
    {
        using var dir = new TestDirectory();
        string path = dir.File("wal.log");
        using (var log = FileWriteAheadLog.Create(path))
        {
            for (int i = 0; i < 4; i++) log.Append(new byte[100]);
            log.Commit();
            log.Append(new byte[100]); // never committed: written to the file when it is closed
        }
        long full = new FileInfo(path).Length;
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(full - 30); // torn last record
        using (var log = FileWriteAheadLog.Open(path))
        {
            Assert.Equal(4, ReadAll(log, 0).Count);
            Assert.Equal(1, log.Recovery.TornRecords);
            Assert.Equal(112 - 30, log.Recovery.TornBytes);
        }
        var bytes = File.ReadAllBytes(path);
        bytes[V3Header + 12 + 50] ^= 0xFF; // inside the first record
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CorruptIndexException>(() => FileWriteAheadLog.Open(path));
        Assert.Equal(V3Header, e.Offset);
    }

    [Fact]
    public void FileLog_DamageInTheLastRecord_IsCorrupt_NeverSilentlyDropped()
    {
        using var dir = new TestDirectory();
        string path = dir.File("wal.log");
        using (var log = FileWriteAheadLog.Create(path))
        {
            for (int i = 0; i < 3; i++) log.Append(Enumerable.Repeat((byte)(i + 1), 100).ToArray());
            log.Commit();
        }
        var good = File.ReadAllBytes(path);
        long last = V3Header + 2 * (12 + 100);
        // Every byte of the last record: its length, the length check, the checksum and the payload.
        for (long at = last; at < good.Length; at++)
        {
            var bad = (byte[])good.Clone();
            bad[at] ^= 0x5A;
            File.WriteAllBytes(path, bad);
            var e = Assert.Throws<CorruptIndexException>(() => FileWriteAheadLog.Open(path));
            Assert.Equal(last, e.Offset);
            Assert.Equal(path, e.FilePath);
            Assert.Equal(bad, File.ReadAllBytes(path)); // the refused open cut nothing
        }
        // A tail that was extended but never written (zeros) is a torn write and is cut.
        File.WriteAllBytes(path, good.Concat(new byte[40]).ToArray());
        using (var log = FileWriteAheadLog.Open(path))
        {
            Assert.Equal(3, ReadAll(log, 0).Count);
            Assert.Equal(40, log.Recovery.TornBytes);
        }
        Assert.Equal(good.Length, new FileInfo(path).Length);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void FileLog_OldVersions_AreStillReadable_AndTruncateKeepsRecordFormat(int version)
    {
        using var dir = new TestDirectory();
        string path = dir.File("wal.log");
        // A log of an old version written by hand: 20-byte header, then records
        // "length | [~length (v2)] | crc32c(address, length, payload) | payload".
        var bytes = new List<byte>();
        var header = new byte[20];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header, 0x4C415745);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), (uint)version);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), Engine.Storage.Format.Crc32C.Compute(header.AsSpan(0, 16)));
        bytes.AddRange(header);
        var addresses = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            var payload = new byte[] { (byte)i, 7, 7 };
            long address = bytes.Count - 20;
            addresses.Add(address);
            var prefix = new byte[12];
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(prefix, address);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(prefix.AsSpan(8), payload.Length);
            uint crc = Engine.Storage.Format.Crc32C.Finish(Engine.Storage.Format.Crc32C.Append(Engine.Storage.Format.Crc32C.Append(Engine.Storage.Format.Crc32C.Seed, prefix), payload));
            var rh = new byte[version == 1 ? 8 : 12];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rh, (uint)payload.Length);
            if (version == 2) System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rh.AsSpan(4), ~(uint)payload.Length);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(rh.AsSpan(rh.Length - 4), crc);
            bytes.AddRange(rh);
            bytes.AddRange(payload);
        }
        File.WriteAllBytes(path, bytes.ToArray());
        using (var log = FileWriteAheadLog.Open(path))
        {
            Assert.Equal(version, log.Version);
            Assert.Equal(-1, log.Recovery.CommittedAddress); // old versions record no commit
            var all = ReadAll(log, 0);
            Assert.Equal(4, all.Count);
            Assert.Equal(new byte[] { 2, 7, 7 }, all[2]);
            log.Truncate(addresses[2]);
            Assert.Equal(version == 1 ? 1 : 3, log.Version); // version 2 records are version 3 records: the header is upgraded
            log.Append([9, 9]);
            log.Commit();
        }
        using (var log = FileWriteAheadLog.Open(path))
        {
            var rest = ReadAll(log, addresses[2]);
            Assert.Equal(3, rest.Count);
            Assert.Equal(new byte[] { 9, 9 }, rest[2]);
        }
    }
}
