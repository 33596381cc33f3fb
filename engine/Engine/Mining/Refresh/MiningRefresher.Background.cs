namespace Engine.Mining.Refresh;

public sealed partial class MiningRefresher
{
    // One index copy with the embedding step of each of its vectors. Fields change only while the copy is the back
    // one and no chunk uses it (Users == 0); readers see them after taking _gate.
    private sealed class Copy(IVectorIndex index, long[] embeddedAt, long applied, long step)
    {
        public IVectorIndex Index = index;
        public long[] EmbeddedAt = embeddedAt;
        public long Applied = applied; // push sequence number the copy is current with
        public long Step = step;
        public long Oldest = embeddedAt.Min();
        public long Number;
        public int Users;
        public bool Broken;

        public RefresherSnapshot Describe() => new(Number, Step, Oldest);
    }

    // A copy built from the whole live table: the initial ones, or a replacement after a failed refresh.
    private Copy BuildCopy(bool probe)
    {
        float[] vectors;
        long[] embeddedAt;
        long applied, step;
        lock (_live)
        {
            vectors = (float[])_vectors.Clone();
            embeddedAt = (long[])_embeddedAt.Clone();
            applied = _sequence;
            step = _step;
        }
        var index = _createIndex(_d) ?? throw new InvalidOperationException("The index factory returned null.");
        try
        {
            if (index.Dimension != _d)
                throw new InvalidOperationException($"The index factory made a {index.Dimension}-dimensional index for {_d}-dimensional vectors.");
            if (!index.IsTrained) index.Train(vectors);
            var ids = new long[_n];
            for (int i = 0; i < _n; i++) ids[i] = i;
            index.Add(vectors, ids);
            if (probe) ProbeUpsert(index, vectors.AsSpan(0, _d));
        }
        catch
        {
            index.Dispose();
            throw;
        }
        return new Copy(index, embeddedAt, applied, step);
    }

    // A refresher upserts through the index contract (Remove, then Add of the same id): fail now, with a clear
    // message, on an index that cannot, rather than at the first refresh.
    private static void ProbeUpsert(IVectorIndex index, ReadOnlySpan<float> row0)
    {
        try
        {
            if (index.Remove([0L]) != 1)
                throw new NotSupportedException($"Remove of a present id removed nothing.");
            index.Add(row0, [0L]);
        }
        catch (NotSupportedException e)
        {
            throw new NotSupportedException(
                $"The '{index.Description}' index cannot be updated in place (Remove then Add of an id): {e.Message} A refresher needs an index that can (Flat, IVF, HNSW, SPANN).", e);
        }
    }

    // Called with _gate held.
    private void Request(long target)
    {
        if (target > _requested) _requested = target;
        if (_worker is null && _front.Applied < _requested)
            _worker = Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Work()
    {
        while (true)
        {
            Copy back;
            lock (_gate)
            {
                // Chunks that began on this copy before the last swap finish first (at most one per mining call).
                while (!_disposed && _back.Users > 0) Monitor.Wait(_gate);
                if (_disposed || _front.Applied >= _requested)
                {
                    _worker = null;
                    Monitor.PulseAll(_gate);
                    return;
                }
                back = _back;
            }
            Copy ready;
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            int written = _n; // a rebuild writes every vector
            try
            {
                ready = back.Broken ? Rebuild(back) : Apply(back, out written);
            }
            catch (Exception e)
            {
                lock (_gate)
                {
                    _statistics = _statistics with { Failures = _statistics.Failures + 1 };
                    back.Broken = true;
                    _worker = null;
                    if (_waiters.Count > 0)
                    {
                        foreach (var w in _waiters) w.Completion.TrySetException(Failed(e));
                        _waiters.Clear();
                    }
                    else
                    {
                        _error = e;
                    }
                    Monitor.PulseAll(_gate);
                }
                return;
            }
            lock (_gate)
            {
                _statistics = _statistics with
                {
                    Refreshes = _statistics.Refreshes + 1,
                    VectorsWritten = _statistics.VectorsWritten + written,
                    RefreshTime = _statistics.RefreshTime + System.Diagnostics.Stopwatch.GetElapsedTime(started),
                };
                ready.Number = ++_numbers;
                _back = _front;
                _front = ready; // the atomic swap: chunks starting from now on use the new snapshot
                var snapshot = ready.Describe();
                for (int i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Target > ready.Applied) continue;
                    _waiters[i].Completion.TrySetResult(snapshot);
                    _waiters.RemoveAt(i);
                }
                Monitor.PulseAll(_gate);
            }
        }
    }

    // Upserts in place the ids pushed since the copy was last current.
    private Copy Apply(Copy copy, out int written)
    {
        long[] ids;
        float[] rows;
        long[] steps;
        long applied, step;
        lock (_live)
        {
            applied = _sequence;
            step = _step;
            int changed = 0;
            for (int i = 0; i < _n; i++)
                if (_changedAt[i] > copy.Applied) changed++;
            ids = new long[changed];
            steps = new long[changed];
            rows = new float[(long)changed * _d];
            for (int i = 0, j = 0; i < _n; i++)
            {
                if (_changedAt[i] <= copy.Applied) continue;
                ids[j] = i;
                steps[j] = _embeddedAt[i];
                _vectors.AsSpan(i * _d, _d).CopyTo(rows.AsSpan(j * _d, _d));
                j++;
            }
        }
        written = ids.Length;
        if (ids.Length > 0)
        {
            copy.Index.Remove(ids);
            copy.Index.Add(rows, ids);
        }
        for (int j = 0; j < ids.Length; j++) copy.EmbeddedAt[ids[j]] = steps[j];
        copy.Applied = applied;
        copy.Step = step;
        copy.Oldest = copy.EmbeddedAt.Min();
        return copy;
    }

    // A copy whose last update failed half-way holds unknown contents: build a new one from the live table.
    private Copy Rebuild(Copy broken)
    {
        var fresh = BuildCopy(probe: false);
        broken.Index.Dispose();
        return fresh;
    }
}
