using System.Runtime.CompilerServices;

namespace Engine.Index.Hnsw;

/// <summary>
/// A binary max-heap of (key, node) pairs on reusable arrays. The candidate queue stores negated keys so that
/// both queues of the search are max-heaps.
/// </summary>
internal sealed class NodeHeap
{
    private float[] _keys = new float[64];
    private int[] _nodes = new int[64];

    public int Count { get; private set; }

    public float TopKey => _keys[0];
    public int TopNode => _nodes[0];

    public void Clear() => Count = 0;

    public void Push(float key, int node)
    {
        if (Count == _keys.Length)
        {
            Array.Resize(ref _keys, Count * 2);
            Array.Resize(ref _nodes, Count * 2);
        }
        int i = Count++;
        var keys = _keys;
        var nodes = _nodes;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (keys[parent] >= key) break;
            keys[i] = keys[parent];
            nodes[i] = nodes[parent];
            i = parent;
        }
        keys[i] = key;
        nodes[i] = node;
    }

    public void Pop()
    {
        int n = --Count;
        if (n == 0) return;
        float key = _keys[n];
        int node = _nodes[n];
        var keys = _keys;
        var nodes = _nodes;
        int i = 0;
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && keys[c + 1] > keys[c]) c++;
            if (keys[c] <= key) break;
            keys[i] = keys[c];
            nodes[i] = nodes[c];
            i = c;
        }
        keys[i] = key;
        nodes[i] = node;
    }

    /// <summary>Empties the heap into <paramref name="keys"/> / <paramref name="nodes"/> in ascending key order; returns the count.</summary>
    public int DrainAscending(Span<float> keys, Span<int> nodes)
    {
        int n = Count;
        for (int i = n - 1; i >= 0; i--)
        {
            keys[i] = TopKey;
            nodes[i] = TopNode;
            Pop();
        }
        return n;
    }
}

/// <summary>
/// Per-thread search and insertion buffers, pooled by the index so that a query allocates nothing after warm-up:
/// a visited set with epoch tags (no clearing between queries), the two heaps, a gather buffer for the unvisited
/// neighbours of the node being expanded, and query / decode rows.
/// </summary>
internal sealed class HnswScratch
{
    public int[] Visited = [];
    public int Epoch;
    public readonly NodeHeap Candidates = new();
    public readonly NodeHeap Results = new();
    public readonly int[] Gather;
    public readonly float[] Query;
    public readonly float[] Decoded;     // a candidate's row (f16 / SQ8 storage)
    public readonly float[] Base;        // the row neighbours are selected for (f16 / SQ8 storage)
    public readonly float[] KeyScratch;  // SQ8 decode buffer of the distance kernel
    public readonly int[] Own;           // snapshot of a new node's links while its neighbours link back
    public long Distances;               // distances computed by the current call (for SearchStats)
    public float[] Keys = new float[64];
    public int[] Nodes = new int[64];
    public int[] Nodes2 = new int[64];     // candidates the heuristic pruned (keepPrunedConnections)

    public HnswScratch(int dimension, int maxDegree)
    {
        Gather = new int[maxDegree];
        Query = new float[dimension];
        Decoded = new float[dimension];
        Base = new float[dimension];
        KeyScratch = new float[dimension];
        Own = new int[maxDegree];
    }

    /// <summary>Starts a new visit epoch over <paramref name="slots"/> node slots.</summary>
    public void NewVisit(int slots)
    {
        if (Visited.Length < slots)
        {
            Visited = new int[Math.Max(slots, Visited.Length + Visited.Length / 2)];
            Epoch = 0;
        }
        if (++Epoch == int.MaxValue)
        {
            Array.Clear(Visited);
            Epoch = 1;
        }
    }

    /// <summary>Marks <paramref name="node"/> visited; false when it already was in this epoch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Visit(int node)
    {
        ref int tag = ref Visited[node];
        if (tag == Epoch) return false;
        tag = Epoch;
        return true;
    }

    /// <summary>Room for <paramref name="n"/> entries in the key/node buffers.</summary>
    public void EnsureBuffers(int n)
    {
        if (Keys.Length >= n) return;
        int size = Math.Max(n, Keys.Length * 2);
        Array.Resize(ref Keys, size);
        Array.Resize(ref Nodes, size);
        Array.Resize(ref Nodes2, size);
    }
}
