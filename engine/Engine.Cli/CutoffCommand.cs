using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Engine.Mining.Evaluation;

namespace Engine.Cli;

/// <summary>
/// <c>engine cutoff</c>: fits a per-query calibrated relevance cutoff (<see cref="CalibratedCutoff"/>) on a scored run
/// labelled by qrels, reports its precision / recall / F1 against the best plain global threshold (on the training run
/// or a held-out one), and optionally applies it to another run, writing the kept candidates as a TREC run.
/// </summary>
internal static class CutoffCommand
{
    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "Training run with scores (larger is better): TREC run text (qid Q0 docid rank score tag) or JSON lines {\"query\", \"ids\", \"scores\"}.", Required = true };
        var qrels = new Option<string>("--qrels") { Description = "Qrels for the training (and test) run: TREC qrels text or JSON lines; grade > 0 is relevant, unjudged is not.", Required = true };
        var test = new Option<string?>("--test-run") { Description = "Held-out scored run to report precision / recall / F1 on (default: the training run)." };
        var topK = new Option<int>("--top-k") { Description = "Top scores per query whose mean and spread standardise its scores.", DefaultValueFactory = _ => 10 };
        var iterations = new Option<int>("--iterations") { Description = "Gradient steps of the fit.", DefaultValueFactory = _ => 300 };
        var apply = new Option<string?>("--apply") { Description = "Scored run to filter with the fitted cutoff (needs --out)." };
        var output = new Option<string?>("--out") { Description = "With --apply: the kept candidates as a TREC run (ranks renumbered, tag 'cutoff')." };
        var report = new Option<string?>("--report") { Description = "Also write the JSON report to this file." };
        var cmd = new Command("cutoff", "Per-query calibrated relevance cutoff: fit on a labelled scored run, compare with the best global threshold, filter runs.");
        foreach (Option o in new Option[] { run, qrels, test, topK, iterations, apply, output, report }) cmd.Options.Add(o);
        cmd.SetAction(r => Run(new CutoffRequest(r.GetValue(run)!, r.GetValue(qrels)!, r.GetValue(test), r.GetValue(topK),
            r.GetValue(iterations), r.GetValue(apply), r.GetValue(output), r.GetValue(report)), Console.Out));
        return cmd;
    }

    /// <summary>Fits, evaluates, optionally applies; prints the JSON report; returns the exit code.</summary>
    public static int Run(CutoffRequest q, TextWriter output)
    {
        if ((q.Apply is null) != (q.Out is null)) throw new ArgumentException("--apply and --out go together.");
        var judgements = Qrels.Load(q.Qrels);
        var train = Labelled(RetrievalRun.LoadScored(q.Run), judgements, q.Run);
        var cutoff = CalibratedCutoff.Fit(train.Queries, q.TopK, q.Iterations);
        var evaluated = q.TestRun is null ? train : Labelled(RetrievalRun.LoadScored(q.TestRun), judgements, q.TestRun);
        var (calibrated, plain) = cutoff.Evaluate(evaluated.Queries);
        long kept = -1, candidates = 0;
        if (q.Apply is not null)
        {
            kept = 0;
            using var writer = new StreamWriter(q.Out!);
            foreach (var (query, list) in RetrievalRun.LoadScored(q.Apply))
            {
                var keep = cutoff.Apply(list.Select(e => (float)e.Score).ToArray());
                candidates += list.Count;
                int rank = 0;
                for (int i = 0; i < list.Count; i++)
                {
                    if (!keep[i]) continue;
                    kept++;
                    writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{query} Q0 {list[i].Doc} {++rank} {list[i].Score:R} cutoff"));
                }
            }
        }
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("train_queries", train.Queries.Count);
            w.WriteNumber("train_candidates", train.Candidates);
            w.WriteNumber("train_relevant", train.Relevant);
            w.WriteNumber("skipped_queries", train.Skipped);
            w.WriteNumber("top_k", cutoff.TopK);
            w.WriteNumber("threshold", cutoff.Threshold);
            w.WriteNumber("plain_threshold", cutoff.PlainThreshold);
            w.WriteString("evaluated_on", q.TestRun is null ? "train" : "test");
            w.WriteNumber("evaluated_queries", evaluated.Queries.Count);
            Quality(w, "calibrated", calibrated);
            Quality(w, "plain", plain);
            if (q.Apply is not null)
            {
                w.WriteNumber("applied_candidates", candidates);
                w.WriteNumber("kept", kept);
                w.WriteString("out", q.Out);
            }
            w.WriteEndObject();
        }
        string json = System.Text.Encoding.UTF8.GetString(stream.ToArray());
        output.WriteLine(json);
        if (q.Report is not null) File.WriteAllText(q.Report, json + Environment.NewLine);
        return 0;
    }

    private static void Quality(Utf8JsonWriter w, string name, CutoffQuality c)
    {
        w.WriteStartObject(name);
        w.WriteNumber("precision", c.Precision);
        w.WriteNumber("recall", c.Recall);
        w.WriteNumber("f1", c.F1);
        w.WriteEndObject();
    }

    // The run's queries that have judgements, each candidate labelled relevant when its grade is > 0 (unjudged: not
    // relevant). Queries without any judgement are skipped, as trec_eval does.
    private static (List<LabelledQuery> Queries, long Candidates, long Relevant, int Skipped) Labelled(
        IReadOnlyDictionary<string, IReadOnlyList<(string Doc, double Score)>> run, Qrels qrels, string path)
    {
        var queries = new List<LabelledQuery>();
        long candidates = 0, relevant = 0;
        int skipped = 0;
        foreach (var (query, list) in run.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!qrels.Judgements.TryGetValue(query, out var grades)) { skipped++; continue; }
            var scores = new float[list.Count];
            var labels = new bool[list.Count];
            for (int i = 0; i < list.Count; i++)
            {
                scores[i] = (float)list[i].Score;
                labels[i] = grades.TryGetValue(list[i].Doc, out int g) && g > 0;
                relevant += labels[i] ? 1 : 0;
            }
            candidates += list.Count;
            queries.Add(new LabelledQuery(scores, labels));
        }
        if (queries.Count == 0) throw new ArgumentException($"No query of {path} has a judgement in the qrels: nothing to fit or evaluate.");
        return (queries, candidates, relevant, skipped);
    }
}

/// <summary>Arguments of <c>engine cutoff</c>.</summary>
internal sealed record CutoffRequest(string Run, string Qrels, string? TestRun = null, int TopK = 10, int Iterations = 300,
    string? Apply = null, string? Out = null, string? Report = null);
