using Engine.Tests.Support;
using Engine.VectorData;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using static Engine.Tests.VectorData.VectorDataTestData;

namespace Engine.Tests.VectorData;

public sealed class VdNoKey
{
    [VectorStoreData] public string? Name { get; set; }
    [VectorStoreVector(4)] public float[] V { get; set; } = [];
}

public sealed class VdNoVector
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData] public string? Name { get; set; }
}

public sealed class VdDecimal
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData] public decimal Price { get; set; }
    [VectorStoreVector(4)] public float[] V { get; set; } = [];
}

public sealed class VdShortKey
{
    [VectorStoreKey] public short Id { get; set; }
    [VectorStoreVector(4)] public float[] V { get; set; } = [];
}

public sealed class VdDoubleVector
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreVector(4)] public double[] V { get; set; } = [];
}

public sealed class VdText
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsIndexed = true)] public string? Text { get; set; }
    [VectorStoreVector(16, DistanceFunction = DistanceFunction.CosineSimilarity)] public string? Embedding { get; set; }
}

/// <summary>Record mapping (attributes and definitions), bad definitions and bad records, embedding generation.</summary>
public class VectorDataMappingTests
{
    [Fact]
    public void BadRecordDefinitions_AreRejectedClearly()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var noKey = Assert.Throws<NotSupportedException>(() => store.GetCollection<string, VdNoKey>("a"));
        Assert.Contains("No key property", noKey.Message);
        Assert.Contains("VdNoKey", noKey.Message);
        var noVector = Assert.Throws<NotSupportedException>(() => store.GetCollection<string, VdNoVector>("b"));
        Assert.Contains("No vector property", noVector.Message);
        var dec = Assert.Throws<NotSupportedException>(() => store.GetCollection<string, VdDecimal>("c"));
        Assert.Contains("'Price'", dec.Message);
        Assert.Contains("Decimal", dec.Message);
        Assert.StartsWith("Collection 'c', record type VdDecimal", dec.Message);
        var shortKey = Assert.Throws<NotSupportedException>(() => store.GetCollection<short, VdShortKey>("d"));
        Assert.Contains("key property 'Id' is Int16", shortKey.Message);
        var doubles = Assert.Throws<InvalidOperationException>(() => store.GetCollection<string, VdDoubleVector>("e"));
        Assert.Contains("'V'", doubles.Message);
        // TKey that does not match the key property.
        var mismatch = Assert.Throws<InvalidOperationException>(() => store.GetCollection<Guid, VdDoc>("f"));
        Assert.Contains("'Id'", mismatch.Message);
        // A definition with a dimension the engine does not take.
        var hugeDims = new VectorStoreCollectionDefinition
        {
            Properties = [new VectorStoreKeyProperty("Id", typeof(string)), new VectorStoreVectorProperty("Vector", typeof(ReadOnlyMemory<float>), 70_000)],
        };
        var dims = Assert.ThrowsAny<ArgumentException>(() => store.GetCollection<string, VdPlain>("g", hugeDims));
        Assert.Contains("70000", dims.Message);
        // A string vector property without an embedding generator.
        var text = Assert.Throws<InvalidOperationException>(() => store.GetCollection<string, VdText>("h"));
        Assert.Contains("'Embedding'", text.Message);
        Assert.Contains("no embedding generator", text.Message);
        // Nothing was created by any of these.
        Assert.Empty(Directory.GetDirectories(dir.Path));
    }

    [Fact]
    public async Task BadRecords_AreArgumentExceptions_NamingTheProperty_AndNothingIsWritten()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        var shortVector = Doc(1);
        shortVector.Embedding = new float[3];
        var e = await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync([Doc(0), shortVector]));
        Assert.Contains("Embedding", e.Message);
        Assert.Contains("dimension", e.Message);
        var nan = Doc(2);
        nan.Embedding = Enumerable.Repeat(float.NaN, Dim).ToArray();
        e = await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync(nan));
        Assert.Contains("Embedding", e.Message);
        var noVector = Doc(3);
        noVector.Embedding = default;
        await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync(noVector));
        var nullKey = Doc(4);
        nullKey.Id = null!;
        e = await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync(nullKey));
        Assert.Contains("Id", e.Message);
        var nullTag = Doc(5);
        nullTag.Tags = ["ok", null!];
        e = await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync(nullTag));
        Assert.Contains("Tags", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => docs.UpsertAsync([Doc(6), null!]));
        Assert.Empty(await docs.GetAsync(d => true, 10).ToListAsync());
        // A wrong-length query.
        var q = await Assert.ThrowsAsync<ArgumentException>(() => docs.SearchAsync(new float[Dim + 1], 3).ToListAsync());
        Assert.Contains("dimension", q.Message);
        // A search input that is not a vector, with no generator.
        await Assert.ThrowsAsync<NotSupportedException>(() => docs.SearchAsync("text", 3).ToListAsync());
    }

    [Fact]
    public async Task StringVectorProperties_AreEmbeddedByTheGenerator_OnUpsertAndSearch()
    {
        using var dir = new TempDir();
        var generator = new VdHashEmbeddingGenerator(16);
        using var store = new EngineVectorStore(dir.Path, new EngineVectorStoreOptions { EmbeddingGenerator = generator });
        var c = store.GetCollection<string, VdText>("texts");
        await c.EnsureCollectionExistsAsync();
        string[] texts = ["the quick brown fox", "a lazy dog", "vector search engines", "hard negative mining", "durable key value store"];
        await c.UpsertAsync(texts.Select((t, i) => new VdText { Id = "t" + i, Text = t, Embedding = t }));
        Assert.Equal(1, generator.Calls); // one batch call for the whole upsert
        foreach (var (t, i) in texts.Select((t, i) => (t, i)))
        {
            var hit = (await c.SearchAsync(t, 1).ToListAsync()).Single();
            Assert.Equal("t" + i, hit.Record.Id);
            Assert.Equal(1.0, hit.Score!.Value, 3);
            Assert.Equal(t, hit.Record.Text);
        }
        // The stored vector is the generator's.
        var inner = (Engine.Collections.RecordCollection<string>)c.GetService(typeof(Engine.Collections.RecordCollection<string>))!;
        var stored = (await inner.GetAsync("t2", includeVectors: true))!;
        Assert.Equal(VdHashEmbeddingGenerator.Embed(texts[2], 16), stored.Vectors["Embedding"]);
        // Vectors cannot be returned for generated properties (the abstraction's rule).
        await Assert.ThrowsAsync<NotSupportedException>(() => c.GetAsync("t1", new RecordRetrievalOptions { IncludeVectors = true }));
        // A filter together with a text query.
        var filtered = await c.SearchAsync("a lazy dog", 5, new VectorSearchOptions<VdText> { Filter = r => r.Text != "a lazy dog" }).ToListAsync();
        Assert.Equal(4, filtered.Count);
        Assert.DoesNotContain(filtered, h => h.Record.Id == "t1");
        var nullText = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(new VdText { Id = "x", Text = "x", Embedding = null }));
        Assert.Contains("Embedding", nullText.Message);
    }

    [Fact]
    public async Task NativeVectors_WithAGenerator_AcceptTextQueries()
    {
        using var dir = new TempDir();
        var generator = new VdHashEmbeddingGenerator(Dim);
        using var store = new EngineVectorStore(dir.Path);
        var definition = new VectorStoreCollectionDefinition
        {
            EmbeddingGenerator = generator,
            Properties =
            [
                new VectorStoreKeyProperty(nameof(VdPlain.Id), typeof(string)),
                new VectorStoreDataProperty(nameof(VdPlain.Year), typeof(int)),
                new VectorStoreVectorProperty(nameof(VdPlain.Vector), typeof(ReadOnlyMemory<float>), Dim) { DistanceFunction = DistanceFunction.EuclideanSquaredDistance },
            ],
        };
        var c = store.GetCollection<string, VdPlain>("plain", definition);
        await c.EnsureCollectionExistsAsync();
        await c.UpsertAsync(new VdPlain { Id = "apple", Year = 1, Vector = VdHashEmbeddingGenerator.Embed("apple", Dim) });
        await c.UpsertAsync(new VdPlain { Id = "pear", Year = 2, Vector = VdHashEmbeddingGenerator.Embed("pear", Dim) });
        Assert.Equal(0, generator.Calls); // native vectors are stored as given
        var hit = (await c.SearchAsync("pear", 1).ToListAsync()).Single();
        Assert.Equal("pear", hit.Record.Id);
        Assert.Equal(0, hit.Score!.Value, 4);
        // Definition-mapped data comes back.
        Assert.Equal(2, (await c.GetAsync("pear"))!.Year);
    }
}
