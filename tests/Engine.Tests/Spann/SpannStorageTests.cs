using Engine.Index.Spann;
using Engine.Storage;
using Engine.Storage.Devices;
using Engine.Storage.Wal;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

/// <summary>
/// SPANN takes its storage from the caller (<see cref="IIndexStorage"/>): the same operations over memory
/// (<see cref="MemoryIndexStorage"/>) and over a directory (<see cref="FileIndexStorage"/>, what the path-based
/// Create/Open use) give the same files and the same answers, through a checkpoint, a log replay and a reopen.
/// </summary>
public class SpannStorageTests
{
    private const int D = 16;
    private static long[] Range(int from, int count) => Enumerable.Range(from, count).Select(i => (long)i).ToArray();

    // Create → train → add → checkpoint → add and remove (logged only) → close; returns the answers before closing.
    private static (float[] Dist, long[] Labels) Build(IIndexStorage storage, float[] data, float[] queries, SpannOptions options)
    {
        using var index = SpannIndex.Create(storage, D, Metric.L2, options, FileWriteAheadLogProvider.Instance);
        index.BackgroundMaintenance = false;
        index.Train(data.AsSpan(0, 1000 * D));
        index.Add(data.AsSpan(0, 1000 * D), Range(0, 1000));
        index.WaitForMaintenance();
        index.Checkpoint();
        index.Add(data.AsSpan(1000 * D), Range(1000, data.Length / D - 1000)); // after the checkpoint: replayed from the log
        Assert.Equal(50, index.Remove(Range(0, 50)));
        index.WaitForMaintenance();
        return Answers(index, queries);
    }

    private static (float[] Dist, long[] Labels) Answers(SpannIndex index, float[] queries)
    {
        int nq = queries.Length / D, k = 10;
        var dist = new float[nq * k];
        var labels = new long[nq * k];
        index.Search(queries, k, dist, labels, new SpannSearchParameters { Probes = 8, Threads = 1 });
        return (dist, labels);
    }

    // Both indexes finish the maintenance their open queued, then must answer bit for bit alike.
    private static void AssertSameAnswers(SpannIndex expected, SpannIndex actual, float[] queries)
    {
        expected.WaitForMaintenance();
        actual.WaitForMaintenance();
        var a = Answers(expected, queries);
        var b = Answers(actual, queries);
        Assert.Equal(a.Labels, b.Labels);
        Assert.Equal(a.Dist, b.Dist);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("SQ8")]
    [InlineData("RaBitQfs4")]
    public void MemoryStorage_CreatesReopensAndSearches_ExactlyAsTheDirectory(string? codec)
    {
        var data = SpannTestData.Clustered(1600, D, seed: 71);
        var queries = SpannTestData.Clustered(40, D, seed: 72);
        var options = new SpannOptions { PostingSize = 16, MaxPostingSize = 48, MinPostingSize = 4, Codec = codec };
        using var dir = new TestDirectory();
        var files = new FileIndexStorage(Path.Combine(dir.Path, "idx"));
        var memory = new MemoryIndexStorage("spann");

        var beforeFiles = Build(files, data, queries, options);
        var beforeMemory = Build(memory, data, queries, options);
        Assert.Equal(beforeFiles.Labels, beforeMemory.Labels);
        Assert.Equal(beforeFiles.Dist, beforeMemory.Dist);
        // The same posting and refine files, byte for byte (the metadata differs only in the log's addresses).
        Assert.Equal(files.List("", ".dat"), memory.List("", ".dat"));
        Assert.Equal(codec is null ? 1 : 2, memory.List("", ".dat").Count);
        foreach (var name in memory.List("", ".dat"))
            Assert.Equal(File.ReadAllBytes(files.PathOf(name)), ((MemoryDevice)memory.OpenDevice(name)).Snapshot());

        using var fromFiles = SpannIndex.Open(files);
        using var fromMemory = SpannIndex.Open(memory);
        Assert.Equal(fromFiles.Recovery!.RecordsReplayed, fromMemory.Recovery!.RecordsReplayed);
        Assert.True(fromMemory.Recovery.RecordsReplayed > 0, "the writes after the checkpoint came back from the memory log");
        Assert.Equal(1550, fromMemory.Count);
        Assert.Null(fromMemory.Directory);
        Assert.Same(memory, fromMemory.Storage);
        Assert.Equal(files.Directory, fromFiles.Directory);
        AssertSameAnswers(fromFiles, fromMemory, queries);
        Assert.True(fromMemory.Verify().IsClean);
        var v = new float[D];
        Assert.True(fromMemory.TryReconstruct(1200, v));
        Assert.Equal(data.AsSpan(1200 * D, D).ToArray(), v);
        Assert.False(fromMemory.TryReconstruct(10, v));
    }

    [Fact]
    public void PathBasedCreateAndOpen_AreTheFileStorage()
    {
        var data = SpannTestData.Clustered(600, D, seed: 73);
        using var dir = new TestDirectory();
        string path = Path.Combine(dir.Path, "idx");
        using (var index = SpannIndex.Create(path, D, Metric.L2, new SpannOptions { PostingSize = 16 }, FileWriteAheadLogProvider.Instance))
        {
            index.Train(data);
            index.Add(data, Range(0, 600));
            Assert.IsType<FileIndexStorage>(index.Storage);
            Assert.Equal(Path.GetFullPath(path), index.Directory);
        }
        var queries = data.AsSpan(0, 20 * D).ToArray();
        using var byPath = SpannIndex.Open(path);
        var a = Answers(byPath, queries);
        byPath.Dispose();
        using var byStorage = SpannIndex.Open(new FileIndexStorage(path));
        var b = Answers(byStorage, queries);
        Assert.Equal(a.Labels, b.Labels);
        Assert.Equal(a.Dist, b.Dist);
    }

    [Fact]
    public void SaveIntoAnotherStorageObjectOverItsOwnDirectory_Checkpoints_AndLosesNothing()
    {
        // Save(target) writes a compacted copy into a foreign storage, deleting the posting files and the log there; over
        // the index's own directory (a second FileIndexStorage, not the same object) that deleted the live files under
        // the open index, and writes after it were lost at the next reopen. It must checkpoint in place instead.
        var data = SpannTestData.Clustered(900, D, seed: 76);
        var queries = data.AsSpan(0, 20 * D).ToArray();
        using var dir = new TestDirectory();
        string path = Path.Combine(dir.Path, "idx");
        using (var index = SpannIndex.Create(path, D, Metric.L2, new SpannOptions { PostingSize = 16 }, FileWriteAheadLogProvider.Instance))
        {
            index.Train(data);
            index.Add(data.AsSpan(0, 600 * D), Range(0, 600));
        }
        (float[] Dist, long[] Labels) before;
        using (var index = SpannIndex.Open(new FileIndexStorage(path)))
        {
            index.Save(new FileIndexStorage(path));
            index.Add(data.AsSpan(600 * D), Range(600, 300)); // logged after the save
            Assert.Equal(900, index.Count);
            index.WaitForMaintenance();
            before = Answers(index, queries);
        }
        using var reopened = SpannIndex.Open(path);
        Assert.Equal(900, reopened.Count);
        reopened.Verify().ThrowIfCorrupt();
        reopened.WaitForMaintenance();
        var after = Answers(reopened, queries);
        Assert.Equal(before.Labels, after.Labels);
    }

    [Fact]
    public void SaveIntoCallerStorage_OpensThere_WithTheAnswersOfASavedDirectory()
    {
        var data = SpannTestData.Clustered(800, D, seed: 74);
        var queries = SpannTestData.Clustered(20, D, seed: 75);
        using var inMemory = new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 16, Codec = "SQ8" }) { BackgroundMaintenance = false };
        inMemory.Train(data);
        inMemory.Add(data, Range(0, 800));
        inMemory.WaitForMaintenance();
        using var dir = new TestDirectory();
        inMemory.Save(Path.Combine(dir.Path, "copy"));
        var target = new MemoryIndexStorage("copy");
        target.OpenOrCreateDevice("postings-7.dat").Write(0, new byte[10]); // a stale generation the save deletes
        inMemory.Save(target);
        Assert.False(target.Exists("postings-7.dat"));
        Assert.False(target.LogExists("wal"));
        using var opened = SpannIndex.Open(target, new SpannOpenOptions { Log = FileWriteAheadLogProvider.Instance });
        Assert.True(target.LogExists("wal"), "the first open of a saved copy starts a log in the caller's storage");
        using var openedFromFiles = SpannIndex.Open(Path.Combine(dir.Path, "copy"), new SpannOpenOptions { Log = FileWriteAheadLogProvider.Instance });
        AssertSameAnswers(openedFromFiles, opened, queries);
    }

    [Fact]
    public void CallerStorage_WithoutAnIndex_OrAlreadyHoldingOne_IsRefusedNamingIt()
    {
        var empty = new MemoryIndexStorage("nothing-here");
        var e = Assert.Throws<FileNotFoundException>(() => SpannIndex.Open(empty));
        Assert.Contains("memory:nothing-here", e.Message);
        Assert.Contains(SpannIndex.MetaFileName, e.Message);

        var storage = new MemoryIndexStorage("taken");
        SpannIndex.Create(storage, D, Metric.L2, null, FileWriteAheadLogProvider.Instance).Dispose();
        var again = Assert.Throws<IOException>(() => SpannIndex.Create(storage, D, Metric.L2, null, FileWriteAheadLogProvider.Instance));
        Assert.Contains("memory:taken", again.Message);
        Assert.Throws<ArgumentNullException>(() => SpannIndex.Create((IIndexStorage)null!, D));
        Assert.Throws<ArgumentNullException>(() => SpannIndex.Open((IIndexStorage)null!));
    }

    [Fact]
    public void ADamagedMetadataFile_InCallerStorage_IsCorruptNamingIt()
    {
        var data = SpannTestData.Clustered(400, D, seed: 76);
        var storage = new MemoryIndexStorage("damaged");
        using (var index = SpannIndex.Create(storage, D, Metric.L2, new SpannOptions { PostingSize = 16 }, FileWriteAheadLogProvider.Instance))
        {
            index.Train(data);
            index.Add(data, Range(0, 400));
            index.Checkpoint();
        }
        var meta = storage.ReadFile(SpannIndex.MetaFileName);
        meta[meta.Length / 2] ^= 0x40;
        storage.Replace(SpannIndex.MetaFileName, meta);
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(storage));
        Assert.Equal(storage.PathOf(SpannIndex.MetaFileName), e.FilePath);
    }
}
