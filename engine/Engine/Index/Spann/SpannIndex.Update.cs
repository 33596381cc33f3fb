using Engine.Distance;
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    private const byte RecordInsert = 1;
    private const byte RecordDelete = 2;

    /// <inheritdoc />
    /// <remarks>Durable indexes log and commit the batch before applying it; when this returns the vectors
    /// survive a crash. Oversize postings are split in the background afterwards.</remarks>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, negative ids, or ids already present.</exception>
    /// <exception cref="InvalidOperationException">The index is not trained.</exception>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        ThrowIfDisposed();
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Ids(ids, n);
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (n == 0) return;
        if (!IsTrained) throw new InvalidOperationException("Train the SPANN index before adding vectors (the heads come from training).");
        lock (_writerGate)
        {
            ThrowIfDisposed();
            ThrowMaintenanceError();
            var seen = new HashSet<long>();
            _lock.EnterRead();
            try
            {
                for (int i = 0; i < n; i++)
                    if (!seen.Add(ids[i]) || (_idMap.TryGetValue(ids[i], out var e) && e.Posting >= 0))
                        throw new ArgumentException($"Id {ids[i]} is already present; ids must be unique (remove it first to replace the vector).", nameof(ids));
            }
            finally { _lock.ExitRead(); }
            if (_wal is not null) LogInsert(vectors, ids);
            ApplyInsertPrepared(vectors, ids);
        }
        StartMaintenance();
    }

    private void ApplyInsertPrepared(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        float[] data = vectors.ToArray();
        if (IsCosine) for (int i = 0; i < ids.Length; i++) Distances.NormalizeInPlace(data.AsSpan(i * Dimension, Dimension));
        _lock.EnterWrite();
        try
        {
            ApplyInsert(data, ids);
            RefreshPostingMap();
        }
        finally { _lock.ExitWrite(); }
    }

    /// <inheritdoc />
    /// <remarks>Deleted ids disappear from results at once (tombstones); their copies are dropped when their
    /// postings are next rewritten.</remarks>
    public int Remove(ReadOnlySpan<long> ids)
    {
        ThrowIfDisposed();
        if (ids.IsEmpty) return 0;
        lock (_writerGate)
        {
            ThrowIfDisposed();
            ThrowMaintenanceError();
            int present = 0;
            _lock.EnterRead();
            try
            {
                foreach (long id in ids) if (_idMap.TryGetValue(id, out var e) && e.Posting >= 0) present++;
            }
            finally { _lock.ExitRead(); }
            if (present == 0) return 0;
            if (_wal is not null) LogDelete(ids);
            int removed;
            _lock.EnterWrite();
            try { removed = ApplyDelete(ids); }
            finally { _lock.ExitWrite(); }
            StartMaintenance();
            return removed;
        }
    }

    private int ApplyDelete(ReadOnlySpan<long> ids)
    {
        int removed = 0;
        foreach (long id in ids)
        {
            if (!_idMap.TryGetValue(id, out var e) || e.Posting < 0) continue;
            var info = _postings[e.Posting];
            info.Live = Math.Max(0, info.Live - 1);
            _postings[e.Posting] = info;
            if (info.Live < Options.MinPostingSize) EnqueueMaintenance(e.Posting);
            _idMap[id] = new IdEntry { Posting = -1, Version = e.Version };
            MarkStale(id);
            removed++;
        }
        Interlocked.Add(ref _live, -removed);
        return removed;
    }

    private void LogInsert(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        var wal = _wal!;
        int d = Dimension;
        int perVector = 8 + 4 * d;
        int chunk = Math.Max(1, (wal.MaxRecordSize - 5) / perVector);
        if (5 + perVector > wal.MaxRecordSize) throw new ArgumentException($"Dimension {d} is too large for one log record.", nameof(vectors));
        for (int s = 0; s < ids.Length; s += chunk)
        {
            int b = Math.Min(chunk, ids.Length - s);
            var rec = new byte[5 + b * perVector];
            rec[0] = RecordInsert;
            BinaryPrimitives.WriteInt32LittleEndian(rec.AsSpan(1), b);
            MemoryMarshal.AsBytes(ids.Slice(s, b)).CopyTo(rec.AsSpan(5));
            MemoryMarshal.AsBytes(vectors.Slice(s * d, b * d)).CopyTo(rec.AsSpan(5 + b * 8));
            wal.Append(rec);
        }
        wal.Commit();
    }

    private void LogDelete(ReadOnlySpan<long> ids)
    {
        var wal = _wal!;
        int chunk = (wal.MaxRecordSize - 5) / 8;
        for (int s = 0; s < ids.Length; s += chunk)
        {
            int b = Math.Min(chunk, ids.Length - s);
            var rec = new byte[5 + b * 8];
            rec[0] = RecordDelete;
            BinaryPrimitives.WriteInt32LittleEndian(rec.AsSpan(1), b);
            MemoryMarshal.AsBytes(ids.Slice(s, b)).CopyTo(rec.AsSpan(5));
            wal.Append(rec);
        }
        wal.Commit();
    }

    /// <summary>Applies one logged record during recovery (no logging; same validation as the live path).</summary>
    private void ReplayRecord(long address, ReadOnlySpan<byte> rec, string walName)
    {
        if (rec.Length < 5) throw new CorruptIndexException(walName, address, "log record is shorter than its header");
        int n = BinaryPrimitives.ReadInt32LittleEndian(rec[1..]);
        int d = Dimension;
        switch (rec[0])
        {
            case RecordInsert when n > 0 && rec.Length == 5 + (long)n * (8 + 4 * d):
            {
                var ids = MemoryMarshal.Cast<byte, long>(rec.Slice(5, n * 8)).ToArray();
                var vectors = MemoryMarshal.Cast<byte, float>(rec.Slice(5 + n * 8)).ToArray();
                foreach (long id in ids)
                    if (id < 0 || (_idMap.TryGetValue(id, out var e) && e.Posting >= 0))
                        throw new CorruptIndexException(walName, address, $"log inserts id {id}, which is invalid or already present");
                foreach (float v in vectors)
                    if (!float.IsFinite(v)) throw new CorruptIndexException(walName, address, "log record holds a non-finite vector value");
                ApplyInsertPrepared(vectors, ids);
                break;
            }
            case RecordDelete when n > 0 && rec.Length == 5 + (long)n * 8:
            {
                var ids = MemoryMarshal.Cast<byte, long>(rec.Slice(5, n * 8)).ToArray();
                _lock.EnterWrite();
                try { ApplyDelete(ids); }
                finally { _lock.ExitWrite(); }
                break;
            }
            default:
                throw new CorruptIndexException(walName, address, $"log record of type {rec[0]} with {n} entries and {rec.Length} bytes is malformed");
        }
    }
}
