using System.Text.Json;

namespace Engine.Data;

/// <summary>
/// The <c>meta.json</c> of a data-set directory:
/// <c>{"name": "...", "metric": "l2"|"ip"|"cosine", "n": 60000, "nq": 10000, "d": 784}</c>.
/// </summary>
/// <remarks>Read and written with <see cref="Utf8JsonReader"/> / <see cref="Utf8JsonWriter"/> (no reflection, so
/// trimming and NativeAOT are safe). Unknown properties are ignored so other tools may add their own.</remarks>
/// <param name="Name">Data-set name, e.g. <c>mnist-784-euclidean</c>.</param>
/// <param name="Metric">The metric ground truth was computed with.</param>
/// <param name="Count">Base vectors (<c>n</c>).</param>
/// <param name="QueryCount">Query vectors (<c>nq</c>).</param>
/// <param name="Dimension">Vector dimension (<c>d</c>).</param>
public sealed record DataSetMeta(string Name, Metric Metric, int Count, int QueryCount, int Dimension)
{
    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">Not valid JSON, a field is missing, has the wrong type or an impossible value.</exception>
    public static DataSetMeta Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Data-set metadata '{path}' does not exist.", path);
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses meta.json content; <paramref name="path"/> is used in error messages only.</summary>
    /// <exception cref="DataFormatException">Not valid JSON, a field is missing, has the wrong type or an impossible value.</exception>
    public static DataSetMeta Parse(ReadOnlySpan<byte> json, string path)
    {
        string? name = null, metric = null;
        long n = -1, nq = -1, d = -1;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new DataFormatException(path, "meta.json must hold a JSON object.");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string prop = reader.GetString()!;
                reader.Read();
                switch (prop)
                {
                    case "name": name = String(ref reader, prop, path); break;
                    case "metric": metric = String(ref reader, prop, path); break;
                    case "n": n = Integer(ref reader, prop, path); break;
                    case "nq": nq = Integer(ref reader, prop, path); break;
                    case "d": d = Integer(ref reader, prop, path); break;
                    default: reader.Skip(); break;
                }
            }
        }
        catch (JsonException ex)
        {
            throw new DataFormatException(path, $"meta.json is not valid JSON: {ex.Message}", ex);
        }
        if (name is null) throw Missing(path, "name");
        if (metric is null) throw Missing(path, "metric");
        if (n < 0) throw Missing(path, "n");
        if (nq < 0) throw Missing(path, "nq");
        if (d < 0) throw Missing(path, "d");
        Metric m;
        try { m = MetricExtensions.ParseMetric(metric); }
        catch (ArgumentException ex) { throw new DataFormatException(path, ex.Message, ex); }
        if (d == 0) throw new DataFormatException(path, "\"d\" must be at least 1.");
        return new DataSetMeta(name, m, (int)n, (int)nq, (int)d);
    }

    /// <summary>Writes the metadata as indented JSON, atomically (temporary file + rename).</summary>
    public void Write(string path)
    {
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = File.Create(temp))
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                writer.WriteStartObject();
                writer.WriteString("name", Name);
                writer.WriteString("metric", Metric.ToShortName());
                writer.WriteNumber("n", Count);
                writer.WriteNumber("nq", QueryCount);
                writer.WriteNumber("d", Dimension);
                writer.WriteEndObject();
            }
            File.Move(temp, path, overwrite: true);
        }
        finally { File.Delete(temp); }
    }

    private static string String(ref Utf8JsonReader reader, string prop, string path) =>
        reader.TokenType == JsonTokenType.String ? reader.GetString()! : throw new DataFormatException(path, $"\"{prop}\" must be a string.");

    private static long Integer(ref Utf8JsonReader reader, string prop, string path) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int v) && v >= 0
            ? v
            : throw new DataFormatException(path, $"\"{prop}\" must be a non-negative 32-bit integer.");

    private static DataFormatException Missing(string path, string prop) =>
        new(path, $"meta.json has no \"{prop}\" (expected name, metric, n, nq, d).");
}
