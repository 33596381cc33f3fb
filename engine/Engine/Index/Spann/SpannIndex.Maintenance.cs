using System.Runtime.ExceptionServices;
using Engine.Distance;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    private const int ReassignNeighbours = 8;
    private readonly object _maintGate = new();
    private readonly Queue<int> _maintQueue = new();
    private readonly HashSet<int> _maintSet = new();
    private Task? _maintTask;
    private ExceptionDispatchInfo? _maintError;
    private long _maintDone; // postings maintained since the index was opened (progress of Maintain)

    /// <summary>When false, splits and merges run only in <see cref="WaitForMaintenance()"/> (deterministic tests).</summary>
    public bool BackgroundMaintenance { get; set; } = true;

    /// <summary>Postings waiting for a split, merge or garbage collection.</summary>
    public int PendingMaintenance { get { lock (_maintGate) return _maintQueue.Count; } }

    private void EnqueueMaintenance(int posting)
    {
        lock (_maintGate) if (_maintSet.Add(posting)) _maintQueue.Enqueue(posting);
    }

    private void StartMaintenance()
    {
        if (!BackgroundMaintenance) return;
        lock (_maintGate)
        {
            if (_maintQueue.Count == 0 || _maintTask is { IsCompleted: false }) return;
            _maintTask = Task.Run(() => RunMaintenance(null));
        }
    }

    /// <summary>Runs (or waits for) every pending split/merge until none is left.</summary>
    /// <exception cref="CorruptIndexException">A posting read during maintenance was corrupt.</exception>
    public void WaitForMaintenance() => WaitForMaintenance(null);

    // tick runs on the calling thread: after each posting maintained here, and every 250 ms while a background task
    // does the work.
    private void WaitForMaintenance(Action? tick)
    {
        while (true)
        {
            Task? t;
            lock (_maintGate) t = _maintTask;
            if (t is not null)
            {
                if (tick is null) t.Wait();
                else while (!t.Wait(250)) tick();
            }
            lock (_maintGate)
            {
                if (_maintQueue.Count == 0) break;
                if (_maintTask is { IsCompleted: false }) continue;
            }
            RunMaintenance(tick);
        }
        if (!_disposed) ThrowMaintenanceError();
    }

    /// <summary>
    /// Queues every posting that is out of shape (above <see cref="SpannOptions.MaxPostingSize"/> entries or below
    /// <see cref="SpannOptions.MinPostingSize"/> live ones) and runs maintenance until none is left. <see cref="Open(string, SpannOpenOptions?)"/>
    /// queues the same postings in the background; calling this before a checkpoint leaves an index that a later open
    /// does not rewrite.
    /// </summary>
    /// <exception cref="CorruptIndexException">A posting read during maintenance was corrupt.</exception>
    public void Maintain() => Maintain(null);

    /// <summary>
    /// <see cref="Maintain()"/> reporting <c>maintain</c> (postings split, merged or rewritten so far, out of those plus
    /// the ones still queued) from the calling thread at most every 250 ms, and once at the end.
    /// </summary>
    /// <exception cref="CorruptIndexException">A posting read during maintenance was corrupt.</exception>
    public void Maintain(IProgress<BuildProgress>? progress)
    {
        ThrowIfDisposed();
        long start = Interlocked.Read(ref _maintDone);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long lastReport = long.MinValue / 2;
        void Report(bool force)
        {
            if (progress is null || (!force && clock.ElapsedMilliseconds - lastReport < 250)) return;
            lastReport = clock.ElapsedMilliseconds;
            long done = Interlocked.Read(ref _maintDone) - start;
            progress.Report(new BuildProgress("maintain", done, done + PendingMaintenance));
        }
        // A split or merge can leave a neighbour out of shape; repeat until a round writes nothing (bounded, as
        // every round only shrinks the set of out-of-shape postings in practice).
        for (int round = 0; round < 16; round++)
        {
            long before = DiskBytes;
            QueueOutOfShape();
            Report(force: round == 0);
            if (progress is null) WaitForMaintenance();
            else WaitForMaintenance(() => Report(force: false));
            if (DiskBytes == before) break;
        }
        Report(force: true);
    }

    private void QueueOutOfShape()
    {
        _lock.EnterRead();
        try
        {
            for (int p = 0; p < _postings.Count; p++)
            {
                var info = _postings[p];
                if (info.Exists && (info.Entries > Options.MaxPostingSize || info.Live < Options.MinPostingSize))
                    EnqueueMaintenance(p);
            }
        }
        finally { _lock.ExitRead(); }
    }

    private void ThrowMaintenanceError()
    {
        var e = _maintError;
        if (e is null) return;
        _maintError = null;
        e.Throw();
    }

    private void RunMaintenance(Action? tick)
    {
        while (true)
        {
            tick?.Invoke();
            int p;
            lock (_maintGate)
            {
                if (_maintQueue.Count == 0) return;
                p = _maintQueue.Dequeue();
                _maintSet.Remove(p);
            }
            lock (_writerGate)
            {
                if (_disposed) return;
                _lock.EnterWrite();
                try
                {
                    MaintainPosting(p);
                    RefreshPostingMap();
                    Interlocked.Increment(ref _maintDone);
                }
                catch (Exception e) when (e is IOException)
                {
                    _maintError = ExceptionDispatchInfo.Capture(e);
                    return;
                }
                finally { _lock.ExitWrite(); }
            }
        }
    }

    private void MaintainPosting(int p)
    {
        if (p >= _postings.Count || !_postings[p].Exists) return;
        var buffer = LoadLive(p);
        bool split = buffer.Count > Options.MaxPostingSize, merge = !split && buffer.Count < Options.MinPostingSize && _heads.Count > 1;
        // Coded postings: a split or merge needs the full vectors, read from the refine file (at most a posting's worth).
        if (split || merge) buffer.LoadVectors(_refine!);
        if (split) Split(p, buffer);
        else if (merge) Merge(p, buffer);
        else if (buffer.Count < _postings[p].Entries) StorePosting(p, buffer, _postings[p].Live);
    }

    private int AllocatePosting()
    {
        if (_freePostings.Count > 0) return _freePostings.Pop();
        _postings.Add(default);
        return _postings.Count - 1;
    }

    private float[] Mean(PostingBuffer b, List<int> rows)
    {
        int d = Dimension;
        var sum = new double[d];
        foreach (int r in rows) { var v = b.Vector(r); for (int j = 0; j < d; j++) sum[j] += v[j]; }
        var c = new float[d];
        for (int j = 0; j < d; j++) c[j] = (float)(sum[j] / Math.Max(1, rows.Count));
        if (IsCosine) Distances.NormalizeInPlace(c);
        return c;
    }

    /// <summary>Nearest head of each vector (n × d), for reassignment.</summary>
    private long[] NearestHeads(float[] vectors, int n, int k, out float[] keys)
    {
        var labels = new long[n * k];
        keys = new float[n * k];
        // Large batches (a split of a big posting) use every core: maintenance holds the write lock meanwhile.
        if (n > 0) _heads.Search(vectors.AsSpan(0, n * Dimension), k, keys, labels, n >= 64 ? null : SingleThread);
        return labels;
    }

    /// <summary>SPFresh split: 2-means over the posting, two new heads, then LIRE reassignment.</summary>
    private void Split(int p, PostingBuffer buffer)
    {
        int d = Dimension;
        float[] oldHead = HeadVector(p, new float[d]).ToArray();
        var members = Enumerable.Range(0, buffer.Count).ToArray();
        var groups = BalancedClustering.Split(buffer.VectorArray, d, members, 2, new Random(Options.Seed ^ p));
        var ga = groups[0].ToList();
        var gb = groups[1].ToList();
        if (ga.Count == 0 || gb.Count == 0)
        {
            ga = members.Take(members.Length / 2).ToList();
            gb = members.Skip(members.Length / 2).ToList();
        }
        float[] ca = Mean(buffer, ga), cb = Mean(buffer, gb);
        if (_unitHeads) { Distances.NormalizeInPlace(ca); Distances.NormalizeInPlace(cb); }
        int q = AllocatePosting();
        _heads.Remove([p]);
        _heads.Add(ca, [p]);
        _heads.Add(cb, [(long)q]);
        _postings[q] = new PostingInfo { Exists = true };

        var bufA = NewBuffer(ga.Count + 8);
        var bufB = NewBuffer(gb.Count + 8);
        var moves = new Dictionary<int, PostingBuffer>();
        // LIRE (a): a vector that was closer to the old head than to both new heads may now belong to a
        // neighbouring posting; send it to its nearest head when that is neither new head.
        var suspects = new List<(int Row, bool InA)>();
        foreach (var (rows, isA) in new[] { (ga, true), (gb, false) })
            foreach (int r in rows)
            {
                var v = buffer.Vector(r);
                float dOld = Distances.SquaredL2(v, oldHead);
                if (dOld < Distances.SquaredL2(v, ca) && dOld < Distances.SquaredL2(v, cb)) suspects.Add((r, isA));
                else (isA ? bufA : bufB).AddFrom(buffer, r);
            }
        var sv = new float[suspects.Count * d];
        for (int i = 0; i < suspects.Count; i++) buffer.Vector(suspects[i].Row).CopyTo(sv.AsSpan(i * d, d));
        var nearest = NearestHeads(sv, suspects.Count, 1, out _);
        for (int i = 0; i < suspects.Count; i++)
        {
            int r = suspects[i].Row;
            int t = (int)nearest[i];
            var target = t == p || t < 0 ? bufA : t == q ? bufB : Moved(moves, t);
            if (!target.Contains(buffer.Ids[r])) target.AddFrom(buffer, r);
        }
        // LIRE (b): vectors of nearby postings that are now closer to a new head move into it.
        var near = NearestHeads(oldHead, 1, Math.Min(ReassignNeighbours + 2, (int)_heads.Count), out _);
        var hr = new float[d];
        foreach (long nl in near)
        {
            int r = (int)nl;
            if (r < 0 || r == p || r == q || moves.ContainsKey(r)) continue;
            var nb = LoadLive(r, withVectors: true);
            HeadVector(r, hr);
            bool changed = nb.Count < _postings[r].Entries;
            for (int i = nb.Count - 1; i >= 0; i--)
            {
                var v = nb.Vector(i);
                float dr = Distances.SquaredL2(v, hr), da = Distances.SquaredL2(v, ca), db = Distances.SquaredL2(v, cb);
                if (Math.Min(da, db) >= dr) continue;
                var target = da <= db ? bufA : bufB;
                long id = nb.Ids[i];
                if (!target.Contains(id)) target.AddFrom(nb, i);
                if (_idMap.TryGetValue(id, out var e) && e.Posting == r)
                    _idMap[id] = new IdEntry { Posting = target == bufA ? p : q, Version = e.Version };
                nb.RemoveAt(i);
                changed = true;
            }
            if (changed)
            {
                StorePosting(r, nb, Math.Min(_postings[r].Live, nb.Count));
                if (nb.Count < Options.MinPostingSize) EnqueueMaintenance(r);
            }
        }
        StorePosting(p, bufA, bufA.Count);
        StorePosting(q, bufB, bufB.Count);
        foreach (var (t, extra) in moves) AppendTo(t, extra, p);
        RetargetIds(bufB, p, q);
        if (bufA.Count > Options.MaxPostingSize) EnqueueMaintenance(p);
        if (bufB.Count > Options.MaxPostingSize) EnqueueMaintenance(q);
    }

    private PostingBuffer Moved(Dictionary<int, PostingBuffer> moves, int t)
    {
        if (!moves.TryGetValue(t, out var b)) moves[t] = b = NewBuffer();
        return b;
    }

    /// <summary>Appends entries to posting t; ids whose recorded posting was <paramref name="from"/> now point at t.</summary>
    private void AppendTo(int t, PostingBuffer extra, int from)
    {
        var target = LoadLive(t);
        for (int i = 0; i < extra.Count; i++)
            if (!target.Contains(extra.Ids[i])) target.AddFrom(extra, i);
        StorePosting(t, target, _postings[t].Live + extra.Count);
        RetargetIds(extra, from, t);
        if (target.Count > Options.MaxPostingSize) EnqueueMaintenance(t);
    }

    private void RetargetIds(PostingBuffer b, int from, int to)
    {
        for (int i = 0; i < b.Count; i++)
            if (_idMap.TryGetValue(b.Ids[i], out var e) && e.Posting == from && e.Version == b.Versions[i])
                _idMap[b.Ids[i]] = new IdEntry { Posting = to, Version = e.Version };
    }

    /// <summary>SPFresh merge: drop a near-empty posting and move its vectors to their nearest other heads.</summary>
    private void Merge(int p, PostingBuffer buffer)
    {
        _heads.Remove([p]);
        var old = _postings[p];
        _garbageBytes += (long)old.Location.Pages * _store.PageSize;
        _postings[p] = default;
        _freePostings.Push(p);
        var vectors = buffer.Vectors.ToArray();
        var nearest = NearestHeads(vectors, buffer.Count, 1, out _);
        var moves = new Dictionary<int, PostingBuffer>();
        for (int i = 0; i < buffer.Count; i++)
            Moved(moves, (int)nearest[i]).AddFrom(buffer, i);
        foreach (var (t, extra) in moves) AppendTo(t, extra, p);
    }
}
