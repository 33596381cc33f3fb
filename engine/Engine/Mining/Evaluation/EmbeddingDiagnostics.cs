using Engine.Distance;

namespace Engine.Mining.Evaluation;

/// <summary>Options of <see cref="EmbeddingDiagnostics.Compute"/>.</summary>
public sealed record EmbeddingDiagnosticsOptions
{
    /// <summary>Rows used for uniformity (all pairs) and effective rank: a seeded sample of at most this many (≥ 2).</summary>
    public int Sample { get; init; } = 4096;

    /// <summary>Seed of the sample.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Alignment exponent α (Wang &amp; Isola use 2), &gt; 0.</summary>
    public double Alpha { get; init; } = 2;

    /// <summary>Uniformity temperature t (Wang &amp; Isola use 2), &gt; 0.</summary>
    public double T { get; init; } = 2;

    /// <summary>Checks the fields.</summary>
    public void Validate()
    {
        if (Sample < 2) throw new ArgumentOutOfRangeException(nameof(Sample), Sample, "Sample must be >= 2.");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "Alpha must be finite and > 0.");
        if (!(T > 0) || double.IsInfinity(T)) throw new ArgumentOutOfRangeException(nameof(T), T, "T must be finite and > 0.");
    }
}

/// <summary>Embedding-set diagnostics.</summary>
/// <param name="Alignment">E‖f(x) − f(y)‖^α over the positive pairs, on unit vectors (null without pairs).</param>
/// <param name="Uniformity">log E exp(−t‖f(x) − f(y)‖²) over all pairs i &lt; j of the sample, on unit vectors.</param>
/// <param name="EffectiveRank">RankMe (Garrido et al. 2023): exp of the entropy of σ/‖σ‖₁ + 1e-7, σ the singular values of the (raw) sample.</param>
/// <param name="SampleSize">Rows in the sample.</param>
/// <param name="SingularValues">σ of the sample, largest first.</param>
public sealed record EmbeddingDiagnostics(double? Alignment, double Uniformity, double EffectiveRank, int SampleSize, double[] SingularValues)
{
    /// <summary>RankMe's ε.</summary>
    public const double RankMeEpsilon = 1e-7;

    /// <summary>
    /// Computes the diagnostics of <paramref name="vectors"/> (n × d). The sample is every row when n ≤ Sample, else
    /// the Sample rows with the smallest <see cref="CounterRng.Hash"/>(seed, 1, row), in row order.
    /// </summary>
    /// <param name="vectors">n × d embeddings.</param>
    /// <param name="dimension">d.</param>
    /// <param name="pairs">Positive pairs as rows (i, j), for alignment; null for none.</param>
    /// <param name="options">Sample, seed, α, t.</param>
    /// <exception cref="ArgumentException">Fewer than 2 rows, non-finite values, a pair row out of range, or a zero vector.</exception>
    public static EmbeddingDiagnostics Compute(ReadOnlySpan<float> vectors, int dimension, IReadOnlyList<(int, int)>? pairs,
        EmbeddingDiagnosticsOptions? options = null)
    {
        options ??= new EmbeddingDiagnosticsOptions();
        options.Validate();
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        if (n < 2) throw new ArgumentException($"Diagnostics need at least 2 vectors, got {n}.", nameof(vectors));
        Guard.Finite(vectors, dimension, nameof(vectors));
        int d = dimension;
        var unit = new double[n * d];
        for (int i = 0; i < n; i++)
        {
            var row = vectors.Slice(i * d, d);
            double norm = Math.Sqrt(Distances.SquaredNorm(row));
            if (norm == 0) throw new ArgumentException($"vectors row {i} is all zeros; alignment and uniformity need unit-normalisable vectors.", nameof(vectors));
            for (int j = 0; j < d; j++) unit[i * d + j] = row[j] / norm;
        }
        double? alignment = null;
        if (pairs is { Count: > 0 })
        {
            double sum = 0;
            foreach (var (a, b) in pairs)
            {
                if ((uint)a >= (uint)n || (uint)b >= (uint)n)
                    throw new ArgumentException($"Pair ({a}, {b}) names a row outside 0..{n - 1}.", nameof(pairs));
                sum += Math.Pow(Math.Sqrt(SquaredDistance(unit, a, b, d)), options.Alpha);
            }
            alignment = sum / pairs.Count;
        }

        int[] sample;
        if (n <= options.Sample) sample = Enumerable.Range(0, n).ToArray();
        else
        {
            sample = Enumerable.Range(0, n).OrderBy(i => CounterRng.Hash(options.Seed, 1, (ulong)i)).ThenBy(i => i).Take(options.Sample).ToArray();
            Array.Sort(sample);
        }
        int s = sample.Length;
        // Uniformity: log-mean-exp over all pairs of the sample, in double; two passes (the max first) instead of
        // holding s²/2 terms.
        double max = double.NegativeInfinity;
        for (int a = 0; a < s; a++)
            for (int b = a + 1; b < s; b++)
                max = Math.Max(max, -options.T * SquaredDistance(unit, sample[a], sample[b], d));
        double acc = 0;
        for (int a = 0; a < s; a++)
            for (int b = a + 1; b < s; b++)
                acc += Math.Exp(-options.T * SquaredDistance(unit, sample[a], sample[b], d) - max);
        double uniformity = max + Math.Log(acc / ((double)s * (s - 1) / 2));

        // RankMe: singular values of the raw sample = √ eigenvalues of its Gram matrix ZᵀZ (d × d, double).
        var z = new double[(long)s * d];
        for (int i = 0; i < s; i++)
            for (int j = 0; j < d; j++) z[(long)i * d + j] = vectors[sample[i] * d + j];
        var gram = new double[d * d];
        ParallelWork.For(0, d, 0, p =>
        {
            for (int q = p; q < d; q++)
            {
                double g = 0;
                for (long r = 0; r < s; r++) g += z[r * d + p] * z[r * d + q];
                gram[p * d + q] = g;
                gram[q * d + p] = g;
            }
        });
        var eigen = SymmetricEigenvalues(gram, d);
        var sigma = eigen.Select(l => Math.Sqrt(Math.Max(0, l))).OrderDescending().ToArray();
        double l1 = sigma.Sum();
        double entropy = 0;
        foreach (double v in sigma)
        {
            double p = (l1 > 0 ? v / l1 : 0) + RankMeEpsilon;
            entropy -= p * Math.Log(p);
        }
        return new EmbeddingDiagnostics(alignment, uniformity, Math.Exp(entropy), s, sigma);
    }

    private static double SquaredDistance(double[] x, int a, int b, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++)
        {
            double diff = x[a * d + j] - x[b * d + j];
            s += diff * diff;
        }
        return s;
    }

    /// <summary>Eigenvalues of a symmetric d × d matrix (row-major, overwritten) by cyclic Jacobi rotations.</summary>
    internal static double[] SymmetricEigenvalues(double[] a, int d)
    {
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, diag = 0;
            for (int p = 0; p < d; p++)
            {
                diag += a[p * d + p] * a[p * d + p];
                for (int q = p + 1; q < d; q++) off += a[p * d + q] * a[p * d + q];
            }
            if (off <= 1e-30 * Math.Max(diag, double.Epsilon)) break;
            for (int p = 0; p < d - 1; p++)
                for (int q = p + 1; q < d; q++)
                {
                    double apq = a[p * d + q];
                    if (Math.Abs(apq) < 1e-300) continue;
                    double app = a[p * d + p], aqq = a[q * d + q];
                    double theta = (aqq - app) / (2 * apq);
                    double tan = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) tan = 1;
                    double c = 1 / Math.Sqrt(tan * tan + 1), sn = tan * c;
                    for (int k = 0; k < d; k++)
                    {
                        double akp = a[k * d + p], akq = a[k * d + q];
                        a[k * d + p] = c * akp - sn * akq;
                        a[k * d + q] = sn * akp + c * akq;
                    }
                    for (int k = 0; k < d; k++)
                    {
                        double apk = a[p * d + k], aqk = a[q * d + k];
                        a[p * d + k] = c * apk - sn * aqk;
                        a[q * d + k] = sn * apk + c * aqk;
                    }
                }
        }
        var result = new double[d];
        for (int p = 0; p < d; p++) result[p] = a[p * d + p];
        return result;
    }
}
