namespace Engine.Storage.Postings;

/// <summary>
/// A small least-recently-used cache of decoded posting payloads with a byte budget. Keys are block
/// offsets: blocks are immutable once written (the store only appends), so an offset never changes meaning
/// and entries never need invalidation.
/// </summary>
/// <remarks>Thread-safe (one lock; lookups are short).</remarks>
public sealed class PostingCache
{
    private readonly object _gate = new();
    private readonly Dictionary<long, LinkedListNode<(long Key, byte[] Value)>> _map = new();
    private readonly LinkedList<(long Key, byte[] Value)> _lru = new();
    private long _bytes;

    /// <summary>Creates a cache that keeps at most <paramref name="byteBudget"/> bytes of payloads (0 disables it).</summary>
    public PostingCache(long byteBudget)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteBudget);
        ByteBudget = byteBudget;
    }

    /// <summary>The budget in bytes.</summary>
    public long ByteBudget { get; }

    /// <summary>Bytes currently held.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>Entries currently held.</summary>
    public int Count { get { lock (_gate) return _map.Count; } }

    /// <summary>Looks up the payload of the block at <paramref name="offset"/>.</summary>
    public bool TryGet(long offset, out byte[] payload)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(offset, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                payload = node.Value.Value;
                return true;
            }
        }
        payload = [];
        return false;
    }

    /// <summary>Adds a payload (ignored when larger than a quarter of the budget), evicting the oldest entries.</summary>
    public void Add(long offset, byte[] payload)
    {
        long cost = payload.Length + 64;
        if (cost > ByteBudget / 4) return;
        lock (_gate)
        {
            if (_map.ContainsKey(offset)) return;
            while (_bytes + cost > ByteBudget && _lru.Last is { } last)
            {
                _lru.RemoveLast();
                _map.Remove(last.Value.Key);
                _bytes -= last.Value.Value.Length + 64;
            }
            _map[offset] = _lru.AddFirst((offset, payload));
            _bytes += cost;
        }
    }

    /// <summary>Drops every entry (used when a store is replaced).</summary>
    public void Clear()
    {
        lock (_gate) { _map.Clear(); _lru.Clear(); _bytes = 0; }
    }
}
