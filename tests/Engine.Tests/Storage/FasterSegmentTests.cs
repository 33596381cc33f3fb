using Engine.Faster;
using Engine.Storage.Wal;

namespace Engine.Tests.Storage;

/// <summary>
/// FASTER frees a truncated log by whole segments only: new logs use 16 MiB segments, so a log that a checkpoint fully
/// covers keeps at most about one segment on disk (with the 256 MiB segments of the first logs, a SPANN build of MNIST
/// left 243 MB behind); logs made with the old size say so in their commit cookie and still open and replay.
/// </summary>
public class FasterSegmentTests
{
    private static byte[] Record(int i) => Enumerable.Range(0, 64 * 1024).Select(j => (byte)(i * 31 + j)).ToArray();

    private static long SegmentBytes(string dir) => Directory.GetFiles(dir, "wal.log.*").Sum(f => new FileInfo(f).Length);

    [Fact]
    public void ATruncatedLog_KeepsAtMostAboutOneSegmentOnDisk_AndReopens()
    {
        using var dir = new TestDirectory();
        string wal = dir.File("wal");
        long tail;
        using (var log = FasterWriteAheadLog.Create(wal))
        {
            for (int i = 0; i < 800; i++) log.Append(Record(i)); // 50 MiB: four segments
            log.Commit();
            Assert.True(SegmentBytes(wal) >= 50L << 20, $"{SegmentBytes(wal)} bytes before truncation");
            tail = log.TailAddress;
            log.Truncate(tail);
        }
        Assert.True(SegmentBytes(wal) <= 16L << 20, $"{SegmentBytes(wal)} bytes of segments after truncating everything");
        using var reopened = FasterWriteAheadLog.Open(wal);
        Assert.Equal(tail, reopened.BeginAddress);
        long after = reopened.Append(Record(1));
        reopened.Commit();
        int seen = 0;
        reopened.Replay(reopened.BeginAddress, (address, record) => { Assert.Equal(after, address); Assert.Equal(Record(1), record.ToArray()); seen++; });
        Assert.Equal(1, seen);
    }

    [Fact]
    public void ALogWithTheLegacySegmentSize_OpensAndReplays()
    {
        using var dir = new TestDirectory();
        string wal = dir.File("wal");
        using (var log = FasterWriteAheadLog.Create(wal, 28))
        {
            for (int i = 0; i < 10; i++) log.Append(Record(i));
            log.Commit();
        }
        // the cookie of a legacy log keeps the first magic, "ECMT"
        var commit = Directory.GetFiles(Path.Combine(wal, "log-commits"), "commit.*").Single();
        Assert.Equal("ECMT"u8.ToArray(), File.ReadAllBytes(commit).AsSpan(48, 4).ToArray());
        using var reopened = (IWriteAheadLog)FasterWriteAheadLog.Open(wal);
        var records = new List<byte[]>();
        reopened.Replay(0, (_, record) => records.Add(record.ToArray()));
        Assert.Equal(10, records.Count);
        for (int i = 0; i < 10; i++) Assert.Equal(Record(i), records[i]);
        // and it keeps its size: more records go to the same 256 MiB segment
        reopened.Append(Record(10));
        reopened.Commit();
        Assert.Single(Directory.GetFiles(wal, "wal.log.*"));
    }
}
