namespace Engine.Mining.Hubness;

/// <summary>
/// Rewrites one query's candidate scores into hubness-reduced scores (larger is closer). Used to re-rank the top C
/// of a search (<see cref="NormalizedSearch"/>) and to rank mining candidates (<see cref="MiningOptions.Normalizer"/>).
/// </summary>
/// <remarks>Implementations are immutable after construction and safe to call from many threads.</remarks>
public interface IScoreNormalizer
{
    /// <summary>Short name with parameters, e.g. <c>csls(k=10)</c>; written to manifests.</summary>
    string Name { get; }

    /// <summary>
    /// Normalises one query's candidates. <paramref name="scores"/> are raw larger-is-closer scores in descending
    /// order (the query's own neighbourhood statistics are taken from the first k of them); writes one value per
    /// candidate into <paramref name="normalized"/>.
    /// </summary>
    void Normalize(ReadOnlySpan<long> ids, ReadOnlySpan<float> scores, Span<float> normalized);
}

/// <summary>Which hubness reduction a <see cref="HubnessNormalizer"/> applies.</summary>
public enum NormalizerKind
{
    /// <summary>CSLS (Conneau et al. 2018): 2·s(x,y) − r(x) − r(y), r = mean score of the k nearest neighbours.</summary>
    Csls = 0,
    /// <summary>Mutual proximity, Gaussian (Schnitzer et al. 2012): SF(d; μx, σx)·SF(d; μy, σy).</summary>
    MutualProximity = 1,
    /// <summary>Local scaling (Zelnik-Manor and Perona): exp(−d² / (r_x r_y)), r = distance to the k-th neighbour.</summary>
    LocalScaling = 2,
    /// <summary>NICDM: −d / √(μx μy), μ = mean distance to the k nearest neighbours.</summary>
    Nicdm = 3,
    /// <summary>QB-Norm dynamic inverted softmax (Bogolin et al. 2022) with inverse temperature β over a query bank.</summary>
    QbNorm = 4,
}

/// <summary>
/// Hubness reductions built from per-corpus-item neighbourhood statistics, computed once by scanning a query bank
/// (the corpus or a seeded sample of it, each query excluding itself).
/// </summary>
/// <remarks>
/// Distances for MP, LS and NICDM are derived from scores: Euclidean √(−s) for L2, 1 − s for inner product and
/// cosine. QB-Norm's normalising sum Z(g) = Σ_b exp(β s(b,g)) is accumulated over each bank query's top
/// <c>bankDepth</c> (terms beyond it are negligible for the usual β); the query's own term is added to the
/// denominator so an item seen by no bank query stays finite. Scores are returned in log domain (monotone).
/// Items without statistics (not in the bank scan) use the corpus-wide averages.
/// </remarks>
public sealed class HubnessNormalizer : IScoreNormalizer
{
    private readonly NormalizerKind _kind;
    private readonly Metric _metric;
    private readonly int _k;
    private readonly double _beta;
    private readonly Dictionary<long, ItemStats> _stats;
    private readonly ItemStats _fallback;
    private readonly HashSet<long> _activation;

    private readonly record struct ItemStats(double MeanScore, double MeanDistance, double StdDistance, double KthDistance, double LogZ);

    private HubnessNormalizer(NormalizerKind kind, Metric metric, int k, double beta,
        Dictionary<long, ItemStats> stats, HashSet<long> activation)
    {
        _kind = kind; _metric = metric; _k = k; _beta = beta; _stats = stats; _activation = activation;
        var withScores = stats.Values.Where(s => !double.IsNaN(s.MeanScore)).ToList();
        var withZ = stats.Values.Where(s => double.IsFinite(s.LogZ)).ToList();
        // An item no bank query reached has a truncated Z of 0, which would make its normalised score the maximum
        // possible; it gets the corpus-average log Z instead, like the other statistics.
        _fallback = new ItemStats(
            withScores.Count == 0 ? 0 : withScores.Average(s => s.MeanScore),
            withScores.Count == 0 ? 1 : withScores.Average(s => s.MeanDistance),
            withScores.Count == 0 ? 1 : withScores.Average(s => s.StdDistance),
            withScores.Count == 0 ? 1 : withScores.Average(s => s.KthDistance),
            withZ.Count == 0 ? double.NegativeInfinity : withZ.Average(s => s.LogZ));
    }

    /// <inheritdoc />
    public string Name => _kind == NormalizerKind.QbNorm ? $"qbnorm(beta={_beta},k={_k})" : $"{_kind.ToString().ToLowerInvariant()}(k={_k})";

    /// <summary>
    /// Builds a normaliser. <paramref name="k"/> is the neighbourhood size (CSLS 10, LS/NICDM 5, QB-Norm activation
    /// k 1 by convention); <paramref name="beta"/> is QB-Norm's inverse temperature (20 in its README).
    /// </summary>
    /// <param name="kind">Which reduction.</param>
    /// <param name="index">The corpus index.</param>
    /// <param name="corpusIds">Every id in the index.</param>
    /// <param name="k">Neighbourhood size.</param>
    /// <param name="beta">QB-Norm β (ignored by the others).</param>
    /// <param name="bankSize">Query-bank sample size (0 = the whole corpus).</param>
    /// <param name="bankDepth">Neighbours per bank query used for QB-Norm's normalising sums.</param>
    /// <param name="seed">Seed of the bank sample.</param>
    /// <param name="threads">Search threads (0 = all).</param>
    /// <exception cref="ArgumentException">Bad k, β, sizes, or ids not in the index.</exception>
    public static HubnessNormalizer Build(NormalizerKind kind, IVectorIndex index, IReadOnlyList<long> corpusIds,
        int k = 10, double beta = 20, int bankSize = 0, int bankDepth = 100, ulong seed = 42, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(corpusIds);
        if (!Enum.IsDefined(kind)) throw new ArgumentException($"Unknown normaliser {kind}.", nameof(kind));
        if (k <= 0) throw new ArgumentException($"k must be at least 1 (got {k}).", nameof(k));
        if (!double.IsFinite(beta) || beta <= 0) throw new ArgumentException($"beta must be positive (got {beta}).", nameof(beta));
        if (bankDepth < k) throw new ArgumentException($"bankDepth ({bankDepth}) must be at least k ({k}).", nameof(bankDepth));
        long[] bank = HubnessAnalyzer.SampleBank(corpusIds, bankSize, seed);
        Metric metric = index.Metric;
        var stats = new Dictionary<long, ItemStats>();
        var activation = new HashSet<long>();
        var logZ = new Dictionary<long, double>();
        int depth = kind == NormalizerKind.QbNorm ? bankDepth : k;
        BankScan.Run(index, bank, depth, threads, 1024, (qi, ids, scores) =>
        {
            int kk = Math.Min(k, ids.Length);
            stats[bank[qi]] = Summarise(metric, scores[..kk]) with { LogZ = double.NegativeInfinity };
            if (kind != NormalizerKind.QbNorm) return;
            for (int j = 0; j < kk; j++) activation.Add(ids[j]);
            for (int j = 0; j < ids.Length; j++)
                logZ[ids[j]] = LogAddExp(logZ.GetValueOrDefault(ids[j], double.NegativeInfinity), beta * scores[j]);
        });
        foreach (var (id, z) in logZ)
            stats[id] = stats.TryGetValue(id, out var s) ? s with { LogZ = z } : new ItemStats(double.NaN, double.NaN, double.NaN, double.NaN, z);
        // Items seen only through QB sums get corpus averages for the other fields (unused by QB-Norm).
        return new HubnessNormalizer(kind, metric, k, beta, stats, activation);
    }

    /// <inheritdoc />
    public void Normalize(ReadOnlySpan<long> ids, ReadOnlySpan<float> scores, Span<float> normalized)
    {
        if (ids.Length != scores.Length || normalized.Length < scores.Length)
            throw new ArgumentException("ids, scores and normalized must have matching lengths.");
        if (scores.IsEmpty) return;
        if (_kind == NormalizerKind.QbNorm)
        {
            if (!_activation.Contains(ids[0])) { scores.CopyTo(normalized); return; }
            for (int j = 0; j < scores.Length; j++)
            {
                double z = _stats.TryGetValue(ids[j], out var st) && double.IsFinite(st.LogZ) ? st.LogZ : _fallback.LogZ;
                double own = _beta * scores[j];
                normalized[j] = (float)(own - LogAddExp(z, own));
            }
            return;
        }
        var x = Summarise(_metric, scores[..Math.Min(_k, scores.Length)]);
        for (int j = 0; j < scores.Length; j++)
        {
            var y = _stats.TryGetValue(ids[j], out var st) && !double.IsNaN(st.MeanScore) ? st : _fallback;
            double d = ToDistance(_metric, scores[j]);
            normalized[j] = (float)(_kind switch
            {
                NormalizerKind.Csls => 2.0 * scores[j] - x.MeanScore - y.MeanScore,
                NormalizerKind.MutualProximity => NormalSf(d, x.MeanDistance, x.StdDistance) * NormalSf(d, y.MeanDistance, y.StdDistance),
                NormalizerKind.LocalScaling => Math.Exp(-d * d / Math.Max(1e-30, x.KthDistance * y.KthDistance)),
                _ => -d / Math.Sqrt(Math.Max(1e-30, x.MeanDistance * y.MeanDistance)),
            });
        }
    }

    private static ItemStats Summarise(Metric metric, ReadOnlySpan<float> scores)
    {
        if (scores.IsEmpty) return new ItemStats(0, 1, 1, 1, double.NegativeInfinity);
        double sumS = 0, sumD = 0, sumD2 = 0, kth = 0;
        foreach (float s in scores)
        {
            double d = ToDistance(metric, s);
            sumS += s; sumD += d; sumD2 += d * d; kth = d;
        }
        int n = scores.Length;
        double meanD = sumD / n;
        return new ItemStats(sumS / n, meanD, Math.Sqrt(Math.Max(0, sumD2 / n - meanD * meanD)), kth, double.NegativeInfinity);
    }

    /// <summary>Distance implied by a larger-is-closer score: √(−s) for L2, 1 − s otherwise.</summary>
    internal static double ToDistance(Metric metric, float score) =>
        metric == Metric.L2 ? Math.Sqrt(Math.Max(0, -score)) : 1.0 - score;

    /// <summary>Survival function of N(μ, σ²) at x; a step function when σ = 0.</summary>
    internal static double NormalSf(double x, double mu, double sigma) =>
        sigma <= 0 ? (x < mu ? 1 : x > mu ? 0 : 0.5) : 0.5 * Erfc((x - mu) / (sigma * Math.Sqrt(2)));

    /// <summary>Complementary error function (Numerical Recipes <c>erfcc</c>, relative error below 1.2e−7).</summary>
    internal static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
            t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }

    private static double LogAddExp(double a, double b)
    {
        if (double.IsNegativeInfinity(a)) return b;
        if (double.IsNegativeInfinity(b)) return a;
        double m = Math.Max(a, b);
        return m + Math.Log(Math.Exp(a - m) + Math.Exp(b - m));
    }
}

/// <summary>Search with a hubness-reducing re-rank of the top C candidates.</summary>
public static class NormalizedSearch
{
    /// <summary>
    /// Searches the top <paramref name="rerankDepth"/> of each query, normalises the scores with
    /// <paramref name="normalizer"/> and keeps the best k. Writes nq × k normalised scores (larger is closer,
    /// whatever the metric) and labels, padded with −∞ and −1.
    /// </summary>
    /// <exception cref="ArgumentException">k ≤ 0, rerankDepth &lt; k, short buffers, bad queries.</exception>
    public static void Search(IVectorIndex index, IScoreNormalizer normalizer, ReadOnlySpan<float> queries, int k,
        int rerankDepth, Span<float> scores, Span<long> labels, SearchParameters? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(normalizer);
        int nq = Guard.Rows(queries, index.Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, scores.Length, labels.Length);
        if (rerankDepth < k) throw new ArgumentException($"rerankDepth ({rerankDepth}) must be at least k ({k}).", nameof(rerankDepth));
        var dist = new float[(long)nq * rerankDepth];
        var ids = new long[dist.Length];
        index.Search(queries, rerankDepth, dist, ids, parameters);
        var raw = new float[rerankDepth];
        var norm = new float[rerankDepth];
        var order = new int[rerankDepth];
        for (int q = 0; q < nq; q++)
        {
            var rowIds = ids.AsSpan(q * rerankDepth, rerankDepth);
            int n = 0;
            while (n < rerankDepth && rowIds[n] >= 0) { raw[n] = index.Metric.ToScore(dist[q * rerankDepth + n]); n++; }
            normalizer.Normalize(rowIds[..n], raw.AsSpan(0, n), norm);
            for (int j = 0; j < n; j++) order[j] = j;
            var ord = order.AsSpan(0, n);
            var idsCopy = rowIds[..n].ToArray();
            ord.Sort((a, b) => norm[a] != norm[b] ? norm[b].CompareTo(norm[a]) : idsCopy[a].CompareTo(idsCopy[b]));
            for (int j = 0; j < k; j++)
            {
                scores[q * k + j] = j < n ? norm[ord[j]] : float.NegativeInfinity;
                labels[q * k + j] = j < n ? idsCopy[ord[j]] : -1;
            }
        }
    }
}
