using Engine.Index.Spann;
using Engine.Storage.Wal;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

/// <summary>
/// Issue 11, defects 1 and 2, as the issue reproduced them, for every log kind: an index whose log cannot give back
/// every acknowledged write refuses to open (naming the log file and the addresses) instead of silently losing them;
/// accepting the loss is explicit, and afterwards new writes are durable again.
/// </summary>
public class SpannLogLossTests
{
    private const int D = 16;
    private static readonly SpannOptions Small = new() { PostingSize = 8, MaxPostingSize = 32, MinPostingSize = 2 };

    private static long[] Ids(int from, int count) => Enumerable.Range(from, count).Select(i => (long)i).ToArray();

    private static float[] Vectors(long[] ids)
    {
        var v = new float[ids.Length * D];
        for (int i = 0; i < ids.Length; i++) SpannTestData.VectorOf(ids[i], D).CopyTo(v, i * D);
        return v;
    }

    private static void Add(SpannIndex idx, int from, int count, int batch = 50)
    {
        for (int s = from; s < from + count; s += batch)
        {
            var ids = Ids(s, Math.Min(batch, from + count - s));
            idx.Add(Vectors(ids), ids);
        }
    }

    /// <summary>A built index: 300 vectors in the checkpoint, 100 more acknowledged in the log only.</summary>
    private static void Build(string dir, string kind, int logged = 100)
    {
        using var idx = SpannIndex.Create(dir, D, Metric.L2, Small, TestLogs.Provider(kind));
        idx.BackgroundMaintenance = false;
        idx.Train(SpannTestData.Clustered(400, D, seed: 7));
        Add(idx, 0, 300);
        idx.Checkpoint();
        Add(idx, 300, logged);
    }

    private static string LogFile(string dir, string kind) => TestLogs.Provider(kind).LogFile(Path.Combine(dir, "wal"));

    private static int Present(SpannIndex idx, long[] ids)
    {
        var v = new float[D];
        return ids.Count(id => idx.TryReconstruct(id, v));
    }

    public static TheoryData<string, string> MissingCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var kind in new[] { FileWriteAheadLogProvider.KindName, WriteAheadLogs.FasterKind })
            foreach (var damage in new[] { "delete", "empty", "older log" })
                data.Add(kind, damage);
        return data;
    }

    [Theory]
    [MemberData(nameof(MissingCases))]
    public void LogThatDoesNotReachTheCheckpoint_RefusesToOpen_AcceptingTheLossKeepsLaterWrites(string kind, string damage)
    {
        using var dir = new TestDirectory();
        string walDir = dir.File("wal");
        string olderLog = dir.File("older-wal");
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, Small, TestLogs.Provider(kind)))
        {
            idx.BackgroundMaintenance = false;
            idx.Train(SpannTestData.Clustered(400, D, seed: 7));
            CopyDirectory(walDir, olderLog); // the log as it was before the writes below
            Add(idx, 0, 300);
            idx.Checkpoint();
            Add(idx, 300, 100);
        }
        string file = LogFile(dir.Path, kind);
        switch (damage)
        {
            case "delete": File.Delete(file); if (kind == WriteAheadLogs.FasterKind) Directory.Delete(walDir, recursive: true); break;
            case "empty": using (var fs = new FileStream(file, FileMode.Open)) fs.SetLength(0); break;
            default: Directory.Delete(walDir, recursive: true); CopyDirectory(olderLog, walDir); break; // meta's address is beyond this log's end
        }
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(dir.Path));
        Assert.Equal(file, e.FilePath);
        Assert.Contains(file, e.Message);
        Assert.Contains(SpannIndex.MetaFileName, e.Message);
        Assert.Contains("--accept-log-loss", e.Message);
        Assert.Matches(@"replay address \d+|records from address \d+", e.Message);
        if (damage == "older log") Assert.Matches(@"holds addresses \d+ to \d+", e.Message); // both addresses
        Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(dir.Path)); // a refused open changed nothing

        using (var idx = SpannIndex.Open(dir.Path, new SpannOpenOptions { AcceptLogLoss = true }))
        {
            idx.BackgroundMaintenance = false;
            var report = idx.Recovery!;
            Assert.True(report.LogLossAccepted);
            Assert.False(string.IsNullOrEmpty(report.Loss));
            Assert.Contains("LOSS ACCEPTED", report.ToString());
            Assert.Equal(300, idx.Count);
            Assert.Equal(kind, idx.LogKind);
            Add(idx, 1000, 200); // the issue: these 200 acknowledged writes were lost on the next open
        }
        using (var idx = SpannIndex.Open(dir.Path))
        {
            Assert.Equal(500, idx.Count);
            Assert.Equal(200, Present(idx, Ids(1000, 200)));
            Assert.False(idx.Recovery!.LogLossAccepted);
        }
    }

    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void LogCutToHalf_IsCorrupt_NotHundredsOfLostVectors(string kind)
    {
        using var dir = new TestDirectory();
        Build(dir.Path, kind, logged: 500);
        string file = LogFile(dir.Path, kind);
        using (var fs = new FileStream(file, FileMode.Open)) fs.SetLength(fs.Length / 2);
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(dir.Path));
        Assert.Equal(file, e.FilePath);
        Assert.Matches(@"up to address \d+", e.Message); // the committed tail
        Assert.Contains("--accept-log-loss", e.Message);

        using (var idx = SpannIndex.Open(dir.Path, new SpannOpenOptions { AcceptLogLoss = true }))
        {
            Assert.True(idx.Recovery!.LogLossAccepted);
            Assert.InRange(idx.Count, 300, 799); // the checkpoint and the log's intact prefix
            Assert.Equal((int)idx.Count - 300, Present(idx, Ids(300, 500)));
            Assert.NotNull(idx.Recovery.LostLogMovedTo);
            Assert.True(Directory.Exists(idx.Recovery.LostLogMovedTo));
        }
        using (var idx = SpannIndex.Open(dir.Path)) Assert.False(idx.Recovery!.LogLossAccepted);
    }

    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void LogCutALittle_IsCorrupt_AcknowledgedDeletesNeverComeBack(string kind)
    {
        using var dir = new TestDirectory();
        Build(dir.Path, kind, logged: 0);
        using (var idx = SpannIndex.Open(dir.Path))
        {
            idx.BackgroundMaintenance = false;
            for (int s = 0; s < 50; s += 5) idx.Remove(Ids(s, 5)); // acknowledged, in the log only
            Assert.Equal(250, idx.Count);
        }
        string file = LogFile(dir.Path, kind);
        long committedEnd = kind == FileWriteAheadLogProvider.KindName ? new FileInfo(file).Length : CommittedFasterEnd(dir.Path);
        using (var fs = new FileStream(file, FileMode.Open)) fs.SetLength(committedEnd - 3);
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(dir.Path));
        Assert.Equal(file, e.FilePath);
    }

    [Fact]
    public void FileLog_TornTailAfterTheLastCommit_IsDropped_AndReported()
    {
        using var dir = new TestDirectory();
        Build(dir.Path, FileWriteAheadLogProvider.KindName);
        string file = LogFile(dir.Path, FileWriteAheadLogProvider.KindName);
        using (var fs = new FileStream(file, FileMode.Append)) fs.Write(new byte[] { 200, 0, 0, 0, 0x37, 0xFF, 0xFF, 0xFF, 1, 2, 3 }); // a record header and 3 bytes
        using var idx = SpannIndex.Open(dir.Path);
        Assert.Equal(400, idx.Count);
        var r = idx.Recovery!;
        Assert.Equal(1, r.TornRecordsDropped);
        Assert.Equal(11, r.TornBytesDropped);
        Assert.Equal(2, r.RecordsReplayed);
        Assert.Contains("torn tail of 1", r.ToString());
    }

    [Fact]
    public void Default_Log_IsFaster_WhenEngineFasterIsDeployed_AndTheMetadataRecordsIt()
    {
        using var dir = new TestDirectory();
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, Small)) Assert.Equal(WriteAheadLogs.FasterKind, idx.LogKind);
        using (var idx = SpannIndex.Open(dir.Path)) Assert.Equal(WriteAheadLogs.FasterKind, idx.LogKind);
        using var other = new TestDirectory();
        using (var idx = SpannIndex.Create(other.Path, D, Metric.L2, Small, FileWriteAheadLogProvider.Instance)) { }
        using (var idx = SpannIndex.Open(other.Path)) Assert.Equal(FileWriteAheadLogProvider.KindName, idx.LogKind);
        var e = Assert.Throws<ArgumentException>(() => SpannIndex.Open(other.Path, new SpannOpenOptions { Log = TestLogs.Provider(WriteAheadLogs.FasterKind) }));
        Assert.Contains("'file' write-ahead log", e.Message);
    }

    [Fact]
    public void Metadata_WithoutALogKind_IsAFileLogIndex_OrASavedCopyWithoutLog()
    {
        using var dir = new TestDirectory();
        Build(dir.Path, FileWriteAheadLogProvider.KindName);
        RewriteAsOldMetadata(dir.Path);
        using (var idx = SpannIndex.Open(dir.Path))
        {
            Assert.Equal(FileWriteAheadLogProvider.KindName, idx.LogKind);
            Assert.Equal(400, idx.Count); // the 100 logged vectors were replayed from the file log
        }
        using var copy = new TestDirectory();
        using (var idx = SpannIndex.Open(dir.Path)) idx.Save(copy.Path); // a copy: metadata only, no log
        Assert.False(Directory.Exists(Path.Combine(copy.Path, "wal")));
        RewriteAsOldMetadata(copy.Path);
        using (var idx = SpannIndex.Open(copy.Path))
        {
            Assert.Equal(WriteAheadLogs.FasterKind, idx.LogKind); // a new log of the default kind
            Assert.Equal(400, idx.Count);
            Add(idx, 5000, 10);
        }
        using (var idx = SpannIndex.Open(copy.Path)) Assert.Equal(410, idx.Count);
    }

    // Rewrites spann.meta as versions before the log kind was recorded wrote it (STAT with 4 values).
    private static void RewriteAsOldMetadata(string dir)
    {
        string meta = Path.Combine(dir, SpannIndex.MetaFileName);
        var sections = new List<(string Tag, byte[] Payload)>();
        Engine.Storage.Format.IndexFileHeader header;
        using (var r = new Engine.Storage.Format.IndexFileReader(meta, SpannIndex.FileKind))
        {
            header = r.Header;
            foreach (var tag in new[] { "OPTI", "OPTF", "STAT", "POFF", "PPAG", "PLIV", "PEXI", "PENT", "HEAD", "IDSK", "IDSP", "IDSV" })
                sections.Add((tag, r.ReadSection(tag)));
            if (r.PeekTag() == "PCRC") sections.Add(("PCRC", r.ReadSection("PCRC"))); // block checksums: independent of the log kind
            r.VerifyEnd();
        }
        Assert.Equal(40, sections[2].Payload.Length);
        using var w = new Engine.Storage.Format.IndexFileWriter(meta, header);
        foreach (var (tag, payload) in sections) w.WriteSection(tag, tag == "STAT" ? payload.AsSpan(0, 32) : payload);
        w.Commit();
    }

    // The committed tail of a FASTER index's log as a segment offset (segment 0 starts at address 0).
    private static long CommittedFasterEnd(string dir)
    {
        using var log = TestLogs.Provider(WriteAheadLogs.FasterKind).Open(Path.Combine(dir, "wal"));
        return log.Recovery.CommittedAddress;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyDirectory(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
