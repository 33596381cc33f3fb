using Engine.Faster;
using Engine.Storage.Wal;

namespace Engine.Tests.Storage;

public class WriteAheadLogTests
{
    public static TheoryData<string> Logs => new() { "file", "faster" };

    private static IWriteAheadLog Open(string kind, TestDirectory dir) =>
        kind == "file" ? new FileWriteAheadLog(dir.File("wal.log")) : new FasterWriteAheadLog(dir.File("wal"));

    private static List<byte[]> ReadAll(IWriteAheadLog log, long from)
    {
        var list = new List<byte[]>();
        log.Replay(from, (_, r) => list.Add(r.ToArray()));
        return list;
    }

    [Theory]
    [MemberData(nameof(Logs))]
    public void Committed_Records_SurviveReopen_AndTruncate(string kind)
    {
        using var dir = new TestDirectory();
        long mid;
        using (var log = Open(kind, dir))
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
        using (var log = new FileWriteAheadLog(path))
        {
            for (int i = 0; i < 5; i++) log.Append(new byte[100]);
            log.Commit();
        }
        long full = new FileInfo(path).Length;
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(full - 30); // torn last record
        using (var log = new FileWriteAheadLog(path)) Assert.Equal(4, ReadAll(log, 0).Count);
        var bytes = File.ReadAllBytes(path);
        bytes[20 + 8 + 50] ^= 0xFF; // inside the first record
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CorruptIndexException>(() => new FileWriteAheadLog(path));
        Assert.Equal(20, e.Offset);
    }
}
