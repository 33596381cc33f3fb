using System.Buffers.Binary;
using System.Text.Json;
using Engine.Faster;
using Engine.Storage.Wal;

namespace Engine.Collections;

/// <summary>
/// A durable collection of records (key, data fields, named vectors) in one directory: payloads, keys and the
/// key → internal id map in FASTER KV, every mutation in a write-ahead log before it is acknowledged, one vector index
/// per vector field derived from the stored records.
/// </summary>
/// <remarks>
/// <para>Durability: a write is appended to the log and the log is committed (fsync) before it is applied to the store
/// and the indexes and before the call returns. A checkpoint makes FASTER KV durable at a log address and then
/// truncates the log there, after writing an index snapshot (indexes, filter columns) stamped with that address; opening
/// recovers the KV checkpoint named by <c>manifest.json</c>, loads the newest usable snapshot, and replays the log from
/// the checkpoint's address into the store and from the snapshot's into the indexes, so an index can never hold a
/// vector without its record or miss one. Without a usable snapshot it builds the indexes from the recovered records
/// (<see cref="CollectionRecovery.IndexSource"/> says which). See docs/collections.md.</para>
/// <para>Thread safety: any number of concurrent readers (search, get); writers are serialised and exclude readers
/// only while they apply a committed write in memory (not during the log's fsync).</para>
/// <para>One open collection per directory, in any process: <see cref="Open"/> takes the directory's
/// <see cref="CollectionDirectoryLock"/> first and <see cref="Dispose"/> releases it last; share one instance.</para>
/// </remarks>
/// <typeparam name="TKey">string, Guid, int or long (as in the schema).</typeparam>
public sealed class RecordCollection<TKey> : IDisposable where TKey : notnull
{
    private const byte OpUpsert = 1, OpDelete = 2;
    private const byte KeyPrefix = 1, RecordPrefix = 2;
    private const string SchemaFile = "collection.json", ManifestFile = "manifest.json", WalDir = "wal", StoreDir = "kv";

    private readonly string _directory;
    private readonly CollectionOptions _options;
    private readonly RecordCodec _codec;
    private Columns _columns;
    private readonly VectorSlot[] _slots;
    private readonly ReaderWriterLockSlim _state = new(LockRecursionPolicy.NoRecursion);
    private readonly SemaphoreSlim _writer = new(1, 1);
    private FasterKeyValueStore _store;
    private readonly IWriteAheadLog _log;
    private long _nextId;
    private long _checkpointAddress;
    private Guid? _checkpointToken;
    private long _snapshotAddress = -1;
    private int _disposed;
    private readonly CollectionDirectoryLock _dirLock;

    /// <summary>The collection's schema.</summary>
    public CollectionSchema Schema { get; }

    /// <summary>What opening found: log records replayed after the last checkpoint and records loaded.</summary>
    public CollectionRecovery Recovery { get; }

    private RecordCollection(string directory, CollectionSchema schema, CollectionOptions options, FasterKeyValueStore store,
        IWriteAheadLog log, Guid? token, long checkpointAddress, bool fellBack, CollectionDirectoryLock dirLock)
    {
        _directory = directory;
        _dirLock = dirLock;
        Schema = schema;
        _options = options;
        _codec = new RecordCodec(schema);
        _columns = new Columns(schema);
        _slots = schema.Vectors.Select(v => new VectorSlot(v)).ToArray();
        _store = store;
        _log = log;
        _checkpointToken = token;
        _checkpointAddress = checkpointAddress;
        Recovery = Load() with { UsedPreviousCheckpoint = fellBack };
    }

    /// <summary>
    /// Opens the collection in <paramref name="directory"/>, or creates it there with <paramref name="schema"/>.
    /// Recovery (KV checkpoint, index snapshot or index build, log replay) runs here; see <see cref="Recovery"/>.
    /// </summary>
    /// <param name="directory">The collection's directory.</param>
    /// <param name="schema">Required to create; when given for an existing collection it must equal the stored one.</param>
    /// <param name="options">Log kind, checkpoint interval, store memory.</param>
    /// <exception cref="ArgumentException">No schema for a new collection, a schema or key type that differs from the stored one.</exception>
    /// <exception cref="CorruptIndexException">Damaged or missing files (named), among them a lost <c>collection.json</c> or
    /// <c>manifest.json</c> beside the data they describe (nothing is deleted or created over it).</exception>
    /// <exception cref="IOException">Another open collection, in this process or another, holds the directory
    /// (<see cref="CollectionDirectoryLock"/>).</exception>
    public static RecordCollection<TKey> Open(string directory, CollectionSchema? schema = null, CollectionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= CollectionOptions.Default;
        options.Validate();
        string dir = Path.GetFullPath(directory);
        string schemaPath = Path.Combine(dir, SchemaFile);
        if (!File.Exists(schemaPath))
        {
            if (schema is null)
            {
                ThrowIfDataWithoutCollectionFile(dir, schemaPath);
                throw NoCollection(dir);
            }
            CheckKeyType(schema);
            Directory.CreateDirectory(dir);
        }
        // One open collection per directory (this process or another): taken before any file is read or written.
        var dirLock = CollectionDirectoryLock.Acquire(dir);
        try { return OpenLocked(dir, schemaPath, schema, options, dirLock); }
        catch
        {
            dirLock.Dispose();
            throw;
        }
    }

    // collection.json is written when a collection is created, before its store (kv/) and its first manifest exist, and
    // is never removed: a directory with either but without it lost that file. Creating a collection there would delete
    // the store and the log, every record with them; refuse and name the file instead.
    private static void ThrowIfDataWithoutCollectionFile(string dir, string schemaPath)
    {
        bool manifest = File.Exists(Path.Combine(dir, ManifestFile)), store = Directory.Exists(Path.Combine(dir, StoreDir));
        if (manifest || store)
            throw new CorruptIndexException(schemaPath, 0,
                $"the collection file is missing, but the directory holds a collection's data ({(manifest ? ManifestFile : StoreDir + "/")}): " +
                "restore collection.json (it holds the schema and the log kind) from a backup or a copy of the directory; a new collection is " +
                "not created over the data, which would delete it (delete the directory to start afresh)");
    }

    // Without manifest.json (lost, or never written: a full disk failed the first one after its KV checkpoint) the open
    // decides by the log's begin address. A store checkpoint that completed (its page checksum file was written) and
    // whose cookie says it covers the log up to an address at or after the log's begin holds every record the log no
    // longer does: recover it and replay the log from that address; the newest such wins. Failing that, a log that was
    // never truncated holds every record: replay it whole into an empty store. Otherwise records before the log's begin
    // are held only by checkpoints that cannot be used: refuse, naming the manifest.
    private static (FasterKeyValueStore Store, Guid? Token, long Address) OpenWithoutManifest(string dir, string manifestPath, IWriteAheadLog log, CollectionOptions options)
    {
        string storeDir = Path.Combine(dir, StoreDir);
        var checkpoints = FasterKeyValueStore.ListCheckpoints(storeDir);
        string? lastError = null;
        foreach (var cp in checkpoints)
        {
            if (!cp.Completed || AddressOfCookie(cp.Cookie) is not long a || a < log.BeginAddress || a > log.TailAddress) continue;
            try
            {
                var store = FasterKeyValueStore.Open(storeDir, cp.Token, options.StoreMemoryBytes);
                System.Diagnostics.Trace.TraceWarning($"Collection '{dir}': {ManifestFile} is missing; recovered store checkpoint {cp.Token}, which covers the log up to address {a} (the log begins at {log.BeginAddress}).");
                return (store, cp.Token, a);
            }
            catch (CorruptIndexException e) { lastError = e.Message; } // an older one may still cover the log
        }
        if (!log.WasTruncated) return (FasterKeyValueStore.Open(storeDir, null, options.StoreMemoryBytes), null, log.BeginAddress);
        throw new CorruptIndexException(manifestPath, 0,
            $"the checkpoint manifest is missing and the log was truncated (it begins at address {log.BeginAddress}), but none of the " +
            $"{checkpoints.Count} store checkpoints in {StoreDir}/ is a completed one covering the log from there" +
            $"{(lastError is null ? "" : $" (the newest that would: {lastError})")}: the records before that address would be lost. " +
            "Restore manifest.json and kv/ from a backup or a copy of the directory");
    }

    // The log address a store checkpoint covers, in the cookie it was taken with: "ECKP" u32 | address i64 | crc32c u32.
    private const uint CookieMagic = 0x504B4345; // "ECKP"

    private static byte[] CookieOf(long address)
    {
        var c = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(c, CookieMagic);
        BinaryPrimitives.WriteInt64LittleEndian(c.AsSpan(4), address);
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(12), Engine.Storage.Format.Crc32C.Compute(c.AsSpan(0, 12)));
        return c;
    }

    private static long? AddressOfCookie(byte[]? c) =>
        c is { Length: 16 } && BinaryPrimitives.ReadUInt32LittleEndian(c) == CookieMagic
            && BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(12)) == Engine.Storage.Format.Crc32C.Compute(c.AsSpan(0, 12))
            && BinaryPrimitives.ReadInt64LittleEndian(c.AsSpan(4)) is >= 0 and var a ? a : null;

    private static ArgumentException NoCollection(string dir) =>
        new($"'{dir}' holds no collection; pass a schema to create one.", "schema");

    private static RecordCollection<TKey> OpenLocked(string dir, string schemaPath, CollectionSchema? schema, CollectionOptions options,
        CollectionDirectoryLock dirLock)
    {
        CollectionSchema stored;
        IWriteAheadLog log;
        if (!File.Exists(schemaPath))
        {
            // Checked again under the lock: the collection may have been created since (or its files deleted).
            ThrowIfDataWithoutCollectionFile(dir, schemaPath);
            if (schema is null) throw NoCollection(dir);
            CheckKeyType(schema);
            if (File.Exists(Path.Combine(dir, ManifestFile))) File.Delete(Path.Combine(dir, ManifestFile));
            IndexSnapshot.DeleteAll(dir);
            log = options.WriteAheadLog.Create(Path.Combine(dir, WalDir));
            var info = new CollectionInfo(schema, options.WriteAheadLog.Kind);
            try { WriteAtomically(schemaPath, JsonSerializer.Serialize(info, InfoJson)); }
            catch { log.Dispose(); throw; }
            stored = schema;
        }
        else
        {
            var info = ReadInfo(schemaPath);
            stored = info.Schema;
            if (schema is not null && !schema.SameAs(stored))
                throw new ArgumentException($"The collection in '{dir}' has a different schema than the one given.", nameof(schema));
            CheckKeyType(stored);
            if (info.WriteAheadLog != options.WriteAheadLog.Kind)
                throw new ArgumentException($"The collection in '{dir}' was created with a '{info.WriteAheadLog}' log; open it with that kind (got '{options.WriteAheadLog.Kind}').", nameof(options));
            log = options.WriteAheadLog.Open(Path.Combine(dir, WalDir));
        }
        Guid? token = null, previousToken = null;
        long address = log.BeginAddress, previousAddress = log.BeginAddress;
        bool fellBack = false;
        FasterKeyValueStore store;
        try
        {
            var manifestPath = Path.Combine(dir, ManifestFile);
            string storeDir = Path.Combine(dir, StoreDir);
            if (File.Exists(manifestPath))
            {
                var m = ReadManifest(manifestPath);
                token = m.Token;
                address = m.LogAddress;
                previousToken = m.PreviousToken;
                previousAddress = m.PreviousLogAddress;
                long needed = previousToken is null ? address : Math.Min(address, previousAddress);
                if (needed < log.BeginAddress)
                    throw new CorruptIndexException(manifestPath, 0, $"the checkpoint needs the log from address {needed} but the log begins at {log.BeginAddress}.");
                try { store = FasterKeyValueStore.Open(storeDir, token, options.StoreMemoryBytes); }
                catch (CorruptIndexException newest) when (previousToken is not null)
                {
                    // The newest KV checkpoint cannot be recovered: the previous one, with the longer log kept for it.
                    try { store = FasterKeyValueStore.Open(storeDir, previousToken, options.StoreMemoryBytes); }
                    catch (CorruptIndexException previous)
                    {
                        // the newest checkpoint's problem names the damage best (its page checksums cover the most)
                        throw new CorruptIndexException(newest.FilePath, newest.Offset,
                            $"{newest.Problem} (the previous checkpoint cannot be recovered either: {previous.Message})", newest);
                    }
                    (token, address, previousToken, fellBack) = (previousToken, previousAddress, null, true);
                }
                if (AddressOfCookie(store.RecoveredCookie) is long covered && covered != address)
                {
                    store.Dispose();
                    throw new CorruptIndexException(manifestPath, 0,
                        $"the manifest says store checkpoint {token} covers the log up to address {address}, but the checkpoint was taken at {covered}");
                }
            }
            else (store, token, address) = OpenWithoutManifest(dir, manifestPath, log, options);
            if (token is Guid t) store.PurgeCheckpointsExcept(previousToken is Guid pt ? [t, pt] : [t]);
        }
        catch
        {
            log.Dispose();
            throw;
        }
        try { return new RecordCollection<TKey>(dir, stored, options, store, log, token, address, fellBack, dirLock); }
        catch
        {
            store.Dispose();
            log.Dispose();
            throw;
        }
    }

    /// <summary>Opens or creates the collection on a worker thread (see <see cref="Open"/>).</summary>
    public static Task<RecordCollection<TKey>> OpenAsync(string directory, CollectionSchema? schema = null, CollectionOptions? options = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Open(directory, schema, options), cancellationToken);

    private static void CheckKeyType(CollectionSchema schema)
    {
        if (KeyCodec.TypeOf(schema.KeyType) != typeof(TKey))
            throw new ArgumentException($"The collection's keys are {schema.KeyType}, not {typeof(TKey).Name}.", nameof(schema));
    }

    /// <summary>Live records.</summary>
    public long Count
    {
        get
        {
            _state.EnterReadLock();
            try { return _columns.Count; }
            finally { _state.ExitReadLock(); }
        }
    }

    /// <summary>Resident bytes of the vector indexes and the filter columns (FASTER KV's memory is <see cref="CollectionOptions.StoreMemoryBytes"/>).</summary>
    public long MemoryBytes
    {
        get
        {
            _state.EnterReadLock();
            try { return _columns.MemoryBytes + _slots.Sum(s => s.MemoryBytes); }
            finally { _state.ExitReadLock(); }
        }
    }

    /// <summary>The index currently serving <paramref name="vectorName"/> (a Flat staging index until a spec that needs
    /// training is trained). For inspection; do not mutate it.</summary>
    public string IndexDescription(string? vectorName = null)
    {
        _state.EnterReadLock();
        try { return Slot(vectorName).Active.Description; }
        finally { _state.ExitReadLock(); }
    }

    // ---------------------------------------------------------------- recovery

    private CollectionRecovery Load()
    {
        // 1. The newest usable index snapshot: it must lie between the recovered KV checkpoint's log address and the
        //    log's tail, so that the log from its address onwards is replayed below (into the store, and into it).
        string? rejected = null;
        IndexSnapshot.Loaded? snapshot = null;
        if (!_options.IndexSnapshots) rejected = "index snapshots are disabled (CollectionOptions.IndexSnapshots)";
        else if (IndexSnapshot.Unsupported(_slots) is { } why) rejected = why;
        else
        {
            snapshot = IndexSnapshot.TryLoad(_directory, Schema, _slots, _checkpointAddress, _log.TailAddress, out rejected);
            if (snapshot is null) ResetMemory();
            else _columns = snapshot.Columns;
        }
        // 2. Redo: apply the log's records after the checkpoint to the store, and those after the snapshot's address to
        //    the columns and indexes (the tail).
        int replayed = 0, tail = 0;
        long maxId = -1;
        long tailFrom = snapshot?.LogAddress ?? long.MaxValue;
        string logSource = _options.WriteAheadLog.LogFile(Path.Combine(_directory, WalDir));
        var run = new List<(long Id, StoredRecord Rec)>();
        var inRun = new HashSet<long>();
        _log.Replay(_checkpointAddress, (address, record) =>
        {
            var op = ParseLogRecord(record, address);
            if (op.Id > maxId) maxId = op.Id;
            long old = ApplyToStore(op);
            replayed++;
            if (address < tailFrom) return;
            var rec = op.Kind == OpUpsert ? _codec.Decode(op.Blob, logSource) : null;
            try { ApplyToMemory(op, old, rec, run, inRun); tail++; }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                rejected = $"snapshot {tailFrom:x16} rejected: replaying the log tail into it failed ({e.GetType().Name}: {e.Message})";
                (snapshot, tailFrom, tail) = (null, long.MaxValue, 0);
                run.Clear();
                inRun.Clear();
                ResetMemory();
            }
        });
        if (snapshot is not null)
        {
            try
            {
                AddRun(run);
                foreach (var slot in _slots)
                    if (slot.Active.Count != _columns.Count)
                        throw new InvalidDataException($"vector '{slot.Field.Name}' indexes {slot.Active.Count} vectors but the collection holds {_columns.Count} records");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                rejected = $"snapshot {tailFrom:x16} rejected after its log tail: {e.Message}";
                snapshot = null;
                ResetMemory();
            }
        }
        long records;
        if (snapshot is not null && _options.VerifyPayloadsOnOpen) VerifyStoredPayloads();
        if (snapshot is not null)
        {
            _nextId = Math.Max(snapshot.NextId, maxId + 1);
            _snapshotAddress = snapshot.LogAddress;
            records = _columns.Count;
        }
        else
        {
            if (_options.IndexSnapshots && rejected != "no index snapshot")
                System.Diagnostics.Trace.TraceWarning($"Collection '{_directory}': rebuilding the vector indexes from the records: {rejected}.");
            (records, maxId) = RebuildFromStore(maxId);
            if (_options.IndexSnapshots && IndexSnapshot.Unsupported(_slots) is { } unsupported) rejected = unsupported;
            _nextId = maxId + 1;
            tail = 0;
        }
        return new CollectionRecovery(replayed, records, _log.Recovery)
        {
            IndexSource = snapshot is null ? CollectionIndexSource.Rebuild : CollectionIndexSource.Snapshot,
            SnapshotLogAddress = snapshot?.LogAddress ?? -1,
            TailRecordsReplayed = tail,
            SnapshotRejectedReason = rejected,
        };
    }

    // Checks the CRC-32C of every record payload in the store (a pass over the KV without decoding; tombstones are empty).
    private void VerifyStoredPayloads()
    {
        string source = Path.Combine(_directory, StoreDir);
        _store.Scan((k, v) =>
        {
            if (k.Length == 0) throw new CorruptIndexException(source, 0, "an empty key in the store.");
            if (k[0] == RecordPrefix && v.Length > 0) RecordCodec.CheckChecksum(v, source);
        });
    }

    // Fresh, empty columns and indexes (before a rebuild, or after a snapshot was rejected half-loaded).
    private void ResetMemory()
    {
        _columns = new Columns(Schema);
        for (int i = 0; i < _slots.Length; i++)
        {
            _slots[i].Dispose();
            _slots[i] = new VectorSlot(Schema.Vectors[i]);
        }
    }

    // Scans the (recovered, redone) store: the records, the key map and their agreement; derives columns and indexes.
    private (long Records, long MaxId) RebuildFromStore(long maxId)
    {
        var keyMap = new Dictionary<long, byte[]>();
        var recordKeys = new Dictionary<long, byte[]>();
        var pending = _slots.Select(_ => new List<(long Id, float[] V)>()).ToArray();
        string source = Path.Combine(_directory, StoreDir);
        _store.Scan((k, v) =>
        {
            if (k.Length == 0) throw new CorruptIndexException(source, 0, "an empty key in the store.");
            // FASTER's scan can yield superseded versions of a key; the point read is authoritative.
            var current = _store.Read(k);
            if (current is null || !current.AsSpan().SequenceEqual(v)) return;
            if (k[0] == KeyPrefix)
            {
                if (v.Length != 8) throw new CorruptIndexException(source, 0, "a key-map entry is not 8 bytes.");
                long id = BinaryPrimitives.ReadInt64LittleEndian(v);
                if (keyMap.TryGetValue(id, out var seen))
                {
                    if (!seen.AsSpan().SequenceEqual(k[1..])) throw new CorruptIndexException(source, 0, $"two keys map to internal id {id}.");
                    return;
                }
                keyMap[id] = k[1..].ToArray();
            }
            else if (k[0] == RecordPrefix && k.Length == 9)
            {
                long id = BinaryPrimitives.ReadInt64LittleEndian(k[1..]);
                if (recordKeys.ContainsKey(id)) return;
                if (id is < 0 or >= int.MaxValue) throw new CorruptIndexException(source, 0, $"a record has internal id {id} (key {Convert.ToHexString(k)}, value {v.Length} bytes).");
                var rec = _codec.Decode(v, source);
                recordKeys[id] = rec.Key;
                _columns.Set(id, rec.Values);
                for (int i = 0; i < _slots.Length; i++) pending[i].Add((id, rec.Vectors[i]));
                if (id > maxId) maxId = id;
            }
            else throw new CorruptIndexException(source, 0, $"an entry with unknown prefix {k[0]}.");
        });
        if (keyMap.Count != recordKeys.Count)
            throw new CorruptIndexException(source, 0, $"the key map holds {keyMap.Count} keys but the store holds {recordKeys.Count} records.");
        foreach (var (id, key) in keyMap)
            if (!recordKeys.TryGetValue(id, out var rk) || !rk.AsSpan().SequenceEqual(key))
                throw new CorruptIndexException(source, 0, $"the key map and the records disagree at internal id {id}.");
        // Derive the indexes from the records, in id order (the order they were written).
        for (int i = 0; i < _slots.Length; i++)
        {
            var list = pending[i];
            list.Sort((a, b) => a.Id.CompareTo(b.Id));
            int d = _slots[i].Field.Dimension;
            const int Chunk = 4096;
            for (int start = 0; start < list.Count; start += Chunk)
            {
                int n = Math.Min(Chunk, list.Count - start);
                var data = new float[n * d];
                var ids = new long[n];
                for (int j = 0; j < n; j++)
                {
                    list[start + j].V.CopyTo(data, j * d);
                    ids[j] = list[start + j].Id;
                }
                _slots[i].Add(data, ids);
            }
        }
        return (recordKeys.Count, maxId);
    }

    // ---------------------------------------------------------------- writes

    private readonly record struct LogOp(byte Kind, long Id, byte[] Key, byte[]? Blob);

    private LogOp ParseLogRecord(ReadOnlySpan<byte> r, long address)
    {
        string src = _options.WriteAheadLog.LogFile(Path.Combine(_directory, WalDir));
        if (r.Length < 13) throw new CorruptIndexException(src, address, "a collection log record is too short.");
        byte kind = r[0];
        long id = BinaryPrimitives.ReadInt64LittleEndian(r[1..]);
        int keyLen = BinaryPrimitives.ReadInt32LittleEndian(r[9..]);
        if (kind is not (OpUpsert or OpDelete) || keyLen < 0 || 13 + keyLen > r.Length)
            throw new CorruptIndexException(src, address, "a collection log record has a bad header.");
        var key = r.Slice(13, keyLen).ToArray();
        byte[]? blob = kind == OpUpsert ? r[(13 + keyLen)..].ToArray() : null;
        if (blob is not null) _codec.Decode(blob, src, withVectors: false); // checks the payload before it reaches the store
        return new LogOp(kind, id, key, blob);
    }

    // A record too large for one store entry or log record, named by its key and its largest value (see
    // docs/collections.md, "How large a record may be").
    private ArgumentException TooLarge(in LogOp op, StoredRecord? record, int bytes, string where, int limit)
    {
        string largest = record is null ? "" : $"; its largest value is {_codec.LargestValue(record)}";
        return new ArgumentException(
            $"Record '{KeyCodec.Decode<TKey>(op.Key)}' is {bytes} bytes encoded, more than the {where}'s limit of {limit} bytes per record{largest}. " +
            "Keep large payloads outside the collection (a file or blob store) and store a reference to them, or split them over several records.",
            "records");
    }

    private static byte[] EncodeLogRecord(in LogOp op)
    {
        var r = new byte[13 + op.Key.Length + (op.Blob?.Length ?? 0)];
        r[0] = op.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(r.AsSpan(1), op.Id);
        BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(9), op.Key.Length);
        op.Key.CopyTo(r, 13);
        op.Blob?.CopyTo(r, 13 + op.Key.Length);
        return r;
    }

    private static byte[] MapKey(byte[] key)
    {
        var k = new byte[key.Length + 1];
        k[0] = KeyPrefix;
        key.CopyTo(k, 1);
        return k;
    }

    private static byte[] RecordKey(long id)
    {
        var k = new byte[9];
        k[0] = RecordPrefix;
        BinaryPrimitives.WriteInt64LittleEndian(k.AsSpan(1), id);
        return k;
    }

    private long ReadId(byte[] key)
    {
        var v = _store.Read(MapKey(key));
        return v is null ? -1 : BinaryPrimitives.ReadInt64LittleEndian(v);
    }

    // Returns the internal id the key had before (-1: none). Idempotent for a record already applied.
    private long ApplyToStore(in LogOp op)
    {
        long old = ReadId(op.Key);
        if (op.Kind == OpUpsert)
        {
            var idBytes = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(idBytes, op.Id);
            _store.Upsert(RecordKey(op.Id), op.Blob);
            _store.Upsert(MapKey(op.Key), idBytes);
            if (old >= 0 && old != op.Id) _store.Delete(RecordKey(old));
        }
        else if (old >= 0)
        {
            _store.Delete(MapKey(op.Key));
            _store.Delete(RecordKey(old));
        }
        return old == op.Id ? -1 : old;
    }

    /// <summary>Inserts or replaces one record; durable when the task completes.</summary>
    /// <exception cref="ArgumentException">A record that does not fit the schema (the message names the field), or one
    /// larger than a store entry (about 4 MiB encoded; the message names the key and the largest value).</exception>
    public Task UpsertAsync(Record<TKey> record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return UpsertBatchAsync([record], cancellationToken);
    }

    /// <summary>
    /// Inserts or replaces records (a later record with the same key wins); durable when the task completes: the whole
    /// batch is committed to the log with one fsync. Every record is checked before anything is written.
    /// Cancellation is honoured until the log commit starts.
    /// </summary>
    /// <exception cref="ArgumentException">A record that does not fit the schema (named), or one larger than a store
    /// entry (about 4 MiB encoded; named by its key and largest value); nothing is written.</exception>
    public async Task UpsertBatchAsync(IEnumerable<Record<TKey>> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var normalized = records.Select(r => r is null ? throw new ArgumentException("A record in the batch is null.", nameof(records)) : _codec.Normalize(r)).ToArray();
        var ops = normalized.Select(r => (Op: new LogOp(OpUpsert, 0, r.Key, _codec.Encode(r)), Rec: r)).ToArray();
        await WriteAsync(ops.Length, i => ops[i].Op, i => ops[i].Rec, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes the record with <paramref name="key"/> (absent keys are ignored); durable when the task completes.</summary>
    public Task DeleteAsync(TKey key, CancellationToken cancellationToken = default) => DeleteBatchAsync([key], cancellationToken);

    /// <summary>Deletes records by key (absent keys are ignored); durable when the task completes (one fsync).</summary>
    public async Task DeleteBatchAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var ops = keys.Select(k => new LogOp(OpDelete, -1, KeyCodec.Encode(k ?? throw new ArgumentException("A key in the batch is null.", nameof(keys))), null)).ToArray();
        await WriteAsync(ops.Length, i => ops[i], _ => null, cancellationToken).ConfigureAwait(false);
    }

    private async Task WriteAsync(int count, Func<int, LogOp> opAt, Func<int, StoredRecord?> recordAt, CancellationToken cancellationToken)
    {
        if (count == 0) return;
        ThrowIfDisposed();
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            // 1. Log: ids assigned here, in order; the batch is durable after one commit.
            var ops = new LogOp[count];
            var encoded = new byte[count][];
            long next = _nextId;
            for (int i = 0; i < count; i++)
            {
                var op = opAt(i);
                ops[i] = op.Kind == OpUpsert ? op with { Id = next++ } : op;
                encoded[i] = EncodeLogRecord(ops[i]);
                if (ops[i].Blob is { } blob && blob.Length + 9 > FasterKeyValueStore.MaxEntryBytes)
                    throw TooLarge(ops[i], recordAt(i), blob.Length, "store", FasterKeyValueStore.MaxEntryBytes - 9);
                if (encoded[i].Length > _log.MaxRecordSize)
                    throw TooLarge(ops[i], recordAt(i), encoded[i].Length, "log", _log.MaxRecordSize);
            }
            // From the first append on, a failure leaves the log ahead of memory: the collection refuses further
            // calls until it is reopened (which redoes the log).
            try
            {
                foreach (var bytes in encoded) _log.Append(bytes);
                _log.Commit();
                _nextId = next;
            }
            catch (Exception e)
            {
                _fault = e;
                throw;
            }
            // 2. Apply (readers wait only for this part).
            _state.EnterWriteLock();
            try
            {
                var run = new List<(long Id, StoredRecord Rec)>();
                var inRun = new HashSet<long>();
                for (int i = 0; i < count; i++)
                    ApplyToMemory(ops[i], ApplyToStore(ops[i]), ops[i].Kind == OpUpsert ? recordAt(i)! : null, run, inRun);
                AddRun(run);
            }
            catch (Exception e)
            {
                _fault = e;
                throw;
            }
            finally { _state.ExitWriteLock(); }
            if (_log.TailAddress - _checkpointAddress >= _options.CheckpointLogBytes) await AutomaticCheckpointAsync().ConfigureAwait(false);
        }
        finally { _writer.Release(); }
    }

    // The checkpoint a write takes once the log grew by CheckpointLogBytes. The write is durable (committed to the log)
    // and applied by then, so a failed checkpoint does not fail it: the error is recorded (LastAutomaticCheckpointError)
    // and the next write tries again; a store fault (a full disk) still makes the collection refuse the next call.
    private async Task AutomaticCheckpointAsync()
    {
        try
        {
            await CheckpointLockedAsync(CancellationToken.None).ConfigureAwait(false);
            _automaticCheckpointError = null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _automaticCheckpointError = e;
            System.Diagnostics.Trace.TraceWarning($"Collection '{_directory}': the automatic checkpoint at log address {_log.TailAddress} failed ({e.GetType().Name}: {e.Message}); the write that triggered it is in the log.");
        }
    }

    private volatile Exception? _automaticCheckpointError;

    /// <summary>
    /// Why the last automatic checkpoint (taken by a write once the log grew by <see cref="CollectionOptions.CheckpointLogBytes"/>)
    /// failed; null when it succeeded or none was taken. The write that triggered it still succeeded (it is in the log,
    /// which a reopen replays); the next write past the threshold tries again. A full disk also faults the collection, so
    /// the next call fails with an <see cref="IOException"/>.
    /// </summary>
    public Exception? LastAutomaticCheckpointError => _automaticCheckpointError;

    // Applies one operation (already applied to the store, which replaced internal id `old`, -1: none) to the columns
    // and the indexes. Vectors go to the indexes in runs (one Add per run: batch insertion); a run is flushed before a
    // later operation replaces or deletes one of its ids.
    private void ApplyToMemory(in LogOp op, long old, StoredRecord? rec, List<(long Id, StoredRecord Rec)> run, HashSet<long> inRun)
    {
        if (old >= 0)
        {
            if (inRun.Contains(old)) { AddRun(run); inRun.Clear(); }
            _columns.Clear(old);
            foreach (var s in _slots) s.Remove(old);
        }
        if (op.Kind == OpUpsert)
        {
            _columns.Set(op.Id, rec!.Values);
            run.Add((op.Id, rec));
            inRun.Add(op.Id);
        }
    }

    private void AddRun(List<(long Id, StoredRecord Rec)> run)
    {
        if (run.Count == 0) return;
        var ids = run.Select(r => r.Id).ToArray();
        for (int v = 0; v < _slots.Length; v++)
        {
            int d = _slots[v].Field.Dimension;
            var data = new float[run.Count * d];
            for (int j = 0; j < run.Count; j++) run[j].Rec.Vectors[v].CopyTo(data, j * d);
            _slots[v].Add(data, ids);
        }
        run.Clear();
    }

    /// <summary>
    /// Takes a checkpoint: FASTER KV durable at the log's tail, an index snapshot stamped with that address (unless
    /// <see cref="CollectionOptions.IndexSnapshots"/> is off), the manifest naming the KV checkpoint written atomically,
    /// then the log truncated and older KV checkpoints and snapshots deleted. Writes wait; reads continue.
    /// </summary>
    /// <exception cref="IOException">A write failed (the disk is full): the collection then refuses further calls with an
    /// <see cref="IOException"/>; every acknowledged write is in the log, which a reopen (after freeing space) replays.</exception>
    public async Task CheckpointAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try { await CheckpointLockedAsync(cancellationToken).ConfigureAwait(false); }
        finally { _writer.Release(); }
    }

    private async Task CheckpointLockedAsync(CancellationToken cancellationToken)
    {
        // Two generations are kept: if FASTER cannot recover the newest checkpoint, the previous one and the log from its
        // address still hold every acknowledged write. The log is truncated only up to the previous generation.
        long address = _log.TailAddress;
        Guid token;
        try { token = await _store.CheckpointAsync(CookieOf(address), cancellationToken).ConfigureAwait(false); }
        catch (IOException e) when (_store.Fault is not null)
        {
            // The store refuses writes from now on: so does the collection (the log still holds every acknowledged write).
            _fault ??= e;
            throw;
        }
        WriteSnapshot(address);
        var previous = _checkpointToken;
        long previousAddress = previous is null ? _log.BeginAddress : _checkpointAddress;
        WriteAtomically(Path.Combine(_directory, ManifestFile), JsonSerializer.Serialize(new Manifest(token, address, previous, previousAddress)));
        _checkpointToken = token;
        _checkpointAddress = address;
        _store.PurgeCheckpointsExcept(previous is Guid p ? [token, p] : [token]);
        if (_snapshotAddress == address) IndexSnapshot.PurgeExcept(_directory, address);
        if (previousAddress > _log.BeginAddress) _log.Truncate(previousAddress);
    }

    /// <summary>Where the newest index snapshot written or loaded by this instance stands (-1: none), and why the last
    /// attempt to write one failed (null: it did not). A failed snapshot does not fail the checkpoint: the next open
    /// rebuilds the indexes instead (and says so in <see cref="Recovery"/>).</summary>
    public (long LogAddress, string? LastError) SnapshotState => (Volatile.Read(ref _snapshotAddress), _snapshotError);

    private volatile string? _snapshotError;

    // Writes an index snapshot of the in-memory state, which is exactly the log's effect up to `address` (the writer
    // lock is held; readers continue). I/O failures are recorded, not thrown: the snapshot only saves reopen work.
    private void WriteSnapshot(long address)
    {
        if (!_options.IndexSnapshots) return;
        if (IndexSnapshot.Unsupported(_slots) is not null)
        {
            // A field became a SPANN index: an older snapshot (of its staging index) would only be rejected as stale.
            IndexSnapshot.DeleteAll(_directory);
            return;
        }
        _state.EnterReadLock();
        try
        {
            IndexSnapshot.Write(_directory, address, _nextId, Schema, _columns, _slots);
            Volatile.Write(ref _snapshotAddress, address);
            _snapshotError = null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _snapshotError = $"{e.GetType().Name}: {e.Message}";
            System.Diagnostics.Trace.TraceWarning($"Collection '{_directory}': the index snapshot at log address {address} was not written ({_snapshotError}); the next open rebuilds the indexes.");
        }
        finally { _state.ExitReadLock(); }
    }

    // ---------------------------------------------------------------- reads

    // Reads run on CollectionOptions.ReadScheduler (default: the thread pool, as Task.Run), never seen as the current
    // scheduler by the work itself, so parallel loops inside a search still use the thread pool.
    private Task<T> Read<T>(Func<T> read, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(read, cancellationToken, TaskCreationOptions.DenyChildAttach | TaskCreationOptions.HideScheduler,
            _options.ReadScheduler ?? TaskScheduler.Default);

    /// <summary>The record with <paramref name="key"/>, or null.</summary>
    public Task<Record<TKey>?> GetAsync(TKey key, bool includeVectors = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Read(() => Get(KeyCodec.Encode(key), includeVectors), cancellationToken);
    }

    /// <summary>The records with these keys, in the same order (null for an absent key).</summary>
    public Task<IReadOnlyList<Record<TKey>?>> GetBatchAsync(IEnumerable<TKey> keys, bool includeVectors = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var encoded = keys.Select(k => KeyCodec.Encode(k ?? throw new ArgumentException("A key in the batch is null.", nameof(keys)))).ToArray();
        return Read<IReadOnlyList<Record<TKey>?>>(() =>
        {
            var result = new Record<TKey>?[encoded.Length];
            for (int i = 0; i < encoded.Length; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                result[i] = Get(encoded[i], includeVectors);
            }
            return result;
        }, cancellationToken);
    }

    private Record<TKey>? Get(byte[] key, bool includeVectors)
    {
        ThrowIfDisposed();
        _state.EnterReadLock();
        try
        {
            long id = ReadId(key);
            return id < 0 ? null : ReadRecord(id, includeVectors);
        }
        finally { _state.ExitReadLock(); }
    }

    private Record<TKey> ReadRecord(long id, bool includeVectors)
    {
        var blob = _store.Read(RecordKey(id)) ?? throw new CorruptIndexException(Path.Combine(_directory, StoreDir), 0, $"internal id {id} has no record.");
        return _codec.ToRecord<TKey>(_codec.Decode(blob, Path.Combine(_directory, StoreDir), includeVectors), includeVectors);
    }

    /// <summary>The largest record this collection takes, as <see cref="RecordSerializer"/> bytes (key included), for a key
    /// of <paramref name="keyBytes"/> bytes: the store's entry limit and the log's record limit. Larger records are
    /// refused by the upserts with an <see cref="ArgumentException"/>.</summary>
    public int MaxRecordBytes(int keyBytes) => Math.Min(FasterKeyValueStore.MaxEntryBytes - 9, _log.MaxRecordSize - 13 - Math.Max(0, keyBytes));

    /// <summary>The keys of every live record, in internal-id order (a replica copies a collection this way).</summary>
    public Task<IReadOnlyList<TKey>> KeysAsync(CancellationToken cancellationToken = default) =>
        Read<IReadOnlyList<TKey>>(() =>
        {
            ThrowIfDisposed();
            _state.EnterReadLock();
            try
            {
                string source = Path.Combine(_directory, StoreDir);
                var keys = new List<TKey>((int)Math.Min(_columns.Count, int.MaxValue));
                foreach (var id in _columns.LiveIds())
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var blob = _store.Read(RecordKey(id)) ?? throw new CorruptIndexException(source, 0, $"live internal id {id} has no record.");
                    keys.Add(KeyCodec.Decode<TKey>(_codec.Decode(blob, source, withVectors: false).Key));
                }
                return keys;
            }
            finally { _state.ExitReadLock(); }
        }, cancellationToken);

    /// <summary>
    /// A page of the live records in internal-id order, for copying the collection while it changes: the records after
    /// cursor <paramref name="after"/> (−1: from the start), at most <paramref name="maxRecords"/> and about
    /// <paramref name="maxBytes"/> of payload (at least one record), and the cursor to continue from (−1: done). A
    /// record written during a scan gets a new internal id, so it may be seen twice or, when the scan already passed
    /// it, once in its older form or not at all: a copy replays the writes made since the scan began.
    /// </summary>
    public Task<RecordPage<TKey>> ScanAsync(long after, int maxRecords, long maxBytes, bool includeVectors = true, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(after, -1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRecords, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        return Read(() =>
        {
            ThrowIfDisposed();
            _state.EnterReadLock();
            try
            {
                string source = Path.Combine(_directory, StoreDir);
                var records = new List<Record<TKey>>();
                long bytes = 0, last = after;
                foreach (var id in _columns.LiveIds(after))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    if (records.Count >= maxRecords || (records.Count > 0 && bytes >= maxBytes)) return new RecordPage<TKey>(records, last);
                    var blob = _store.Read(RecordKey(id)) ?? throw new CorruptIndexException(source, 0, $"live internal id {id} has no record.");
                    records.Add(_codec.ToRecord<TKey>(_codec.Decode(blob, source, includeVectors), includeVectors));
                    bytes += blob.Length;
                    last = id;
                }
                return new RecordPage<TKey>(records, -1);
            }
            finally { _state.ExitReadLock(); }
        }, cancellationToken);
    }

    /// <summary>Records that match <paramref name="filter"/>, in insertion order, at most <paramref name="top"/> (after skipping <paramref name="skip"/>).</summary>
    /// <exception cref="ArgumentException">A filter on an unknown or non-indexed field, or a constant of the wrong type.</exception>
    public Task<IReadOnlyList<Record<TKey>>> GetWhereAsync(Filter filter, int top, int skip = 0, bool includeVectors = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(skip);
        return Read<IReadOnlyList<Record<TKey>>>(() =>
        {
            ThrowIfDisposed();
            _state.EnterReadLock();
            try
            {
                var bits = _columns.Evaluate(filter);
                var result = new List<Record<TKey>>();
                foreach (var id in Columns.Enumerate(bits).Skip(skip).Take(top))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    result.Add(ReadRecord(id, includeVectors));
                }
                return result;
            }
            finally { _state.ExitReadLock(); }
        }, cancellationToken);
    }

    /// <summary>The <paramref name="k"/> records nearest to <paramref name="query"/> that pass the options' filter, closest first.</summary>
    /// <exception cref="ArgumentException">Wrong query length, non-finite values, an unknown vector name, a bad filter.</exception>
    public Task<IReadOnlyList<SearchResult<TKey>>> SearchAsync(ReadOnlyMemory<float> query, int k, CollectionSearchOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        options ??= new CollectionSearchOptions();
        var slot = Slot(options.VectorName);
        if (query.Length != slot.Field.Dimension)
            throw new ArgumentException($"The query has {query.Length} values but vector '{slot.Field.Name}' has dimension {slot.Field.Dimension}.", nameof(query));
        Guard.Finite(query.Span, slot.Field.Dimension, nameof(query));
        if (options.Parameters?.Filter is not null)
            throw new ArgumentException("Set the filter through CollectionSearchOptions.Filter, not Parameters.Filter.", nameof(options));
        if (!(options.ExactFallbackSelectivity is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), options.ExactFallbackSelectivity, "ExactFallbackSelectivity must be in 0..1.");
        options.Parameters?.Validate();
        if (options.Settings is not null)
        {
            if (options.Parameters is not null)
                throw new ArgumentException("Set either CollectionSearchOptions.Parameters or Settings, not both.", nameof(options));
            // Checked against the spec up front, so a bad knob fails the same way before and after training.
            using var probe = Engine.Index.IndexFactory.Create(slot.Field.IndexSpec, slot.Field.Dimension, slot.Field.Metric);
            Engine.Index.IndexFactory.CreateParameters(probe, options.Settings, 0);
        }
        return Read(() => Search(slot, query, k, options, cancellationToken), cancellationToken);
    }

    private IReadOnlyList<SearchResult<TKey>> Search(VectorSlot slot, ReadOnlyMemory<float> query, int k, CollectionSearchOptions options, CancellationToken ct)
    {
        ThrowIfDisposed();
        _state.EnterReadLock();
        try
        {
            var index = slot.Active;
            long live = _columns.Count;
            if (live == 0) return [];
            // No more hits than records: a k far above the count (int.MaxValue) costs memory for the count, not for k.
            k = (int)Math.Min(k, live);
            IIdFilter? filter = null;
            if (options.Filter is not null)
            {
                var bits = _columns.Evaluate(options.Filter);
                long allowed = Columns.PopCount(bits);
                if (allowed == 0) return [];
                k = (int)Math.Min(k, allowed);
                bool selective = allowed <= options.ExactFallbackSelectivity * live;
                if (selective && index is Engine.Index.Spann.SpannIndex)
                    return ExactOverAllowed(slot, query.Span, k, Columns.Enumerate(bits), options.IncludeVectors, ct);
                filter = selective ? new IdAllowListFilter(Columns.Enumerate(bits)) : new BitsetIdFilter(bits, allowed);
            }
            ct.ThrowIfCancellationRequested();
            var given = options.Settings is null || slot.IsStaging ? options.Parameters
                : Engine.Index.IndexFactory.CreateParameters(index, options.Settings, 0);
            var p = SearchParameterCopy.WithFilter(index, given, filter, options.ExactFallbackSelectivity);
            var dist = new float[k];
            var labels = new long[k];
            index.Search(query.Span, k, dist, labels, p);
            var results = new List<SearchResult<TKey>>(k);
            for (int i = 0; i < k && labels[i] >= 0; i++)
                results.Add(new SearchResult<TKey>(ReadRecord(labels[i], options.IncludeVectors), dist[i], slot.Field.Metric.ToScore(dist[i])));
            return results;
        }
        finally { _state.ExitReadLock(); }
    }

    // Exact top-k over the allowed records' stored vectors (for indexes without their own exact fallback).
    private List<SearchResult<TKey>> ExactOverAllowed(VectorSlot slot, ReadOnlySpan<float> query, int k, IEnumerable<long> ids, bool includeVectors, CancellationToken ct)
    {
        int vi = Array.IndexOf(_slots, slot);
        var metric = slot.Field.Metric;
        var q = query.ToArray();
        if (metric == Metric.Cosine) Normalize(q);
        var scored = new List<(float Score, float Distance, long Id)>();
        string source = Path.Combine(_directory, StoreDir);
        foreach (var id in ids)
        {
            ct.ThrowIfCancellationRequested();
            var rec = _codec.Decode(_store.Read(RecordKey(id)) ?? throw new CorruptIndexException(source, 0, $"internal id {id} has no record."), source);
            var v = rec.Vectors[vi];
            float d = metric switch
            {
                Metric.L2 => Engine.Distance.Distances.SquaredL2(q, v),
                Metric.InnerProduct => Engine.Distance.Distances.Dot(q, v),
                _ => CosineOf(q, v),
            };
            scored.Add((metric.ToScore(d), d, id));
        }
        return scored.OrderByDescending(s => s.Score).ThenBy(s => s.Id).Take(k)
            .Select(s => new SearchResult<TKey>(ReadRecord(s.Id, includeVectors), s.Distance, s.Score)).ToList();
    }

    private static float CosineOf(float[] unitQuery, float[] v)
    {
        float n = MathF.Sqrt(Engine.Distance.Distances.Dot(v, v));
        return n == 0 ? 0 : Engine.Distance.Distances.Dot(unitQuery, v) / n;
    }

    private static void Normalize(float[] v)
    {
        float n = MathF.Sqrt(Engine.Distance.Distances.Dot(v, v));
        if (n > 0) for (int i = 0; i < v.Length; i++) v[i] /= n;
    }

    private VectorSlot Slot(string? name)
    {
        var field = Schema.VectorFieldFor(name);
        return _slots.First(s => s.Field.Name == field.Name);
    }

    /// <summary>
    /// Checks that the store's records, the key map and every vector index agree (each live record in each index, nothing
    /// else in them). For tests and the paranoid; costs a pass over the records.
    /// </summary>
    /// <exception cref="CorruptIndexException">They disagree (named).</exception>
    public void VerifyConsistency()
    {
        ThrowIfDisposed();
        _state.EnterReadLock();
        try
        {
            string source = Path.Combine(_directory, StoreDir);
            foreach (var id in _columns.LiveIds())
            {
                var blob = _store.Read(RecordKey(id)) ?? throw new CorruptIndexException(source, 0, $"live internal id {id} has no record.");
                var rec = _codec.Decode(blob, source, withVectors: false);
                if (ReadId(rec.Key) != id) throw new CorruptIndexException(source, 0, $"the key of internal id {id} does not map back to it.");
            }
            foreach (var s in _slots)
                if (s.Active.Count != _columns.Count)
                    throw new CorruptIndexException(source, 0, $"vector '{s.Field.Name}' indexes {s.Active.Count} vectors but the collection holds {_columns.Count} records.");
        }
        finally { _state.ExitReadLock(); }
    }

    // ---------------------------------------------------------------- files

    private sealed record CollectionInfo(CollectionSchema Schema, string WriteAheadLog);

    private sealed record Manifest(Guid Token, long LogAddress, Guid? PreviousToken, long PreviousLogAddress);

    private static readonly JsonSerializerOptions InfoJson = new() { WriteIndented = true, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };

    private static CollectionInfo ReadInfo(string path)
    {
        try
        {
            var info = JsonSerializer.Deserialize<CollectionInfo>(File.ReadAllText(path), InfoJson) ?? throw new JsonException("null");
            if (info.Schema is null || string.IsNullOrEmpty(info.WriteAheadLog)) throw new JsonException("missing schema or log kind");
            return info with { Schema = CollectionSchema.FromJson(info.Schema.ToJson(), path) };
        }
        catch (JsonException e) { throw new CorruptIndexException(path, 0, $"the collection file cannot be read: {e.Message}", e); }
    }

    private static Manifest ReadManifest(string path)
    {
        try
        {
            var m = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path)) ?? throw new JsonException("null");
            if (m.Token == Guid.Empty || m.LogAddress < 0 || m.PreviousToken == Guid.Empty || m.PreviousLogAddress < 0 || m.PreviousLogAddress > m.LogAddress)
                throw new JsonException("bad token or address");
            return m;
        }
        catch (JsonException e) { throw new CorruptIndexException(path, 0, $"the checkpoint manifest cannot be read: {e.Message}", e); }
    }

    private static void WriteAtomically(string path, string text) => DurableFile.Write(path, System.Text.Encoding.UTF8.GetBytes(text));

    private volatile Exception? _fault;

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_fault is IOException io)
            throw new IOException($"Collection '{_directory}' refuses calls after a failed write ({io.Message}); free space, dispose it and reopen it, which redoes the log.", io);
        if (_fault is { } f)
            throw new InvalidOperationException($"A write failed after it reached the log ({f.GetType().Name}: {f.Message}); reopen the collection, which redoes the log.", f);
    }

    /// <summary>Takes a final checkpoint (when anything was written since the last) and closes the files.</summary>
    /// <remarks>After a failed write (a full disk) no checkpoint is attempted. When the final checkpoint itself fails
    /// (<see cref="IOException"/>), the files are still closed and the directory released before the exception is
    /// thrown; the log holds every acknowledged write, so the next open replays them.</remarks>
    public void Dispose()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        _writer.Wait();
        try
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            try
            {
                // After a fault memory is behind the log: no checkpoint (it would cover writes memory lacks); reopening redoes them.
                if (_fault is null && _log.TailAddress != _checkpointAddress) CheckpointLockedAsync(CancellationToken.None).GetAwaiter().GetResult();
                // Nothing written since the checkpoint but no snapshot of it (opened by a rebuild): write one now, so
                // that the next open does not rebuild again.
                else if (_fault is null && _snapshotAddress != _checkpointAddress && _checkpointToken is not null && _log.TailAddress == _checkpointAddress)
                {
                    WriteSnapshot(_checkpointAddress);
                    if (_snapshotAddress == _checkpointAddress) IndexSnapshot.PurgeExcept(_directory, _checkpointAddress);
                }
            }
            finally
            {
                _state.EnterWriteLock();
                try
                {
                    foreach (var s in _slots) s.Dispose();
                    _store.Dispose();
                    _log.Dispose();
                }
                finally
                {
                    _state.ExitWriteLock();
                    _dirLock.Dispose(); // last: the files are closed, another open may take the directory now
                }
            }
        }
        finally { _writer.Release(); }
    }
}

/// <summary>Where a collection's vector indexes and filter columns came from on open.</summary>
public enum CollectionIndexSource
{
    /// <summary>Rebuilt from every stored record (no usable snapshot; see <see cref="CollectionRecovery.SnapshotRejectedReason"/>).</summary>
    Rebuild,

    /// <summary>Loaded from an index snapshot, then the log records after its address replayed into them.</summary>
    Snapshot,
}

/// <summary>What opening a collection found.</summary>
/// <param name="LogRecordsReplayed">Writes after the last checkpoint, redone from the log.</param>
/// <param name="Records">Records loaded.</param>
/// <param name="Log">The log's own recovery report (torn tail dropped).</param>
public sealed record CollectionRecovery(int LogRecordsReplayed, long Records, WalRecoveryInfo Log)
{
    /// <summary>FASTER could not recover the newest KV checkpoint, so the previous one was used (and a longer log replayed).</summary>
    public bool UsedPreviousCheckpoint { get; init; }

    /// <summary>Whether the indexes and columns were loaded from a snapshot or rebuilt from the records.</summary>
    public CollectionIndexSource IndexSource { get; init; }

    /// <summary>The log address the loaded snapshot was stamped with (-1: rebuilt).</summary>
    public long SnapshotLogAddress { get; init; } = -1;

    /// <summary>Log records after the snapshot replayed into the loaded indexes and columns (0 when rebuilt).</summary>
    public int TailRecordsReplayed { get; init; }

    /// <summary>Why no snapshot was used (none, damaged, foreign schema, outside the recovered log range, disabled;
    /// null when one was).</summary>
    public string? SnapshotRejectedReason { get; init; }
}

/// <summary>An id filter over a bitset of allowed ids, with an exact selectivity.</summary>
internal sealed class BitsetIdFilter(ulong[] bits, long count) : IIdFilter
{
    public bool IsAllowed(long id) => id >= 0 && (id >> 6) < bits.Length && (bits[id >> 6] & (1UL << (int)id)) != 0;

    public double EstimatedSelectivity(long corpusCount) => corpusCount <= 0 ? 0 : Math.Min(1.0, count / (double)corpusCount);
}

/// <summary>Copies per-call index parameters with a filter and the exact-fallback threshold set.</summary>
internal static class SearchParameterCopy
{
    public static SearchParameters? WithFilter(IVectorIndex index, SearchParameters? p, IIdFilter? filter, double fallback)
    {
        if (filter is null) return p;
        p ??= index switch
        {
            Engine.Index.Ivf.IvfIndex => new Engine.Index.Ivf.IvfSearchParameters(),
            Engine.Index.Hnsw.HnswIndex => new Engine.Index.Hnsw.HnswSearchParameters(),
            _ => new SearchParameters(),
        };
        return p switch
        {
            Engine.Index.Ivf.IvfSearchParameters i => new Engine.Index.Ivf.IvfSearchParameters
            {
                Threads = i.Threads, Stats = i.Stats, Filter = filter, Probes = i.Probes, RefineFactor = i.RefineFactor, MaxCodes = i.MaxCodes,
                AttributeMin = i.AttributeMin, AttributeMax = i.AttributeMax, ExactFallbackSelectivity = fallback,
            },
            Engine.Index.Hnsw.HnswSearchParameters h => new Engine.Index.Hnsw.HnswSearchParameters
            {
                Threads = h.Threads, Stats = h.Stats, Filter = filter, Ef = h.Ef, AttributeMin = h.AttributeMin, AttributeMax = h.AttributeMax,
                ExactFallbackSelectivity = fallback,
            },
            Engine.Index.Spann.SpannSearchParameters s => new Engine.Index.Spann.SpannSearchParameters
            {
                Threads = s.Threads, Stats = s.Stats, Filter = filter, Probes = s.Probes, PruneFactor = s.PruneFactor,
            },
            _ when p.GetType() == typeof(SearchParameters) => new SearchParameters { Threads = p.Threads, Stats = p.Stats, Filter = filter },
            _ => throw new ArgumentException($"Search parameters of type {p.GetType().Name} cannot carry a collection filter.", "options"),
        };
    }
}
