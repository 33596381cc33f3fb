using Engine.Collections;

namespace Engine.Tests.Collections;

internal static class CollectionTestData
{
    public const int Dimension = 8;

    /// <summary>A deterministic vector per number (fixed seed per value).</summary>
    public static float[] VectorOf(long n, int d = Dimension)
    {
        var rng = new Random(unchecked((int)(n * 7919 + 17)));
        var v = new float[d];
        for (int i = 0; i < d; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }

    public static CollectionSchema Schema(string spec = "Flat", Type? keyType = null, int d = Dimension, Metric metric = Metric.L2, int trainingSize = 0) => new(
        keyType ?? typeof(string),
        [
            new DataField("title", FieldType.String, Indexed: true),
            new DataField("n", FieldType.Int64, Indexed: true),
            new DataField("score", FieldType.Double, Indexed: true),
            new DataField("flag", FieldType.Bool, Indexed: true),
            new DataField("when", FieldType.DateTime, Indexed: true),
            new DataField("tags", FieldType.Tags, Indexed: true),
            new DataField("body", FieldType.String),
            new DataField("count", FieldType.Int32),
            new DataField("ratio", FieldType.Single),
            new DataField("at", FieldType.DateTimeOffset),
        ],
        [new VectorField("embedding", d, metric, spec, trainingSize)]);

    public static Record<TKey> Make<TKey>(TKey key, long n, int d = Dimension) where TKey : notnull => new(key)
    {
        Data =
        {
            ["title"] = "t" + (n % 10),
            ["n"] = n,
            ["score"] = n * 0.5,
            ["flag"] = n % 2 == 0,
            ["when"] = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddDays(n % 10_000),
            ["tags"] = new[] { "all", "m" + (n % 7), n % 100 == 0 ? "rare" : "common" },
            ["body"] = "body of " + n,
            ["count"] = (int)n,
            ["ratio"] = n / 4f,
            ["at"] = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.FromHours(2)).AddHours(n % 100_000),
        },
        Vectors = { ["embedding"] = VectorOf(n, d) },
    };
}
