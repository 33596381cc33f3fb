namespace Engine.Distributed;

/// <summary>
/// The raw vectors of one shard replica by id: the source the index is built from, what catch-up copies to a peer
/// and what reconstruction returns (exact even when the index keeps lossy codes). Slots of deleted ids are reused.
/// </summary>
internal sealed class VectorStore(int dimension)
{
    private readonly Dictionary<long, int> _slots = [];
    private readonly Stack<int> _free = new();
    private float[] _data = new float[dimension * 256];
    private int _used;

    public int Dimension { get; } = dimension;

    public int Count => _slots.Count;

    public bool Contains(long id) => _slots.ContainsKey(id);

    public long MemoryBytes => (long)_data.Length * sizeof(float) + _slots.Count * 24L;

    public ReadOnlySpan<float> Get(long id) =>
        _slots.TryGetValue(id, out int s) ? _data.AsSpan(s * Dimension, Dimension) : default;

    /// <summary>Inserts or replaces; returns true when the id was already present.</summary>
    public bool Set(long id, ReadOnlySpan<float> vector)
    {
        bool existed = _slots.TryGetValue(id, out int slot);
        if (!existed)
        {
            if (_free.Count > 0) slot = _free.Pop();
            else
            {
                if ((long)(_used + 1) * Dimension > _data.Length)
                {
                    long grown = Math.Max((long)_data.Length * 2, (long)(_used + 1) * Dimension);
                    if (grown > Array.MaxLength) throw new InvalidOperationException($"A shard replica holds at most {Array.MaxLength / Dimension} vectors of d = {Dimension}; add shards.");
                    Array.Resize(ref _data, (int)grown);
                }
                slot = _used++;
            }
            _slots[id] = slot;
        }
        vector.CopyTo(_data.AsSpan(slot * Dimension, Dimension));
        return existed;
    }

    public bool Remove(long id)
    {
        if (!_slots.Remove(id, out int slot)) return false;
        _free.Push(slot);
        return true;
    }

    public void Clear()
    {
        _slots.Clear();
        _free.Clear();
        _used = 0;
    }

    /// <summary>Every live id, ascending (the order indexes are built in, so replicas build the same index).</summary>
    public long[] SortedIds()
    {
        var ids = _slots.Keys.ToArray();
        Array.Sort(ids);
        return ids;
    }

    /// <summary>Copies the vectors of <paramref name="ids"/> (all present) into a new n × d array.</summary>
    public float[] Gather(ReadOnlySpan<long> ids)
    {
        var rows = new float[(long)ids.Length * Dimension];
        for (int i = 0; i < ids.Length; i++) Get(ids[i]).CopyTo(rows.AsSpan(i * Dimension, Dimension));
        return rows;
    }
}
