using System.Numerics;
using System.Runtime.CompilerServices;

namespace Engine.Distance;

public static partial class Distances
{
    /// <summary>
    /// Offers one block of a GEMM's dot products to a top-k heap as keys (smaller is better): ‖q‖² + ‖y‖² − 2 q·y
    /// (clamped at 0) for squared L2 when <paramref name="similarity"/> is false, −q·y otherwise; entry j carries
    /// <paramref name="ids"/>[j]. A vector of keys all above the heap's threshold (the common case once the heap is full)
    /// is skipped without touching the heap. An entry whose id is <paramref name="skip"/> is never pushed (a self-join's
    /// own point), nor one whose key is above <paramref name="bound"/> (a caller's upper bound on the final k-th key,
    /// e.g. from another heap of the same query).
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length (norms are only read for L2).</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PushKeys(ref TopKHeap heap, ReadOnlySpan<float> dots, float qNorm, ReadOnlySpan<float> norms,
        ReadOnlySpan<long> ids, bool similarity, long skip = long.MinValue, float bound = float.PositiveInfinity)
    {
        if (ids.Length != dots.Length || (!similarity && norms.Length != dots.Length)) ThrowLength(nameof(ids));
        float threshold = MathF.Min(heap.Threshold, bound);
        int w = Vector<float>.Count, t = 0;
        var qn = new Vector<float>(qNorm);
        Span<float> keys = stackalloc float[Vector<float>.Count];
        for (; t + w <= dots.Length; t += w)
        {
            var dv = new Vector<float>(dots.Slice(t, w));
            var kv = similarity ? -dv : Vector.Max(Vector<float>.Zero, qn + new Vector<float>(norms.Slice(t, w)) - (dv + dv));
            if (!Vector.LessThanOrEqualAny(kv, new Vector<float>(threshold))) continue;
            kv.CopyTo(keys);
            for (int u = 0; u < w; u++)
            {
                if (keys[u] > threshold || ids[t + u] == skip) continue;
                heap.Push(keys[u], ids[t + u]);
                threshold = MathF.Min(heap.Threshold, bound);
            }
        }
        for (; t < dots.Length; t++)
        {
            float key = similarity ? -dots[t] : MathF.Max(0f, qNorm + norms[t] - 2f * dots[t]);
            if (key > threshold || ids[t] == skip) continue;
            heap.Push(key, ids[t]);
            threshold = MathF.Min(heap.Threshold, bound);
        }
    }
}
