using Engine.Collections;
using Engine.Tests.Support;
using Engine.VectorData;
using Microsoft.Extensions.VectorData;
using static Engine.Tests.VectorData.VectorDataTestData;

namespace Engine.Tests.VectorData;

/// <summary>Each distance function's score sign and order against brute force; index kinds; skip and thresholds.</summary>
public class VectorDataScoringTests
{
    private static VectorStoreCollectionDefinition Definition(string? function, string? indexKind = IndexKind.Flat, int dim = Dim) => new()
    {
        Properties =
        [
            new VectorStoreKeyProperty(nameof(VdPlain.Id), typeof(string)),
            new VectorStoreDataProperty(nameof(VdPlain.Year), typeof(int)) { IsIndexed = true },
            new VectorStoreVectorProperty(nameof(VdPlain.Vector), typeof(ReadOnlyMemory<float>), dim) { DistanceFunction = function, IndexKind = indexKind },
        ],
    };

    private static VdPlain Plain(int n) => new() { Id = "p" + n, Year = 2000 + n % 10, Vector = VectorOf(n) };

    public static TheoryData<string, bool> Functions() => new()
    {
        { DistanceFunction.CosineSimilarity, true },
        { DistanceFunction.CosineDistance, false },
        { DistanceFunction.DotProductSimilarity, true },
        { DistanceFunction.NegativeDotProductSimilarity, false },
        { DistanceFunction.EuclideanDistance, false },
        { DistanceFunction.EuclideanSquaredDistance, false },
    };

    private static double Expected(string function, float[] q, float[] v) => function switch
    {
        DistanceFunction.CosineSimilarity => Dot(q, v) / Math.Sqrt(Dot(q, q) * Dot(v, v)),
        DistanceFunction.CosineDistance => 1 - Dot(q, v) / Math.Sqrt(Dot(q, q) * Dot(v, v)),
        DistanceFunction.DotProductSimilarity => Dot(q, v),
        DistanceFunction.NegativeDotProductSimilarity => -Dot(q, v),
        DistanceFunction.EuclideanDistance => Math.Sqrt(L2Squared(q, v)),
        _ => L2Squared(q, v),
    };

    [Theory]
    [MemberData(nameof(Functions))]
    public async Task Scores_FollowTheDistanceFunction_InValueSignAndOrder(string function, bool higherIsCloser)
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var c = store.GetCollection<string, VdPlain>("c", Definition(function));
        await c.EnsureCollectionExistsAsync();
        var all = Enumerable.Range(0, 200).Select(Plain).ToList();
        await c.UpsertAsync(all);
        for (int qi = 0; qi < 5; qi++)
        {
            var q = VectorOf(5000 + qi);
            var scored = all.Select(p => (p.Id, Score: Expected(function, q, p.Vector.ToArray()))).ToList();
            var brute = (higherIsCloser ? scored.OrderByDescending(s => s.Score) : scored.OrderBy(s => s.Score)).Take(10).ToList();
            var hits = await c.SearchAsync(q, 10).ToListAsync();
            Assert.Equal(brute.Select(b => b.Id), hits.Select(h => h.Record.Id));
            for (int i = 0; i < 10; i++) Assert.Equal(brute[i].Score, hits[i].Score!.Value, 3);
            // Skip pages through the same ranking; ScoreThreshold keeps the closer side.
            var skipped = await c.SearchAsync(q, 4, new VectorSearchOptions<VdPlain> { Skip = 3 }).ToListAsync();
            Assert.Equal(brute.Skip(3).Take(4).Select(b => b.Id), skipped.Select(h => h.Record.Id));
            double threshold = (brute[5].Score + brute[6].Score) / 2;
            var within = await c.SearchAsync(q, 10, new VectorSearchOptions<VdPlain> { ScoreThreshold = threshold }).ToListAsync();
            Assert.Equal(brute.Take(6).Select(b => b.Id), within.Select(h => h.Record.Id));
        }
        // The sign the name promises (a vector is its own nearest neighbour except under the inner product).
        if (function is DistanceFunction.DotProductSimilarity or DistanceFunction.NegativeDotProductSimilarity) return;
        var self = (await c.SearchAsync(VectorOf(7), 1).ToListAsync()).Single();
        Assert.Equal("p7", self.Record.Id);
        double expectedSelf = Expected(function, VectorOf(7), VectorOf(7));
        Assert.Equal(expectedSelf, self.Score!.Value, 3);
        if (function is DistanceFunction.CosineDistance or DistanceFunction.EuclideanDistance or DistanceFunction.EuclideanSquaredDistance) Assert.Equal(0, self.Score.Value, 3);
        if (function == DistanceFunction.CosineSimilarity) Assert.Equal(1, self.Score.Value, 3);
    }

    [Theory]
    [InlineData(DistanceFunction.ManhattanDistance)]
    [InlineData(DistanceFunction.HammingDistance)]
    [InlineData("Chebyshev")]
    public void UnsupportedDistanceFunctions_AreRejectedByName(string function)
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var e = Assert.Throws<NotSupportedException>(() => store.GetCollection<string, VdPlain>("c", Definition(function)));
        Assert.Contains(function, e.Message);
        Assert.Contains("Vector", e.Message);
        Assert.Contains(DistanceFunction.CosineSimilarity, e.Message);
    }

    [Theory]
    [InlineData(null, "Flat")]
    [InlineData(IndexKind.Flat, "Flat")]
    [InlineData(IndexKind.Hnsw, "HNSW32")]
    [InlineData(IndexKind.Dynamic, "HNSW32")]
    [InlineData(IndexKind.IvfFlat, "IVF256,Flat")]
    [InlineData(IndexKind.DiskAnn, "SPANN")]
    [InlineData("HNSW16", "HNSW16")]
    [InlineData("IVF16,PQ4", "IVF16,PQ4")]
    public async Task IndexKinds_MapToEngineSpecs_AndSearch(string? kind, string spec)
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var c = store.GetCollection<string, VdPlain>("c", Definition(DistanceFunction.EuclideanSquaredDistance, kind));
        Assert.Equal(spec, c.Schema.Vectors[0].IndexSpec);
        Assert.Equal(Metric.L2, c.Schema.Vectors[0].Metric);
        await c.EnsureCollectionExistsAsync();
        await c.UpsertAsync(Enumerable.Range(0, 100).Select(Plain));
        var hit = (await c.SearchAsync(VectorOf(42), 1).ToListAsync()).Single();
        Assert.Equal("p42", hit.Record.Id);
    }

    [Theory]
    [InlineData(IndexKind.QuantizedFlat)]
    [InlineData("NoSuchIndex")]
    [InlineData("IVF16,PQ3")] // 8 dims do not split into 3 sub-quantizers
    public void UnknownIndexKinds_AreRejectedByName(string kind)
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var e = Assert.Throws<NotSupportedException>(() => store.GetCollection<string, VdPlain>("c", Definition(null, kind)));
        Assert.Contains($"'{kind}'", e.Message);
        Assert.Contains("Vector", e.Message);
    }

    [Fact]
    public async Task SeveralVectors_SearchTheNamedOne()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var definition = new VectorStoreCollectionDefinition
        {
            Properties =
            [
                new VectorStoreKeyProperty("Key", typeof(string)),
                new VectorStoreVectorProperty("A", typeof(float[]), Dim) { DistanceFunction = DistanceFunction.EuclideanSquaredDistance },
                new VectorStoreVectorProperty("B", typeof(float[]), 4) { DistanceFunction = DistanceFunction.DotProductSimilarity, IndexKind = IndexKind.Hnsw },
            ],
        };
        var c = store.GetDynamicCollection("multi", definition);
        await c.EnsureCollectionExistsAsync();
        await c.UpsertAsync(Enumerable.Range(0, 50).Select(n => new Dictionary<string, object?> { ["Key"] = "k" + n, ["A"] = VectorOf(n), ["B"] = VectorOf(n + 100, 4) }));
        var byA = await c.SearchAsync(VectorOf(9), 1, new VectorSearchOptions<Dictionary<string, object?>> { VectorProperty = r => r["A"] }).ToListAsync();
        Assert.Equal("k9", byA[0].Record["Key"]);
        var qb = VectorOf(109, 4);
        var bruteB = Enumerable.Range(0, 50).OrderByDescending(n => Dot(qb, VectorOf(n + 100, 4))).First();
        var byB = await c.SearchAsync(qb, 1, new VectorSearchOptions<Dictionary<string, object?>> { VectorProperty = r => r["B"] }).ToListAsync();
        Assert.Equal("k" + bruteB, byB[0].Record["Key"]);
        await Assert.ThrowsAnyAsync<Exception>(() => c.SearchAsync(VectorOf(9), 1).ToListAsync()); // two vectors, none named
        var wrongLength = await Assert.ThrowsAsync<ArgumentException>(() => c.SearchAsync(VectorOf(9), 1, new VectorSearchOptions<Dictionary<string, object?>> { VectorProperty = r => r["B"] }).ToListAsync());
        Assert.Contains("dimension 4", wrongLength.Message);
    }
}
