namespace Engine.Index.MultiVector;

public sealed partial class MultiVectorIndex
{
    /// <summary>
    /// Removes the given ids: their FDEs leave the FDE index (through its own <see cref="IVectorIndex.Remove"/>) and
    /// their token sets are dropped, the remaining tokens moved together so memory and saved files shrink. Ids that
    /// are not present (or repeat in <paramref name="ids"/>) are ignored. Searches never return a removed id; a
    /// removed id may be added again.
    /// </summary>
    /// <returns>How many items were removed.</returns>
    /// <exception cref="NotSupportedException">The FDE index cannot remove items (nothing is changed).</exception>
    public int Remove(ReadOnlySpan<long> ids)
    {
        _lock.EnterWrite();
        try
        {
            var present = new List<long>();
            var drop = new bool[_count];
            foreach (long id in ids)
                if (_rowOf.TryGetValue(id, out int row) && !drop[row])
                {
                    drop[row] = true;
                    present.Add(id);
                }
            if (present.Count == 0) return 0;
            int fdeRemoved;
            try { fdeRemoved = _fdeIndex.Remove(present.ToArray()); }
            catch (NotSupportedException e)
            {
                throw new NotSupportedException($"The FDE index '{_fdeIndex.Description}' cannot remove items, so this multi-vector index cannot either: {e.Message}", e);
            }
            Compact(drop);
            if (fdeRemoved != present.Count)
                throw new InvalidOperationException($"The FDE index '{_fdeIndex.Description}' removed {fdeRemoved} of {present.Count} ids the multi-vector index held: the two were out of step (the token sets are removed).");
            return present.Count;
        }
        finally { _lock.ExitWrite(); }
    }

    /// <summary>Drops the rows flagged in <paramref name="drop"/> from tokens, offsets, ids and the row map, keeping the order of the others (caller holds the write lock).</summary>
    private void Compact(bool[] drop)
    {
        int d = Dimension, rows = 0, tokens = 0;
        for (int row = 0; row < _count; row++)
        {
            long id = _ids[row];
            if (drop[row])
            {
                _rowOf.Remove(id);
                continue;
            }
            int from = _offsets[row], length = _offsets[row + 1] - from;
            if (rows != row)
            {
                if (TokenStorage == TokenEncoding.F32) _f32.AsSpan(from * d, length * d).CopyTo(_f32.AsSpan(tokens * d));
                else _f16.AsSpan(from * d, length * d).CopyTo(_f16.AsSpan(tokens * d));
                _ids[rows] = id;
                _rowOf[id] = rows;
            }
            _offsets[rows] = tokens;
            tokens += length;
            rows++;
        }
        _offsets[rows] = tokens;
        Volatile.Write(ref _count, rows);
    }
}
