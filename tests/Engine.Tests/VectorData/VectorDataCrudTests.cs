using Engine.Collections;
using Engine.Tests.Support;
using Engine.VectorData;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using static Engine.Tests.VectorData.VectorDataTestData;

namespace Engine.Tests.VectorData;

/// <summary>Every <see cref="VectorStoreCollection{TKey,TRecord}"/> and <see cref="VectorStore"/> member, with each key type.</summary>
public class VectorDataCrudTests
{
    /// <summary>
    /// Two stores on one folder (a store registered as scoped or transient): the second cannot open a collection the
    /// first has open, nor delete it, and says why; once the first is disposed the second sees every acknowledged record.
    /// </summary>
    [Fact]
    public async Task ASecondStore_OnTheSameFolder_IsRefusedTheOpenCollection_NotHandedItsFiles()
    {
        using var dir = new TempDir();
        var first = new EngineVectorStore(dir.Path);
        var docs = first.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        await docs.UpsertAsync(Enumerable.Range(0, 5).Select(Doc));
        using (var second = new EngineVectorStore(dir.Path))
        {
            var other = second.GetCollection<string, VdDoc>("docs");
            var e = await Assert.ThrowsAsync<VectorStoreException>(() => other.UpsertAsync(Doc(5)));
            Assert.Contains("is in use", e.Message);
            var delete = await Assert.ThrowsAsync<VectorStoreException>(() => other.EnsureCollectionDeletedAsync());
            Assert.Contains("is in use", delete.Message);
            await docs.UpsertAsync(Doc(6)); // the first store's collection is untouched
            first.Dispose();
            await other.UpsertAsync(Doc(5));
            var all = await other.GetAsync(["doc-0", "doc-4", "doc-5", "doc-6"]).ToListAsync();
            Assert.Equal(4, all.Count);
        }
    }

    /// <summary>A top far above the record count (int.MaxValue) returns every record, as a small top would, instead of
    /// allocating result buffers for top.</summary>
    [Fact]
    public async Task HugeTop_ReturnsEveryRecord_FilteredOrSkippedToo()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        await docs.UpsertAsync(Enumerable.Range(0, 25).Select(Doc));
        var q = Doc(3).Embedding;
        Assert.Equal(25, (await docs.SearchAsync(q, int.MaxValue).ToListAsync()).Count);
        Assert.Equal(5, (await docs.SearchAsync(q, int.MaxValue, new VectorSearchOptions<VdDoc> { Skip = 20 }).ToListAsync()).Count);
        int year = Doc(3).Year;
        var sameYear = await docs.SearchAsync(q, 1_000_000_000, new VectorSearchOptions<VdDoc> { Filter = d => d.Year == year }).ToListAsync();
        Assert.Equal(Enumerable.Range(0, 25).Count(n => Doc(n).Year == year), sameYear.Count);
        Assert.All(sameYear, h => Assert.Equal(year, h.Record.Year));
    }

    [Fact]
    public async Task StringKeys_EveryCollectionMember_RoundTrips()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        Assert.Equal("docs", docs.Name);
        Assert.False(await docs.CollectionExistsAsync());
        Assert.False(await store.CollectionExistsAsync("docs"));
        Assert.Empty(await store.ListCollectionNamesAsync().ToListAsync());
        // Before the collection exists, data operations fail clearly.
        var missing = await Assert.ThrowsAsync<VectorStoreException>(() => docs.UpsertAsync(Doc(1)));
        Assert.Contains("does not exist", missing.Message);
        Assert.Equal("docs", missing.CollectionName);
        Assert.Equal("Upsert", missing.OperationName);
        Assert.Equal(EngineVectorStore.SystemName, missing.VectorStoreSystemName);

        await docs.EnsureCollectionExistsAsync();
        await docs.EnsureCollectionExistsAsync(); // idempotent
        Assert.True(await docs.CollectionExistsAsync());
        Assert.Equal(["docs"], await store.ListCollectionNamesAsync().ToListAsync());

        await docs.UpsertAsync(Enumerable.Range(0, 40).Select(Doc));
        await docs.UpsertAsync(Doc(40));
        // Single get, with and without vectors: every property comes back as written.
        var got = await docs.GetAsync("doc-13", new RecordRetrievalOptions { IncludeVectors = true });
        AssertSameDoc(Doc(13), got!, vectors: true);
        var noVectors = await docs.GetAsync("doc-13");
        AssertSameDoc(Doc(13), noVectors!, vectors: false);
        Assert.True(noVectors!.Embedding.IsEmpty);
        Assert.Null(await docs.GetAsync("nope"));
        // Nulls and empty lists survive.
        var seven = (await docs.GetAsync("doc-7"))!;
        Assert.Null(seven.Category);
        var twenty = (await docs.GetAsync("doc-20"))!;
        Assert.Null(twenty.Score);
        Assert.Empty(twenty.Tags);
        // Batch get: key order, absent keys skipped.
        var batch = await docs.GetAsync(["doc-3", "absent", "doc-1", "doc-39"]).ToListAsync();
        Assert.Equal(["doc-3", "doc-1", "doc-39"], batch.Select(d => d.Id));
        // Replace.
        var changed = Doc(5);
        changed.Body = "replaced";
        changed.Embedding = VectorOf(500);
        await docs.UpsertAsync(changed);
        Assert.Equal("replaced", (await docs.GetAsync("doc-5"))!.Body);
        var top = await docs.SearchAsync(VectorOf(500), 1).ToListAsync();
        Assert.Equal("doc-5", top[0].Record.Id);
        Assert.Equal(0, top[0].Score!.Value, 4);
        // Delete single and batch (absent keys ignored).
        await docs.DeleteAsync("doc-0");
        await docs.DeleteAsync(["doc-1", "doc-2", "absent"]);
        Assert.Null(await docs.GetAsync("doc-1"));
        Assert.Equal(38, (await docs.GetAsync(d => true, 1000).ToListAsync()).Count);
        // Metadata and the underlying collection.
        var meta = (VectorStoreCollectionMetadata)docs.GetService(typeof(VectorStoreCollectionMetadata))!;
        Assert.Equal("docs", meta.CollectionName);
        Assert.Equal(EngineVectorStore.SystemName, meta.VectorStoreSystemName);
        var storeMeta = (VectorStoreMetadata)store.GetService(typeof(VectorStoreMetadata))!;
        Assert.Equal(EngineVectorStore.SystemName, storeMeta.VectorStoreSystemName);
        Assert.Same(store, store.GetService(typeof(EngineVectorStore)));
        var inner = (RecordCollection<string>)docs.GetService(typeof(RecordCollection<string>))!;
        Assert.Equal(38, inner.Count);
        inner.VerifyConsistency();
        Assert.Null(docs.GetService(typeof(string)));
        // Delete the collection.
        await docs.EnsureCollectionDeletedAsync();
        Assert.False(await docs.CollectionExistsAsync());
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "docs")));
        await store.EnsureCollectionDeletedAsync("docs"); // idempotent
        await Assert.ThrowsAsync<VectorStoreException>(() => docs.GetAsync("doc-3"));
    }

    internal static void AssertSameDoc(VdDoc expected, VdDoc actual, bool vectors)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.Category, actual.Category);
        Assert.Equal(expected.Year, actual.Year);
        Assert.Equal(expected.Views, actual.Views);
        Assert.Equal(expected.Rating, actual.Rating);
        Assert.Equal(expected.Weight, actual.Weight);
        Assert.Equal(expected.Active, actual.Active);
        Assert.Equal(expected.Published, actual.Published);
        Assert.Equal(expected.Created, actual.Created);
        Assert.Equal(expected.Created.Kind, actual.Created.Kind);
        Assert.Equal(expected.Tags, actual.Tags);
        Assert.Equal(expected.Score, actual.Score);
        Assert.Equal(expected.Labels, actual.Labels);
        Assert.Equal(expected.Body, actual.Body);
        if (vectors) Assert.Equal(expected.Embedding.ToArray(), actual.Embedding.ToArray());
    }

    [Fact]
    public async Task GuidKeys_AreAutoGeneratedWhenEmpty_AndRoundTrip()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var c = store.GetCollection<Guid, VdGuidDoc>("guids");
        await c.EnsureCollectionExistsAsync();
        var fixedId = new Guid("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
        var records = new[]
        {
            new VdGuidDoc { Id = fixedId, Name = "fixed", Vector = VectorOf(1) },
            new VdGuidDoc { Name = "generated", Vector = VectorOf(2) },
        };
        await c.UpsertAsync(records);
        Assert.Equal(fixedId, records[0].Id);
        Assert.NotEqual(Guid.Empty, records[1].Id);
        Assert.Equal("generated", (await c.GetAsync(records[1].Id))!.Name);
        var hit = (await c.SearchAsync(VectorOf(1), 1, new VectorSearchOptions<VdGuidDoc> { IncludeVectors = true }).ToListAsync()).Single();
        Assert.Equal(fixedId, hit.Record.Id);
        Assert.Equal(VectorOf(1), hit.Record.Vector);
        Assert.Equal(1.0, hit.Score!.Value, 4); // cosine similarity is the default
        await c.DeleteAsync([fixedId]);
        Assert.Null(await c.GetAsync(fixedId));
    }

    [Fact]
    public async Task IntAndLongKeys_RoundTrip_ThroughReopen()
    {
        using var dir = new TempDir();
        using (var store = new EngineVectorStore(dir.Path))
        {
            var ints = store.GetCollection<int, VdIntDoc>("ints");
            var longs = store.GetCollection<long, VdLongDoc>("longs");
            await ints.EnsureCollectionExistsAsync();
            await longs.EnsureCollectionExistsAsync();
            await ints.UpsertAsync(Enumerable.Range(0, 20).Select(n => new VdIntDoc { Id = n, Name = "i" + n, Vector = new Embedding<float>(VectorOf(n)) }));
            await longs.UpsertAsync(Enumerable.Range(0, 20).Select(n => new VdLongDoc { Id = (1L << 40) + n, Name = "l" + n, Vector = VectorOf(n) }));
            await ints.DeleteAsync(3);
        }
        using (var store = new EngineVectorStore(dir.Path))
        {
            Assert.Equal(["ints", "longs"], await store.ListCollectionNamesAsync().ToListAsync());
            var ints = store.GetCollection<int, VdIntDoc>("ints");
            var longs = store.GetCollection<long, VdLongDoc>("longs");
            Assert.Null(await ints.GetAsync(3));
            var i7 = (await ints.GetAsync(7, new RecordRetrievalOptions { IncludeVectors = true }))!;
            Assert.Equal("i7", i7.Name);
            Assert.Equal(VectorOf(7), i7.Vector!.Vector.ToArray());
            var l9 = (await longs.GetAsync((1L << 40) + 9, new RecordRetrievalOptions { IncludeVectors = true }))!;
            Assert.Equal("l9", l9.Name);
            Assert.Equal(VectorOf(9), l9.Vector!.Value.ToArray());
            // CosineDistance: 0 for the same direction, smallest first.
            var hits = await longs.SearchAsync(VectorOf(9), 3).ToListAsync();
            Assert.Equal((1L << 40) + 9, hits[0].Record.Id);
            Assert.Equal(0, hits[0].Score!.Value, 3);
            Assert.True(hits[1].Score >= hits[0].Score);
        }
    }

    [Fact]
    public async Task Reopen_AfterDispose_IsDurable_AndSearchAgrees()
    {
        using var dir = new TempDir();
        List<string> before;
        using (var store = new EngineVectorStore(dir.Path))
        {
            var docs = store.GetCollection<string, VdDoc>("docs");
            await docs.EnsureCollectionExistsAsync();
            await docs.UpsertAsync(Enumerable.Range(0, 60).Select(Doc));
            await docs.DeleteAsync(["doc-10", "doc-11"]);
            before = (await docs.SearchAsync(VectorOf(3), 10, new VectorSearchOptions<VdDoc> { Filter = d => d.Year >= 2010 }).ToListAsync()).Select(h => h.Record.Id).ToList();
        }
        using (var store = new EngineVectorStore(dir.Path))
        {
            var docs = store.GetCollection<string, VdDoc>("docs");
            Assert.True(await docs.CollectionExistsAsync());
            Assert.Equal(58, (await docs.GetAsync(d => true, 1000).ToListAsync()).Count);
            Assert.Null(await docs.GetAsync("doc-10"));
            AssertSameDoc(Doc(42), (await docs.GetAsync("doc-42", new RecordRetrievalOptions { IncludeVectors = true }))!, vectors: true);
            var after = (await docs.SearchAsync(VectorOf(3), 10, new VectorSearchOptions<VdDoc> { Filter = d => d.Year >= 2010 }).ToListAsync()).Select(h => h.Record.Id).ToList();
            Assert.Equal(before, after);
        }
    }

    [Fact]
    public async Task WritesWithoutDispose_AreDurable_FromTheLog()
    {
        // Each acknowledged upsert is committed to the log: a copy of the directory taken while the store is open
        // (no final checkpoint) must open with every record.
        using var dir = new TempDir();
        using var copy = new TempDir();
        using (var store = new EngineVectorStore(dir.Path))
        {
            var docs = store.GetCollection<string, VdDoc>("docs");
            await docs.EnsureCollectionExistsAsync();
            await docs.UpsertAsync(Enumerable.Range(0, 25).Select(Doc));
            await docs.DeleteAsync("doc-4");
            TempDir.CopyTree(dir.Path, copy.Path);
        }
        using var reopened = new EngineVectorStore(copy.Path);
        var again = reopened.GetCollection<string, VdDoc>("docs");
        Assert.Equal(24, (await again.GetAsync(d => true, 100).ToListAsync()).Count);
        Assert.Null(await again.GetAsync("doc-4"));
        Assert.Equal("body 24", (await again.GetAsync("doc-24"))!.Body);
    }

    [Fact]
    public async Task ConcurrentReaders_WithAWriter_SeeOnlyWholeValidRecords()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        await docs.UpsertAsync(Enumerable.Range(0, 50).Select(Doc));
        using var done = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            try
            {
                for (int b = 0; b < 20; b++)
                {
                    await docs.UpsertAsync(Enumerable.Range(50 + b * 10, 10).Select(Doc));
                    await docs.DeleteAsync("doc-" + b);
                }
            }
            finally { done.Cancel(); }
        });
        async Task<int> Reader(int seed)
        {
            var rng = new Random(seed);
            int reads = 0;
            do
            {
                var hits = await docs.SearchAsync(VectorOf(rng.Next(250)), 5, new VectorSearchOptions<VdDoc> { Filter = d => d.Active }).ToListAsync();
                Assert.All(hits, h => Assert.True(h.Record.Active && h.Record.Body == "body " + h.Record.Id[4..]));
                var got = await docs.GetAsync("doc-" + rng.Next(250));
                if (got is not null) AssertSameDoc(Doc(int.Parse(got.Id[4..])), got, vectors: false);
                reads++;
            }
            while (!done.IsCancellationRequested);
            return reads;
        }
        var readers = new[] { Reader(1), Reader(2) };
        await writer;
        Assert.All(await Task.WhenAll(readers), r => Assert.True(r > 0));
        Assert.Equal(230, (await docs.GetAsync(d => true, 1000).ToListAsync()).Count);
    }

    [Fact]
    public async Task TwoCollectionObjects_ShareOneCollection_AndAnotherSchemaIsRejected()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var a = store.GetCollection<string, VdDoc>("docs");
        var b = store.GetCollection<string, VdDoc>("docs");
        await a.EnsureCollectionExistsAsync();
        await a.UpsertAsync(Doc(1));
        Assert.Equal("body 1", (await b.GetAsync("doc-1"))!.Body);
        b.Dispose(); // the store owns the collection: a stays usable
        Assert.NotNull(await a.GetAsync("doc-1"));
        var other = store.GetCollection<Guid, VdGuidDoc>("docs");
        var e = await Assert.ThrowsAsync<VectorStoreException>(() => other.GetAsync(Guid.NewGuid()));
        Assert.Contains("different schema", e.Message);
        // Also after a reopen (the stored schema is compared).
        using var store2 = new EngineVectorStore(Path.Combine(dir.Path, "second"));
        await store2.GetCollection<string, VdDoc>("x").EnsureCollectionExistsAsync();
        store2.Dispose();
        using (var store3 = new EngineVectorStore(Path.Combine(dir.Path, "second")))
            await Assert.ThrowsAsync<VectorStoreException>(() => store3.GetCollection<Guid, VdGuidDoc>("x").EnsureCollectionExistsAsync());
        // The same schema with another log kind than it was created with: the collection's own complaint is passed on.
        using var fileLog = new EngineVectorStore(Path.Combine(dir.Path, "second"),
            new EngineVectorStoreOptions { Collection = new CollectionOptions { WriteAheadLog = Engine.Storage.Wal.FileWriteAheadLogProvider.Instance } });
        var kind = await Assert.ThrowsAsync<VectorStoreException>(() => fileLog.GetCollection<string, VdDoc>("x").GetAsync("a"));
        Assert.Contains("log", kind.Message);
        Assert.IsType<ArgumentException>(kind.InnerException);
    }

    /// <summary>A record over the store's per-record limit (about 4 MiB encoded) is an ArgumentException naming its key
    /// and the property that makes it large; nothing of the batch is written.</summary>
    [Fact]
    public async Task ARecordOverTheStoreLimit_IsRejected_NamingItsKeyAndProperty()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        var big = Doc(7);
        big.Body = new string('b', 5 << 20);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync([Doc(1), big]));
        Assert.Contains("Record 'doc-7'", e.Message);
        Assert.Contains("data field 'Body'", e.Message);
        Assert.Contains("limit", e.Message);
        Assert.Empty(await docs.GetAsync(d => true, 10).ToListAsync());
    }

    [Fact]
    public async Task CorruptCollectionFiles_AreVectorStoreExceptions_NamingTheFile()
    {
        using var dir = new TempDir();
        using (var store = new EngineVectorStore(dir.Path))
        {
            var docs = store.GetCollection<string, VdDoc>("docs");
            await docs.EnsureCollectionExistsAsync();
            await docs.UpsertAsync(Enumerable.Range(0, 5).Select(Doc));
        }
        // A flipped byte inside a stored payload (found by its text) fails a checksum when the store opens: the page or
        // tail checksum of the store's checkpoint, or the payload's own.
        string kvLog = Directory.GetFiles(Path.Combine(dir.Path, "docs", "kv"), "kv.log*")
            .Single(f => File.ReadAllBytes(f).AsSpan().IndexOf("body 3"u8) >= 0);
        var bytes = File.ReadAllBytes(kvLog);
        int at = bytes.AsSpan().IndexOf("body 3"u8);
        bytes[at + 1] ^= 0x20;
        File.WriteAllBytes(kvLog, bytes);
        using (var damaged = new EngineVectorStore(dir.Path))
        {
            var payload = await Assert.ThrowsAsync<VectorStoreException>(() => damaged.GetCollection<string, VdDoc>("docs").GetAsync("doc-1"));
            Assert.Matches("checksum|CRC-32C", payload.Message);
            Assert.IsType<CorruptIndexException>(payload.InnerException, exactMatch: false);
        }
        bytes[at + 1] ^= 0x20;
        File.WriteAllBytes(kvLog, bytes);
        // A damaged collection file.
        string file = Path.Combine(dir.Path, "docs", "collection.json");
        File.WriteAllText(file, "{ not json");
        using var again = new EngineVectorStore(dir.Path);
        var e = await Assert.ThrowsAsync<VectorStoreException>(() => again.GetCollection<string, VdDoc>("docs").GetAsync("doc-1"));
        Assert.Contains("collection.json", e.Message);
        Assert.IsType<CorruptIndexException>(e.InnerException, exactMatch: false);
    }

    [Fact]
    public async Task StoreArguments_AreChecked()
    {
        using var dir = new TempDir();
        Assert.Throws<ArgumentException>(() => new EngineVectorStore(" "));
        using var store = new EngineVectorStore(dir.Path);
        foreach (var bad in new[] { "../up", "a/b", ".hidden", "", new string('x', 129) })
            Assert.ThrowsAny<ArgumentException>(() => store.GetCollection<string, VdDoc>(bad));
        Assert.Throws<NotSupportedException>(() => store.GetCollection<object, Dictionary<string, object?>>("dyn"));
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => docs.SearchAsync(VectorOf(1), 0).ToListAsync());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => docs.GetAsync(d => true, 0).ToListAsync());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => docs.SearchAsync(VectorOf(1), 3, new VectorSearchOptions<VdDoc> { Skip = -1 }).ToListAsync());
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.GetCollection<string, VdDoc>("docs"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => docs.GetAsync("doc-1"));
    }
}
