using Engine.Tests.Support;
using Engine.VectorData;
using Microsoft.Extensions.VectorData;
using static Engine.Tests.VectorData.VectorDataTestData;

namespace Engine.Tests.VectorData;

/// <summary>The stored cosine record type of <see cref="VectorDataSchemaTests"/>.</summary>
public sealed class VdCosineDoc
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsIndexed = true)] public int Year { get; set; }
    [VectorStoreVector(Dim, DistanceFunction = DistanceFunction.CosineSimilarity)] public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>As <see cref="VdCosineDoc"/>, with Euclidean distance.</summary>
public sealed class VdEuclideanDoc
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsIndexed = true)] public int Year { get; set; }
    [VectorStoreVector(Dim, DistanceFunction = DistanceFunction.EuclideanDistance)] public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>As <see cref="VdCosineDoc"/>, one dimension more.</summary>
public sealed class VdWiderDoc
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsIndexed = true)] public int Year { get; set; }
    [VectorStoreVector(Dim + 1, DistanceFunction = DistanceFunction.CosineSimilarity)] public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>As <see cref="VdCosineDoc"/>, with Guid keys.</summary>
public sealed class VdCosineGuidDoc
{
    [VectorStoreKey] public Guid Id { get; set; }
    [VectorStoreData(IsIndexed = true)] public int Year { get; set; }
    [VectorStoreVector(Dim, DistanceFunction = DistanceFunction.CosineSimilarity)] public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>
/// A collection object whose record type or definition describes another schema than the stored collection's is
/// refused with the same <see cref="VectorStoreException"/> by every operation, whichever comes first in a fresh store:
/// a read must not run against the stored vectors with another distance function or dimension.
/// </summary>
public class VectorDataSchemaTests
{
    private static async Task<TempDir> CosineCollectionAsync()
    {
        var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdCosineDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        await docs.UpsertAsync(Enumerable.Range(0, 20).Select(n => new VdCosineDoc { Id = "d" + n, Year = 2000 + n, Embedding = VectorOf(n) }));
        return dir;
    }

    private static VectorStoreCollectionDefinition Definition(string distance, int dim = Dim) => new()
    {
        Properties =
        [
            new VectorStoreKeyProperty("Id", typeof(string)),
            new VectorStoreDataProperty("Year", typeof(int)) { IsIndexed = true },
            new VectorStoreVectorProperty("Embedding", typeof(ReadOnlyMemory<float>), dim) { DistanceFunction = distance },
        ],
    };

    // Each operation as the first use of the collection in its store.
    private static readonly (string Operation, Func<EngineVectorStore, Task> Run)[] FirstUses =
    [
        ("Search", s => s.GetCollection<string, VdEuclideanDoc>("docs").SearchAsync(VectorOf(3), 3).ToListAsync()),
        ("Search", s => s.GetCollection<string, VdEuclideanDoc>("docs").SearchAsync(VectorOf(3), 3,
            new VectorSearchOptions<VdEuclideanDoc> { ScoreThreshold = 0.5 }).ToListAsync()),
        ("Get", s => s.GetCollection<string, VdWiderDoc>("docs").GetAsync("d1", new RecordRetrievalOptions { IncludeVectors = true })),
        ("Get", s => s.GetCollection<string, VdWiderDoc>("docs").GetAsync(["d1", "d2"]).ToListAsync()),
        ("Get", s => s.GetCollection<string, VdWiderDoc>("docs").GetAsync(d => d.Year > 2005, 5).ToListAsync()),
        ("Search", s => s.GetCollection<string, VdWiderDoc>("docs").SearchAsync(VectorOf(3, Dim + 1), 3).ToListAsync()),
        ("Delete", s => s.GetCollection<string, VdEuclideanDoc>("docs").DeleteAsync("d1")),
        ("Upsert", s => s.GetCollection<string, VdEuclideanDoc>("docs").UpsertAsync(new VdEuclideanDoc { Id = "x", Embedding = VectorOf(1) })),
        ("Get", s => s.GetCollection<Guid, VdCosineGuidDoc>("docs").GetAsync(Guid.NewGuid())),
        ("Search", s => s.GetCollection<Guid, VdCosineGuidDoc>("docs").SearchAsync(VectorOf(3), 3).ToListAsync()),
        ("Get", s => s.GetDynamicCollection("docs", Definition(DistanceFunction.EuclideanDistance)).GetAsync("d1")),
        ("Search", s => s.GetDynamicCollection("docs", Definition(DistanceFunction.CosineSimilarity, Dim + 1))
            .SearchAsync(new ReadOnlyMemory<float>(VectorOf(3, Dim + 1)), 3).ToListAsync()),
        ("EnsureCollectionExists", s => s.GetCollection<string, VdEuclideanDoc>("docs").EnsureCollectionExistsAsync()),
    ];

    [Fact]
    public async Task AnotherSchema_IsRefused_ByTheFirstOperation_ReadsIncluded()
    {
        using var dir = await CosineCollectionAsync();
        for (int i = 0; i < FirstUses.Length; i++)
        {
            var (operation, run) = FirstUses[i];
            using var store = new EngineVectorStore(dir.Path);
            var e = await Assert.ThrowsAsync<VectorStoreException>(() => run(store));
            Assert.True(e.Message.Contains("exists with a different schema", StringComparison.Ordinal), $"first use {i} ({operation}): {e.Message}");
            Assert.Equal(operation, e.OperationName);
            Assert.Equal("docs", e.CollectionName);
            // Refused again, and the stored schema's record type still works in the same store.
            await Assert.ThrowsAsync<VectorStoreException>(() => run(store));
            var docs = store.GetCollection<string, VdCosineDoc>("docs");
            var hits = await docs.SearchAsync(VectorOf(3), 3).ToListAsync();
            Assert.Equal("d3", hits[0].Record.Id);
            Assert.Equal(1.0, hits[0].Score!.Value, 4);
        }
        // Nothing was written by the refused operations.
        using (var store = new EngineVectorStore(dir.Path))
        {
            var all = await store.GetCollection<string, VdCosineDoc>("docs").GetAsync(d => true, 100).ToListAsync();
            Assert.Equal(20, all.Count);
        }
    }

    [Fact]
    public async Task TheStoredSchema_ReadFirst_InAFreshStore_Works_ForRecordTypesAndDefinitions()
    {
        using var dir = await CosineCollectionAsync();
        using (var store = new EngineVectorStore(dir.Path))
        {
            var got = await store.GetCollection<string, VdCosineDoc>("docs").GetAsync("d4", new RecordRetrievalOptions { IncludeVectors = true });
            Assert.Equal(Dim, got!.Embedding.Length);
            Assert.Equal(2004, got.Year);
        }
        using (var store = new EngineVectorStore(dir.Path))
        {
            var dyn = store.GetDynamicCollection("docs", Definition(DistanceFunction.CosineSimilarity));
            var hits = await dyn.SearchAsync(new ReadOnlyMemory<float>(VectorOf(5)), 1).ToListAsync();
            Assert.Equal("d5", hits[0].Record["Id"]);
        }
    }
}
