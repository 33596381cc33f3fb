using Engine.Collections;
using Engine.Index;

namespace Engine.Distributed;

/// <summary>
/// The records of one shard replica of a record collection: a <see cref="RecordCollection{TKey}"/> in one directory
/// of the replica (payloads and keys in FASTER KV, filter columns, one index per vector field), fed with the replica's
/// sequenced writes. Every write is an upsert or delete by key, so applying a write twice leaves the same state: the
/// replica's own log is replayed over it on open without knowing which writes it already holds.
/// </summary>
/// <remarks>Readers hold a lease (<see cref="Acquire"/>) so that a state replaced by a snapshot copy is disposed only
/// after the searches still running on it finished.</remarks>
internal abstract class RecordShardState : IDisposable
{
    private int _leases;
    private int _retired;

    /// <summary>Opens (recovering) or creates the records in <paramref name="directory"/>. Blocks on I/O: call it off
    /// Orleans' turns (<see cref="BlockingWork"/>).</summary>
    public static RecordShardState Open(string directory, CollectionSchema schema, CollectionOptions options) => schema.KeyType switch
    {
        "string" => new Typed<string>(directory, schema, options),
        "guid" => new Typed<Guid>(directory, schema, options),
        "int32" => new Typed<int>(directory, schema, options),
        "int64" => new Typed<long>(directory, schema, options),
        _ => throw new ArgumentException($"Key type '{schema.KeyType}' is not supported.", nameof(schema)),
    };

    public abstract string Directory { get; }

    public abstract long Count { get; }

    public abstract long MemoryBytes { get; }

    /// <summary>True when every vector field is served by its spec's index (false while one is staged on exact search).</summary>
    public abstract bool Trained { get; }

    public abstract Task UpsertAsync(byte[][] records);

    /// <summary>Checks a write before it is logged (a write the collection would refuse must never reach the log,
    /// where replaying it would fail every open): each record decodes and fits the schema, each key is a key of the
    /// schema's type in its canonical bytes.</summary>
    /// <exception cref="ArgumentException">The first bad item, named by its position.</exception>
    public abstract void Validate(WriteKind kind, byte[][] items);

    /// <summary>Checks keys of a read: each a key of the schema's type in its canonical bytes.</summary>
    /// <exception cref="ArgumentException">The first bad key, named by its position.</exception>
    public abstract void CheckKeys(byte[][] keys);

    public abstract Task DeleteAsync(byte[][] keys);

    /// <summary>Applies a logged write on the calling thread (replaying the log while the replica opens, itself on a
    /// dedicated thread: handing the work to another one could wait on a thread that is waiting too).</summary>
    public abstract void ApplyHere(WriteKind kind, byte[][] items);

    public abstract Task CheckpointAsync();

    /// <summary>A page of the records (serialized, with vectors) in internal-id order after cursor <paramref name="after"/>
    /// and the next cursor (−1: done); see <see cref="RecordCollection{TKey}.ScanAsync"/>.</summary>
    public abstract Task<(byte[][] Records, long Next)> ScanAsync(long after, long maxBytes);

    /// <summary>The serialized records of <paramref name="keys"/>, null where absent.</summary>
    public abstract Task<byte[]?[]> GetAsync(byte[][] keys, bool includeVectors);

    public abstract Task<RecordHits> SearchAsync(RecordSearchRequest request);

    /// <summary>The first <paramref name="top"/> records matching the filter (JSON), in insertion order.</summary>
    public abstract Task<byte[][]> GetWhereAsync(string filterJson, int top, bool includeVectors);

    /// <summary>Takes a reader's lease; false when the state was retired (the caller reads the replacement).</summary>
    public bool Acquire()
    {
        Interlocked.Increment(ref _leases);
        if (Volatile.Read(ref _retired) == 0) return true;
        Release();
        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0 && Volatile.Read(ref _retired) == 1) DisposeLater();
    }

    /// <summary>Disposes the state once no reader holds a lease, then deletes its directory (a replaced copy).</summary>
    public void Retire(bool deleteDirectory)
    {
        _deleteOnDispose = deleteDirectory;
        Interlocked.Exchange(ref _retired, 1);
        if (Volatile.Read(ref _leases) == 0) DisposeLater();
    }

    // Closing checkpoints FASTER (blocking): on a dedicated thread, never on the caller's turn.
    private void DisposeLater() => _ = BlockingWork.Run(() =>
    {
        try { DisposeOnce(); }
        catch (Exception e) { System.Diagnostics.Trace.TraceWarning($"Closing the replaced records in '{Directory}' failed: {e.Message}"); }
        return true;
    });

    private bool _deleteOnDispose;
    private int _disposed;

    private void DisposeOnce()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Close();
        if (_deleteOnDispose)
            try { System.IO.Directory.Delete(Directory, recursive: true); }
            catch (IOException) { }   // the next open of the replica removes leftovers
    }

    protected abstract void Close();

    public void Dispose() => DisposeOnce();

    private sealed class Typed<TKey> : RecordShardState where TKey : notnull
    {
        private readonly RecordCollection<TKey> _records;
        private readonly RecordSerializer _serializer;
        private readonly string[] _specDescriptions;

        public Typed(string directory, CollectionSchema schema, CollectionOptions options)
        {
            Directory = directory;
            _records = RecordCollection<TKey>.Open(directory, schema, options);
            _serializer = new RecordSerializer(schema);
            _specDescriptions = schema.Vectors.Select(v =>
            {
                using var probe = IndexFactory.Create(v.IndexSpec, v.Dimension, v.Metric);
                return probe.Description;
            }).ToArray();
        }

        public override string Directory { get; }

        public override long Count => _records.Count;

        public override long MemoryBytes => _records.MemoryBytes;

        public override bool Trained =>
            _records.Schema.Vectors.Select((v, i) => _records.IndexDescription(v.Name) == _specDescriptions[i]).All(t => t);

        // Writes and checkpoints commit FASTER's log, which blocks: on the dedicated threads (BlockingWork).
        public override Task UpsertAsync(byte[][] records)
        {
            var batch = records.Select(b => _serializer.Deserialize<TKey>(b)).ToArray();
            return BlockingWork.Run(() => _records.UpsertBatchAsync(batch));
        }

        public override void Validate(WriteKind kind, byte[][] items)
        {
            for (int i = 0; i < items.Length; i++)
            {
                var item = items[i] ?? throw new ArgumentException($"Item {i} of the write is null.", nameof(items));
                try
                {
                    if (kind == WriteKind.Upsert)
                    {
                        var record = _serializer.Deserialize<TKey>(item);
                        _serializer.Serialize(record);   // the schema's checks (field types, finite vectors)
                        var key = _serializer.KeyOf(item);
                        CheckKey(key);
                        int max = _records.MaxRecordBytes(key.Length);
                        if (item.Length > max) throw new ArgumentException($"it is {item.Length} bytes; a record holds at most {max} bytes.");
                    }
                    else CheckKey(item);
                }
                catch (Exception e) when (e is CorruptIndexException or ArgumentException)
                {
                    throw new ArgumentException($"{(kind == WriteKind.Upsert ? "Record" : "Key")} {i} of the write is not valid for the collection: {Guard.MessageWithoutParameter(e)}", nameof(items));
                }
            }
        }

        public override void CheckKeys(byte[][] keys)
        {
            for (int i = 0; i < keys.Length; i++)
            {
                try { CheckKey(keys[i] ?? throw new ArgumentException("it is null.")); }
                catch (ArgumentException e) { throw new ArgumentException($"Key {i} is not a key of the collection: {Guard.MessageWithoutParameter(e)}", nameof(keys)); }
            }
        }

        private static void CheckKey(byte[] key)
        {
            int expected = typeof(TKey) == typeof(Guid) ? 16 : typeof(TKey) == typeof(int) ? 4 : typeof(TKey) == typeof(long) ? 8 : -1;
            if (expected >= 0 && key.Length != expected)
                throw new ArgumentException($"a {typeof(TKey).Name} key has {expected} bytes, not {key.Length}.");
            if (!RecordSerializer.SerializeKey(RecordSerializer.DeserializeKey<TKey>(key)).AsSpan().SequenceEqual(key))
                throw new ArgumentException("the key bytes are not valid UTF-8.");
        }

        public override Task DeleteAsync(byte[][] keys)
        {
            var batch = keys.Select(k => RecordSerializer.DeserializeKey<TKey>(k)).ToArray();
            return BlockingWork.Run(() => _records.DeleteBatchAsync(batch));
        }

        public override void ApplyHere(WriteKind kind, byte[][] items)
        {
            if (kind == WriteKind.Upsert) _records.UpsertBatchAsync(items.Select(b => _serializer.Deserialize<TKey>(b)).ToArray()).GetAwaiter().GetResult();
            else _records.DeleteBatchAsync(items.Select(k => RecordSerializer.DeserializeKey<TKey>(k)).ToArray()).GetAwaiter().GetResult();
        }

        public override Task CheckpointAsync() => BlockingWork.Run(() => _records.CheckpointAsync());

        public override async Task<(byte[][] Records, long Next)> ScanAsync(long after, long maxBytes)
        {
            var page = await _records.ScanAsync(after, 4096, maxBytes).ConfigureAwait(false);
            return (page.Records.Select(r => _serializer.Serialize(r)).ToArray(), page.Next);
        }

        public override async Task<byte[]?[]> GetAsync(byte[][] keys, bool includeVectors)
        {
            CheckKeys(keys);
            var found = await _records.GetBatchAsync(keys.Select(k => RecordSerializer.DeserializeKey<TKey>(k)).ToArray(), includeVectors).ConfigureAwait(false);
            return found.Select(r => r is null ? null : _serializer.Serialize(r, includeVectors)).ToArray();
        }

        public override async Task<RecordHits> SearchAsync(RecordSearchRequest request)
        {
            var field = _records.Schema.VectorFieldFor(request.VectorName);
            int d = field.Dimension;
            if (request.Queries.Length % d != 0)
                throw new ArgumentException($"The queries hold {request.Queries.Length} values, not a multiple of vector '{field.Name}''s dimension {d}.", nameof(request));
            var options = new CollectionSearchOptions
            {
                VectorName = field.Name, IncludeVectors = request.IncludeVectors, Settings = request.Settings,
                ExactFallbackSelectivity = request.ExactFallbackSelectivity,
                Filter = request.FilterJson is null ? null : FilterSerializer.FromJson(request.FilterJson),
            };
            int nq = request.Queries.Length / d;
            var perQuery = await Task.WhenAll(Enumerable.Range(0, nq).Select(q =>
                _records.SearchAsync(request.Queries.AsMemory(q * d, d), request.K, options))).ConfigureAwait(false);
            var offsets = new int[nq + 1];
            for (int q = 0; q < nq; q++) offsets[q + 1] = offsets[q] + perQuery[q].Count;
            var hits = perQuery.SelectMany(h => h).ToArray();
            return new RecordHits
            {
                Offsets = offsets,
                Distances = hits.Select(h => h.Distance).ToArray(),
                Scores = hits.Select(h => h.Score).ToArray(),
                Keys = hits.Select(h => RecordSerializer.SerializeKey(h.Record.Key)).ToArray(),
                Records = hits.Select(h => _serializer.Serialize(h.Record, request.IncludeVectors)).ToArray(),
                ShardsAnswered = 1,
            };
        }

        public override async Task<byte[][]> GetWhereAsync(string filterJson, int top, bool includeVectors)
        {
            var found = await _records.GetWhereAsync(FilterSerializer.FromJson(filterJson), top, 0, includeVectors).ConfigureAwait(false);
            return found.Select(r => _serializer.Serialize(r, includeVectors)).ToArray();
        }

        protected override void Close() => _records.Dispose();
    }
}
