using System.Globalization;
using System.Text.Json;

namespace Engine.Mining.Evaluation;

/// <summary>
/// Relevance judgements: per query id, the graded relevance of judged documents (grade ≤ 0 = judged non-relevant).
/// Read from TREC qrels text (<c>qid iter docid rel</c>) or JSON lines (<c>{"query", "doc", "relevance"}</c> per line, or
/// <c>{"query", "relevant": {"doc": rel, ...}}</c>).
/// </summary>
public sealed class Qrels
{
    /// <summary>Wraps judgements (query → doc → grade).</summary>
    public Qrels(IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> judgements)
    {
        ArgumentNullException.ThrowIfNull(judgements);
        Judgements = judgements;
    }

    /// <summary>query → doc → grade.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Judgements { get; }

    /// <summary>Reads a qrels file: JSON lines when the first non-blank character is '{', TREC text otherwise.</summary>
    /// <exception cref="FormatException">A malformed line (the message names file and line).</exception>
    /// <exception cref="ArgumentException">The file holds no judgement.</exception>
    public static Qrels Load(string path)
    {
        var map = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith('{')) ReadJson(line, path, lineNo, map);
            else
            {
                var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length != 4 || !int.TryParse(parts[3], NumberStyles.Integer, CultureInfo.InvariantCulture, out int grade))
                    throw new FormatException($"{path}:{lineNo}: a TREC qrels line is 'qid iter docid relevance' (integer relevance), got '{line}'.");
                Add(map, parts[0], parts[2], grade);
            }
        }
        if (map.Count == 0) throw new ArgumentException($"The qrels file '{path}' holds no judgements.", nameof(path));
        return new Qrels(map.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, int>)kv.Value, StringComparer.Ordinal));
    }

    private static void ReadJson(string line, string path, int lineNo, Dictionary<string, Dictionary<string, int>> map)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            string query = Text(root.GetProperty("query"));
            if (root.TryGetProperty("relevant", out var rel))
            {
                if (rel.ValueKind == JsonValueKind.Object)
                    foreach (var p in rel.EnumerateObject()) Add(map, query, p.Name, p.Value.GetInt32());
                else
                    foreach (var d in rel.EnumerateArray()) Add(map, query, Text(d), 1);
            }
            else
            {
                int grade = root.TryGetProperty("relevance", out var g) ? g.GetInt32() : 1;
                Add(map, query, Text(root.GetProperty("doc")), grade);
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new FormatException($"{path}:{lineNo}: a JSON qrels line is {{\"query\", \"doc\", \"relevance\"}} or {{\"query\", \"relevant\": {{doc: grade}}}}: {e.Message}", e);
        }
    }

    internal static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();

    private static void Add(Dictionary<string, Dictionary<string, int>> map, string query, string doc, int grade)
    {
        if (!map.TryGetValue(query, out var docs)) map[query] = docs = new Dictionary<string, int>(StringComparer.Ordinal);
        docs[doc] = grade;
    }
}

/// <summary>
/// A retrieval run: per query id, document ids best first. Read from a TREC run (<c>qid Q0 docid rank score tag</c>,
/// ordered by score descending, ties in file order) or JSON lines (<c>{"query", "ids": [...]}</c>, in the given order).
/// Duplicate documents keep their first position.
/// </summary>
public sealed class RetrievalRun
{
    /// <summary>Wraps ranked lists (query → doc ids best first).</summary>
    public RetrievalRun(IReadOnlyDictionary<string, IReadOnlyList<string>> ranking)
    {
        ArgumentNullException.ThrowIfNull(ranking);
        Ranking = ranking;
    }

    /// <summary>query → documents best first.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Ranking { get; }

    // One TREC run line 'qid Q0 docid rank score [tag]'.
    private static (string Query, string Doc, double Score) TrecRunLine(string path, int lineNo, string line)
    {
        var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 5 || !double.TryParse(parts[4], NumberStyles.Float, CultureInfo.InvariantCulture, out double score))
            throw new FormatException($"{path}:{lineNo}: a TREC run line is 'qid Q0 docid rank score [tag]' (numeric score), got '{line}'.");
        return (parts[0], parts[2], score);
    }

    /// <summary>
    /// Reads a run with its scores (larger is better): TREC run text (<c>qid Q0 docid rank score [tag]</c>) or JSON lines
    /// <c>{"query", "ids": [...], "scores": [...]}</c>. Per query, documents best first (ties in file order), duplicates
    /// keep their first (best) entry.
    /// </summary>
    /// <exception cref="FormatException">A malformed line, a JSON line without scores, or ids and scores of different
    /// lengths (the message names file and line).</exception>
    public static IReadOnlyDictionary<string, IReadOnlyList<(string Doc, double Score)>> LoadScored(string path)
    {
        var scored = new Dictionary<string, List<(double Score, int Order, string Doc)>>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string query;
            var entries = new List<(double, string)>();
            if (line.StartsWith('{'))
            {
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    query = Qrels.Text(doc.RootElement.GetProperty("query"));
                    var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(Qrels.Text).ToList();
                    if (!doc.RootElement.TryGetProperty("scores", out var sc))
                        throw new FormatException($"{path}:{lineNo}: a scored JSON run line needs \"scores\" beside \"ids\".");
                    var scores = sc.EnumerateArray().Select(v => v.GetDouble()).ToList();
                    if (scores.Count != ids.Count)
                        throw new FormatException($"{path}:{lineNo}: {ids.Count} ids but {scores.Count} scores.");
                    for (int i = 0; i < ids.Count; i++) entries.Add((scores[i], ids[i]));
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    throw new FormatException($"{path}:{lineNo}: a scored JSON run line is {{\"query\": ..., \"ids\": [...], \"scores\": [...]}}: {e.Message}", e);
                }
            }
            else
            {
                var (q, docId, score) = TrecRunLine(path, lineNo, line);
                query = q;
                entries.Add((score, docId));
            }
            foreach (var (score, docId) in entries)
            {
                if (!double.IsFinite(score)) throw new FormatException($"{path}:{lineNo}: the score of '{docId}' is not finite.");
                if (!scored.TryGetValue(query, out var list)) scored[query] = list = [];
                list.Add((score, list.Count, docId));
            }
        }
        var result = new Dictionary<string, IReadOnlyList<(string, double)>>(StringComparer.Ordinal);
        foreach (var (q, list) in scored)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            result[q] = list.OrderByDescending(e => e.Score).ThenBy(e => e.Order).Where(e => seen.Add(e.Doc)).Select(e => (e.Doc, e.Score)).ToList();
        }
        return result;
    }

    /// <summary>Reads a run file (JSON lines when the first non-blank character is '{', TREC otherwise).</summary>
    /// <exception cref="FormatException">A malformed line (the message names file and line).</exception>
    public static RetrievalRun Load(string path)
    {
        var scored = new Dictionary<string, List<(double Score, int Order, string Doc)>>(StringComparer.Ordinal);
        var lists = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith('{'))
            {
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    string q = Qrels.Text(doc.RootElement.GetProperty("query"));
                    if (!lists.TryGetValue(q, out var list)) lists[q] = list = [];
                    foreach (var id in doc.RootElement.GetProperty("ids").EnumerateArray()) list.Add(Qrels.Text(id));
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    throw new FormatException($"{path}:{lineNo}: a JSON run line is {{\"query\": ..., \"ids\": [...]}}: {e.Message}", e);
                }
                continue;
            }
            var (query, docId, score) = TrecRunLine(path, lineNo, line);
            if (double.IsNaN(score))
                throw new FormatException($"{path}:{lineNo}: a TREC run line is 'qid Q0 docid rank score [tag]' (numeric score), got '{line}'.");
            if (!scored.TryGetValue(query, out var entries)) scored[query] = entries = [];
            entries.Add((score, entries.Count, docId));
        }
        foreach (var (q, entries) in scored)
        {
            if (!lists.TryGetValue(q, out var list)) lists[q] = list = [];
            list.AddRange(entries.OrderByDescending(e => e.Score).ThenBy(e => e.Order).Select(e => e.Doc));
        }
        return new RetrievalRun(lists.ToDictionary(kv => kv.Key,
            kv => (IReadOnlyList<string>)kv.Value.Distinct(StringComparer.Ordinal).ToList(), StringComparer.Ordinal));
    }

    /// <summary>A run from integer ids per query (row i = query <c>i</c>, −1 entries dropped), e.g. search labels.</summary>
    public static RetrievalRun FromLabels(ReadOnlySpan<long> labels, int perQuery)
    {
        if (perQuery < 1) throw new ArgumentOutOfRangeException(nameof(perQuery), perQuery, "perQuery must be >= 1.");
        var map = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        for (int q = 0; q < labels.Length / perQuery; q++)
        {
            var list = new List<string>();
            foreach (long id in labels.Slice(q * perQuery, perQuery)) if (id >= 0) list.Add(id.ToString(CultureInfo.InvariantCulture));
            map[q.ToString(CultureInfo.InvariantCulture)] = list.Distinct(StringComparer.Ordinal).ToList();
        }
        return new RetrievalRun(map);
    }
}
