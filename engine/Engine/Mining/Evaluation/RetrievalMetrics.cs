namespace Engine.Mining.Evaluation;

/// <summary>Mean retrieval metrics at one cutoff k over the evaluated queries.</summary>
/// <param name="K">The cutoff.</param>
/// <param name="Ndcg">NDCG@k with linear gain (grade / log2(rank + 1)), ideal from all judged grades (trec_eval ndcg_cut).</param>
/// <param name="Mrr">MRR@k: 1 / rank of the first relevant document in the top k, else 0.</param>
/// <param name="Recall">Recall@k: relevant documents in the top k / all relevant documents.</param>
/// <param name="Map">MAP@k: Σ over relevant ranks r ≤ k of P@r, divided by all relevant documents (trec_eval map_cut).</param>
/// <param name="Precision">P@k: relevant documents in the top k / k.</param>
public readonly record struct MetricsAtK(int K, double Ndcg, double Mrr, double Recall, double Map, double Precision);

/// <summary>
/// NDCG@k, MRR@k, Recall@k, MAP@k and P@k of a run against qrels (trec_eval conventions): a document is relevant when
/// its grade is &gt; 0; queries with no relevant document are skipped; a judged query missing from the run scores 0.
/// </summary>
public static class RetrievalMetrics
{
    /// <summary>Per-cutoff means over the evaluated queries, and how many queries were evaluated.</summary>
    /// <exception cref="ArgumentException">No cutoff, a cutoff &lt; 1, or no query with a relevant document.</exception>
    public static (IReadOnlyList<MetricsAtK> Metrics, int Queries) Evaluate(RetrievalRun run, Qrels qrels, IReadOnlyList<int> cutoffs)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(qrels);
        ArgumentNullException.ThrowIfNull(cutoffs);
        if (cutoffs.Count == 0) throw new ArgumentException("Give at least one cutoff k.", nameof(cutoffs));
        foreach (int k in cutoffs) if (k < 1) throw new ArgumentOutOfRangeException(nameof(cutoffs), k, $"Cutoffs must be >= 1, got {k}.");
        var sums = new double[cutoffs.Count, 5];
        int evaluated = 0;
        foreach (var (query, judged) in qrels.Judgements.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            int relevant = judged.Values.Count(g => g > 0);
            if (relevant == 0) continue;
            evaluated++;
            var ranking = run.Ranking.TryGetValue(query, out var r) ? r : [];
            var ideal = judged.Values.Where(g => g > 0).OrderDescending().ToArray();
            for (int c = 0; c < cutoffs.Count; c++)
            {
                var m = AtK(ranking, judged, ideal, relevant, cutoffs[c]);
                sums[c, 0] += m.Ndcg;
                sums[c, 1] += m.Mrr;
                sums[c, 2] += m.Recall;
                sums[c, 3] += m.Map;
                sums[c, 4] += m.Precision;
            }
        }
        if (evaluated == 0) throw new ArgumentException("The qrels hold no query with a relevant document (grade > 0): nothing to evaluate.", nameof(qrels));
        var result = new MetricsAtK[cutoffs.Count];
        for (int c = 0; c < cutoffs.Count; c++)
            result[c] = new MetricsAtK(cutoffs[c], sums[c, 0] / evaluated, sums[c, 1] / evaluated, sums[c, 2] / evaluated,
                sums[c, 3] / evaluated, sums[c, 4] / evaluated);
        return (result, evaluated);
    }

    /// <summary>The five metrics of one query at cutoff k.</summary>
    public static MetricsAtK AtK(IReadOnlyList<string> ranking, IReadOnlyDictionary<string, int> judged, int[] idealGrades, int relevant, int k)
    {
        double dcg = 0, idcg = 0, mrr = 0, apSum = 0;
        int hits = 0;
        for (int i = 0; i < Math.Min(k, ranking.Count); i++)
        {
            int grade = judged.TryGetValue(ranking[i], out int g) ? g : 0;
            if (grade <= 0) continue;
            hits++;
            dcg += grade / Math.Log2(i + 2);
            if (mrr == 0) mrr = 1.0 / (i + 1);
            apSum += hits / (double)(i + 1);
        }
        for (int i = 0; i < Math.Min(k, idealGrades.Length); i++) idcg += idealGrades[i] / Math.Log2(i + 2);
        return new MetricsAtK(k, idcg > 0 ? dcg / idcg : 0, mrr, hits / (double)relevant, apSum / relevant, hits / (double)k);
    }
}
