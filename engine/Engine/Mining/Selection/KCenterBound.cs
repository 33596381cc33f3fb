using System.Numerics;
using System.Runtime.CompilerServices;
using Engine.Distance;

namespace Engine.Mining.Selection;

/// <summary>
/// A byte copy of the rows that gives k-center a certified lower bound on ‖x − c‖ at a quarter of the memory traffic
/// of the f32 rows. Every dimension j is stored as q_j = round((x_j − o_j) / s) ∈ 0..255 (shifted to signed bytes),
/// with o_j the dimension's minimum and one scale s = (largest dimension range) / 255 for all dimensions, so that
/// ‖x̂ − ĉ‖ = s·√D with D = Σ (q_x − q_c)² an exact integer. With e_x = ‖x − x̂‖ (computed in double, rounded up),
/// the triangle inequality gives ‖x − c‖ ≥ s·√D − e_x − e_c: a row whose bound already reaches its current distance
/// to the chosen set cannot move to the new centre, and its f32 distance is never computed.
/// </summary>
internal sealed class KCenterBound
{
    // The exact int kernel holds Σ (q_x − q_c)² ≤ d · 255² in an int.
    public const int MaxDimension = 33_025;

    private readonly sbyte[] _codes;
    private readonly double[] _error;
    private readonly double _scale;
    private readonly int _d;

    private KCenterBound(sbyte[] codes, double[] error, double scale, int d)
    {
        _codes = codes;
        _error = error;
        _scale = scale;
        _d = d;
    }

    /// <summary>
    /// Quantises the n × d rows of <paramref name="x"/>: one pass for each dimension's range and spread, one to encode.
    /// The code stores the dimensions by decreasing variance so that a partial sum over its first bytes already
    /// carries most of the distance (the early exit of <see cref="AtLeast"/>).
    /// </summary>
    public static KCenterBound Build(float[] x, int d, int threads)
    {
        int n = x.Length / d;
        const int Block = 1024;
        int blocks = (n + Block - 1) / Block;
        var lo = new float[d];
        var hi = new float[d];
        var sum = new double[d];
        var sumSq = new double[d];
        Array.Fill(lo, float.PositiveInfinity);
        Array.Fill(hi, float.NegativeInfinity);
        var gate = new object();
        ParallelWork.For(0, blocks, threads, () => (Lo: Fill(d, float.PositiveInfinity), Hi: Fill(d, float.NegativeInfinity), S: new float[d], Q: new float[d], Tmp: new float[d]),
            (b, _, acc) =>
            {
                Array.Clear(acc.S);
                Array.Clear(acc.Q);
                Spread(x, d, b * Block, Math.Min(n, (b + 1) * Block), acc.Lo, acc.Hi, acc.S, acc.Q);
                lock (gate)
                {
                    for (int j = 0; j < d; j++) { sum[j] += acc.S[j]; sumSq[j] += acc.Q[j]; }
                }
                return acc;
            },
            acc =>
            {
                lock (gate)
                {
                    for (int j = 0; j < d; j++)
                    {
                        lo[j] = Math.Min(lo[j], acc.Lo[j]);
                        hi[j] = Math.Max(hi[j], acc.Hi[j]);
                    }
                }
            });
        double range = 0;
        for (int j = 0; j < d; j++) range = Math.Max(range, (double)hi[j] - lo[j]);
        double scale = range > 0 ? range / 255 : 1;
        float inverse = (float)(1 / scale);
        // Dimensions by decreasing variance (ties by index): the order only affects speed, never the bound.
        var order = new int[d];
        var variance = new double[d];
        for (int j = 0; j < d; j++)
        {
            order[j] = j;
            variance[j] = sumSq[j] / n - (sum[j] / n) * (sum[j] / n);
        }
        Array.Sort(order, (a, b) => variance[a] != variance[b] ? variance[b].CompareTo(variance[a]) : a.CompareTo(b));
        var codes = new sbyte[(long)n * d];
        var error = new double[n];
        ParallelWork.For(0, blocks, threads, () => new float[d], (b, _, level) =>
        {
            Encode(x, d, b * Block, Math.Min(n, (b + 1) * Block), lo, inverse, scale, order, level, codes, error);
            return level;
        }, _ => { });
        return new KCenterBound(codes, error, scale, d);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // one pass per run: skip tier-0
    private static void Encode(float[] x, int d, int start, int end, float[] lo, float inverse, double scale, int[] order,
        float[] level, sbyte[] codes, double[] error)
    {
            int w = Vector<float>.Count, wide = d - d % w;
            var top = new Vector<float>(255f);
            for (int i = start; i < end; i++)
            {
                var row = x.AsSpan(i * d, d);
                // Any level in 0..255 keeps the bound valid (the error below is measured from the level taken).
                int j0 = 0;
                for (; j0 < wide; j0 += w)
                {
                    var t = Vector.Round((new Vector<float>(row.Slice(j0, w)) - new Vector<float>(lo.AsSpan(j0, w))) * inverse);
                    Vector.Min(Vector.Max(t, Vector<float>.Zero), top).CopyTo(level.AsSpan(j0, w));
                }
                for (; j0 < d; j0++) level[j0] = Math.Clamp(MathF.Round((row[j0] - lo[j0]) * inverse), 0f, 255f);
                var code = codes.AsSpan(i * d, d);
                double e = 0;
                for (int p = 0; p < d; p++)
                {
                    int j = order[p];
                    double r = row[j] - (lo[j] + scale * level[j]);
                    e += r * r;
                    code[p] = (sbyte)((int)level[j] - 128);
                }
                // Rounded up (relative and absolute slack) so that the bound stays a bound after double rounding.
                error[i] = Math.Sqrt(e) * (1 + 1e-9) + 1e-12 * scale;
            }
    }

    // Plain Vector<T> loops rather than TensorPrimitives: a short run would spend this pass in tier-0 library code.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Spread(float[] x, int d, int start, int end, float[] lo, float[] hi, float[] sum, float[] sumSq)
    {
        int w = Vector<float>.Count, wide = d - d % w;
        for (int i = start; i < end; i++)
        {
            var row = x.AsSpan(i * d, d);
            int j = 0;
            for (; j < wide; j += w)
            {
                var v = new Vector<float>(row.Slice(j, w));
                Vector.Min(new Vector<float>(lo.AsSpan(j, w)), v).CopyTo(lo.AsSpan(j, w));
                Vector.Max(new Vector<float>(hi.AsSpan(j, w)), v).CopyTo(hi.AsSpan(j, w));
                (new Vector<float>(sum.AsSpan(j, w)) + v).CopyTo(sum.AsSpan(j, w));
                (new Vector<float>(sumSq.AsSpan(j, w)) + v * v).CopyTo(sumSq.AsSpan(j, w));
            }
            for (; j < d; j++)
            {
                float v = row[j];
                lo[j] = Math.Min(lo[j], v);
                hi[j] = Math.Max(hi[j], v);
                sum[j] += v;
                sumSq[j] += v * v;
            }
        }
    }

    private static float[] Fill(int d, float value)
    {
        var a = new float[d];
        Array.Fill(a, value);
        return a;
    }

    /// <summary>Starts loading a row's code into the cache (rows are visited in group order, scattered in memory).</summary>
    public void Prefetch(int row) => Runtime.Prefetch.Range(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_codes.AsSpan(row * _d, _d)));

    /// <summary>
    /// True when the bound proves ‖x_row − x_centre‖² ≥ <paramref name="squared"/> (then the row cannot get closer than
    /// that to the centre); false when it cannot tell. Stops reading the row's code once the partial sum suffices.
    /// </summary>
    public bool AtLeast(int centre, int row, double squared)
    {
        // s·√D·(1 − 1e-12) − e_x − e_c ≥ √squared  ⇔  D ≥ τ², with the bound's slack kept on the safe side.
        double tau = (Math.Sqrt(squared) + _error[row] + _error[centre]) / (_scale * (1 - 1e-12));
        double t2 = Math.Ceiling(tau * tau);
        if (!(t2 <= int.MaxValue)) return false;
        int threshold = Math.Max(1, (int)t2);
        return Distances.SquaredL2AtLeast(_codes.AsSpan(centre * _d, _d), _codes.AsSpan(row * _d, _d), threshold) >= threshold;
    }
}
