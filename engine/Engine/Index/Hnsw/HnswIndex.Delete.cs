namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex
{
    /// <inheritdoc />
    /// <remarks>Marks the nodes deleted: searches stop returning them at once but still walk through them. When the
    /// deleted nodes pass <see cref="RepairThreshold"/> of the slots the graph is repaired (see <see cref="Maintain"/>).</remarks>
    public int Remove(ReadOnlySpan<long> ids)
    {
        lock (_writer)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            int removed = 0;
            lock (_mapLock)
            {
                foreach (long id in ids)
                {
                    if (!_nodeOf.Remove(id, out int node)) continue;
                    MarkDeleted(node);
                    removed++;
                }
                Volatile.Write(ref _count, _nodeOf.Count);
            }
            if (removed > 0) _attributeOrder = null;
            MaybeRepair();
            return removed;
        }
    }

    /// <summary>
    /// Repairs the graph now: every live node that links to a deleted node is re-linked (on each level) by neighbour
    /// selection among its live neighbours and the live neighbours of its deleted neighbours (two hops through
    /// deleted nodes); the entry point moves to a live node of the highest level; then, once running searches have
    /// finished, the deleted slots become free for new inserts. Runs over <see cref="BuildThreads"/>; searches may
    /// run meanwhile.
    /// </summary>
    public void Maintain()
    {
        lock (_writer)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            RepairLocked();
        }
    }

    private void MarkDeleted(int node)
    {
        Volatile.Write(ref _state[node], Deleted);
        Interlocked.Increment(ref _tombstones);
    }

    private void MaybeRepair()
    {
        int dead = Volatile.Read(ref _tombstones);
        if (dead > 0 && dead > _repairThreshold * _slots) RepairLocked();
    }

    // Called under the writer lock.
    private void RepairLocked()
    {
        if (Volatile.Read(ref _tombstones) == 0) return;
        var dead = new List<int>();
        int bestLevel = -1, best = -1;
        for (int node = 0; node < _slots; node++)
        {
            if (_state[node] == Deleted) dead.Add(node);
            else if (_state[node] == Live && _levels[node] > bestLevel)
            {
                bestLevel = _levels[node];
                best = node;
            }
        }
        // Pass 1 re-selects the out-links of every node that linked to a deleted one (each task writes only its own
        // node's lists and reads deleted nodes' lists, which nobody writes); pass 2 links the new neighbours back, as
        // an insert does, so nodes whose in-links were all deleted become reachable again.
        var touched = new bool[_slots];
        ForEachSlot((node, s) => touched[node] = RelinkNode(node, s));
        ForEachSlot((node, s) => { if (touched[node]) LinkBack(node, s); });
        lock (_entryLock) Volatile.Write(ref _entry, best < 0 ? EmptyEntry : PackEntry(best, bestLevel));

        // Nothing links to the deleted nodes any more and they are not the entry point, so only searches already
        // running can reach them: the exclusive section waits for those, then the slots are reused.
        _resize.EnterWrite();
        try
        {
            foreach (int node in dead)
            {
                _state[node] = Free;
                _levels[node] = -1;
                _upper[node] = null;
                _links0[node * _stride0] = 0;
                _free.Add(node);
            }
            _free.Sort((a, b) => b.CompareTo(a));
            Interlocked.Add(ref _tombstones, -dead.Count);
            _attributeOrder = null;
        }
        finally { _resize.ExitWrite(); }
    }

    // Runs `work` for every slot: in slot order on one thread, or over BuildThreads.
    private void ForEachSlot(Action<int, HnswScratch> work)
    {
        int threads = BuildThreads > 0 ? BuildThreads : Environment.ProcessorCount;
        if (threads == 1)
        {
            var s = _pool.Rent();
            try { for (int node = 0; node < _slots; node++) work(node, s); }
            finally { _pool.Return(s); }
            return;
        }
        ParallelWork.For(0, _slots, threads, _pool.RentFunc,
            (node, _, s) =>
            {
                work(node, s);
                return s;
            },
            _pool.ReturnAction);
    }

    // Relinks every level of a live node that links to a deleted node; true when it did.
    private bool RelinkNode(int node, HnswScratch s)
    {
        if (_state[node] != Live) return false;
        bool any = false;
        for (int l = _levels[node]; l >= 0; l--)
        {
            var list = Links(node, l);
            int cnt = list[0];
            bool touched = false;
            for (int j = 1; j <= cnt && !touched; j++) touched = _state[list[j]] != Live;
            if (touched) Relink(node, l, s);
            any |= touched;
        }
        return any;
    }

    // Adds the back-link neighbour → node for every out-link of a relinked node (Connect skips present ones).
    private void LinkBack(int node, HnswScratch s)
    {
        for (int l = _levels[node]; l >= 0; l--)
        {
            int cnt;
            lock (NodeLock(node))
            {
                var own = Links(node, l);
                cnt = own[0];
                own.Slice(1, cnt).CopyTo(s.Own);
            }
            for (int j = 0; j < cnt; j++) Connect(s.Own[j], node, l, s);
        }
    }

    // Re-selects node's links on `level` among its live neighbours and the live nodes up to two hops away through
    // deleted neighbours (the closest max(efConstruction, capacity) of them).
    private void Relink(int node, int level, HnswScratch s)
    {
        var list = Links(node, level);
        int cap = list.Length - 1;
        var row = _vectors.Row(node, s.Base);
        s.NewVisit(_levels.Length);
        s.Visit(node);
        int c = 0;
        int cnt = list[0];
        for (int j = 1; j <= cnt; j++) c = AddRelinkCandidate(list[j], level, row, c, s, hops: 2);
        int limit = Math.Max(Spec.EfConstruction, cap);
        Array.Sort(s.Keys, s.Nodes, 0, c);
        c = Math.Min(c, limit);
        lock (NodeLock(node))
        {
            int sel = Select(s.Keys, s.Nodes, c, cap, list[1..], s, keepPruned: true);
            Volatile.Write(ref list[0], sel);
        }
    }

    private int AddRelinkCandidate(int nb, int level, ReadOnlySpan<float> row, int c, HnswScratch s, int hops)
    {
        if (!s.Visit(nb)) return c;
        var state = _state[nb];
        if (state == Live)
        {
            s.EnsureBuffers(c + 1);
            s.Keys[c] = _vectors.Key(row, nb, s.KeyScratch);
            s.Nodes[c++] = nb;
            return c;
        }
        if (state != Deleted || hops == 0) return c;
        var list = Links(nb, level);
        if (list.IsEmpty) return c;
        int cnt = list[0];
        for (int j = 1; j <= cnt; j++) c = AddRelinkCandidate(list[j], level, row, c, s, hops - 1);
        return c;
    }
}
