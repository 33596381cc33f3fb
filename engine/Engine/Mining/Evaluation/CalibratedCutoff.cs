namespace Engine.Mining.Evaluation;

/// <summary>One query's labelled candidates: scores (larger is closer, e.g. a range or k-NN search's) and relevance.</summary>
/// <param name="Scores">Candidate scores.</param>
/// <param name="Relevant">Whether each candidate is relevant (aligned with <paramref name="Scores"/>).</param>
public sealed record LabelledQuery(float[] Scores, bool[] Relevant);

/// <summary>Precision, recall and F1 of a cutoff over labelled queries (micro-averaged over all candidates).</summary>
/// <param name="Precision">Kept relevant / kept.</param>
/// <param name="Recall">Kept relevant / relevant.</param>
/// <param name="F1">Harmonic mean of precision and recall.</param>
public readonly record struct CutoffQuality(double Precision, double Recall, double F1);

/// <summary>
/// A per-query calibrated relevance cutoff (the Cosine-Adapter idea): each candidate's score is mapped through a small
/// query-dependent model — logistic regression on the raw score, the score standardised by the query's own top-k
/// statistics, and its gap to the query's best score — and one global threshold on the mapped value decides relevance.
/// <see cref="Evaluate"/> compares it with the plain global threshold on raw scores (both thresholds chosen for the
/// best F1 on the training queries).
/// </summary>
public sealed class CalibratedCutoff
{
    private readonly double[] _w; // bias, 3 feature weights (standardised features)
    private readonly double[] _mean, _std;

    private CalibratedCutoff(int topK, double[] w, double[] mean, double[] std, double threshold, double plainThreshold)
    {
        TopK = topK;
        _w = w;
        _mean = mean;
        _std = std;
        Threshold = threshold;
        PlainThreshold = plainThreshold;
    }

    /// <summary>Candidates of a query whose statistics (mean, spread) normalise its scores.</summary>
    public int TopK { get; }

    /// <summary>The global threshold on the calibrated probability.</summary>
    public double Threshold { get; }

    /// <summary>The best global threshold on raw scores (the baseline).</summary>
    public double PlainThreshold { get; }

    /// <summary>Fits the mapping and both thresholds on labelled queries (deterministic: full-batch gradient descent from zero).</summary>
    /// <param name="train">Labelled queries (at least one relevant and one non-relevant candidate in all).</param>
    /// <param name="topK">Top scores per query used for its statistics (≥ 1).</param>
    /// <param name="iterations">Gradient steps (≥ 1).</param>
    /// <exception cref="ArgumentException">No queries, mismatched lengths, non-finite scores, or only one class.</exception>
    public static CalibratedCutoff Fit(IReadOnlyList<LabelledQuery> train, int topK = 10, int iterations = 300)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (topK < 1) throw new ArgumentOutOfRangeException(nameof(topK), topK, "topK must be >= 1.");
        if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be >= 1.");
        var (x, y) = Features(train, topK);
        int pos = y.Count(v => v), neg = y.Length - pos;
        if (pos == 0 || neg == 0)
            throw new ArgumentException($"The training queries hold {pos} relevant and {neg} non-relevant candidates; both are needed.", nameof(train));
        const int F = 3;
        var mean = new double[F];
        var std = new double[F];
        for (int f = 0; f < F; f++)
        {
            mean[f] = x.Average(r => r[f]);
            std[f] = Math.Sqrt(x.Average(r => (r[f] - mean[f]) * (r[f] - mean[f])));
            if (std[f] == 0) std[f] = 1;
        }
        var w = new double[F + 1];
        var grad = new double[F + 1];
        for (int it = 0; it < iterations; it++)
        {
            Array.Clear(grad);
            for (int i = 0; i < x.Length; i++)
            {
                double err = Sigmoid(Linear(w, x[i], mean, std)) - (y[i] ? 1 : 0);
                grad[0] += err;
                for (int f = 0; f < F; f++) grad[f + 1] += err * (x[i][f] - mean[f]) / std[f];
            }
            for (int j = 0; j <= F; j++) w[j] -= 1.0 * grad[j] / x.Length;
        }
        var prob = x.Select(r => Sigmoid(Linear(w, r, mean, std))).ToArray();
        var raw = x.Select(r => r[0]).ToArray();
        return new CalibratedCutoff(topK, w, mean, std, BestThreshold(prob, y), BestThreshold(raw, y));
    }

    /// <summary>Which candidates of one query the calibrated cutoff keeps.</summary>
    /// <exception cref="ArgumentException">Non-finite scores.</exception>
    public bool[] Apply(float[] scores)
    {
        var (x, _) = Features([new LabelledQuery(scores, new bool[scores.Length])], TopK);
        return x.Select(r => Sigmoid(Linear(_w, r, _mean, _std)) >= Threshold).ToArray();
    }

    /// <summary>Precision / recall / F1 of the calibrated cutoff and of the plain global threshold on <paramref name="test"/>.</summary>
    public (CutoffQuality Calibrated, CutoffQuality Plain) Evaluate(IReadOnlyList<LabelledQuery> test)
    {
        ArgumentNullException.ThrowIfNull(test);
        long tpC = 0, keptC = 0, tpP = 0, keptP = 0, relevant = 0;
        foreach (var q in test)
        {
            var keep = Apply(q.Scores);
            for (int i = 0; i < q.Scores.Length; i++)
            {
                relevant += q.Relevant[i] ? 1 : 0;
                if (keep[i]) { keptC++; if (q.Relevant[i]) tpC++; }
                if (q.Scores[i] >= PlainThreshold) { keptP++; if (q.Relevant[i]) tpP++; }
            }
        }
        return (Quality(tpC, keptC, relevant), Quality(tpP, keptP, relevant));
    }

    private static CutoffQuality Quality(long tp, long kept, long relevant)
    {
        double p = kept == 0 ? 0 : tp / (double)kept, r = relevant == 0 ? 0 : tp / (double)relevant;
        return new CutoffQuality(p, r, p + r == 0 ? 0 : 2 * p * r / (p + r));
    }

    // Features per candidate: raw score, score standardised by the query's top-k mean and spread, gap to the best.
    private static (double[][] X, bool[] Y) Features(IReadOnlyList<LabelledQuery> queries, int topK)
    {
        if (queries.Count == 0) throw new ArgumentException("Give at least one labelled query.", nameof(queries));
        var x = new List<double[]>();
        var y = new List<bool>();
        for (int q = 0; q < queries.Count; q++)
        {
            var s = queries[q].Scores ?? throw new ArgumentException($"Query {q} has no scores.", nameof(queries));
            if (queries[q].Relevant is null || queries[q].Relevant.Length != s.Length)
                throw new ArgumentException($"Query {q} has {s.Length} scores but {queries[q].Relevant?.Length ?? 0} labels.", nameof(queries));
            if (s.Length == 0) continue;
            for (int i = 0; i < s.Length; i++)
                if (!float.IsFinite(s[i])) throw new ArgumentException($"Query {q} score {i} is {s[i]}, not finite.", nameof(queries));
            var top = s.OrderDescending().Take(topK).Select(v => (double)v).ToArray();
            double m = top.Average(), sd = Math.Sqrt(top.Average(v => (v - m) * (v - m))), best = top[0];
            if (sd < 1e-6) sd = 1e-6;
            for (int i = 0; i < s.Length; i++)
            {
                x.Add([s[i], (s[i] - m) / sd, s[i] - best]);
                y.Add(queries[q].Relevant[i]);
            }
        }
        return (x.ToArray(), y.ToArray());
    }

    private static double Linear(double[] w, double[] x, double[] mean, double[] std)
    {
        double z = w[0];
        for (int f = 0; f < x.Length; f++) z += w[f + 1] * (x[f] - mean[f]) / std[f];
        return z;
    }

    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    // The threshold t (keep value ≥ t) with the best F1, scanning the values in descending order.
    private static double BestThreshold(double[] value, bool[] y)
    {
        var order = Enumerable.Range(0, value.Length).OrderByDescending(i => value[i]).ThenBy(i => i).ToArray();
        long relevant = y.Count(v => v), tp = 0;
        double bestF1 = -1, best = value[order[0]];
        for (int k = 0; k < order.Length; k++)
        {
            if (y[order[k]]) tp++;
            if (k + 1 < order.Length && value[order[k + 1]] == value[order[k]]) continue; // ties go together
            double p = tp / (double)(k + 1), r = tp / (double)relevant;
            double f1 = p + r == 0 ? 0 : 2 * p * r / (p + r);
            if (f1 > bestF1) { bestF1 = f1; best = value[order[k]]; }
        }
        return best;
    }
}
