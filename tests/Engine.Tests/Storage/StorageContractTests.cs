using Engine.Storage;
using Engine.Storage.Wal;
using Engine.Tests.Support;

namespace Engine.Tests.Storage;

/// <summary>The two <see cref="IIndexStorage"/> kinds keep one contract where callers rely on it.</summary>
public class StorageContractTests
{
    public static TheoryData<string, string> StoragesAndLogs => new()
    {
        { "file", FileWriteAheadLogProvider.KindName },
        { "memory", FileWriteAheadLogProvider.KindName },
        { "file", WriteAheadLogs.FasterKind },
    };

    private static IIndexStorage Storage(string kind, TempDir tmp) =>
        kind == "file" ? new FileIndexStorage(tmp.File("index")) : new MemoryIndexStorage("index");

    /// <summary>A replay from below a truncated log's begin needs records that are gone: every log refuses it with a
    /// CorruptIndexException (the memory log used to start at its begin silently).</summary>
    [Theory]
    [MemberData(nameof(StoragesAndLogs))]
    public void ReplayBelowATruncatedBegin_IsACorruptIndexException_ForEveryLog(string storage, string log)
    {
        using var tmp = new TempDir();
        var s = Storage(storage, tmp);
        using var wal = s.CreateLog(TestLogs.Provider(log), "wal");
        var addresses = new List<long>();
        for (int i = 0; i < 6; i++) addresses.Add(wal.Append(new byte[] { (byte)i, 1, 2, 3 }));
        wal.Commit();
        wal.Truncate(addresses[3]);
        Assert.True(wal.BeginAddress > addresses[0]);
        Assert.Throws<CorruptIndexException>(() => wal.Replay(addresses[0], (_, _) => { }));
        var seen = new List<long>();
        wal.Replay(wal.BeginAddress, (a, _) => seen.Add(a));
        Assert.Equal(addresses.Where(a => a >= wal.BeginAddress), seen);
    }

    /// <summary>Deleting what does not exist does nothing, also when the storage's directory was never created
    /// (FileIndexStorage.Delete threw DirectoryNotFoundException there).</summary>
    [Theory]
    [InlineData("file")]
    [InlineData("memory")]
    public void DeletingWhatDoesNotExist_DoesNothing_EvenBeforeAnythingWasWritten(string storage)
    {
        using var tmp = new TempDir();
        var s = Storage(storage, tmp);
        s.Delete("postings-1.dat");
        s.DeleteLog("wal");
        Assert.False(s.Exists("postings-1.dat"));
        Assert.False(s.LogExists("wal"));
        Assert.Empty(s.List("postings-", ".dat"));
    }
}
