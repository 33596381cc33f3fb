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
        for (; j < keys.Length; j++)
            if (keys[j] <= Threshold) Push(keys[j], firstId + j);
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
