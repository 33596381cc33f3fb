using System.Runtime.Intrinsics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Engine.Quantization;

/// <summary>
/// The loops of RaBitQ (Gao &amp; Long, SIGMOD 2024; extended codes, SIGMOD 2025): the per-vector search for the
/// rescaling factor of the extended (B-bit) codes, bit-plane packing, and the query-side byte table with which a code's
/// inner product with a float query is B × ⌈d/8⌉ table look-ups.
/// </summary>
/// <remarks>
/// Codes are stored as B bit planes: plane b holds bit b of every coordinate's code value, 8 coordinates per byte
/// (coordinate i in byte i / 8, bit i % 8), padding bits zero. The query table holds, for each byte position j of a
/// plane and each of the 256 byte values, the sum of the query's coordinates 8j..8j+7 selected by the byte's bits, so
/// Σ_i q_i · code_i = Σ_b 2^b Σ_j T[j][plane_b[j]].
/// </remarks>
internal static class RaBitQKernels
{
    /// <summary>Candidate scales the extended-code search evaluates (between half and all of the largest useful scale).</summary>
    internal const int ScaleCandidates = 48;

    /// <summary>Bytes of one bit plane for d coordinates.</summary>
    public static int PlaneBytes(int d) => (d + 7) >> 3;

    /// <summary>Floats of the query table for d coordinates.</summary>
    public static int LutFloats(int d) => PlaneBytes(d) * 256;

    /// <summary>
    /// Quantises the unit vector <paramref name="u"/> (rotated, ‖u‖ = 1) to <paramref name="bits"/>-bit code values
    /// (0..2^B − 1, one per byte of <paramref name="values"/>): the grid point y_i = value_i − (2^B − 1)/2 whose direction is
    /// closest to u. For B = 1 that is the sign; for B ≥ 2 each coordinate is |u_i| scaled by t, floored and capped at
    /// 2^(B−1) − 1, with t the best of <see cref="ScaleCandidates"/> scales by cosine ⟨y, u⟩ / ‖y‖ (the rescaling
    /// search of extended RaBitQ). Returns ⟨y, u⟩ and ‖y‖².
    /// </summary>
    public static (float Dot, float Norm2) Quantize(ReadOnlySpan<float> u, int bits, Span<byte> values)
    {
        int d = u.Length, half = 1 << (bits - 1), cap = half - 1;
        float t = 0;
        if (cap > 0)
        {
            float max = 0;
            for (int i = 0; i < d; i++) max = MathF.Max(max, MathF.Abs(u[i]));
            if (max > 0)
            {
                float tEnd = half / max, best = -1;
                for (int k = 0; k < ScaleCandidates; k++)
                {
                    float tk = tEnd * (0.5f + 0.5f * k / (ScaleCandidates - 1));
                    float score = ScaleScore(u, tk, cap);
                    if (score > best) { best = score; t = tk; }
                }
            }
        }
        double dot = 0, norm2 = 0;
        for (int i = 0; i < d; i++)
        {
            float a = MathF.Abs(u[i]);
            int level = cap == 0 ? 0 : Math.Min((int)MathF.Floor(a * t), cap);
            bool negative = u[i] < 0;
            values[i] = (byte)(negative ? half - 1 - level : half + level);
            double y = level + 0.5;
            dot += y * a;
            norm2 += y * y;
        }
        return ((float)dot, (float)norm2);
    }

    // Cosine ⟨y, |u|⟩ / ‖y‖ of the grid point of scale t (y_i = min(⌊t|u_i|⌋, cap) + 1/2).
    private static float ScaleScore(ReadOnlySpan<float> u, float t, int cap)
    {
        int d = u.Length, i = 0;
        float dot = 0, norm2 = 0;
        if (Vector.IsHardwareAccelerated && d >= Vector<float>.Count)
        {
            var vt = new Vector<float>(t);
            var vcap = new Vector<float>(cap);
            var halfV = new Vector<float>(0.5f);
            Vector<float> accDot = Vector<float>.Zero, accNorm = Vector<float>.Zero;
            for (; i <= d - Vector<float>.Count; i += Vector<float>.Count)
            {
                var a = Vector.Abs(new Vector<float>(u.Slice(i)));
                var y = Vector.Min(Vector.Floor(a * vt), vcap) + halfV;
                accDot += y * a;
                accNorm += y * y;
            }
            dot = Vector.Sum(accDot);
            norm2 = Vector.Sum(accNorm);
        }
        for (; i < d; i++)
        {
            float a = MathF.Abs(u[i]);
            float y = MathF.Min(MathF.Floor(a * t), cap) + 0.5f;
            dot += y * a;
            norm2 += y * y;
        }
        return dot / MathF.Sqrt(norm2);
    }

    /// <summary>Packs d code values of <paramref name="bits"/> bits into bit planes (<paramref name="planes"/>: bits × ⌈d/8⌉ bytes).</summary>
    public static void Pack(ReadOnlySpan<byte> values, int bits, Span<byte> planes)
    {
        int d = values.Length, pb = PlaneBytes(d);
        planes[..(bits * pb)].Clear();
        for (int i = 0; i < d; i++)
        {
            int v = values[i], at = i >> 3, bit = 1 << (i & 7);
            for (int b = 0; b < bits; b++)
                if (((v >> b) & 1) != 0) planes[b * pb + at] |= (byte)bit;
        }
    }

    /// <summary>Unpacks bit planes into d code values.</summary>
    public static void Unpack(ReadOnlySpan<byte> planes, int bits, Span<byte> values)
    {
        int d = values.Length, pb = PlaneBytes(d);
        for (int i = 0; i < d; i++)
        {
            int v = 0, at = i >> 3, shift = i & 7;
            for (int b = 0; b < bits; b++) v |= ((planes[b * pb + at] >> shift) & 1) << b;
            values[i] = (byte)v;
        }
    }

    /// <summary>
    /// Builds the query table (<see cref="LutFloats"/> floats): entry [j × 256 + m] is the sum of q[8j + s] over the
    /// set bits s of m (coordinates past d count zero), computed as (sum over m's high nibble) + (sum over its low
    /// nibble) from two 16-entry tables, 16 entries a step where the machine has 128-bit vectors (the same additions
    /// either way, so every SIMD level gives the same table).
    /// </summary>
    public static void BuildLut(ReadOnlySpan<float> q, Span<float> lut)
    {
        int d = q.Length, pb = PlaneBytes(d);
        Span<float> eight = stackalloc float[8];
        Span<float> lo = stackalloc float[16];
        Span<float> hi = stackalloc float[16];
        for (int j = 0; j < pb; j++)
        {
            for (int s = 0; s < 8; s++) eight[s] = 8 * j + s < d ? q[8 * j + s] : 0f;
            lo[0] = hi[0] = 0;
            for (int m = 1; m < 16; m++)
            {
                int low = BitOperations.TrailingZeroCount(m);
                lo[m] = lo[m & (m - 1)] + eight[low];
                hi[m] = hi[m & (m - 1)] + eight[4 + low];
            }
            var t = lut.Slice(j * 256, 256);
            if (Vector128.IsHardwareAccelerated)
            {
                var l0 = Vector128.Create<float>(lo[..4]);
                var l1 = Vector128.Create<float>(lo[4..8]);
                var l2 = Vector128.Create<float>(lo[8..12]);
                var l3 = Vector128.Create<float>(lo[12..]);
                for (int h = 0; h < 16; h++)
                {
                    var b = Vector128.Create(hi[h]);
                    var row = t.Slice(16 * h, 16);
                    (b + l0).CopyTo(row);
                    (b + l1).CopyTo(row[4..]);
                    (b + l2).CopyTo(row[8..]);
                    (b + l3).CopyTo(row[12..]);
                }
            }
            else
            {
                for (int h = 0; h < 16; h++)
                    for (int l = 0; l < 16; l++) t[16 * h + l] = hi[h] + lo[l];
            }
        }
    }

    /// <summary>Σ_b 2^b Σ_j lut[j × 256 + plane_b[j]]: the query's inner product with the code values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float PlaneDot(byte* planes, int planeBytes, int bits, float* lut)
    {
        float total = 0, weight = 1;
        for (int b = 0; b < bits; b++, weight *= 2)
        {
            byte* p = planes + b * planeBytes;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int j = 0;
            for (; j <= planeBytes - 4; j += 4)
            {
                s0 += lut[(j << 8) + p[j]];
                s1 += lut[((j + 1) << 8) + p[j + 1]];
                s2 += lut[((j + 2) << 8) + p[j + 2]];
                s3 += lut[((j + 3) << 8) + p[j + 3]];
            }
            for (; j < planeBytes; j++) s0 += lut[(j << 8) + p[j]];
            total += weight * (s0 + s1 + s2 + s3);
        }
        return total;
    }
}
