using System.Runtime.CompilerServices;

namespace Engine.Distance;

/// <summary>
/// The best <c>capacity</c> (key, id) pairs of a stream, smaller key first and ties to the smaller id, gathered the
/// way faiss' <c>ReservoirTopN</c> does: candidates at or below <see cref="Threshold"/> are appended to a buffer of
/// twice the capacity, and a full buffer is cut back to the best <c>capacity</c> by quickselect, which tightens the
/// threshold. An offer costs one append instead of a heap sift, which pays when many candidates pass (top-k × refine
/// factor of 40 and more). The pairs kept equal a <see cref="TopKHeap"/>'s for the same offers.
/// </summary>
/// <remarks>Not thread-safe; reused across queries with <see cref="Reset"/>.</remarks>
internal sealed class CandidateReservoir
{
    private float[] _keys = [];
    private long[] _ids = [];
    private int _capacity, _count;
    private long _worstId = long.MaxValue; // id of the pair at the threshold (ties at the threshold go to smaller ids)

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
        if (_keys.Length < size)
        {
            _keys = new float[size];
            _ids = new long[size];
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
        if (_count == _keys.Length)
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

    /// <summary>Moves the best pairs into <paramref name="heap"/> (whose capacity should be the reservoir's) and empties the reservoir.</summary>
    public void Drain(ref TopKHeap heap)
    {
        if (_count > _capacity) Compact();
        for (int i = 0; i < _count; i++) heap.Push(_keys[i], _ids[i]);
        _count = 0;
    }

    // Keeps the best _capacity pairs at the front and sets the threshold to the worst of them.
    private void Compact()
    {
        int m = _capacity;
        if (m == 0) { _count = 0; return; }
        if (_count > m) SelectBest(_count, m);
        _count = Math.Min(_count, m);
        float wk = _keys[0];
        long wi = _ids[0];
        for (int i = 1; i < _count; i++)
            if (Worse(_keys[i], _ids[i], wk, wi)) { wk = _keys[i]; wi = _ids[i]; }
        Threshold = wk;
        _worstId = wi;
    }

    // a is worse than b: larger key, ties broken by larger id (the order of TopKHeap).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Worse(float ka, long ia, float kb, long ib) => ka > kb || (ka == kb && ia > ib);

    // Quickselect: afterwards [0, m) holds the m best of [0, n). Median-of-three pivot, then a branchless Lomuto
    // partition (swap every element with the boundary, advance the boundary by the comparison's 0/1), which runs
    // about twice as fast as a branchy Hoare partition on these nearly random keys.
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
