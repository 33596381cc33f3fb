using System.Globalization;
using System.Text.Json;

namespace Engine.Bench;

/// <summary>
/// Reads result rows in the JSON-lines schema shared by <c>engine bench --json</c>, <c>bench/peers/run_peers.py</c>
/// and peers.py: one object per line with <c>system</c>, <c>spec</c>, <c>params</c> (an object of numbers or
/// strings), <c>recall</c>, <c>qps</c>, and optionally <c>k</c>, <c>build_seconds</c>, <c>index_bytes</c>,
/// <c>p50_ms</c>, <c>p99_ms</c>, <c>reads_per_query</c>.
/// </summary>
public static class PeerRows
{
    /// <summary>Rows read from a file, and the lines that were deliberately left out (a peer reporting an error).</summary>
    /// <param name="Rows">The rows, in file order.</param>
    /// <param name="Skipped">One message per row that carried an <c>error</c> field instead of results.</param>
    public sealed record ReadResult(IReadOnlyList<BenchResult> Rows, IReadOnlyList<string> Skipped);

    /// <summary>Reads a JSON-lines file; blank lines are ignored.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">A line is not a JSON object of the schema; the message names file and line.</exception>
    public static ReadResult Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Peers file '{path}' does not exist.", path);
        using var reader = new StreamReader(path);
        return Read(reader, path);
    }

    /// <summary>Reads JSON lines from <paramref name="reader"/>; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="FormatException">A line is not a JSON object of the schema.</exception>
    public static ReadResult Read(TextReader reader, string source)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var rows = new List<BenchResult>();
        var skipped = new List<string>();
        int lineNo = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{source}:{lineNo}";
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException ex) { throw new FormatException($"{where}: not valid JSON ({ex.Message}).", ex); }
            using (doc)
            {
                var o = doc.RootElement;
                if (o.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: expected a JSON object, got {o.ValueKind}.");
                string system = RequiredString(o, "system", where);
                string spec = RequiredString(o, "spec", where);
                if (o.TryGetProperty("error", out var error))
                {
                    skipped.Add($"{where}: {system} {spec} reported an error: {error}");
                    continue;
                }
                var row = new BenchResult(system, spec, ReadParams(o, where), RequiredNumber(o, "recall", where), RequiredNumber(o, "qps", where))
                {
                    K = (int)(OptionalNumber(o, "k", where) ?? 0),
                    BuildSeconds = OptionalNumber(o, "build_seconds", where),
                    MemoryBytes = (long?)OptionalNumber(o, "index_bytes", where),
                    DiskBytes = (long?)OptionalNumber(o, "disk_bytes", where),
                    P50Ms = OptionalNumber(o, "p50_ms", where),
                    P99Ms = OptionalNumber(o, "p99_ms", where),
                    ReadsPerQuery = OptionalNumber(o, "reads_per_query", where),
                };
                try { row.Validate(); }
                catch (ArgumentException ex) { throw new FormatException($"{where}: {ex.Message}", ex); }
                rows.Add(row);
            }
        }
        return new ReadResult(rows, skipped);
    }

    private static string RequiredString(JsonElement o, string name, string where)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(v.GetString()))
            throw new FormatException($"{where}: field '{name}' must be a non-empty string.");
        return v.GetString()!;
    }

    private static double RequiredNumber(JsonElement o, string name, string where) =>
        OptionalNumber(o, name, where) ?? throw new FormatException($"{where}: field '{name}' (a number) is missing.");

    private static double? OptionalNumber(JsonElement o, string name, string where)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw new FormatException($"{where}: field '{name}' must be a finite number, got {v}.");
        return d;
    }

    private static Dictionary<string, string> ReadParams(JsonElement o, string where)
    {
        var result = new Dictionary<string, string>();
        if (!o.TryGetProperty("params", out var p) || p.ValueKind == JsonValueKind.Null) return result;
        if (p.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: field 'params' must be an object.");
        foreach (var prop in p.EnumerateObject())
        {
            result[prop.Name] = prop.Value.ValueKind switch
            {
                JsonValueKind.String => prop.Value.GetString()!,
                JsonValueKind.Number => prop.Value.GetDouble().ToString("R", CultureInfo.InvariantCulture),
                JsonValueKind.True or JsonValueKind.False => prop.Value.GetBoolean() ? "true" : "false",
                _ => throw new FormatException($"{where}: params.{prop.Name} must be a number, string or boolean."),
            };
        }
        return result;
    }
}
