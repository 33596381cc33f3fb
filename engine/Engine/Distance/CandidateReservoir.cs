using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

/// <summary>
/// The best <c>capacity</c> (key, id) pairs of a stream, smaller key first and ties to the smaller id, gathered the
/// way faiss' <c>ReservoirTopN</c> does: candidates at or below <see cref="Threshold"/> are appended to a buffer of
/// twice the capacity, and a full buffer is cut back to between <c>capacity</c> and 1.25 × <c>capacity</c> of its best
/// pairs, which tightens the threshold: with AVX-512, buffers of up to 512 pairs by counting keys' ranks (16 keys
/// per compare), larger ones by one or two partition passes around sampled pivots (16 pairs a step); with AVX2 the
/// same rank cut (8 keys per compare, permutes for the compress-stores) up to <see cref="RankCutMax256"/> pairs;
/// without either, capacities below 32 exactly by quickselect and larger ones by the sampled partitions. An offer costs one append instead of a heap sift, which
/// pays when many candidates pass (top-k × refine factor of 40 and more). The pairs drained equal a <see cref="TopKHeap"/>'s for the same offers.
/// </summary>
/// <remarks>Not thread-safe; reused across queries with <see cref="Reset"/>.</remarks>
internal sealed partial class CandidateReservoir
{
    private static readonly bool Avx512Available = Simd.Best == SimdLevel.V512 && Avx512F.IsSupported;
    private static readonly bool Avx2Available = Simd.Best >= SimdLevel.V256 && Avx2.IsSupported;

    private readonly bool _avx512, _avx2; // at most one: the widest the machine (and the caller) allows
    private float[] _keys = [], _betterKeys = [], _worseKeys = [];
    private readonly float[] _nearKeys = new float[RankCutMax + BlockSlack + 32]; // KthByBracket's keys near the cut
    private long[] _ids = [], _betterIds = [], _worseIds = [];
    private int _capacity, _count, _limit; // _limit: pairs the buffer holds before a cut (2 × capacity)
    private long _worstId = long.MaxValue; // id of the pair at the threshold (ties at the threshold go to smaller ids)

    /// <summary>A reservoir that cuts its buffer with AVX-512, or else AVX2, where the machine has it.</summary>
    public CandidateReservoir() : this(SimdLevel.V512) { }

    /// <summary>Tests: the widest vector code used is <paramref name="level"/> (or the machine's best, if lower);
    /// below <see cref="SimdLevel.V256"/> the scalar partition.</summary>
    internal CandidateReservoir(SimdLevel level)
    {
        _avx512 = level >= SimdLevel.V512 && Avx512Available;
        _avx2 = !_avx512 && level >= SimdLevel.V256 && Avx2Available;
    }

    /// <summary>Offers with a key above this cannot be among the best: +∞ until the buffer first fills.</summary>
    public float Threshold { get; private set; } = float.PositiveInfinity;

    /// <summary>Pairs held (up to twice the capacity between compactions).</summary>
    public int Count => _count;

    /// <summary>Empties the reservoir for a stream whose best <paramref name="capacity"/> pairs are wanted.</summary>
    public void Reset(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _capacity = capacity;
        int size = Math.Max(2 * capacity, 8);
        _limit = size;
        int room = size + BlockSlack; // AddBlock may append a whole block past the limit
        if (_keys.Length < room)
        {
            // whole 64-pair groups (the rank cut loads four vectors of 16 keys at a time) and one vector of slack:
            // compress-stores write whole vectors at the end of the buffer
            _keys = new float[((room + 63) & ~63) + 16];
            _ids = new long[((room + 63) & ~63) + 16];
            _betterKeys = new float[room + 16]; // 16 lanes of slack: the AVX-512 partition stores whole vectors
            _worseKeys = new float[room + 16];
            _betterIds = new long[room + 16];
            _worseIds = new long[room + 16];
        }
        _count = 0;
        _worstId = long.MaxValue;
        Threshold = capacity == 0 ? float.NegativeInfinity : float.PositiveInfinity;
    }

    /// <summary>
    /// Appends a pair whose key the caller found ≤ <see cref="Threshold"/>. Returns true when the buffer was
    /// compacted first, i.e. when <see cref="Threshold"/> may have tightened.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Add(float key, long id)
    {
        bool compacted = false;
        if (_count >= _limit)
        {
            Compact();
            compacted = true;
            if (Worse(key, id, Threshold, _worstId)) return true; // the cut made it worse than every kept pair
        }
        _keys[_count] = key;
        _ids[_count] = id;
        _count++;
        return compacted;
    }

    /// <summary>Pairs <see cref="AddBlock"/> may append past the limit: one block of a fast-scan list.</summary>
    private const int BlockSlack = 32;

    /// <summary>True where <see cref="AddBlock"/> may be called (AVX-512 or AVX2).</summary>
    public bool TakesBlocks => _avx512 || _avx2;

    /// <summary>
    /// Appends the pairs of one fast-scan block at once: for each bit i of <paramref name="mask"/> the key
    /// <paramref name="bias"/> + <paramref name="sums"/>[i] × <paramref name="step"/> (rounded as that scalar expression)
    /// with id <paramref name="firstId"/> + i, unless the key is above <see cref="Threshold"/>; compress-stores, 16 keys
    /// and 8 ids a step, instead of a branch per survivor. When the block could overflow the buffer it is cut first.
    /// Returns true when it was cut (<see cref="Threshold"/> may have tightened). AVX-512 or AVX2 only (<see cref="TakesBlocks"/>).
    /// </summary>
    /// <param name="sums">32 quantised sums (the block's 32 rows).</param>
    /// <param name="mask">The rows offered (bit i: row i).</param>
    /// <param name="bias">Key of a zero sum.</param>
    /// <param name="step">Key per unit of sum.</param>
    /// <param name="firstId">Id of row 0; row i gets firstId + i.</param>
    public unsafe bool AddBlock(ushort* sums, uint mask, float bias, float step, long firstId)
    {
        bool cut = false;
        // A buffer of at most the capacity is never cut (its threshold stays +∞): the block goes into the slack.
        if (_count + BitOperations.PopCount(mask) > _limit && _count > _capacity)
        {
            Compact();
            cut = true;
        }
        if (_avx2)
        {
            AddBlock256(sums, mask, bias, step, firstId);
            return cut;
        }
        var t = Vector512.Create(Threshold);
        var b = Vector512.Create(bias);
        var st = Vector512.Create(step);
        var k0 = Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector256.Load(sums))) * st + b;
        var k1 = Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector256.Load(sums + 16))) * st + b;
        uint m0 = (mask & 0xFFFF) & (uint)Vector512.LessThanOrEqual(k0, t).ExtractMostSignificantBits();
        uint m1 = (mask >> 16) & (uint)Vector512.LessThanOrEqual(k1, t).ExtractMostSignificantBits();
        fixed (float* keys = _keys)
        fixed (long* ids = _ids)
        {
            int n = _count;
            n = AppendHalf(keys, ids, n, k0, m0, firstId);
            n = AppendHalf(keys, ids, n, k1, m1, firstId + 16);
            _count = n;
        }
        return cut;
    }

    // Appends the keys of 16 lanes (and ids first, first + 1, ...) selected by the low 16 bits of bits; returns the new count.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int AppendHalf(float* keys, long* ids, int n, Vector512<float> k, uint bits, long first)
    {
        if (bits == 0) return n;
        var laneBit = Vector512.Create(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
        var sel = Vector512.Equals(Vector512.Create((int)bits) & laneBit, laneBit);
        Avx512F.Compress(Vector512<float>.Zero, sel.AsSingle(), k).Store(keys + n);
        var lane = Vector512.Create(0L, 1, 2, 3, 4, 5, 6, 7);
        var idBit = Vector512.Create(1L, 2, 4, 8, 16, 32, 64, 128);
        var lo = Vector512.Equals(Vector512.Create((long)(bits & 0xFF)) & idBit, idBit);
        var hi = Vector512.Equals(Vector512.Create((long)(bits >> 8)) & idBit, idBit);
        int nlo = BitOperations.PopCount(bits & 0xFF);
        Avx512F.Compress(Vector512<long>.Zero, lo, Vector512.Create(first) + lane).Store(ids + n);
        Avx512F.Compress(Vector512<long>.Zero, hi, Vector512.Create(first + 8) + lane).Store(ids + n + nlo);
        return n + BitOperations.PopCount(bits);
    }

    /// <summary>Moves the best pairs into <paramref name="heap"/> (whose capacity should be the reservoir's) and empties the reservoir.</summary>
    public void Drain(ref TopKHeap heap)
    {
        if (_count > _capacity) Compact();
        for (int i = 0; i < _count; i++) heap.Push(_keys[i], _ids[i]);
        _count = 0;
    }

    // Keeps at least the best _capacity pairs (and at most a quarter more) at the front and sets the threshold to the
    // worst of them. Pairs dropped are worse than every pair kept, so the kept set always holds the best _capacity
    // pairs of the stream, and Drain's heap makes the result exact; the slack lets the cut stop after one or two
    // partition passes instead of selecting the exact rank (faiss' partition_fuzzy does the same for its reservoir).
    // Small buffers with AVX-512 are cut by rank counting (CutByRank), which keeps the ties at the cut as well.
    private void Compact()
    {
        int m = _capacity;
        if (m == 0) { _count = 0; return; }
        if (_count <= m) return; // nothing to cut: the threshold stays where it is
        int n = _count, slack = m >> 2;
        if (_avx512 && n <= RankCutMax && n > m && CutByRank(n, m)) return;
        if (_avx2 && n <= RankCutMax256 && n > m && CutByRank256(n, m)) return;
        if (m < FuzzyFrom && n > m)
        {
            // Small buffers: the exact cut is as cheap as the sampled one and leaves more room before the next cut
            // (GloVe probes 32 / refine 2, m = 20: the fuzzy cut was ~10 % slower per query; at refine 4, m = 40, it
            // is 5-8 % faster, hence the bound of 32).
            CutExactly(n, m);
            return;
        }
        if (n <= m + slack)
        {
            SetThresholdToWorst(n);
            return;
        }
        int lo = 0, hi = n; // pairs before lo are kept (better than the window [lo, hi)), pairs from hi on are dropped
        while (true)
        {
            int w = hi - lo, target = Math.Min(w, m - lo + (slack >> 1));
            int pivot = ChoosePivot(lo, w, target);
            float pk = _keys[pivot];
            long pi = _ids[pivot];
            int c = Partition(lo, hi, pk, pi);
            if (lo + c < m) lo += c;                 // all of them kept: look for the rest above the pivot
            else if (lo + c > m + slack && c < w) hi = lo + c; // too many: cut again below the pivot
            else if (c == w && lo + c > m + slack) // only repeated pairs stop a cut from shrinking the window: select exactly
            {
                CutExactly(n, m);
                return;
            }
            else
            {
                _count = lo + c;
                Threshold = pk; // the pivot is the worst pair kept
                _worstId = pi;
                return;
            }
        }
    }

    // Buffers of up to this many pairs are cut by counting ranks (AVX-512), and no pair moved twice. Measured in one
    // process against the previous cut (bench/ivf/ab-builds, MNIST IVF256,PQ98x4fsnr,Refine(SQ8), 2 threads): QPS
    // +17 % at refine 3 (capacity 30, where the quickselect took 12 % of a query), +9 % at refine 4, +4 % at refine 8
    // (160 pairs), and the bracket (KthByBracket) above 64 pairs another +4-9 % at refine 8, +2-4 % at refine 6;
    // GloVe-100 at refine 6 / 8 +2 % and +5 %; up to 512 pairs (refine 12 / 16 at k = 10) +2-7 % over the sampled
    // partitions, which larger buffers keep.
    private const int RankCutMax = 512;

    /// <summary>
    /// The cut of a small buffer without moving a pair twice. The capacity-th smallest key T is the largest key with
    /// fewer than <paramref name="m"/> keys below it: up to 64 pairs every key is counted against the others
    /// (<see cref="KthByCount"/>), larger buffers bracket T first (<see cref="KthByBracket"/>). Every pair
    /// with key ≤ T is kept, in place and in order (compress-stores), and the threshold becomes T with the largest id
    /// kept at T. That keeps the best <paramref name="m"/> pairs and the ties at T; returns false, changing nothing,
    /// when the ties would keep more than a quarter over the capacity (the caller then cuts exactly by (key, id)).
    /// </summary>
    private unsafe bool CutByRank(int n, int m)
    {
        int blocks = (n + 15) >> 4;
        var nv = Vector512.Create(n);
        fixed (float* keys = _keys)
        fixed (long* ids = _ids)
        {
            float t = n > BracketFrom ? KthByBracket(keys, n, m) : KthByCount(keys, n, m);
            var t16 = Vector512.Create(t);
            int kept = 0;
            for (int b = 0; b < blocks; b++) kept += BitOperations.PopCount(KeepBits(keys + b * 16, t16, b, nv));
            if (kept < m || kept > m + (m >> 2)) return false; // fewer than m: NaN keys (no scanner makes them)
            long worst = long.MinValue;
            int w = 0;
            for (int b = 0; b < blocks; b++)
            {
                // Stores of block b land in [w, w + 16) with w ≤ 16 b: never on a block not yet loaded.
                var k = Vector512.Load(keys + b * 16);
                var id0 = Vector512.Load(ids + b * 16);
                var id1 = Vector512.Load(ids + b * 16 + 8);
                var keep = Vector512.LessThanOrEqual(k, t16).AsInt32() & Valid(b, nv);
                uint bits = (uint)keep.ExtractMostSignificantBits();
                uint ties = (uint)(Vector512.Equals(k, t16).AsInt32() & keep).ExtractMostSignificantBits();
                while (ties != 0)
                {
                    worst = Math.Max(worst, ids[b * 16 + BitOperations.TrailingZeroCount(ties)]);
                    ties &= ties - 1;
                }
                int c0 = BitOperations.PopCount(bits & 0xFF);
                Avx512F.Compress(Vector512<float>.Zero, keep.AsSingle(), k).Store(keys + w);
                Avx512F.Compress(Vector512<long>.Zero, Avx512F.ConvertToVector512Int64(keep.GetLower()), id0).Store(ids + w);
                Avx512F.Compress(Vector512<long>.Zero, Avx512F.ConvertToVector512Int64(keep.GetUpper()), id1).Store(ids + w + c0);
                w += BitOperations.PopCount(bits);
            }
            _count = w;
            Threshold = t;
            _worstId = worst;
        }
        return true;
    }

    // c plus one in the lanes where x < k.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> CountIf(Vector512<float> x, Vector512<float> k, Vector512<int> c) =>
        Vector512.ConditionalSelect(Vector512.LessThan(x, k).AsInt32(), c + Vector512<int>.One, c);

    /// <summary>
    /// The m-th smallest of n ≤ 64 keys: every key counted against the others, the four vectors of the buffer in one
    /// pass (lanes past n are masked off); T is the largest key with fewer than m keys below it.
    /// </summary>
    private static unsafe float KthByCount(float* keys, int n, int m)
    {
        var mv = Vector512.Create(m);
        var nv = Vector512.Create(n);
        Vector512<float> k0 = Vector512.Load(keys), k1 = Vector512.Load(keys + 16), k2 = Vector512.Load(keys + 32), k3 = Vector512.Load(keys + 48);
        Vector512<int> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int i = 0; i < n; i++)
        {
            var x = Vector512.Create(keys[i]);
            c0 = CountIf(x, k0, c0);
            c1 = CountIf(x, k1, c1);
            c2 = CountIf(x, k2, c2);
            c3 = CountIf(x, k3, c3);
        }
        var tv = Vector512.MaxNative(Vector512.MaxNative(RankedBelow(k0, c0, 0, mv, nv), RankedBelow(k1, c1, 1, mv, nv)),
            Vector512.MaxNative(RankedBelow(k2, c2, 2, mv, nv), RankedBelow(k3, c3, 3, mv, nv)));
        return Lanes.MaxAcross(tv);
    }

    // Buffers above this many pairs find T by bracketing it between sampled keys first (KthByBracket).
    private const int BracketFrom = 64;

    /// <summary>
    /// The m-th smallest of the n keys without counting every key against every other: sixteen evenly spaced keys are
    /// counted against the buffer (one compare per key), which brackets T between the largest sampled key with fewer
    /// than m keys below it and the smallest with m or more; only the keys inside the bracket (about 2n / 17) are then
    /// counted, and T is the largest of them with fewer than m keys below it.
    /// </summary>
    private unsafe float KthByBracket(float* keys, int n, int m)
    {
        var mv = Vector512.Create(m);
        Span<float> picked = stackalloc float[16];
        for (int j = 0; j < 16; j++) picked[j] = keys[(int)((2L * j + 1) * n / 32)];
        var sample = Vector512.Create<float>(picked);
        Vector512<int> c0 = default, c1 = default;
        int i = 0;
        for (; i + 1 < n; i += 2) // two counters: the additions of consecutive keys do not wait on each other
        {
            c0 = CountIf(Vector512.Create(keys[i]), sample, c0);
            c1 = CountIf(Vector512.Create(keys[i + 1]), sample, c1);
        }
        if (i < n) c0 = CountIf(Vector512.Create(keys[i]), sample, c0);
        var under = Vector512.LessThan(c0 + c1, mv).AsSingle();
        float lo = Lanes.MaxAcross(Vector512.ConditionalSelect(under, sample, Vector512.Create(float.NegativeInfinity)));
        float hi = Lanes.MinAcross(Vector512.ConditionalSelect(under, Vector512.Create(float.PositiveInfinity), sample));
        var lo16 = Vector512.Create(lo);
        var hi16 = Vector512.Create(hi);
        bool bounded = hi != float.PositiveInfinity;
        int blocks = (n + 15) >> 4, c = 0;
        var nv = Vector512.Create(n);
        fixed (float* near = _nearKeys)
        {
            for (int b = 0; b < blocks; b++)
            {
                var k = Vector512.Load(keys + b * 16);
                var inside = Vector512.GreaterThanOrEqual(k, lo16).AsInt32() & Valid(b, nv);
                if (bounded) inside &= Vector512.LessThan(k, hi16).AsInt32();
                Avx512F.Compress(Vector512<float>.Zero, inside.AsSingle(), k).Store(near + c);
                c += BitOperations.PopCount((uint)inside.ExtractMostSignificantBits());
            }
            var tv = Vector512.Create(float.NegativeInfinity);
            var cv = Vector512.Create(c);
            for (int b = 0; b < c; b += 16)
            {
                var k = Vector512.Load(near + b);
                Vector512<int> d0 = default, d1 = default;
                for (i = 0; i + 1 < n; i += 2)
                {
                    d0 = CountIf(Vector512.Create(keys[i]), k, d0);
                    d1 = CountIf(Vector512.Create(keys[i + 1]), k, d1);
                }
                if (i < n) d0 = CountIf(Vector512.Create(keys[i]), k, d0);
                var ok = Vector512.LessThan(d0 + d1, mv) & Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(b), cv);
                tv = Vector512.MaxNative(tv, Vector512.ConditionalSelect(ok.AsSingle(), k, Vector512.Create(float.NegativeInfinity)));
            }
            return Lanes.MaxAcross(tv);
        }
    }

    // Lanes of block b inside the buffer's n pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Valid(int b, Vector512<int> n) => Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(b * 16), n);

    // The keys of block b whose count of smaller keys is below the capacity (−∞ elsewhere and outside the buffer).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> RankedBelow(Vector512<float> k, Vector512<int> below, int b, Vector512<int> m, Vector512<int> n) =>
        Vector512.ConditionalSelect((Vector512.LessThan(below, m) & Valid(b, n)).AsSingle(), k, Vector512.Create(float.NegativeInfinity));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe uint KeepBits(float* block, Vector512<float> t, int b, Vector512<int> n) =>
        (uint)(Vector512.LessThanOrEqual(Vector512.Load(block), t).AsInt32() & Valid(b, n)).ExtractMostSignificantBits();

    private void CutExactly(int n, int m)
    {
        SelectBest(n, m);
        SetThresholdToWorst(m);
    }

    private void SetThresholdToWorst(int n)
    {
        _count = n;
        float wk = _keys[0];
        long wi = _ids[0];
        for (int i = 1; i < n; i++)
            if (Worse(_keys[i], _ids[i], wk, wi)) { wk = _keys[i]; wi = _ids[i]; }
        Threshold = wk;
        _worstId = wi;
    }

    // a is worse than b: larger key, ties broken by larger id (the order of TopKHeap).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Worse(float ka, long ia, float kb, long ib) => ka > kb || (ka == kb && ia > ib);

    private const int Samples = 16;

    // Capacities below this are cut exactly (quickselect), larger ones fuzzily.
    private const int FuzzyFrom = 32;

    // The index of a pair of the window [lo, lo + w) whose rank in it is about target (1 = best): exact for small
    // windows, otherwise read off a sorted sample of 16 evenly spaced pairs. Never the window's worst pair when the
    // window has more than one (so a cut below it always shrinks the window), never beyond the window.
    private int ChoosePivot(int lo, int w, int target)
    {
        Span<int> sample = stackalloc int[Samples];
        int s = Math.Min(w, Samples);
        for (int j = 0; j < s; j++) sample[j] = lo + (s == w ? j : (int)((2L * j + 1) * w / (2 * Samples)));
        int r = Math.Clamp(s == w ? target - 1 : (int)((long)target * Samples / w), 0, Math.Max(0, s - 2));
        if (_avx512 && s == Samples) return sample[RankAvx512(sample, r)];
        for (int j = 1; j < s; j++) // insertion sort of the sample by (key, id)
        {
            int x = sample[j], t = j - 1;
            while (t >= 0 && Worse(_keys[sample[t]], _ids[sample[t]], _keys[x], _ids[x])) { sample[t + 1] = sample[t]; t--; }
            sample[t + 1] = x;
        }
        return sample[r];
    }

    // The position in sample (16 pair indexes) of the pair with the given rank among them (0 = best): each pair's
    // rank is the number of sample pairs before it, counted 16 at a time.
    private int RankAvx512(ReadOnlySpan<int> sample, int rank)
    {
        Span<float> k = stackalloc float[Samples];
        Span<long> id = stackalloc long[Samples];
        for (int j = 0; j < Samples; j++) { k[j] = _keys[sample[j]]; id[j] = _ids[sample[j]]; }
        var kv = Vector512.Create<float>(k);
        var i0 = Vector512.Create<long>(id[..8]);
        var i1 = Vector512.Create<long>(id[8..]);
        int best = 0, bestRank = -1;
        for (int j = 0; j < Samples; j++)
        {
            var kj = Vector512.Create(k[j]);
            var ij = Vector512.Create(id[j]);
            uint before = (uint)Vector512.ExtractMostSignificantBits(Vector512.LessThan(kv, kj));
            uint tie = (uint)Vector512.ExtractMostSignificantBits(Vector512.Equals(kv, kj));
            if ((tie & (tie - 1)) != 0) // another pair with the same key: those with smaller ids come first
            {
                uint smaller = (uint)Vector512.ExtractMostSignificantBits(Vector512.LessThan(i0, ij))
                    | ((uint)Vector512.ExtractMostSignificantBits(Vector512.LessThan(i1, ij)) << 8);
                before |= tie & smaller;
            }
            int r = BitOperations.PopCount(before);
            if (r == rank) return j;
            if (r < rank && r >= bestRank) { best = j; bestRank = r; }
        }
        return best; // repeated pairs share a rank: the nearest one below
    }

    // Moves the pairs of [lo, hi) at or below (pk, pi) to the front of the window, the others after them (both in
    // their old order); returns how many are at or below. Out of place through the scratch buffers, branch-free.
    private int Partition(int lo, int hi, float pk, long pi)
    {
        int nb, nw;
        if (_avx512 && hi - lo >= 16) (nb, nw) = PartitionAvx512(lo, hi, pk, pi);
        else (nb, nw) = PartitionScalar(lo, lo, hi, pk, pi, 0, 0);
        _betterKeys.AsSpan(0, nb).CopyTo(_keys.AsSpan(lo));
        _betterIds.AsSpan(0, nb).CopyTo(_ids.AsSpan(lo));
        _worseKeys.AsSpan(0, nw).CopyTo(_keys.AsSpan(lo + nb));
        _worseIds.AsSpan(0, nw).CopyTo(_ids.AsSpan(lo + nb));
        return nb;
    }

    private (int Better, int Worse) PartitionScalar(int lo, int from, int hi, float pk, long pi, int nb, int nw)
    {
        var keys = _keys;
        var ids = _ids;
        var bk = _betterKeys;
        var bi = _betterIds;
        var wk = _worseKeys;
        var wi = _worseIds;
        for (int i = from; i < hi; i++)
        {
            float k = keys[i];
            long id = ids[i];
            int better = ((k < pk) | ((k == pk) & (id <= pi))) ? 1 : 0;
            bk[nb] = k; bi[nb] = id;
            wk[nw] = k; wi[nw] = id;
            nb += better;
            nw += 1 - better;
        }
        return (nb, nw);
    }

    // 16 pairs per step: compare the keys (and the ids where a key ties the pivot's), compress each side into
    // registers and store all lanes (the scratch buffers have 16 lanes of slack; a compress straight to memory is
    // microcoded on some cores).
    private unsafe (int Better, int Worse) PartitionAvx512(int lo, int hi, float pk, long pi)
    {
        int nb = 0, nw = 0, i = lo;
        var pkv = Vector512.Create(pk);
        var piv = Vector512.Create(pi);
        fixed (float* keys = _keys, bk = _betterKeys, wk = _worseKeys)
        fixed (long* ids = _ids, bi = _betterIds, wi = _worseIds)
        {
            for (; i + 16 <= hi; i += 16)
            {
                var k = Vector512.Load(keys + i);
                var id0 = Vector512.Load(ids + i);
                var id1 = Vector512.Load(ids + i + 8);
                var better = Avx512F.CompareLessThan(k, pkv).AsInt32();
                var eq = Avx512F.CompareEqual(k, pkv).AsInt32();
                if (eq != Vector512<int>.Zero)
                {
                    var le = Vector512.Create(
                        Avx512F.ConvertToVector256Int32(Avx512F.CompareLessThanOrEqual(id0, piv)),
                        Avx512F.ConvertToVector256Int32(Avx512F.CompareLessThanOrEqual(id1, piv)));
                    better |= eq & le;
                }
                var worse = ~better;
                uint bits = (uint)better.ExtractMostSignificantBits();
                int cb = BitOperations.PopCount(bits), cb0 = BitOperations.PopCount(bits & 0xFF);
                int cw = 16 - cb, cw0 = 8 - cb0;
                var b0 = Avx512F.ConvertToVector512Int64(better.GetLower());
                var b1 = Avx512F.ConvertToVector512Int64(better.GetUpper());
                var w0 = Avx512F.ConvertToVector512Int64(worse.GetLower());
                var w1 = Avx512F.ConvertToVector512Int64(worse.GetUpper());
                Avx512F.Compress(Vector512<float>.Zero, better.AsSingle(), k).Store(bk + nb);
                Avx512F.Compress(Vector512<float>.Zero, worse.AsSingle(), k).Store(wk + nw);
                Avx512F.Compress(Vector512<long>.Zero, b0, id0).Store(bi + nb);
                Avx512F.Compress(Vector512<long>.Zero, b1, id1).Store(bi + nb + cb0);
                Avx512F.Compress(Vector512<long>.Zero, w0, id0).Store(wi + nw);
                Avx512F.Compress(Vector512<long>.Zero, w1, id1).Store(wi + nw + cw0);
                nb += cb;
                nw += cw;
            }
        }
        return PartitionScalar(lo, i, hi, pk, pi, nb, nw);
    }

    // Quickselect: afterwards [0, m) holds the m best of [0, n). Median-of-three pivot, then a branchless Lomuto
    // partition (swap every element with the boundary, advance the boundary by the comparison's 0/1).
    private void SelectBest(int n, int m)
    {
        var keys = _keys;
        var ids = _ids;
        int lo = 0, hi = n - 1, target = m - 1;
        while (hi > lo)
        {
            int mid = lo + ((hi - lo) >> 1);
            if (Worse(keys[lo], ids[lo], keys[mid], ids[mid])) Swap(lo, mid);
            if (Worse(keys[mid], ids[mid], keys[hi], ids[hi])) Swap(mid, hi);
            if (Worse(keys[lo], ids[lo], keys[mid], ids[mid])) Swap(lo, mid);
            Swap(mid, hi); // the median is the pivot, parked at hi
            float pk = keys[hi];
            long pi = ids[hi];
            int store = lo;
            for (int i = lo; i < hi; i++)
            {
                float k = keys[i];
                long id = ids[i];
                bool better = (k < pk) | ((k == pk) & (id < pi));
                keys[i] = keys[store];
                ids[i] = ids[store];
                keys[store] = k;
                ids[store] = id;
                store += better ? 1 : 0;
            }
            Swap(store, hi);
            if (target == store) return;
            if (target < store) hi = store - 1;
            else lo = store + 1;
        }
    }

    private void Swap(int a, int b)
    {
        (_keys[a], _keys[b]) = (_keys[b], _keys[a]);
        (_ids[a], _ids[b]) = (_ids[b], _ids[a]);
    }
}
