using Engine.Distance;

namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex
{
    // A batch into a small graph is linked one node at a time first: parallel inserts into a near-empty graph all
    // see the same few nodes and link poorly.
    private const int SequentialPrefix = 1000;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">SQ8 storage that is not trained.</exception>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, negative ids, an id twice in the batch
    /// or an id already present (use <see cref="Upsert(ReadOnlySpan{float}, ReadOnlySpan{long})"/> to replace).</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => AddCore(vectors, ids, default, hasAttributes: false, upsert: false);

    /// <summary>
    /// Adds n vectors with ids and one numeric attribute each (e.g. a timestamp) that searches can restrict to a
    /// window with <see cref="HnswSearchParameters.AttributeMin"/> / <see cref="HnswSearchParameters.AttributeMax"/>.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/>, or attributes not one finite value per vector.</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes) =>
        AddCore(vectors, ids, attributes, hasAttributes: true, upsert: false);

    /// <summary>Adds vectors, replacing the vector of every id that is already present.</summary>
    /// <remarks>A replaced node is marked deleted right after its replacement is linked (repaired like a removal).</remarks>
    /// <exception cref="ArgumentException">As <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/>, except that present ids are allowed.</exception>
    public void Upsert(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => AddCore(vectors, ids, default, hasAttributes: false, upsert: true);

    /// <summary>Adds or replaces vectors by id, with attributes.</summary>
    /// <exception cref="ArgumentException">As <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long}, ReadOnlySpan{double})"/>, except that present ids are allowed.</exception>
    public void Upsert(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes) =>
        AddCore(vectors, ids, attributes, hasAttributes: true, upsert: true);

    private unsafe void AddCore(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes, bool hasAttributes, bool upsert)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Ids(ids, n);
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (hasAttributes) Attributes.Validate(attributes, n);
        if (!IsTrained) throw new InvalidOperationException($"The '{Description}' index is not trained: call Train first (SQ8 storage learns its range).");
        if (n == 0) return;
        var seen = new HashSet<long>(n);
        for (int i = 0; i < n; i++)
            if (!seen.Add(ids[i])) throw new ArgumentException($"Id {ids[i]} appears twice in one batch.", nameof(ids));
        int d = Dimension;
        float[]? normalized = null;
        if (Metric == Metric.Cosine)
        {
            normalized = vectors.ToArray();
            for (int i = 0; i < n; i++) Distances.NormalizeInPlace(normalized.AsSpan(i * d, d));
        }
        lock (_writer)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (!upsert)
                lock (_mapLock)
                    for (int i = 0; i < n; i++)
                        if (_nodeOf.ContainsKey(ids[i]))
                            throw new ArgumentException($"Id {ids[i]} is already present; ids must be unique (use Upsert to replace).", nameof(ids));
            int liveBefore = _count;
            ReadOnlySpan<float> rows = normalized ?? vectors;
            var nodes = PlaceBatch(rows, ids, hasAttributes ? attributes : default, n);
            var replaced = new int[n];
            lock (_mapLock)
            {
                _nodeOf.EnsureCapacity(_nodeOf.Count + n); // one allocation per batch, not a chain of rehashes
                for (int i = 0; i < n; i++)
                {
                    replaced[i] = _nodeOf.TryGetValue(ids[i], out int old) ? old : -1;
                    _nodeOf[ids[i]] = nodes[i];
                }
                Volatile.Write(ref _count, _nodeOf.Count);
            }
            fixed (float* p = rows)
            {
                LinkBatch((nint)p, nodes, replaced, Math.Min(n, Math.Max(0, SequentialPrefix - liveBefore)));
            }
            _attributeOrder = null;
            MaybeRepair();
        }
    }

    // Writes the batch's vectors, ids and levels into free slots (smallest first) or new ones. Exclusive: running
    // searches finish first, because the arrays may move. The nodes stay unreachable until they are linked.
    private int[] PlaceBatch(ReadOnlySpan<float> rows, ReadOnlySpan<long> ids, ReadOnlySpan<double> attributes, int n)
    {
        int d = Dimension;
        var rng = _levelRng ??= new Random(Seed);
        var nodes = new int[n];
        _resize.EnterWrite();
        try
        {
            ReleaseMapping(); // the rows move to the heap before the first write (no search runs now)
            int fromFree = Math.Min(n, _free.Count);
            EnsureCapacity(_slots + (n - fromFree));
            for (int i = 0; i < n; i++)
            {
                int node;
                if (i < fromFree)
                {
                    node = _free[^1];
                    _free.RemoveAt(_free.Count - 1);
                }
                else node = _slots++;
                int level = Math.Min(MaxLevel, (int)(-Math.Log(1 - rng.NextDouble()) * _mL));
                nodes[i] = node;
                _levels[node] = level;
                _ids[node] = ids[i];
                if (!attributes.IsEmpty && _attrs is null)
                {
                    _attrs = new double[_levels.Length];
                    Array.Fill(_attrs, double.NaN);
                }
                if (_attrs is not null) _attrs[node] = attributes.IsEmpty ? double.NaN : attributes[i];
                _upper[node] = level > 0 ? new int[level * (1 + _m)] : null;
                _links0[node * _stride0] = 0;
                _vectors.Set(node, rows.Slice(i * d, d));
                _state[node] = Live;
            }
            _attributeOrder = null;
        }
        finally { _resize.ExitWrite(); }
        return nodes;
    }

    /// <summary>
    /// Grows the node arrays to hold <paramref name="capacity"/> nodes now, exactly (hnswlib's <c>max_elements</c>):
    /// inserts up to that many slots then allocate nothing, and batches leave no doubling slack. Never shrinks.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">The capacity does not fit one array.</exception>
    public void Reserve(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        lock (_writer)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (capacity <= _levels.Length) return;
            _resize.EnterWrite();
            try
            {
                ReleaseMapping(); // the rows move to the heap (no search runs now)
                EnsureCapacity(capacity, exact: true);
            }
            finally { _resize.ExitWrite(); }
        }
    }

    /// <inheritdoc />
    /// <remarks>Checks every row, reserves the slots the rows need beyond the free ones (<see cref="Reserve"/>), then
    /// adds in batches of <see cref="BuildProgress.AddBatch"/> with a report after each.</remarks>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, IProgress<BuildProgress>? progress)
    {
        int d = Dimension;
        int n = Guard.Rows(vectors, d, nameof(vectors));
        Guard.Ids(ids, n);
        Guard.Finite(vectors, d, nameof(vectors));
        if (n == 0) return;
        lock (_writer)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            long need = (long)_slots + Math.Max(0, n - _free.Count);
            if (need > _levels.Length) Reserve((int)Math.Min(need, int.MaxValue));
        }
        if (progress is null) Add(vectors, ids);
        else BuildProgress.AddInBatches(this, vectors, ids, progress);
    }

    private void EnsureCapacity(int slots, bool exact = false)
    {
        if (_levels.Length >= slots) return;
        long cap = exact ? slots : Math.Max(slots, Math.Max(16, _levels.Length * 2L));
        cap = Math.Min(cap, Array.MaxLength / _stride0); // the level-0 links are one int array; rows are native memory
        if (cap < slots) throw new InvalidOperationException($"HNSW capacity exceeded: {slots} nodes do not fit one array.");
        int c = (int)cap;
        Array.Resize(ref _links0, c * _stride0);
        Array.Resize(ref _upper, c);
        Array.Resize(ref _levels, c);
        Array.Resize(ref _ids, c);
        if (_attrs is not null) Array.Resize(ref _attrs, c);
        Array.Resize(ref _state, c);
        _vectors.Resize(c);
    }

    // Links every placed node; the first `sequential` ones one at a time, the rest over BuildThreads.
    private unsafe void LinkBatch(nint rows, int[] nodes, int[] replaced, int sequential)
    {
        int d = Dimension, n = nodes.Length;
        int threads = BuildThreads > 0 ? BuildThreads : Environment.ProcessorCount;
        if (threads == 1) sequential = n;
        var s = _pool.Rent();
        try
        {
            for (int i = 0; i < sequential; i++) LinkOne(new ReadOnlySpan<float>((float*)rows + (long)i * d, d), nodes[i], replaced[i], s);
        }
        finally { _pool.Return(s); }
        if (sequential == n) return;
        // The workers take the next node from one shared counter, so they insert side by side in batch order (as
        // hnswlib does) instead of each walking its own range: data that arrives sorted (by frequency, by time)
        // then grows one graph front instead of two distant ones.
        int next = sequential - 1;
        ParallelWork.For(0, threads, threads, _pool.RentFunc,
            (_, _, scratch) =>
            {
                for (int i; (i = Interlocked.Increment(ref next)) < n;)
                    LinkOne(new ReadOnlySpan<float>((float*)rows + (long)i * d, d), nodes[i], replaced[i], scratch);
                return scratch;
            },
            _pool.ReturnAction);
    }

    private void LinkOne(ReadOnlySpan<float> q, int node, int replaced, HnswScratch s)
    {
        Insert(q, node, s);
        if (replaced >= 0) MarkDeleted(replaced);
    }

    /// <summary>
    /// Links <paramref name="node"/> (placed, unreachable) into the graph: greedy descent to its level, then on each
    /// of its levels a search with efConstruction and neighbour selection into its own lists; only then do its
    /// neighbours link back to it (and it may become the entry point), so readers never reach it half-linked.
    /// </summary>
    private void Insert(ReadOnlySpan<float> q, int node, HnswScratch s)
    {
        int level = _levels[node];
        long ep = Volatile.Read(ref _entry);
        if (EntryNode(ep) < 0)
        {
            lock (_entryLock)
            {
                ep = _entry;
                if (EntryNode(ep) < 0)
                {
                    Volatile.Write(ref _entry, PackEntry(node, level));
                    return;
                }
            }
        }
        int cur = EntryNode(ep), top = EntryLevel(ep);
        float curKey = _vectors.Key(q, cur, s.KeyScratch);
        for (int l = top; l > level; l--) Greedy(q, ref cur, ref curKey, l, s);
        int linked = Math.Min(level, top);
        for (int l = linked; l >= 0; l--)
        {
            SearchLayer(q, cur, curKey, l, Spec.EfConstruction, s, default);
            int c = DrainResults(s);
            if (c == 0)
            {
                s.Keys[0] = curKey;
                s.Nodes[0] = cur;
                c = 1;
            }
            cur = s.Nodes[0];
            curKey = s.Keys[0];
            if (ExtendCandidates) c = Extend(q, l, c, s);
            var own = Links(node, l);
            own[0] = Select(s.Keys, s.Nodes, c, _m, own[1..], s);
        }
        LinkBack(node, s); // levels above the old top level have no links yet
        if (level > top)
        {
            lock (_entryLock)
                if (level > EntryLevel(_entry)) Volatile.Write(ref _entry, PackEntry(node, level));
        }
    }

    // The search's results in ascending key order into s.Keys / s.Nodes; returns their number.
    private static int DrainResults(HnswScratch s)
    {
        s.EnsureBuffers(s.Results.Count + 1);
        return s.Results.DrainAscending(s.Keys, s.Nodes);
    }

    // extendCandidates: adds the live neighbours (on `level`) of the c candidates, then sorts all by key.
    private int Extend(ReadOnlySpan<float> q, int level, int c, HnswScratch s)
    {
        s.NewVisit(_levels.Length);
        for (int i = 0; i < c; i++) s.Visit(s.Nodes[i]);
        int total = c;
        for (int i = 0; i < c; i++)
        {
            var list = Links(s.Nodes[i], level);
            if (list.IsEmpty) continue;
            int cnt = Math.Min(Volatile.Read(ref list[0]), list.Length - 1);
            for (int j = 1; j <= cnt; j++)
            {
                int nb = list[j];
                if (Volatile.Read(ref _state[nb]) != Live || !s.Visit(nb)) continue;
                s.EnsureBuffers(total + 1);
                s.Keys[total] = _vectors.Key(q, nb, s.KeyScratch);
                s.Nodes[total++] = nb;
            }
        }
        Array.Sort(s.Keys, s.Nodes, 0, total);
        return total;
    }

    /// <summary>
    /// Chooses up to <paramref name="limit"/> neighbours from candidates sorted by ascending key (distance to the
    /// node) into <paramref name="output"/>; returns how many. Heuristic: keep a candidate only when it is closer to
    /// the node than to every neighbour kept so far (optionally topping up with the closest pruned ones).
    /// </summary>
    private int Select(float[] keys, int[] nodes, int c, int limit, Span<int> output, HnswScratch s, bool keepPruned = false)
    {
        keepPruned |= KeepPrunedConnections;
        if (Selection == NeighborSelection.Simple)
        {
            int take = Math.Min(c, limit);
            nodes.AsSpan(0, take).CopyTo(output);
            return take;
        }
        int sel = 0, pruned = 0;
        for (int i = 0; i < c && sel < limit; i++)
        {
            int e = nodes[i];
            float ke = keys[i];
            var row = _vectors.Row(e, s.Decoded);
            bool good = true;
            for (int j = 0; j < sel; j++)
            {
                if (_vectors.Key(row, output[j], s.KeyScratch) < ke)
                {
                    good = false;
                    break;
                }
            }
            if (good) output[sel++] = e;
            else if (keepPruned) s.Nodes2[pruned++] = e;
        }
        for (int p = 0; p < pruned && sel < limit; p++) output[sel++] = s.Nodes2[p];
        return sel;
    }

    // Adds the link nb → node on `level`; when nb's list is full, re-selects nb's neighbours among them and node.
    private void Connect(int nb, int node, int level, HnswScratch s)
    {
        lock (NodeLock(nb))
        {
            var list = Links(nb, level);
            if (list.IsEmpty) return;
            int cap = list.Length - 1, cnt = list[0];
            for (int j = 1; j <= cnt; j++) if (list[j] == node) return;
            if (cnt < cap)
            {
                list[1 + cnt] = node;
                Volatile.Write(ref list[0], cnt + 1);
                return;
            }
            var row = _vectors.Row(nb, s.Base);
            s.EnsureBuffers(cnt + 1);
            for (int j = 0; j < cnt; j++)
            {
                s.Nodes[j] = list[1 + j];
                s.Keys[j] = _vectors.Key(row, s.Nodes[j], s.KeyScratch);
            }
            s.Nodes[cnt] = node;
            s.Keys[cnt] = _vectors.Key(row, node, s.KeyScratch);
            Array.Sort(s.Keys, s.Nodes, 0, cnt + 1);
            int sel = Select(s.Keys, s.Nodes, cnt + 1, cap, list[1..], s);
            Volatile.Write(ref list[0], sel);
        }
    }
}
