using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;

namespace Engine.Tests.VectorData;

/// <summary>An attribute-mapped record with every supported data type (all indexed but Body).</summary>
public sealed class VdDoc
{
    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsIndexed = true)] public string? Category { get; set; }
    [VectorStoreData(IsIndexed = true)] public int Year { get; set; }
    [VectorStoreData(IsIndexed = true)] public long Views { get; set; }
    [VectorStoreData(IsIndexed = true)] public double Rating { get; set; }
    [VectorStoreData(IsIndexed = true)] public float Weight { get; set; }
    [VectorStoreData(IsIndexed = true)] public bool Active { get; set; }
    [VectorStoreData(IsIndexed = true)] public DateTimeOffset Published { get; set; }
    [VectorStoreData(IsIndexed = true)] public DateTime Created { get; set; }
    [VectorStoreData(IsIndexed = true)] public string[] Tags { get; set; } = [];
    [VectorStoreData(IsIndexed = true)] public int? Score { get; set; }
    [VectorStoreData(IsIndexed = true, StorageName = "list")] public List<string> Labels { get; set; } = [];
    [VectorStoreData] public string? Body { get; set; }

    [VectorStoreVector(VectorDataTestData.Dim, DistanceFunction = DistanceFunction.EuclideanSquaredDistance, IndexKind = IndexKind.Flat)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}

public sealed class VdGuidDoc
{
    [VectorStoreKey] public Guid Id { get; set; }
    [VectorStoreData(IsIndexed = true)] public string? Name { get; set; }
    [VectorStoreVector(VectorDataTestData.Dim)] public float[] Vector { get; set; } = [];
}

public sealed class VdIntDoc
{
    [VectorStoreKey] public int Id { get; set; }
    [VectorStoreData] public string? Name { get; set; }
    [VectorStoreVector(VectorDataTestData.Dim, DistanceFunction = DistanceFunction.DotProductSimilarity)] public Embedding<float>? Vector { get; set; }
}

public sealed class VdLongDoc
{
    [VectorStoreKey] public long Id { get; set; }
    [VectorStoreData] public string? Name { get; set; }
    [VectorStoreVector(VectorDataTestData.Dim, DistanceFunction = DistanceFunction.CosineDistance, IndexKind = IndexKind.Hnsw)] public ReadOnlyMemory<float>? Vector { get; set; }
}

/// <summary>A record mapped only by a definition (no attributes).</summary>
public sealed class VdPlain
{
    public string Id { get; set; } = "";
    public int Year { get; set; }
    public ReadOnlyMemory<float> Vector { get; set; }
}

internal static class VectorDataTestData
{
    public const int Dim = 8;

    /// <summary>A deterministic vector for <paramref name="n"/> (fixed seed per n).</summary>
    public static float[] VectorOf(int n, int dim = Dim)
    {
        var rng = new Random(1000 + n);
        var v = new float[dim];
        for (int i = 0; i < dim; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    private static readonly string[] Categories = ["news", "blog", "paper", "wiki"];

    public static VdDoc Doc(int n) => new()
    {
        Id = "doc-" + n,
        Category = n % 7 == 0 ? null : Categories[n % Categories.Length],
        Year = 2000 + n % 25,
        Views = n * 1000L,
        Rating = (n % 10) / 2.0,
        Weight = n % 3 + 0.5f,
        Active = n % 2 == 0,
        Published = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero).AddDays(n),
        Created = new DateTime(2021, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddHours(n),
        Tags = n % 5 == 0 ? [] : ["t" + n % 3, "all"],
        Score = n % 4 == 0 ? null : n,
        Labels = ["l" + n % 2],
        Body = "body " + n,
        Embedding = VectorOf(n),
    };

    public static async Task<List<T>> ToListAsync<T>(this IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var x in items) list.Add(x);
        return list;
    }

    public static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    public static double L2Squared(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return s;
    }
}

/// <summary>A deterministic embedding generator: each string maps to a fixed-seed vector (equal strings, equal vectors).</summary>
internal sealed class VdHashEmbeddingGenerator(int dimension) : IEmbeddingGenerator<string, Embedding<float>>
{
    public int Calls { get; private set; }

    public static float[] Embed(string text, int dimension)
    {
        int seed = 17;
        foreach (char c in text) seed = unchecked(seed * 31 + c);
        var rng = new Random(seed);
        var v = new float[dimension];
        for (int i = 0; i < dimension; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        Calls++;
        return Task.FromResult(new GeneratedEmbeddings<Embedding<float>>(values.Select(v => new Embedding<float>(Embed(v, dimension)))));
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose() { }
}
