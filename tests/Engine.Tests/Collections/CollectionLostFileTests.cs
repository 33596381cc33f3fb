using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>
/// A collection directory that lost one of its small files (an incomplete copy, an operator's mistake) must be refused
/// with a CorruptIndexException naming the file, never opened as if it were new: both cases used to delete the store
/// and lose acknowledged records silently.
/// </summary>
public class CollectionLostFileTests
{
    private static async Task<string> Write(TempDir dir, int checkpoints)
    {
        string path = Path.Combine(dir.Path, "c");
        using var c = RecordCollection<string>.Open(path, CollectionTestData.Schema());
        for (int g = 0; g < checkpoints; g++)
        {
            await c.UpsertBatchAsync(Enumerable.Range(g * 10, 10).Select(n => CollectionTestData.Make("k" + n, n)));
            await c.CheckpointAsync();
        }
        return path;
    }

    private static async Task AssertHolds(string path, int records)
    {
        using var c = RecordCollection<string>.Open(path);
        Assert.Equal(records, c.Count);
        var got = await c.GetBatchAsync(Enumerable.Range(0, records).Select(n => "k" + n), includeVectors: true);
        for (int n = 0; n < records; n++) Assert.Equal(CollectionTestData.VectorOf(n), got[n]!.Vectors["embedding"]);
    }

    /// <summary>Three checkpoints truncated the log; without manifest.json the open used to start an empty store
    /// (deleting kv/) and replay only the log's last generation: 20 of 30 acknowledged records gone. Then it refused.
    /// Now the newest store checkpoint covers the log from its begin (its cookie names the log address): it is
    /// recovered, with every record. (Refusals when no checkpoint covers it: CollectionManifestRecoveryTests.)</summary>
    [Fact]
    public async Task AMissingManifest_AfterTheLogWasTruncated_RecoversTheNewestCheckpoint_AndLosesNothing()
    {
        using var dir = new TempDir();
        string path = await Write(dir, checkpoints: 3);
        File.Delete(Path.Combine(path, "manifest.json"));
        await AssertHolds(path, 30);
        await AssertHolds(path, 30);
    }

    /// <summary>The state a crash between the first checkpoint and its manifest leaves (one store checkpoint, the log
    /// never truncated) still opens, with every record, by replaying the whole log.</summary>
    [Fact]
    public async Task AMissingManifest_BeforeAnyTruncation_StillOpensFromTheWholeLog()
    {
        using var dir = new TempDir();
        string path = await Write(dir, checkpoints: 1);
        File.Delete(Path.Combine(path, "manifest.json"));
        await AssertHolds(path, 10);
    }

    /// <summary>Without collection.json, an open with a schema used to create a new collection over the old one's files
    /// (deleting the store and the log); without a schema it said the directory holds no collection.</summary>
    [Fact]
    public async Task AMissingCollectionFile_BesideItsData_IsRefused_WithOrWithoutASchema()
    {
        using var dir = new TempDir();
        string path = await Write(dir, checkpoints: 1);
        string info = Path.Combine(path, "collection.json");
        string saved = File.ReadAllText(info);
        File.Delete(info);
        var e = Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(path, CollectionTestData.Schema()));
        Assert.Equal(info, e.FilePath);
        Assert.Contains("collection file is missing", e.Message);
        Assert.Throws<CorruptIndexException>(() => RecordCollection<string>.Open(path));
        File.WriteAllText(info, saved);
        await AssertHolds(path, 10);
    }
}
