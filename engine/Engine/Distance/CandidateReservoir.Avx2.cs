using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Distance;

// The AVX2 forms of the rank cut and the block appends: 8 keys per compare, and compress-stores made of a lane
// permutation (one table entry per 8-bit mask) followed by a whole-vector store, as AVX2 has no compress.
internal sealed partial class CandidateReservoir
{
    // Buffers of up to this many pairs are cut by rank with AVX2 (larger ones by the sampled partitions).
    private const int RankCutMax256 = 512;

    // Buffers above this many pairs find T by bracketing it between sampled keys first (AVX2: four vectors of
    // counters for 32 keys leave registers for the rest; above that the bracket counts fewer keys).
    private const int BracketFrom256 = 32;

    // For each 8-bit mask, the indexes of its set lanes in order, four bits each (lane j of the permute reads nibble j).
    private static readonly uint[] CompressNibbles = MakeCompressNibbles();

    // For each 4-bit mask, the int32 lanes that move its set 64-bit lanes to the front (two per 64-bit lane).
    private static readonly int[] CompressPairs = MakeCompressPairs();

    private static uint[] MakeCompressNibbles()
    {
        var t = new uint[256];
        for (int mask = 0; mask < 256; mask++)
        {
            uint e = 0;
            int pos = 0;
            for (int lane = 0; lane < 8; lane++)
                if ((mask >> lane & 1) != 0) e |= (uint)lane << (4 * pos++);
            t[mask] = e;
        }
        return t;
    }

    private static int[] MakeCompressPairs()
    {
        var t = new int[16 * 8];
        for (int mask = 0; mask < 16; mask++)
        {
            int pos = 0;
            for (int lane = 0; lane < 4; lane++)
                if ((mask >> lane & 1) != 0)
                {
                    t[mask * 8 + 2 * pos] = 2 * lane;
                    t[mask * 8 + 2 * pos + 1] = 2 * lane + 1;
                    pos++;
                }
        }
        return t;
    }

    // Stores the lanes of k selected by bits (8 bits) at keys + n, and the matching ids (id0: lanes 0-3, id1: 4-7) at
    // ids + n, in order; whole vectors are written (the buffers have a vector of slack). Returns the new count.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int StoreSelected(float* keys, long* ids, int n, Vector256<float> k, uint bits, Vector256<long> id0, Vector256<long> id1)
    {
        Avx2.PermuteVar8x32(k, SelectedFirst(bits)).Store(keys + n);
        uint lo = bits & 0xF;
        fixed (int* pairs = CompressPairs)
        {
            Avx2.PermuteVar8x32(id0.AsInt32(), Vector256.Load(pairs + lo * 8)).AsInt64().Store(ids + n);
            Avx2.PermuteVar8x32(id1.AsInt32(), Vector256.Load(pairs + (bits >> 4) * 8)).AsInt64().Store(ids + n + BitOperations.PopCount(lo));
        }
        return n + BitOperations.PopCount(bits);
    }

    // The permutation that moves the lanes set in bits (8 bits) to the front, in order: nibble j of the table entry
    // is the lane that lands in lane j.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SelectedFirst(uint bits) =>
        (Avx2.ShiftRightLogicalVariable(Vector256.Create(CompressNibbles[bits]), Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28)) & Vector256.Create(7u)).AsInt32();

    // AddBlock with AVX2: four groups of 8 rows.
    private unsafe void AddBlock256(ushort* sums, uint mask, float bias, float step, long firstId)
    {
        var t = Vector256.Create(Threshold);
        var b = Vector256.Create(bias);
        var st = Vector256.Create(step);
        var lane = Vector256.Create(0L, 1, 2, 3);
        fixed (float* keys = _keys)
        fixed (long* ids = _ids)
        {
            int n = _count;
            for (int q = 0; q < 4; q++)
            {
                uint want = (mask >> (8 * q)) & 0xFF;
                if (want == 0) continue;
                var k = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(Vector128.Load(sums + 8 * q))) * st + b;
                uint bits = want & Vector256.LessThanOrEqual(k, t).ExtractMostSignificantBits();
                if (bits == 0) continue;
                var id0 = Vector256.Create(firstId + 8 * q) + lane;
                n = StoreSelected(keys, ids, n, k, bits, id0, id0 + Vector256.Create(4L));
            }
            _count = n;
        }
    }

    /// <summary>
    /// <see cref="CutByRank"/> with AVX2: T by counting every key up to <see cref="BracketFrom256"/> pairs
    /// (<see cref="KthByCount256"/>), bracketed above (<see cref="KthByBracket256"/>); pairs ≤ T kept in place and in
    /// order. Returns false, changing nothing, when the ties at T would keep more than a quarter over the capacity.
    /// </summary>
    private unsafe bool CutByRank256(int n, int m)
    {
        int blocks = (n + 7) >> 3;
        var nv = Vector256.Create(n);
        fixed (float* keys = _keys)
        fixed (long* ids = _ids)
        {
            float t = n > BracketFrom256 ? KthByBracket256(keys, n, m) : KthByCount256(keys, n, m);
            var t8 = Vector256.Create(t);
            int kept = 0;
            for (int b = 0; b < blocks; b++)
                kept += BitOperations.PopCount((Vector256.LessThanOrEqual(Vector256.Load(keys + b * 8), t8).AsInt32() & Valid256(b, nv)).ExtractMostSignificantBits());
            if (kept < m || kept > m + (m >> 2)) return false; // fewer than m: NaN keys (no scanner makes them)
            long worst = long.MinValue;
            int w = 0;
            for (int b = 0; b < blocks; b++)
            {
                // Stores of block b start at w ≤ 8 b: never on a block not yet loaded.
                var k = Vector256.Load(keys + b * 8);
                var id0 = Vector256.Load(ids + b * 8);
                var id1 = Vector256.Load(ids + b * 8 + 4);
                var keep = Vector256.LessThanOrEqual(k, t8).AsInt32() & Valid256(b, nv);
                uint bits = keep.ExtractMostSignificantBits();
                uint ties = (Vector256.Equals(k, t8).AsInt32() & keep).ExtractMostSignificantBits();
                while (ties != 0)
                {
                    worst = Math.Max(worst, ids[b * 8 + BitOperations.TrailingZeroCount(ties)]);
                    ties &= ties - 1;
                }
                w = StoreSelected(keys, ids, w, k, bits, id0, id1);
            }
            _count = w;
            Threshold = t;
            _worstId = worst;
        }
        return true;
    }

    // c plus one in the lanes where x < k.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> CountIf256(Vector256<float> x, Vector256<float> k, Vector256<int> c) =>
        c - Vector256.LessThan(x, k).AsInt32();

    // Lanes of block b (8 pairs) inside the buffer's n pairs.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Valid256(int b, Vector256<int> n) => Vector256.LessThan(Vector256<int>.Indices + Vector256.Create(b * 8), n);

    // The keys of block b whose count of smaller keys is below m (−∞ elsewhere and outside the buffer).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> RankedBelow256(Vector256<float> k, Vector256<int> below, int b, Vector256<int> m, Vector256<int> n) =>
        Vector256.ConditionalSelect((Vector256.LessThan(below, m) & Valid256(b, n)).AsSingle(), k, Vector256.Create(float.NegativeInfinity));

    /// <summary>The m-th smallest of n ≤ 32 keys: every key counted against the others, four vectors in one pass.</summary>
    private static unsafe float KthByCount256(float* keys, int n, int m)
    {
        var mv = Vector256.Create(m);
        var nv = Vector256.Create(n);
        Vector256<float> k0 = Vector256.Load(keys), k1 = Vector256.Load(keys + 8), k2 = Vector256.Load(keys + 16), k3 = Vector256.Load(keys + 24);
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int i = 0; i < n; i++)
        {
            var x = Vector256.Create(keys[i]);
            c0 = CountIf256(x, k0, c0);
            c1 = CountIf256(x, k1, c1);
            c2 = CountIf256(x, k2, c2);
            c3 = CountIf256(x, k3, c3);
        }
        var tv = Vector256.MaxNative(Vector256.MaxNative(RankedBelow256(k0, c0, 0, mv, nv), RankedBelow256(k1, c1, 1, mv, nv)),
            Vector256.MaxNative(RankedBelow256(k2, c2, 2, mv, nv), RankedBelow256(k3, c3, 3, mv, nv)));
        return Lanes.MaxAcross(tv);
    }

    /// <summary>
    /// <see cref="KthByBracket"/> with AVX2: sixteen sampled keys (two vectors) counted against the buffer bracket T,
    /// then only the keys inside the bracket are counted.
    /// </summary>
    private unsafe float KthByBracket256(float* keys, int n, int m)
    {
        var mv = Vector256.Create(m);
        Span<float> picked = stackalloc float[16];
        for (int j = 0; j < 16; j++) picked[j] = keys[(int)((2L * j + 1) * n / 32)];
        var s0 = Vector256.Create<float>(picked);
        var s1 = Vector256.Create<float>(picked[8..]);
        Vector256<int> c0 = default, c1 = default;
        for (int i = 0; i < n; i++)
        {
            var x = Vector256.Create(keys[i]);
            c0 = CountIf256(x, s0, c0);
            c1 = CountIf256(x, s1, c1);
        }
        var ninf = Vector256.Create(float.NegativeInfinity);
        var pinf = Vector256.Create(float.PositiveInfinity);
        var u0 = Vector256.LessThan(c0, mv).AsSingle();
        var u1 = Vector256.LessThan(c1, mv).AsSingle();
        float lo = Lanes.MaxAcross(Vector256.MaxNative(Vector256.ConditionalSelect(u0, s0, ninf), Vector256.ConditionalSelect(u1, s1, ninf)));
        float hi = Lanes.MinAcross(Vector256.MinNative(Vector256.ConditionalSelect(u0, pinf, s0), Vector256.ConditionalSelect(u1, pinf, s1)));
        var lo8 = Vector256.Create(lo);
        var hi8 = Vector256.Create(hi);
        bool bounded = hi != float.PositiveInfinity;
        int blocks = (n + 7) >> 3, c = 0;
        var nv = Vector256.Create(n);
        fixed (float* near = _nearKeys)
        {
            for (int b = 0; b < blocks; b++)
            {
                var k = Vector256.Load(keys + b * 8);
                var inside = Vector256.GreaterThanOrEqual(k, lo8).AsInt32() & Valid256(b, nv);
                if (bounded) inside &= Vector256.LessThan(k, hi8).AsInt32();
                uint bits = inside.ExtractMostSignificantBits();
                Avx2.PermuteVar8x32(k, SelectedFirst(bits)).Store(near + c);
                c += BitOperations.PopCount(bits);
            }
            var tv = ninf;
            var cv = Vector256.Create(c);
            for (int b = 0; b < c; b += 8)
            {
                var k = Vector256.Load(near + b);
                Vector256<int> d0 = default, d1 = default;
                int i = 0;
                for (; i + 1 < n; i += 2) // two counters: the additions of consecutive keys do not wait on each other
                {
                    d0 = CountIf256(Vector256.Create(keys[i]), k, d0);
                    d1 = CountIf256(Vector256.Create(keys[i + 1]), k, d1);
                }
                if (i < n) d0 = CountIf256(Vector256.Create(keys[i]), k, d0);
                var ok = Vector256.LessThan(d0 + d1, mv) & Vector256.LessThan(Vector256<int>.Indices + Vector256.Create(b), cv);
                tv = Vector256.MaxNative(tv, Vector256.ConditionalSelect(ok.AsSingle(), k, ninf));
            }
            return Lanes.MaxAcross(tv);
        }
    }
}
