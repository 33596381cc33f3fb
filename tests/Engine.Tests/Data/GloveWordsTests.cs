using System.Globalization;
using System.Text;
using Engine.Data;

namespace Engine.Tests.Data;

public sealed class GloveWordsTests : IDisposable
{
    private readonly DataTempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    // The package's layout: dimensions, words, then vectors as word → [components..., norm, word index].
    private string Write(float[][] vectors, int dimensions, string? raw = null)
    {
        string path = _dir.File(GloveWords.JsonFileName);
        if (raw is not null)
        {
            File.WriteAllText(path, raw);
            return path;
        }
        var sb = new StringBuilder();
        sb.Append("{\"precision\":8,\"l2NormIndex\":").Append(dimensions).Append(",\"wordIndex\":").Append(dimensions + 1)
          .Append(",\"size\":").Append(vectors.Length).Append(",\"dimensions\":").Append(dimensions).Append(",\"words\":[");
        sb.Append(string.Join(',', vectors.Select((_, i) => $"\"w{i}\""))).Append("],\"vectors\":{");
        for (int i = 0; i < vectors.Length; i++)
        {
            if (i > 0) sb.Append(',');
            double norm = Math.Sqrt(vectors[i].Sum(x => (double)x * x));
            var parts = vectors[i].Select(x => x.ToString("R", CultureInfo.InvariantCulture))
                .Append(norm.ToString("R", CultureInfo.InvariantCulture)).Append(i.ToString(CultureInfo.InvariantCulture));
            sb.Append("\"w").Append(i).Append("\":[").Append(string.Join(',', parts)).Append(']');
        }
        sb.Append("},\"unkVector\":[").Append(string.Join(',', Enumerable.Repeat("0", dimensions + 2))).Append("]}");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static float[][] Random(int n, int d, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
    }

    [Fact]
    public void SplitsNormalisedWordsIntoBaseAndSeededQueries()
    {
        var v = Random(50, 6, seed: 1);
        v[7] = new float[6]; // a zero vector is dropped
        string path = Write(v, 6);
        var set = GloveWords.Load(path, queries: 10, seed: 5);
        Assert.Equal(Metric.InnerProduct, set.Metric);
        Assert.Equal(6, set.Dimension);
        Assert.Equal(10, set.QueryCount);
        Assert.Equal(39, set.Count);
        // Every row is a unit vector and base ∪ queries is exactly the non-zero words, each once.
        var expected = v.Where((_, i) => i != 7).Select(r =>
        {
            double n = Math.Sqrt(r.Sum(x => (double)x * x));
            return string.Join(',', r.Select(x => ((float)(x * (float)(1 / n))).ToString("R", CultureInfo.InvariantCulture)));
        }).OrderBy(s => s, StringComparer.Ordinal).ToArray();
        var got = set.Base.Chunk(6).Concat(set.Queries.Chunk(6))
            .Select(r => string.Join(',', r.Select(x => x.ToString("R", CultureInfo.InvariantCulture)))).OrderBy(s => s, StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, got);
        foreach (var r in set.Base.Chunk(6)) Assert.Equal(1.0, Math.Sqrt(r.Sum(x => (double)x * x)), 5);
        // Seeded: the same seed holds out the same words, another seed others.
        Assert.Equal(set.Queries, GloveWords.Load(path, queries: 10, seed: 5).Queries);
        Assert.NotEqual(set.Queries, GloveWords.Load(path, queries: 10, seed: 6).Queries);
    }

    [Theory]
    [InlineData("{\"vectors\":{}}", "before 'dimensions'")]
    [InlineData("{\"dimensions\":3}", "no 'vectors'")]
    [InlineData("{\"dimensions\":0,\"vectors\":{}}", "'dimensions'")]
    [InlineData("{\"dimensions\":3,\"vectors\":{\"a\":[1,2]}}", "fewer than the 3")]
    [InlineData("{\"dimensions\":3,\"vectors\":{\"a\":[1,\"x\",3]}}", "not a finite number")]
    [InlineData("{\"dimensions\":3,\"vectors\":{\"a\":5}}", "not an array")]
    [InlineData("{\"dimensions\":3,\"vectors\":{\"a\":[1,2,3]", "not valid JSON")]
    [InlineData("[1,2]", "does not start")]
    public void MalformedFilesAreRejectedNamingTheProblem(string json, string problem)
    {
        string path = Write([], 3, raw: json);
        var ex = Assert.Throws<DataFormatException>(() => GloveWords.Load(path, queries: 1));
        Assert.Contains(problem, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void TooFewWordsOrAMissingFileAreClearErrors()
    {
        string path = Write(Random(9, 4, seed: 2), 4);
        Assert.Contains("cannot give 5 queries", Assert.Throws<DataFormatException>(() => GloveWords.Load(path, queries: 5)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => GloveWords.Load(path, queries: 0));
        Assert.Throws<FileNotFoundException>(() => GloveWords.Load(_dir.File("missing.json")));
    }
}
