using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Engine.Index;
using Engine.Mining.Evaluation;
using Engine.Mining.Hubness;

namespace Engine.Cli;

/// <summary>
/// <c>engine eval</c>: retrieval metrics of a run against qrels (NDCG@k, MRR@k, Recall@k, MAP@k, P@k) and diagnostics
/// of an embedding set (alignment, uniformity, effective rank, k-occurrence hub occupancy), as one JSON object.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var input = VectorInput.Options.Create();
        var run = new Option<string?>("--run") { Description = "Run: TREC run text (qid Q0 docid rank score tag) or JSON lines {\"query\", \"ids\"}." };
        var qrels = new Option<string?>("--qrels") { Description = "Qrels: TREC qrels text (qid iter docid rel) or JSON lines {\"query\", \"doc\", \"relevance\"}." };
        var ks = new Option<string>("--k") { Description = "Cutoffs, comma-separated.", DefaultValueFactory = _ => "10" };
        var pairs = new Option<string?>("--pairs") { Description = "Positive pairs for alignment: text lines 'i j' (rows of the vector set)." };
        var sample = new Option<int>("--sample") { Description = "Rows for uniformity (all pairs), effective rank and the hubness query bank.", DefaultValueFactory = _ => 4096 };
        var seed = new Option<ulong>("--seed") { Description = "Sample seed.", DefaultValueFactory = _ => 1UL };
        var hubK = new Option<int>("--hub-k") { Description = "k of the k-occurrence (hub occupancy); 0 = skip.", DefaultValueFactory = _ => 10 };
        var output = new Option<string?>("--out") { Description = "Also write the JSON to this file." };
        var cmd = new Command("eval", "Retrieval metrics (NDCG, MRR, Recall, MAP, P at k) from a run and qrels; alignment, uniformity, effective rank and hub occupancy of embeddings.");
        input.AddTo(cmd);
        foreach (Option o in new Option[] { run, qrels, ks, pairs, sample, seed, hubK, output }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var request = new EvalRequest(r.GetValue(run), r.GetValue(qrels), ParseCutoffs(r.GetValue(ks)!), r.GetValue(pairs),
                r.GetValue(sample), r.GetValue(seed), r.GetValue(hubK), r.GetValue(output));
            bool vectors = r.GetValue(input.Data) is not null || r.GetValue(input.Vectors) is not null;
            return Run(request, vectors ? input.Load(r) : null, Console.Out);
        });
        return cmd;
    }

    /// <summary>Evaluates and prints the JSON; returns the exit code.</summary>
    public static int Run(EvalRequest q, VectorInput? vectors, TextWriter output)
    {
        if ((q.Run is null) != (q.Qrels is null)) throw new ArgumentException("--run and --qrels go together.");
        if (q.Run is null && vectors is null) throw new ArgumentException("Nothing to evaluate: give --run with --qrels, and/or --data / --vectors.");
        if (q.Pairs is not null && vectors is null) throw new ArgumentException("--pairs needs --data or --vectors.");
        if (q.HubK < 0) throw new ArgumentException($"--hub-k must be >= 0 (got {q.HubK}).");
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            if (q.Run is not null)
            {
                var (metrics, queries) = RetrievalMetrics.Evaluate(RetrievalRun.Load(q.Run), Qrels.Load(q.Qrels!), q.Cutoffs);
                w.WriteStartObject("retrieval");
                w.WriteNumber("queries", queries);
                foreach (var m in metrics)
                {
                    string k = m.K.ToString(CultureInfo.InvariantCulture);
                    w.WriteNumber("ndcg@" + k, m.Ndcg);
                    w.WriteNumber("mrr@" + k, m.Mrr);
                    w.WriteNumber("recall@" + k, m.Recall);
                    w.WriteNumber("map@" + k, m.Map);
                    w.WriteNumber("p@" + k, m.Precision);
                }
                w.WriteEndObject();
            }
            if (vectors is not null) WriteEmbedding(w, q, vectors);
            w.WriteEndObject();
        }
        string json = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        output.WriteLine(json);
        if (q.Out is string path) File.WriteAllText(path, json);
        return 0;
    }

    private static void WriteEmbedding(Utf8JsonWriter w, EvalRequest q, VectorInput v)
    {
        var pairs = q.Pairs is null ? null : ReadPairs(q.Pairs);
        var diag = EmbeddingDiagnostics.Compute(v.Vectors, v.Dimension, pairs, new EmbeddingDiagnosticsOptions { Sample = q.Sample, Seed = q.Seed });
        w.WriteStartObject("embedding");
        w.WriteString("input", v.Name);
        w.WriteNumber("n", v.Count);
        w.WriteNumber("d", v.Dimension);
        w.WriteNumber("sample", diag.SampleSize);
        if (diag.Alignment is double a) w.WriteNumber("alignment", a);
        else w.WriteNull("alignment");
        w.WriteNumber("uniformity", diag.Uniformity);
        w.WriteNumber("effective_rank", diag.EffectiveRank);
        if (q.HubK > 0)
        {
            if (q.HubK >= v.Count) throw new ArgumentException($"--hub-k {q.HubK} must be below the number of vectors ({v.Count}).");
            using var flat = IndexFactory.Create("Flat", v.Dimension, v.Metric);
            var ids = v.RowIds();
            flat.Add(v.Vectors, ids);
            var hub = HubnessAnalyzer.Analyze(flat, ids, new HubnessOptions { K = q.HubK, SampleSize = Math.Min(q.Sample, v.Count), Seed = q.Seed });
            w.WriteStartObject("hubness");
            w.WriteNumber("k", hub.K);
            w.WriteNumber("query_bank", hub.QueryCount);
            w.WriteNumber("skewness", hub.Skewness);
            w.WriteNumber("hub_share", hub.HubShare);
            w.WriteNumber("hub_occupancy", hub.HubOccurrence);
            w.WriteNumber("antihub_share", hub.AntihubShare);
            w.WriteNumber("robin_hood", hub.RobinHood);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static List<(int, int)> ReadPairs(string path)
    {
        var pairs = new List<(int, int)>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var parts = raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0) continue;
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int a)
                || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int b))
                throw new FormatException($"{path}:{lineNo}: a pair line is two row numbers 'i j', got '{raw.Trim()}'.");
            pairs.Add((a, b));
        }
        return pairs;
    }

    internal static int[] ParseCutoffs(string text)
    {
        var ks = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) && k >= 1 ? k
                : throw new ArgumentException($"--k part '{t}' is not a cutoff >= 1.")).ToArray();
        return ks.Length > 0 ? ks : throw new ArgumentException("--k needs at least one cutoff.");
    }
}

/// <summary>The arguments of one <c>engine eval</c> run.</summary>
internal sealed record EvalRequest(string? Run, string? Qrels, int[] Cutoffs, string? Pairs = null, int Sample = 4096,
    ulong Seed = 1, int HubK = 10, string? Out = null);
