using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Distance;

/// <summary>
/// Bounded max-heap of the k smallest keys seen so far, over caller-owned spans (no allocation).
/// Keys are "smaller is better": callers searching by similarity push the negated score.
/// </summary>
public ref struct TopKHeap : ICandidateSink
{
    private readonly Span<float> _keys;
    private readonly Span<long> _ids;
    private int _count;

    /// <summary>Creates an empty heap over <paramref name="keys"/> and <paramref name="ids"/> (both length k).</summary>
    public TopKHeap(Span<float> keys, Span<long> ids)
    {
        if (keys.Length != ids.Length) throw new ArgumentException("keys and ids must have the same length (k).");
        _keys = keys;
        _ids = ids;
        _count = 0;
    }

    /// <summary>
    /// Resumes a heap previously built over the same spans that holds <paramref name="count"/> entries
    /// (lets a caller keep many heaps alive as plain spans plus counts).
    /// </summary>
    public TopKHeap(Span<float> keys, Span<long> ids, int count) : this(keys, ids)
    {
        if ((uint)count > (uint)keys.Length) throw new ArgumentOutOfRangeException(nameof(count));
        _count = count;
    }

    /// <summary>k, the capacity.</summary>
    public readonly int Capacity => _keys.Length;

    /// <summary>Number of entries held.</summary>
    public readonly int Count => _count;

    /// <summary>The key a new entry must beat (strictly smaller) to enter; +∞ while not full.</summary>
    public readonly float Threshold => _count < _keys.Length ? float.PositiveInfinity : _keys[0];

    /// <summary>Offers an entry; kept when the heap is not full or the key beats the current worst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Push(float key, long id)
    {
        if (_count < _keys.Length)
        {
            int i = _count++;
            // sift up
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (!Worse(key, id, _keys[parent], _ids[parent])) break;
                _keys[i] = _keys[parent];
                _ids[i] = _ids[parent];
                i = parent;
            }
            _keys[i] = key;
            _ids[i] = id;
        }
        else if (_keys.Length > 0 && Worse(_keys[0], _ids[0], key, id))
        {
            ReplaceTop(key, id);
        }
    }

    /// <summary>
    /// Offers every <paramref name="keys"/>[j] with id <paramref name="firstId"/> + j, in order: the same content as
    /// <see cref="Push"/> one by one (ties go by id either way), but 16 keys at a time are compared with the threshold
    /// and only those at or below it are pushed, so once the heap is full and tight most keys cost a fraction of a
    /// compare (1 024 keys in random order into a heap of 32 push about 32 + 32 ln 32 ≈ 140 of them).
    /// </summary>
    public void PushAll(ReadOnlySpan<float> keys, long firstId)
    {
        if (_keys.Length == 0) return; // a heap of capacity 0 keeps nothing
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= keys.Length; j += 16)
            {
                var v = Vector512.Create(keys.Slice(j, 16));
                uint mask = (uint)Vector512.LessThanOrEqual(v, Vector512.Create(Threshold)).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    int t = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    float key = keys[j + t];
                    if (key <= Threshold) Push(key, firstId + j + t);
                }
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; j + 8 <= keys.Length; j += 8)
            {
                var v = Vector256.Create(keys.Slice(j, 8));
                uint mask = Vector256.LessThanOrEqual(v, Vector256.Create(Threshold)).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    int t = BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                    float key = keys[j + t];
                    if (key <= Threshold) Push(key, firstId + j + t);
                }
            }
        for (; j < keys.Length; j++)
            if (keys[j] <= Threshold) Push(keys[j], firstId + j);
    }

    /// <summary>Rows of a strided sample <see cref="PushAllSampled"/> estimates its cut from.</summary>
    private const int CutSample = 128;

    /// <summary>
    /// Offers every <paramref name="keys"/>[j] with id <paramref name="firstId"/> + j to an empty heap, with the content
    /// of <see cref="PushAll"/>: the k-th smallest key is first estimated from a strided sample of 128 keys (a cut that
    /// about 2k keys pass), the keys at or below the cut are gathered 16 (AVX2: 8) at a time into the scratch spans, and only
    /// those are pushed. When fewer than k keys pass, the cut was below the k-th smallest and every key is offered as
    /// <see cref="PushAll"/> does; otherwise the k smallest all passed, so the content is the same. Pays where k is small
    /// against the keys (the coarse probes of an IVF search: 24 of 1 024 lists push ~90 keys one by one otherwise). Below
    /// 512 keys or above k = n / 16 the sample would cost what it saves: there the cut comes from each lane's smallest
    /// keys (<see cref="PushAllLaneCut"/>, k ≤ 64 and n ≥ 64 ⌈k / 16⌉), otherwise it is <see cref="PushAll"/> itself.
    /// </summary>
    /// <param name="keys">The keys (finite).</param>
    /// <param name="firstId">Id of keys[0].</param>
    /// <param name="scratchKeys">At least keys.Length floats.</param>
    /// <param name="scratchIds">At least keys.Length longs.</param>
    public void PushAllSampled(ReadOnlySpan<float> keys, long firstId, Span<float> scratchKeys, Span<long> scratchIds)
    {
        int n = keys.Length, k = _keys.Length;
        bool wide = Vector512.IsHardwareAccelerated;
        if (_count != 0 || k == 0 || !(wide || Vector256.IsHardwareAccelerated) || scratchKeys.Length < n || scratchIds.Length < n)
        {
            PushAll(keys, firstId);
            return;
        }
        if (n < 4 * CutSample || (long)k * 16 > n)
        {
            if (!UsesLaneCut(n, k)) PushAll(keys, firstId);
            else if (wide) PushAllLaneCut(keys, firstId, scratchKeys, scratchIds);
            else PushAllLaneCut256(keys, firstId, scratchKeys, scratchIds);
            return;
        }
        PushAtOrBelow(keys, firstId, SampledCut(keys, k), scratchKeys, scratchIds);
    }

    // Whether PushAllSampled cuts n keys for a heap of k by each lane's ⌈k / lanes⌉ smallest keys (where it does not
    // sample): k up to LaneLevels per lane and at least four keys per kept minimum.
    private static bool UsesLaneCut(int n, int k)
    {
        int lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
        return k <= lanes * LaneLevels && n >= 4 * lanes * ((k + lanes - 1) / lanes);
    }

    // An estimate of the k-th smallest of the n ≥ 512 keys from a strided sample of 128: the sample's
    // (2 ⌈128 k / n⌉ + 2)-th smallest key, a cut about 2k + n / 64 keys pass (fewer than k now and then).
    private static float SampledCut(ReadOnlySpan<float> keys, int k)
    {
        int n = keys.Length;
        int stride = n / CutSample;
        int rank = Math.Min(CutSample, 2 * ((k * CutSample + n - 1) / n) + 2);
        Span<float> sk = stackalloc float[rank];
        Span<long> si = stackalloc long[rank];
        var sample = new TopKHeap(sk, si);
        Span<float> rows = stackalloc float[CutSample];
        for (int j = 0; j < CutSample; j++) rows[j] = keys[j * stride];
        sample.PushAll(rows, 0);
        return sample.Threshold;
    }

    /// <summary>
    /// The <paramref name="outKeys"/>.Length = k smallest of <paramref name="keys"/> (ids <paramref name="firstId"/> + j),
    /// sorted, into <paramref name="outKeys"/> / <paramref name="outIds"/>: the content and order of a heap over those
    /// spans after <see cref="PushAll"/> and <see cref="SortAndPad"/> (ties by id; −1 ids and <paramref name="padKey"/>
    /// past the keys when there are fewer than k). For k large against the keys (the coarse probes of an IVF search at
    /// high recall: 128 of 1 024 lists), where the heap pushes k (1 + ln(n / k)) keys with a sift each and then sorts:
    /// the k-th smallest is estimated from a strided sample of 128 keys (a cut about 2k keys pass), the keys at or below
    /// the cut are gathered as (order-preserving key bits, index) pairs packed in 64 bits, and those are sorted once.
    /// Where <see cref="PushAllSampled"/> cuts by each lane's smallest keys (k ≤ 64 with AVX-512, 32 with AVX2, against
    /// few keys), when fewer than k pass the cut, for fewer than 512 keys or for k above half the keys, it is the heap.
    /// </summary>
    /// <param name="keys">The keys (finite).</param>
    /// <param name="firstId">Id of keys[0].</param>
    /// <param name="outKeys">k floats.</param>
    /// <param name="outIds">k longs.</param>
    /// <param name="padKey">Key of the padding entries.</param>
    /// <param name="scratchKeys">At least keys.Length floats.</param>
    /// <param name="scratchIds">At least keys.Length longs.</param>
    public static void SmallestSorted(ReadOnlySpan<float> keys, long firstId, Span<float> outKeys, Span<long> outIds, float padKey,
        Span<float> scratchKeys, Span<long> scratchIds)
    {
        int n = keys.Length, k = outKeys.Length;
        if (outIds.Length != k) throw new ArgumentException("outKeys and outIds must have the same length (k).");
        if ((n < 4 * CutSample || (long)k * 16 > n) && UsesLaneCut(n, k))
        {
            var heap = new TopKHeap(outKeys, outIds);
            heap.PushAllSampled(keys, firstId, scratchKeys, scratchIds);
            heap.SortAndPad(padKey);
            return;
        }
        if (n < 4 * CutSample || k == 0 || scratchIds.Length < n || (long)k * 2 > n || !Vector256.IsHardwareAccelerated)
        {
            HeapSmallest(keys, firstId, outKeys, outIds, padKey);
            return;
        }
        float cut = SampledCut(keys, k);
        var packed = System.Runtime.InteropServices.MemoryMarshal.Cast<long, ulong>(scratchIds);
        int found = 0, i = 0;
        var cv = Vector256.Create(cut);
        for (; i + 8 <= n; i += 8)
        {
            uint mask = Vector256.LessThanOrEqual(Vector256.Create(keys.Slice(i, 8)), cv).ExtractMostSignificantBits();
            while (mask != 0)
            {
                int t = BitOperations.TrailingZeroCount(mask);
                mask &= mask - 1;
                packed[found++] = Pack(keys[i + t], i + t);
            }
        }
        for (; i < n; i++)
            if (keys[i] <= cut) packed[found++] = Pack(keys[i], i);
        if (found < k) // the cut was below the k-th smallest key
        {
            HeapSmallest(keys, firstId, outKeys, outIds, padKey);
            return;
        }
        var chosen = packed[..found];
        chosen.Sort();
        for (int j = 0; j < k; j++)
        {
            int index = (int)(uint)chosen[j];
            outKeys[j] = keys[index];
            outIds[j] = firstId + index;
        }
    }

    private static void HeapSmallest(ReadOnlySpan<float> keys, long firstId, Span<float> outKeys, Span<long> outIds, float padKey)
    {
        var heap = new TopKHeap(outKeys, outIds);
        heap.PushAll(keys, firstId);
        heap.SortAndPad(padKey);
    }

    // (key, index) as one 64-bit integer whose unsigned order is the heap's order (by key, ties by index, so by id):
    // the key's bits made order-preserving (negatives flipped whole, the sign bit set on the rest; −0 counted as +0, as
    // the float compare does) above the index.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Pack(float key, int index)
    {
        uint bits = BitConverter.SingleToUInt32Bits(key + 0f);
        uint ordered = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
        return (ulong)ordered << 32 | (uint)index;
    }

    /// <summary>
    /// Pushes the keys at or below <paramref name="cut"/> (gathered 16 at a time into the scratch spans first), or every
    /// key when fewer than k are: a cut at or above the k-th smallest key leaves the content of <see cref="PushAll"/>.
    /// </summary>
    private void PushAtOrBelow(ReadOnlySpan<float> keys, long firstId, float cut, Span<float> scratchKeys, Span<long> scratchIds)
    {
        int n = keys.Length, found = 0, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var cv = Vector512.Create(cut);
            for (; i + 16 <= n; i += 16)
                found = Gather((uint)Vector512.LessThanOrEqual(Vector512.Create(keys.Slice(i, 16)), cv).ExtractMostSignificantBits(),
                    keys, i, firstId, scratchKeys, scratchIds, found);
        }
        else
        {
            var cv = Vector256.Create(cut);
            for (; i + 8 <= n; i += 8)
                found = Gather(Vector256.LessThanOrEqual(Vector256.Create(keys.Slice(i, 8)), cv).ExtractMostSignificantBits(),
                    keys, i, firstId, scratchKeys, scratchIds, found);
        }
        for (; i < n; i++)
            if (keys[i] <= cut) { scratchKeys[found] = keys[i]; scratchIds[found++] = firstId + i; }
        if (found < _keys.Length) // the cut was below the k-th smallest (a sample's estimate, or NaN keys)
        {
            PushAll(keys, firstId);
            return;
        }
        for (int j = 0; j < found; j++) Push(scratchKeys[j], scratchIds[j]);
    }

    // Appends keys[i + t] (id firstId + i + t) for each set bit t of mask at scratch position found; returns the new count.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Gather(uint mask, ReadOnlySpan<float> keys, int i, long firstId, Span<float> scratchKeys, Span<long> scratchIds, int found)
    {
        while (mask != 0)
        {
            int t = BitOperations.TrailingZeroCount(mask);
            mask &= mask - 1;
            scratchKeys[found] = keys[i + t];
            scratchIds[found++] = firstId + i + t;
        }
        return found;
    }

    /// <summary>Per-lane minima <see cref="PushAllLaneCut"/> keeps at most (so k ≤ 64).</summary>
    private const int LaneLevels = 4;

    /// <summary>
    /// <see cref="PushAllSampled"/> for fewer keys (the coarse probes of a few hundred lists): the L = ⌈k / 16⌉
    /// smallest keys of each of the 16 lanes are kept while the keys stream by 16 at a time (2 L min / max a vector);
    /// those 16 L distinct keys hold at least k, so their k-th smallest (by counting, <see cref="KthOfMinima"/>) bounds the k-th
    /// smallest of all keys from above. Only the keys at or below that cut are pushed: about k to 2 k of them where
    /// <see cref="PushAll"/> pushes k (1 + ln(n / k)) in random order (71 for 20 of 256 lists). Every key of the top
    /// k, ties included, is at or below the cut, so the content equals <see cref="PushAll"/>'s.
    /// </summary>
    private void PushAllLaneCut(ReadOnlySpan<float> keys, long firstId, Span<float> scratchKeys, Span<long> scratchIds)
    {
        int n = keys.Length, k = _keys.Length, levels = (k + 15) >> 4, full = n & ~15;
        Span<float> minima = stackalloc float[16 * LaneLevels];
        var inf = Vector512.Create(float.PositiveInfinity);
        Vector512<float> m0 = inf, m1 = inf, m2 = inf, m3 = inf;
        for (int i = 0; i < full; i += 16)
        {
            // insert the 16 keys into each lane's sorted minima (levels beyond L stay +∞ and are never read)
            var x = Vector512.Create(keys.Slice(i, 16));
            var lo = Vector512.MinNative(m0, x); x = Vector512.MaxNative(m0, x); m0 = lo;
            if (levels == 1) continue;
            lo = Vector512.MinNative(m1, x); x = Vector512.MaxNative(m1, x); m1 = lo;
            if (levels == 2) continue;
            lo = Vector512.MinNative(m2, x); x = Vector512.MaxNative(m2, x); m2 = lo;
            if (levels == 3) continue;
            m3 = Vector512.MinNative(m3, x);
        }
        m0.CopyTo(minima);
        m1.CopyTo(minima[16..]);
        m2.CopyTo(minima[32..]);
        m3.CopyTo(minima[48..]);
        PushAtOrBelow(keys, firstId, KthOfMinima(minima[..(16 * levels)], k), scratchKeys, scratchIds);
    }

    /// <summary><see cref="PushAllLaneCut"/> with 8 lanes (AVX2): the ⌈k / 8⌉ smallest keys of each lane, k ≤ 32.</summary>
    private void PushAllLaneCut256(ReadOnlySpan<float> keys, long firstId, Span<float> scratchKeys, Span<long> scratchIds)
    {
        int n = keys.Length, k = _keys.Length, levels = (k + 7) >> 3, full = n & ~7;
        Span<float> minima = stackalloc float[8 * LaneLevels];
        var inf = Vector256.Create(float.PositiveInfinity);
        Vector256<float> m0 = inf, m1 = inf, m2 = inf, m3 = inf;
        for (int i = 0; i < full; i += 8)
        {
            var x = Vector256.Create(keys.Slice(i, 8));
            var lo = Vector256.MinNative(m0, x); x = Vector256.MaxNative(m0, x); m0 = lo;
            if (levels == 1) continue;
            lo = Vector256.MinNative(m1, x); x = Vector256.MaxNative(m1, x); m1 = lo;
            if (levels == 2) continue;
            lo = Vector256.MinNative(m2, x); x = Vector256.MaxNative(m2, x); m2 = lo;
            if (levels == 3) continue;
            m3 = Vector256.MinNative(m3, x);
        }
        m0.CopyTo(minima);
        m1.CopyTo(minima[8..]);
        m2.CopyTo(minima[16..]);
        m3.CopyTo(minima[24..]);
        PushAtOrBelow(keys, firstId, KthOfMinima(minima[..(8 * levels)], k), scratchKeys, scratchIds);
    }

    /// <summary>
    /// The k-th smallest of the lane cuts' kept minima (a multiple of 8 of them, at least k): the largest with fewer
    /// than k of them below it, each counted against all, 8 at a time (both lane cuts: at most 64 values).
    /// </summary>
    private static float KthOfMinima(ReadOnlySpan<float> minima, int k)
    {
        var cut = Vector256.Create(float.NegativeInfinity);
        var kv = Vector256.Create(k);
        for (int b = 0; b < minima.Length; b += 8)
        {
            var v = Vector256.Create(minima.Slice(b, 8));
            var below = Vector256<int>.Zero;
            foreach (float m in minima) below -= Vector256.LessThan(Vector256.Create(m), v).AsInt32();
            cut = Vector256.MaxNative(cut, Vector256.ConditionalSelect(Vector256.LessThan(below, kv).AsSingle(), v, Vector256.Create(float.NegativeInfinity)));
        }
        return Lanes.MaxAcross(cut);
    }

    // a is worse than b: larger key, ties broken by larger id so results are deterministic.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Worse(float ka, long ia, float kb, long ib) => ka > kb || (ka == kb && ia > ib);

    private void ReplaceTop(float key, long id)
    {
        int n = _count, i = 0;
        while (true)
        {
            int l = 2 * i + 1;
            if (l >= n) break;
            int r = l + 1;
            int c = r < n && Worse(_keys[r], _ids[r], _keys[l], _ids[l]) ? r : l;
            if (!Worse(_keys[c], _ids[c], key, id)) break;
            _keys[i] = _keys[c];
            _ids[i] = _ids[c];
            i = c;
        }
        _keys[i] = key;
        _ids[i] = id;
    }

    /// <summary>
    /// Sorts the held entries ascending by key in place (heap sort) and pads the rest of the spans with
    /// (<paramref name="padKey"/>, -1). Returns the number of real entries. The heap is empty afterwards.
    /// </summary>
    public int SortAndPad(float padKey)
    {
        int n = _count;
        for (int end = n - 1; end > 0; end--)
        {
            float k0 = _keys[0]; long i0 = _ids[0];
            float kl = _keys[end]; long il = _ids[end];
            _keys[end] = k0; _ids[end] = i0;
            _count = end;
            // re-insert last element at root and sift down within [0, end)
            _keys[0] = kl; _ids[0] = il;
            SiftDownRoot(end);
        }
        _count = 0;
        for (int j = n; j < _keys.Length; j++) { _keys[j] = padKey; _ids[j] = -1; }
        return n;
    }

    private void SiftDownRoot(int n)
    {
        int i = 0;
        float key = _keys[0]; long id = _ids[0];
        while (true)
        {
            int l = 2 * i + 1;
            if (l >= n) break;
            int r = l + 1;
            int c = r < n && Worse(_keys[r], _ids[r], _keys[l], _ids[l]) ? r : l;
            if (!Worse(_keys[c], _ids[c], key, id)) break;
            _keys[i] = _keys[c];
            _ids[i] = _ids[c];
            i = c;
        }
        _keys[i] = key;
        _ids[i] = id;
    }
}
