using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu.Kernels;

/// <summary>Shape of one merge pass: a running top-k list plus <see cref="Parts"/> partial lists per query.</summary>
internal struct MergeShape
{
    /// <summary>k: length of the running list (and of the merged output).</summary>
    public int K;
    /// <summary>Partial lists per query in this pass.</summary>
    public int Parts;
    /// <summary>Length of each partial list (min(k, tile size)).</summary>
    public int PartLength;
}

/// <summary>
/// Top-k selection building blocks shared by every scan kernel.
/// </summary>
/// <remarks>
/// <para>An entry is one <c>ulong</c>: the high 32 bits are the key (smaller is better) mapped to an unsigned
/// integer with the same order, the low 32 bits the candidate's index. Comparing entries as integers therefore
/// orders by (key, index), so ties break by the smaller index exactly like <c>TopKHeap</c>, and every kernel
/// is deterministic. <see cref="Padding"/> (all ones) marks an empty slot and sorts after every real entry.</para>
/// <para>A scan kernel gives each thread group one (query, tile) pair; the group computes the tile's keys into
/// shared memory, bitonic-sorts them and writes the best min(k, tile) entries. <see cref="Merge"/> then folds
/// those partial lists into the running top-k of each query by rank: every entry counts, with one binary search
/// per other list, how many entries precede it, and lands at that rank when it is below k. No distance matrix
/// is ever held, only tiles in shared memory and k-sized lists.</para>
/// </remarks>
internal static class SelectKernels
{
    /// <summary>The empty-slot marker; sorts after every real entry.</summary>
    public const ulong Padding = ulong.MaxValue;

    /// <summary>Packs a key (smaller is better) and an index into one order-preserving integer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Pack(float key, int index)
    {
        uint bits = Interop.FloatAsInt(key);
        bits = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
        return ((ulong)bits << 32) | (uint)index;
    }

    /// <summary>Inverse of <see cref="Pack"/> for the key (host side).</summary>
    public static float UnpackKey(ulong entry)
    {
        uint bits = (uint)(entry >> 32);
        bits = (bits & 0x80000000u) != 0 ? bits & 0x7FFFFFFFu : ~bits;
        return BitConverter.UInt32BitsToSingle(bits);
    }

    /// <summary>Index part of an entry (host side); -1 for <see cref="Padding"/>.</summary>
    public static long UnpackIndex(ulong entry) => entry == Padding ? -1 : (long)(uint)entry;

    /// <summary>
    /// Sorts <paramref name="tile"/> (length a power of two) ascending in place; called by every thread of
    /// the group (group size a power of two ≤ length / 2), which must all reach it.
    /// </summary>
    /// <remarks>
    /// Bitonic network. The stages whose blocks are no larger than one thread's chunk (length / group size)
    /// touch only that chunk, so each thread runs them on its own chunk without barriers; only the wider
    /// stages are shared out, with one barrier each. That cuts the barrier count from log²(length)/2 to the
    /// wide stages only, which matters most on the CPU simulator where a barrier is an OS-level wait.
    /// </remarks>
    public static void BitonicSort(ArrayView<ulong> tile, int length)
    {
        int half = length >> 1;
        int chunk = length / Group.DimX;
        int chunkBase = Group.IdxX * chunk;
        // Local stages: pairs i of this thread's chunk only (the same network, owned by one thread).
        for (int size = 2; size <= chunk; size <<= 1)
        {
            for (int stride = size >> 1; stride > 0; stride >>= 1)
            {
                for (int i = 0; i < chunk >> 1; i++)
                {
                    int lo = chunkBase + 2 * i - (i & (stride - 1));
                    CompareSwap(tile, lo, lo + stride, (lo & size) == 0);
                }
            }
        }
        Group.Barrier();
        for (int size = chunk << 1; size <= length; size <<= 1)
        {
            for (int stride = size >> 1; stride > 0; stride >>= 1)
            {
                for (int i = Group.IdxX; i < half; i += Group.DimX)
                {
                    int lo = 2 * i - (i & (stride - 1));
                    CompareSwap(tile, lo, lo + stride, (lo & size) == 0);
                }
                Group.Barrier();
            }
        }
    }

    private static void CompareSwap(ArrayView<ulong> tile, int lo, int hi, bool ascending)
    {
        ulong a = tile[lo], b = tile[hi];
        if ((a > b) == ascending)
        {
            tile[lo] = b;
            tile[hi] = a;
        }
    }

    /// <summary>Writes the first <paramref name="kept"/> sorted entries of a tile to <paramref name="output"/>.</summary>
    public static void EmitTile(ArrayView<ulong> tile, ArrayView<ulong> output, long outputOffset, int kept)
    {
        for (int i = Group.IdxX; i < kept; i += Group.DimX) output[outputOffset + i] = tile[i];
    }

    /// <summary>Fills a view with <see cref="Padding"/> (one thread per element).</summary>
    public static void Fill(Index1D i, ArrayView<ulong> view) => view[i] = Padding;

    /// <summary>
    /// Rank merge: thread i handles entry e = i mod (k + parts × partLength) of query i / that. Lists are
    /// <c>running[q × k ..]</c> (list 0) and <c>parts[(q × parts + p) × partLength ..]</c> (list p + 1), each sorted.
    /// Equal entries (only paddings) are ordered by list, then position, so ranks form a permutation.
    /// </summary>
    public static void Merge(Index1D i, ArrayView<ulong> running, ArrayView<ulong> parts, ArrayView<ulong> output, MergeShape s)
    {
        int perQuery = s.K + s.Parts * s.PartLength;
        int q = i / perQuery, e = i - q * perQuery;
        long runBase = (long)q * s.K;
        long partBase = (long)q * s.Parts * s.PartLength;
        int list, pos;
        ulong v;
        if (e < s.K) { list = 0; pos = e; v = running[runBase + e]; }
        else
        {
            int r = e - s.K;
            list = 1 + r / s.PartLength;
            pos = r - (list - 1) * s.PartLength;
            v = parts[partBase + r];
        }
        long rank = pos;
        if (list != 0) rank += CountBefore(running, runBase, s.K, v, includeEqual: true);
        for (int p = 0; p < s.Parts; p++)
        {
            int other = p + 1;
            if (other == list) continue;
            rank += CountBefore(parts, partBase + (long)p * s.PartLength, s.PartLength, v, other < list);
        }
        if (rank < s.K) output[runBase + rank] = v;
    }

    // Entries of the sorted list [start, start + length) that precede v: strictly smaller ones, plus equal ones
    // when the list comes first in the tie order.
    private static int CountBefore(ArrayView<ulong> view, long start, int length, ulong v, bool includeEqual)
    {
        int lo = 0, hi = length;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            ulong m = view[start + mid];
            bool before = includeEqual ? m <= v : m < v;
            if (before) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
