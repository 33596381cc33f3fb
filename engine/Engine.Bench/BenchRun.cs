using System.Globalization;
using System.Text.Json;

namespace Engine.Bench;

/// <summary>One index spec to build and the search parameters to sweep on it.</summary>
/// <param name="Index">Index composition string, e.g. <c>IVF1024,PQ32x4fs,RFlat</c>.</param>
/// <param name="Sweeps">Parameter name to the values to try; the settings are their cartesian product.</param>
public sealed record BenchRun(string Index, IReadOnlyList<KeyValuePair<string, string[]>> Sweeps)
{
    /// <summary>Every combination of sweep values, in order (one empty combination when there is no sweep).</summary>
    public IEnumerable<Dictionary<string, string>> Settings()
    {
        IEnumerable<Dictionary<string, string>> acc = [new Dictionary<string, string>()];
        foreach (var (name, values) in Sweeps)
            acc = acc.SelectMany(d => values.Select(v => new Dictionary<string, string>(d) { [name] = v })).ToList();
        return acc;
    }

    /// <summary>Parses <c>NAME=V1,V2,...</c> sweep arguments (names lower-cased).</summary>
    /// <exception cref="ArgumentException">An argument without a name or without values, or a name given twice.</exception>
    public static IReadOnlyList<KeyValuePair<string, string[]>> ParseSweeps(IEnumerable<string> sweeps)
    {
        ArgumentNullException.ThrowIfNull(sweeps);
        var list = new List<KeyValuePair<string, string[]>>();
        foreach (var s in sweeps)
        {
            int eq = s.IndexOf('=');
            if (eq <= 0 || eq == s.Length - 1)
                throw new ArgumentException($"--sweep '{s}' must look like NAME=V1,V2,...");
            var values = s[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (values.Length == 0) throw new ArgumentException($"--sweep '{s}' lists no values.");
            Add(list, s[..eq], values, $"--sweep '{s}'");
        }
        return list;
    }

    private static void Add(List<KeyValuePair<string, string[]>> list, string name, string[] values, string where)
    {
        name = name.Trim().ToLowerInvariant();
        if (list.Any(p => p.Key == name)) throw new ArgumentException($"{where}: parameter '{name}' is swept twice.");
        list.Add(new(name, values));
    }

    /// <summary>
    /// Reads a specs file, JSON or (named <c>.yaml</c>/<c>.yml</c>) YAML of the same shape: either an array of runs or an object with a <c>runs</c> array; each run is
    /// <c>{"index": "IVF256,PQ16x4fs,RFlat", "sweep": {"probes": [1, 2, 4], "refine": "1,4"}}</c> (values as an array
    /// of numbers/strings or one comma-separated string; <c>sweep</c> may be left out).
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">Not JSON/YAML of that shape; the message names the file and the run (the line for YAML syntax errors).</exception>
    public static IReadOnlyList<BenchRun> ReadSpecsFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Specs file '{path}' does not exist.", path);
        bool yaml = YamlSpecs.IsYaml(path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(yaml ? YamlSpecs.ToJson(path) : File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException ex) { throw new FormatException($"Specs file '{path}' is not valid JSON: {ex.Message}", ex); }
        using (doc)
        {
            var root = doc.RootElement;
            JsonElement runs = root;
            if (root.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in root.EnumerateObject())
                    if (p.Name != "runs") throw new FormatException($"Specs file '{path}': unknown top-level field '{p.Name}' (expected 'runs').");
                if (!root.TryGetProperty("runs", out runs)) throw new FormatException($"Specs file '{path}' has no 'runs' array.");
            }
            if (runs.ValueKind != JsonValueKind.Array) throw new FormatException($"Specs file '{path}': 'runs' must be an array of runs.");
            var result = new List<BenchRun>();
            int i = 0;
            foreach (var run in runs.EnumerateArray())
            {
                string where = $"Specs file '{path}', run {i++}";
                result.Add(ReadRun(run, where));
            }
            if (result.Count == 0) throw new FormatException($"Specs file '{path}' lists no runs.");
            return result;
        }
    }

    private static BenchRun ReadRun(JsonElement run, string where)
    {
        if (run.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: expected an object with 'index' and 'sweep'.");
        string? index = null;
        var sweeps = new List<KeyValuePair<string, string[]>>();
        foreach (var p in run.EnumerateObject())
        {
            switch (p.Name)
            {
                case "index":
                    if (p.Value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(p.Value.GetString()))
                        throw new FormatException($"{where}: 'index' must be a non-empty string.");
                    index = p.Value.GetString()!.Trim();
                    break;
                case "sweep":
                    if (p.Value.ValueKind != JsonValueKind.Object) throw new FormatException($"{where}: 'sweep' must be an object of NAME: values.");
                    foreach (var s in p.Value.EnumerateObject())
                    {
                        string[] values = ReadValues(s.Value, $"{where}, sweep '{s.Name}'");
                        try { Add(sweeps, s.Name, values, where); }
                        catch (ArgumentException ex) { throw new FormatException(ex.Message, ex); }
                    }
                    break;
                default:
                    throw new FormatException($"{where}: unknown field '{p.Name}' (expected 'index' and 'sweep').");
            }
        }
        return new BenchRun(index ?? throw new FormatException($"{where}: 'index' is missing."), sweeps);
    }

    private static string[] ReadValues(JsonElement v, string where)
    {
        string[] values = v.ValueKind switch
        {
            JsonValueKind.String => v.GetString()!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            JsonValueKind.Number => [Scalar(v, where)],
            JsonValueKind.Array => v.EnumerateArray().Select(e => Scalar(e, where)).ToArray(),
            _ => throw new FormatException($"{where}: values must be an array, a number or a comma-separated string."),
        };
        if (values.Length == 0) throw new FormatException($"{where}: no values.");
        return values;
    }

    private static string Scalar(JsonElement e, string where) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetRawText(),
        JsonValueKind.String when !string.IsNullOrWhiteSpace(e.GetString()) => e.GetString()!.Trim(),
        _ => throw new FormatException($"{where}: value {e.GetRawText()} is not a number or a non-empty string."),
    };
}
