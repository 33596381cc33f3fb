using System.Collections.Concurrent;

namespace Engine.Quantization;

/// <summary>
/// The weight η = h∥ / h⊥ of score-aware quantisation (Guo et al., ICML 2020, Theorem 3.2): for a unit query q uniform
/// on the sphere of dimension d, weighted by 1[⟨q, x̂⟩ ≥ t], E[⟨q, e⟩²] = h∥ ‖e∥‖² + h⊥ ‖e⊥‖² with h∥ = E[cos²θ] and
/// h⊥ = E[sin²θ] / (d − 1), θ the angle of q to x. With θ's density ∝ sin^(d−2) θ on [0, arccos t]:
/// η(d, t) = (d − 1) ∫ sin^(d−2) θ cos² θ dθ / ∫ sin^d θ dθ. η(d, 0) = 1 (every query counts: plain codes);
/// η grows with t and d; (d − 1) t² / (1 − t²) is its large-d limit, too small for small d (η(100, 0.2) = 5.7, not 4.1).
/// </summary>
public static class AnisotropicWeight
{
    private const int TablePoints = 256;
    private const double TableMax = 0.995;
    private static readonly ConcurrentDictionary<int, double[]> Tables = new();

    /// <summary>η(d, t) by numerical integration (Simpson, 4 096 intervals over the range where the integrand is
    /// above 1e-16 of its peak).</summary>
    /// <exception cref="ArgumentOutOfRangeException">d &lt; 2 or t outside [0, 1).</exception>
    public static double Exact(int dimension, double t)
    {
        if (dimension < 2) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "η needs d >= 2.");
        if (!(t >= 0 && t < 1)) throw new ArgumentOutOfRangeException(nameof(t), t, "t must be in [0, 1).");
        double alpha = Math.Acos(t), k = dimension - 2;
        // With u = α − θ, ln sin α − ln sin(α − u) ≥ u cot α + u²/2, so past U the integrand sin^(d−2) θ / sin^(d−2) α
        // is below e^-37.
        double cot = t / Math.Sqrt(1 - t * t);
        double range = k == 0 ? alpha : Math.Min(alpha, -cot + Math.Sqrt(cot * cot + 2 * 37 / k));
        const int Steps = 4096;
        double h = range / Steps, logSinAlpha = Math.Log(Math.Sin(alpha)), num = 0, den = 0;
        for (int i = 0; i <= Steps; i++)
        {
            double theta = alpha - i * h, s = Math.Sin(theta);
            double w = (i == 0 || i == Steps ? 1 : i % 2 == 1 ? 4 : 2) * (k == 0 ? 1 : s > 0 ? Math.Exp(k * (Math.Log(s) - logSinAlpha)) : 0);
            double c = Math.Cos(theta);
            num += w * c * c;
            den += w * s * s;
        }
        return den > 0 ? Math.Max(1, (dimension - 1) * num / den) : 1;
    }

    /// <summary>η(d, t) interpolated from a table of <see cref="Exact"/> over t in [0, 0.995] built once per
    /// dimension (t is clamped there).</summary>
    public static double For(int dimension, double t)
    {
        if (dimension < 2) return 1;
        var table = Tables.GetOrAdd(dimension, d =>
        {
            var v = new double[TablePoints + 1];
            for (int j = 0; j <= TablePoints; j++) v[j] = Exact(d, TableMax * j / TablePoints);
            return v;
        });
        double x = Math.Clamp(t, 0, TableMax) / TableMax * TablePoints;
        int i = Math.Min((int)x, TablePoints - 1);
        double f = x - i;
        return table[i] + f * (table[i + 1] - table[i]);
    }
}
