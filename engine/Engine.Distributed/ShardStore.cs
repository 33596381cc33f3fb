using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Engine.Collections;
using Engine.Distance;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Spann;
using Engine.Storage.Format;
using Engine.Storage.Wal;

namespace Engine.Distributed;

/// <summary>
/// The durable state of one shard replica on its silo's disk, without any Orleans: the raw vectors by id, the local
/// index built from them, a write-ahead log of sequenced write batches, and snapshots that let the log be truncated.
/// </summary>
/// <remarks>
/// <para>Files in the replica directory: <c>layout.json</c> (the collection's layout, checked on open),
/// <c>centroids.json</c> (centroid-range sharding only: the collection's <see cref="CentroidTable"/>, written once),
/// <c>created</c> (empty: the collection was created, see <see cref="Created"/>),
/// <c>vectors-{g}.dat</c> (the raw vectors in checksummed slots, <see cref="VectorStore"/>; only the id → slot map is
/// in memory), <c>index-{g}.idx</c> (the trained index as <see cref="IVectorIndex.Save"/> wrote it at the last
/// snapshot) or, for SPANN, <c>index-{g}/</c> (a disk-resident <c>SpannIndex</c> with its own log, checkpointed at each
/// snapshot), <c>snapshot.bin</c> (where the log stands, the generations of both files and the id → slot map, in the
/// engine's checksummed container, written to a temporary file and renamed: writing it is what switches generations),
/// <c>wal.log</c> (the core <see cref="FileWriteAheadLog"/>: one record per write batch after the snapshot). A batch is
/// durable when <see cref="Append"/> returns (log commit, fsync).</para>
/// <para>Invariant, as in <c>Engine.Collections</c>: the index is derived from the vectors, never the other way
/// round. Opening loads the index the snapshot names and replays the log over vectors and index (every write is an
/// upsert or delete by id, so replaying one the index already holds, as a SPANN index checkpointed on its own may,
/// changes nothing); without a saved index (staging, a snapshot of an older format, or an index file that fails to
/// load) it is rebuilt from the vectors, ids ascending, so every replica holding the same vectors builds the same index.</para>
/// <para>Record collections (<see cref="ShardLayout.RecordSchema"/>): the state is a <see cref="RecordShardState"/>
/// (a <c>RecordCollection</c>) in <c>records-{generation}</c> instead of the vectors and index; the snapshot file then
/// holds only where the log stands and which generation is current (the collection checkpoints itself first), and a
/// snapshot copy from a peer builds the next generation beside the current one and switches to it with that file.</para>
/// <para>Not thread-safe for writes: the owning grain runs one write at a time (reads may interleave).</para>
/// </remarks>
internal sealed class ShardStore : IDisposable
{
    internal const string SnapshotFile = "snapshot.bin", LayoutFile = "layout.json", CentroidsFile = "centroids.json", CreatedFile = "created",
        SnapshotKind = "shard-snapshot";
    private const int WalHeaderBytes = 1 + 8 + 8 + 4;
    private readonly string _dir;
    private VectorStore _vectors = null!;
    private long _vectorsGeneration, _indexGeneration, _savedIndexGeneration;
    private bool _indexDirty, _upgradeSnapshot;
    private readonly Queue<WriteOp> _tail = new();
    private readonly long _tailLimitBytes, _checkpointLogBytes;
    private long _tailBytes, _logBytesSinceSnapshot;
    private IWriteAheadLog _wal;
    private IVectorIndex _index;
    private DataDirectoryLock? _lock;
    private RecordShardState? _records;
    private long _generation;
    private CollectionOptions _recordOptions = CollectionOptions.Default;

    private ShardStore(string dir, ShardLayout layout, long checkpointLogBytes, long tailLimitBytes)
    {
        _dir = dir;
        Layout = layout;
        _checkpointLogBytes = checkpointLogBytes;
        _tailLimitBytes = tailLimitBytes;
        _wal = null!;
        _index = null!;
    }

    /// <summary>The collection layout.</summary>
    public ShardLayout Layout { get; }

    /// <summary>Last applied write batch (0: none).</summary>
    public long Sequence { get; private set; }

    /// <summary>Epoch of that batch.</summary>
    public long Epoch { get; private set; }

    /// <summary>How the open found the index: loaded from its saved file, or rebuilt from the vectors (and why).</summary>
    public string IndexRecovery { get; private set; } = "";

    /// <summary>Vectors the index holds (tests).</summary>
    internal long IndexCount => _index?.Count ?? 0;

    /// <summary>Live vectors (records, for a record collection).</summary>
    public long Count => _records?.Count ?? _vectors.Count;

    /// <summary>True when the directory already held this replica when it was opened (false: created just now).</summary>
    public bool ExistedBefore { get; private set; }

    /// <summary>True when the index is the layout's spec (trained), false while a spec that needs training is staged on exact search.</summary>
    public bool Trained { get => _records?.Trained ?? _trained; private set => _trained = value; }

    private bool _trained;

    /// <summary>Writes that can still be served to a peer from memory (the oldest is <see cref="OldestTailSequence"/>).</summary>
    public long OldestTailSequence => _tail.Count == 0 ? Sequence + 1 : _tail.Peek().Sequence;

    /// <summary>Opens (or creates) the replica in <paramref name="dir"/>: snapshot, then the log after it, then the index.
    /// The directory stays locked (<see cref="DataDirectoryLock"/>) until <see cref="Dispose"/>.</summary>
    /// <exception cref="InvalidOperationException">The directory holds another collection's layout, or another silo or
    /// process has it open.</exception>
    /// <exception cref="CorruptIndexException">A damaged snapshot or log.</exception>
    /// <param name="dir">The replica directory.</param>
    /// <param name="layout">The collection's layout.</param>
    /// <param name="checkpointLogBytes">Log bytes after which a snapshot is written and the log truncated.</param>
    /// <param name="tailLimitBytes">Bytes of recent writes kept in memory for peers that catch up.</param>
    /// <param name="holder">Names the opener in the directory lock.</param>
    /// <param name="maxOpsBytesPerAnswer">Bytes of logged writes one catch-up answer read from the log carries at most.</param>
    /// <param name="recordOptions">Record collections: the options of the replica's <c>RecordCollection</c> (null: defaults).
    /// Opening a record replica blocks on FASTER's recovery: call it on a <see cref="BlockingWork"/> thread.</param>
    public static ShardStore Open(string dir, ShardLayout layout, long checkpointLogBytes = 64L << 20, long tailLimitBytes = 64L << 20, string? holder = null,
        CollectionOptions? recordOptions = null, long maxOpsBytesPerAnswer = 32L << 20)
    {
        var dirLock = DataDirectoryLock.Acquire(dir, holder ?? $"a replica of collection '{layout.Name}'");
        var store = new ShardStore(dir, layout, checkpointLogBytes, tailLimitBytes) { _lock = dirLock, _recordOptions = recordOptions ?? CollectionOptions.Default,
            _maxOpsBytes = maxOpsBytesPerAnswer };
        try
        {
            store.ExistedBefore = File.Exists(Path.Combine(dir, LayoutFile));
            store.CheckLayout();
            store.Centroids = ReadCentroids(dir, layout);
            long from = store.ReadSnapshot();
            (store._walBaseSequence, store._walBaseEpoch) = (store.Sequence, store.Epoch);
            if (layout.IsRecords) store.OpenRecords();
            else store.OpenVectors();
            var provider = FileWriteAheadLogProvider.Instance;
            bool existed = File.Exists(provider.LogFile(dir));
            store._wal = existed ? provider.Open(dir) : provider.Create(dir);
            if (existed) store._wal.Replay(Math.Max(from, store._wal.BeginAddress), (_, record) =>
            {
                var op = store.Decode(record);
                if (op.Sequence <= store.Sequence) return;
                if (op.Sequence != store.Sequence + 1)
                    throw new CorruptIndexException(provider.LogFile(dir), 0, $"write {op.Sequence} follows {store.Sequence} (a gap in the log)");
                // Record writes are upserts and deletes by key: replaying one the collection already holds changes nothing.
                if (store._records is not null) store.ReplayRecords(op);
                else
                {
                    store.ApplyToVectors(op);
                    if (store._index is not null) store.ApplyToIndex(op);
                }
                store.Remember(op);
                store._logBytesSinceSnapshot += record.Length;
            });
            if (store._records is null)
            {
                if (store._index is null) store.BuildIndex();
                if (store._upgradeSnapshot) store.Checkpoint();
            }
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private void CheckLayout()
    {
        string path = Path.Combine(_dir, LayoutFile);
        var mine = StoredLayout.Of(Layout);
        if (File.Exists(path))
        {
            var stored = ReadLayout(path);
            if (stored.Identity != mine.Identity)
                throw new InvalidOperationException($"'{_dir}' holds collection {stored.Identity} but the call names {mine.Identity}; a collection's name, dimension, metric, spec, shard count and replication factor cannot change.");
            return;
        }
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(mine));
        File.Move(tmp, path, overwrite: true);
    }

    private static StoredLayout ReadLayout(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<StoredLayout>(File.ReadAllText(path)) ?? throw new CorruptIndexException(path, 0, "empty layout file");
        }
        catch (JsonException e)
        {
            throw new CorruptIndexException(path, 0, "unreadable layout file: " + e.Message);
        }
    }

    /// <summary>The layout a replica directory was created with, or null when it holds none.</summary>
    /// <exception cref="CorruptIndexException">An unreadable layout file.</exception>
    public static ShardLayout? ReadStoredLayout(string dir)
    {
        string path = Path.Combine(dir, LayoutFile);
        if (!File.Exists(path)) return null;
        var l = ReadLayout(path);
        return new ShardLayout
        {
            Name = l.Name, Dimension = l.Dimension, MetricCode = l.Metric, Spec = l.Spec, Shards = l.Shards,
            Replicas = l.Replicas, TrainingSize = l.TrainingSize,
            ShardingCode = l.Sharding, Centroids = l.Centroids, CentroidProbes = l.CentroidProbes, CentroidDigest = l.CentroidDigest,
            RecordSchema = l.RecordSchema,
        };
    }

    private sealed record StoredLayout(string Name, int Dimension, int Metric, string Spec, int Shards, int Replicas, int TrainingSize,
        int Sharding = 0, int Centroids = 0, int CentroidProbes = 0, long CentroidDigest = 0, string? RecordSchema = null)
    {
        public static StoredLayout Of(ShardLayout l) => new(l.Name, l.Dimension, l.MetricCode, l.Spec, l.Shards, l.Replicas, l.TrainingSize,
            l.ShardingCode, l.Centroids, l.CentroidProbes, l.CentroidDigest, l.RecordSchema);

        /// <summary>What may never change (the training size and default probes are recorded, not enforced).</summary>
        public string Identity => $"'{Name}' (d = {Dimension}, metric {(Metric)Metric}, spec {Spec}, {Shards} shards × {Replicas} replicas"
            + (Sharding == (int)ShardingMode.CentroidRanges ? $", centroid ranges over {Centroids} centroids {CentroidDigest:X16})" : ")")
            + (RecordSchema is null ? "" : $" of records (schema {StableHash.Add(StableHash.Empty, RecordSchema):X16})");
    }

    /// <summary>Centroid-range sharding: the collection's centroid table as this replica holds it (null: not received yet).</summary>
    public CentroidTable? Centroids { get; private set; }

    /// <summary>Keeps <paramref name="table"/> (checked against the layout) in the replica directory, durably, unless it holds it already.</summary>
    /// <exception cref="ArgumentException">The table does not belong to the layout.</exception>
    public void SaveCentroids(CentroidTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        table.CheckAgainst(Layout);
        if (Centroids is not null) return;
        string path = Path.Combine(_dir, CentroidsFile), tmp = path + ".tmp";
        using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, table);
            file.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        Centroids = table;
    }

    /// <summary>The centroid table kept in replica directory <paramref name="dir"/> for <paramref name="layout"/>, or null when it holds none.</summary>
    /// <exception cref="CorruptIndexException">An unreadable table.</exception>
    /// <exception cref="ArgumentException">The directory holds another table than the one the layout names.</exception>
    public static CentroidTable? ReadCentroids(string dir, ShardLayout layout)
    {
        string path = Path.Combine(dir, CentroidsFile);
        if (!layout.ByCentroid || !File.Exists(path)) return null;
        CentroidTable table;
        try
        {
            table = JsonSerializer.Deserialize<CentroidTable>(File.ReadAllText(path)) ?? throw new CorruptIndexException(path, 0, "empty centroid table");
        }
        catch (JsonException e)
        {
            throw new CorruptIndexException(path, 0, "unreadable centroid table: " + e.Message);
        }
        table.CheckAgainst(layout);
        return table;
    }

    /// <summary>
    /// True when this directory records that the collection was created: every replica of it was made at its first
    /// open (<see cref="MarkCreated"/>), or this one caught up from a replica that records it. An existing collection's
    /// replica whose directory is missing must then not start empty (its data is on a silo that is away).
    /// </summary>
    public bool Created => IsCreated(_dir);

    /// <summary>True when replica directory <paramref name="dir"/> records that its collection was created (see <see cref="Created"/>).</summary>
    public static bool IsCreated(string dir) => File.Exists(Path.Combine(dir, CreatedFile));

    /// <summary>Records, durably, that the collection was created (see <see cref="Created"/>).</summary>
    public void MarkCreated()
    {
        string path = Path.Combine(_dir, CreatedFile);
        if (File.Exists(path)) return;
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        file.Flush(flushToDisk: true);
    }

    /// <summary>Makes <paramref name="op"/> durable (log commit) and applies it. It must be the next in sequence.</summary>
    public void Append(WriteOp op)
    {
        VectorsOnly();
        Log(op);
        ApplyToVectors(op);
        ApplyToIndex(op);
        Remember(op);
        if (_logBytesSinceSnapshot >= _checkpointLogBytes) Checkpoint();
    }

    /// <summary>Set when a logged write could not be applied: the in-memory state is behind the log, so the replica takes
    /// no more writes until it is reopened (which replays the log).</summary>
    public Exception? Fault { get; private set; }

    // Makes the next write durable in the replica's log (before it is applied anywhere).
    private void Log(WriteOp op)
    {
        if (Fault is not null)
            throw new InvalidOperationException($"Replica of '{Layout.Name}' failed to apply write {Sequence + 1} after logging it ({Fault.Message}); it must be reopened, which replays its log.");
        if (op.Sequence != Sequence + 1)
            throw new InvalidOperationException($"Replica of '{Layout.Name}' is at write {Sequence}; write {op.Sequence} is out of order.");
        var record = Encode(op);
        _wal.Append(record);
        _wal.Commit();
        _logBytesSinceSnapshot += record.Length;
    }

    /// <summary><see cref="Append"/> for either kind of collection (record writes are applied asynchronously).</summary>
    public async Task AppendAsync(WriteOp op)
    {
        if (_records is null)
        {
            Append(op);
            return;
        }
        Log(op);
        try { await ApplyToRecords(op); }
        catch (Exception e)
        {
            Fault = e;
            throw;
        }
        Remember(op);
        if (_logBytesSinceSnapshot >= _checkpointLogBytes) await CheckpointAsync();
    }

    /// <summary>Replaces everything with the given vectors at (<paramref name="sequence"/>, <paramref name="epoch"/>): the
    /// snapshot half of a catch-up (see <see cref="InstallAsync"/>).</summary>
    public void Install(long[] ids, float[] vectors, long sequence, long epoch)
    {
        VectorsOnly();
        var (fresh, generation) = NewVectorFile();
        try { fresh.SetMany(ids, vectors); }
        catch
        {
            Discard(fresh);
            throw;
        }
        SwitchTo(fresh, generation, sequence, epoch);
    }

    /// <summary>
    /// Replaces everything with the vectors <paramref name="nextSlice"/> yields (null ends) at (<paramref name="sequence"/>,
    /// <paramref name="epoch"/>): the snapshot half of a catch-up, streamed. The slices go into a new generation of the
    /// vector file beside the current one (memory: one slice), then the index is built from it and the snapshot written
    /// at the end switches to both (a crash or failure before leaves the old state in force). Returns the vectors installed.
    /// </summary>
    /// <param name="nextSlice">The vectors, slice by slice (null ends).</param>
    /// <param name="sequence">The peer's sequence the copy stands for.</param>
    /// <param name="epoch">The epoch of its write at that sequence.</param>
    /// <param name="fetchIndex">Writes the peer's index file saved at <paramref name="sequence"/> into the stream (null:
    /// none to ship). The index is then loaded instead of rebuilt (<see cref="IndexShipped"/>); one that fails to load or
    /// does not fit the layout is rebuilt from the copied vectors. The writes after the sequence, replayed next, bring
    /// index and vectors to the same state even when the slices were read later than the index was saved.</param>
    public async Task<long> InstallAsync(Func<Task<VectorRows?>> nextSlice, long sequence, long epoch, Func<Stream, Task>? fetchIndex = null)
    {
        VectorsOnly();
        var (fresh, generation) = NewVectorFile();
        long installed = 0;
        string? indexFile = null;
        try
        {
            while (await nextSlice() is { } rows)
            {
                fresh.SetMany(rows.Ids, rows.Vectors);
                installed += rows.Ids.Length;
            }
            if (fetchIndex is not null)
            {
                indexFile = IndexPath(NextGeneration("index-", _indexGeneration), spann: false);
                await using (var target = new FileStream(indexFile, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true))
                {
                    await fetchIndex(target);
                    target.Flush(flushToDisk: true);
                }
            }
        }
        catch
        {
            Discard(fresh);
            if (indexFile is not null) TryDelete(indexFile);
            throw;
        }
        SwitchTo(fresh, generation, sequence, epoch, indexFile);
        return installed;
    }

    /// <summary>True when the last snapshot copy loaded the peer's shipped index instead of building one.</summary>
    public bool IndexShipped { get; private set; }

    /// <summary>Bytes [<paramref name="offset"/>, + <paramref name="count"/>) of this replica's saved index file of
    /// <paramref name="generation"/> (for a peer's snapshot copy); fewer at the end of the file.</summary>
    /// <exception cref="InvalidOperationException">That generation is no longer the current one (a newer snapshot
    /// replaced it): the copy starts again.</exception>
    public byte[] ReadIndexChunk(long generation, long offset, int count)
    {
        VectorsOnly();
        if (generation <= 0 || generation != _indexGeneration || _index is SpannIndex || !Trained)
            throw new InvalidOperationException($"Replica of '{Layout.Name}' no longer holds index generation {generation} (now {_indexGeneration}); the snapshot copy starts again.");
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        using var file = new FileStream(IndexPath(generation, spann: false), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var bytes = new byte[(int)Math.Clamp(file.Length - offset, 0, count)];
        file.Position = offset;
        file.ReadExactly(bytes);
        return bytes;
    }

    private (VectorStore Store, long Generation) NewVectorFile()
    {
        long generation = NextGeneration("vectors-", _vectorsGeneration);
        return (new VectorStore(VectorsFile(generation), Layout.Dimension), generation);
    }

    private static void Discard(VectorStore store)
    {
        store.Dispose();
        TryDelete(store.Path);
    }

    // Makes a filled vector file current: index loaded from the shipped file or built from the vectors, snapshot
    // written (the switch), the old file deleted.
    private void SwitchTo(VectorStore fresh, long generation, long sequence, long epoch, string? shippedIndex = null)
    {
        var old = _vectors;
        try
        {
            (_vectors, _vectorsGeneration) = (fresh, generation);
            Sequence = sequence;
            Epoch = epoch;
            _tail.Clear();
            _tailBytes = 0;
            IndexShipped = false;
            if (shippedIndex is not null)
            {
                _index?.Dispose();
                _index = null!;
                LoadIndex(GenerationOf(shippedIndex, "index-"), checkCount: false);
                IndexShipped = _index is not null;
                if (IndexShipped) IndexRecovery = $"shipped by the peer ({Path.GetFileName(shippedIndex)}) at write {sequence}";
            }
            if (!IndexShipped) BuildIndex();
            _forceTruncate = true;
            try { Checkpoint(); }
            finally { _forceTruncate = false; }
        }
        catch
        {
            // The state in memory is no longer the log's: take no more writes until reopened (which restores the old state).
            Fault ??= new InvalidOperationException($"a snapshot copy into '{fresh.Path}' failed");
            throw;
        }
        old.Dispose();
        TryDelete(old.Path);
    }

    /// <summary>Makes the vectors and the index durable at the current sequence (the vector file fsynced; the index saved
    /// to a new generation when it changed, or checkpointed in place for SPANN), writes the snapshot that names them with
    /// the id → slot map, and truncates the log it covers.</summary>
    public void Checkpoint()
    {
        VectorsOnly();
        long covered = _wal?.TailAddress ?? 0;
        _vectors.Flush();
        long indexGeneration = 0;
        if (Trained)
        {
            if (_index is SpannIndex spann) spann.Checkpoint();
            else if (_indexDirty || !File.Exists(IndexPath(_indexGeneration, spann: false)))
            {
                long next = NextGeneration("index-", _indexGeneration);
                _index.Save(IndexPath(next, spann: false));
                _indexGeneration = next;
            }
            indexGeneration = _indexGeneration;
            _indexDirty = false;
        }
        var (ids, slots) = _vectors.Map();
        using (var w = new IndexFileWriter(Path.Combine(_dir, SnapshotFile),
                   new IndexFileHeader(SnapshotKind, Layout.Spec, Layout.Metric, Layout.Dimension, ids.Length, IndexFile.FormatVersion)))
        {
            w.WriteArray<long>("META", [Sequence, Epoch, covered, _vectors.UsedSlots, _vectorsGeneration, indexGeneration, SnapshotFormat]);
            w.WriteArray<long>("IDS\0", ids);
            w.WriteArray<int>("SLOT", slots);
            w.Commit();
        }
        _savedIndexGeneration = indexGeneration;
        _upgradeSnapshot = false;
        RemoveStaleFiles();
        TruncateLog(covered, Sequence, Epoch, force: _forceTruncate);
        _logBytesSinceSnapshot = 0;
    }

    // Snapshot META of plain-vector replicas: [sequence, epoch, covered, used slots, vectors generation, index generation, format].
    private const long SnapshotFormat = 2;

    private string VectorsFile(long generation) => Path.Combine(_dir, $"vectors-{generation}.dat");

    private string IndexPath(long generation, bool spann) => Path.Combine(_dir, spann ? $"index-{generation}" : $"index-{generation}.idx");

    private static long GenerationOf(string path, string prefix)
    {
        string name = Path.GetFileName(path);
        int end = name.IndexOf('.', StringComparison.Ordinal);
        var digits = name.AsSpan(prefix.Length, (end < 0 ? name.Length : end) - prefix.Length);
        return long.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long g) ? g : -1;
    }

    private IEnumerable<string> Entries(string prefix) =>
        System.IO.Directory.EnumerateFileSystemEntries(_dir, prefix + "*").Where(e => GenerationOf(e, prefix) >= 0);

    // A generation number above every one on disk and the current one (never reused in this directory).
    private long NextGeneration(string prefix, long current) =>
        Math.Max(current, Entries(prefix).Select(e => GenerationOf(e, prefix)).DefaultIfEmpty(0).Max()) + 1;

    // Deletes vector files and indexes of other generations than the current ones (left by a snapshot copy, an index
    // rebuild or a crash before a switch).
    private void RemoveStaleFiles()
    {
        foreach (var e in Entries("vectors-"))
            if (GenerationOf(e, "vectors-") != _vectorsGeneration) TryDelete(e);
        foreach (var e in Entries("index-"))
            if (GenerationOf(e, "index-") != _indexGeneration || _index is null || !Trained) TryDelete(e);
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (System.IO.Directory.Exists(path)) System.IO.Directory.Delete(path, recursive: true);
            else File.Delete(path);
        }
        catch (IOException) { /* still mapped or open elsewhere (Windows): the next open removes it */ }
        catch (UnauthorizedAccessException) { }
    }

    // Opens the vector file the snapshot named (or a first one) and loads the index the snapshot named, if any.
    private void OpenVectors()
    {
        if (_vectors is null)
        {
            _vectorsGeneration = Math.Max(1, _vectorsGeneration);
            if (!File.Exists(Path.Combine(_dir, SnapshotFile)) || _upgradeSnapshot)
            {
                // Nothing on disk vouches for any vector file: the log (replayed next) is the whole state.
                _vectorsGeneration = NextGeneration("vectors-", 0);
            }
            _vectors = new VectorStore(VectorsFile(_vectorsGeneration), Layout.Dimension);
        }
        _index = null!;
        if (_savedIndexGeneration > 0) LoadIndex(_savedIndexGeneration);
        else IndexRecovery = Sequence == 0 && _vectors.Count == 0 ? "new" : "rebuilt from the vectors (no saved index)";
        if (_index is null) _indexGeneration = 0;
        RemoveStaleFiles();
    }

    // What the layout's spec builds (description, whether it trains first, whether it is SPANN), from one probe index.
    private (string Description, bool NeedsTraining, bool Spann)? _spec;

    private (string Description, bool NeedsTraining, bool Spann) Spec
    {
        get
        {
            if (_spec is { } known) return known;
            using var probe = IndexFactory.Create(Layout.Spec, Layout.Dimension, Layout.Metric);
            return (_spec = (probe.Description, !probe.IsTrained, probe is SpannIndex)).Value;
        }
    }

    private void LoadIndex(long generation, bool checkCount = true)
    {
        bool spann = Spec.Spann;
        string path = IndexPath(generation, spann);
        IVectorIndex? loaded = null;
        try
        {
            loaded = IndexFactory.Load(path);
            string? problem = loaded.Description != Spec.Description ? $"it is '{loaded.Description}', the layout builds '{Spec.Description}'"
                : loaded.Dimension != Layout.Dimension || loaded.Metric != Layout.Metric ? $"it is {loaded.Metric} d = {loaded.Dimension}"
                : !loaded.IsTrained ? "it is not trained"
                // A SPANN index checkpoints on its own and may hold writes after the snapshot; any other was saved with it.
                : checkCount && !spann && loaded.Count != _vectors.Count ? $"it holds {loaded.Count} vectors, the snapshot {_vectors.Count}"
                : null;
            if (problem is not null) throw new InvalidDataException(problem);
            (_index, _indexGeneration, Trained, _indexDirty) = (loaded, generation, true, false);
            IndexRecovery = $"loaded {Path.GetFileName(path)} at write {Sequence}";
        }
        catch (Exception e) when (e is IOException or InvalidDataException or CorruptIndexException or IndexFormatException or UnauthorizedAccessException)
        {
            // The index is derived state: a damaged or stale one is rebuilt from the vectors, which are checksummed.
            loaded?.Dispose();
            IndexRecovery = $"rebuilt from the vectors ({Path.GetFileName(path)}: {e.Message})";
        }
    }

    /// <summary><see cref="Checkpoint"/> for either kind of collection: a record collection checkpoints itself (FASTER KV
    /// and its own log), then the snapshot file records the sequence it holds and the log is truncated.</summary>
    public async Task CheckpointAsync()
    {
        if (_records is null)
        {
            Checkpoint();
            return;
        }
        long covered = _wal?.TailAddress ?? 0;
        await _records.CheckpointAsync();
        WriteRecordSnapshot(Sequence, Epoch, covered, _generation, Count);
        TruncateLog(covered, Sequence, Epoch);
        _logBytesSinceSnapshot = 0;
    }

    private void WriteRecordSnapshot(long sequence, long epoch, long covered, long generation, long count)
    {
        using var w = new IndexFileWriter(Path.Combine(_dir, SnapshotFile),
            new IndexFileHeader(SnapshotKind, Layout.Spec, Layout.Metric, Layout.Dimension, count, IndexFile.FormatVersion));
        w.WriteArray<long>("META", [sequence, epoch, covered, generation]);
        w.Commit();
    }

    private string RecordsDirectory(long generation) => Path.Combine(_dir, $"records-{generation}");

    // Opens the current generation of the records and removes any other (a snapshot copy interrupted before its switch,
    // or a replaced generation whose deletion did not finish).
    private void OpenRecords()
    {
        foreach (var stale in System.IO.Directory.GetDirectories(_dir, "records-*"))
            if (!string.Equals(Path.GetFileName(stale), $"records-{_generation}", StringComparison.Ordinal))
                RemoveTree(stale);
        // A snapshot that names a generation vouches for its records: their absence is damage, not an empty shard.
        if (Sequence > 0 && File.Exists(Path.Combine(_dir, SnapshotFile)) && !File.Exists(Path.Combine(RecordsDirectory(_generation), "collection.json")))
            throw new CorruptIndexException(RecordsDirectory(_generation), 0, $"the snapshot names records generation {_generation} at write {Sequence}, but its directory holds no collection");
        _records = RecordShardState.Open(RecordsDirectory(_generation), Layout.Schema!, _recordOptions);
    }

    // Removes a directory tree that another owner may still be pruning: FASTER's checkpoint clean-up of a store disposed
    // just before can delete entries under it while this walks it (a DirectoryNotFoundException for a sub-directory).
    // Retries until the tree is gone; a failure that persists for about a second is reported.
    private static void RemoveTree(string dir)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                System.IO.Directory.Delete(dir, recursive: true);
                return;
            }
            catch (DirectoryNotFoundException) when (!System.IO.Directory.Exists(dir)) { return; }
            catch (IOException) when (attempt < 20) { Thread.Sleep(5 * attempt); }
        }
    }

    private void ReplayRecords(WriteOp op)
    {
        _records!.ApplyHere(op.Kind, op.Records ?? throw new InvalidOperationException($"Collection '{Layout.Name}' holds records; logged write {op.Sequence} carries plain vectors."));
        Sequence = op.Sequence;
        Epoch = op.Epoch;
    }

    private async Task ApplyToRecords(WriteOp op)
    {
        if (op.Records is null) throw new InvalidOperationException($"Collection '{Layout.Name}' holds records; write {op.Sequence} carries plain vectors.");
        if (op.Kind == WriteKind.Upsert) await _records!.UpsertAsync(op.Records);
        else await _records!.DeleteAsync(op.Records);
        Sequence = op.Sequence;
        Epoch = op.Epoch;
    }

    /// <summary>
    /// Record collections: replaces everything with the records <paramref name="nextSlice"/> yields (serialized, with
    /// vectors; null ends) at (<paramref name="sequence"/>, <paramref name="epoch"/>). The copy is built as a new
    /// generation beside the current one (a number never used in this directory) and checkpointed; writing the snapshot
    /// file that names it is the switch (a crash or failure before leaves the old generation in force). Returns the
    /// records installed.
    /// </summary>
    public async Task<long> InstallRecordsAsync(Func<Task<byte[][]?>> nextSlice, long sequence, long epoch)
    {
        if (_records is null) throw new InvalidOperationException($"Collection '{Layout.Name}' holds plain vectors, not records.");
        long generation = NextGeneration("records-", _generation);
        string dir = RecordsDirectory(generation);
        var fresh = await BlockingWork.Run(() => RecordShardState.Open(dir, Layout.Schema!, _recordOptions));
        long installed = 0;
        long covered = _wal?.TailAddress ?? 0;
        try
        {
            while (await nextSlice() is { } slice)
            {
                if (slice.Length == 0) continue;
                await fresh.UpsertAsync(slice);
                installed += slice.Length;
            }
            await fresh.CheckpointAsync();
            covered = _wal?.TailAddress ?? 0;
            WriteRecordSnapshot(sequence, epoch, covered, generation, fresh.Count);
        }
        catch
        {
            fresh.Retire(deleteDirectory: true);
            throw;
        }
        var old = _records;
        (_records, _generation, Sequence, Epoch) = (fresh, generation, sequence, epoch);
        _tail.Clear();
        _tailBytes = 0;
        TruncateLog(covered, sequence, epoch, force: true);
        _logBytesSinceSnapshot = 0;
        old.Retire(deleteDirectory: true);
        return installed;
    }

    /// <summary>Record collections: a page of a snapshot copy (see <see cref="IShardReplicaGrain.ScanLocalRecords"/>).</summary>
    /// <exception cref="InvalidOperationException">The records were replaced since the scan began (another generation).</exception>
    public async Task<RecordScanPage> ScanRecordsAsync(long after, long maxBytes, long generation)
    {
        long current = _generation;
        if (generation >= 0 && generation != current)
            throw new InvalidOperationException($"Replica of '{Layout.Name}' replaced its records (generation {generation} → {current}) during a snapshot copy; the copy starts again.");
        var (records, next) = await ReadRecords(s => s.ScanAsync(after, maxBytes));
        if (_generation != current)
            throw new InvalidOperationException($"Replica of '{Layout.Name}' replaced its records during a snapshot copy; the copy starts again.");
        return new RecordScanPage { Records = records, Next = next, Generation = current };
    }

    /// <summary>Runs a read on the current records under a lease (a generation replaced meanwhile is disposed only after it).</summary>
    public async Task<T> ReadRecords<T>(Func<RecordShardState, Task<T>> read)
    {
        while (true)
        {
            var state = _records ?? throw new InvalidOperationException($"Collection '{Layout.Name}' holds plain vectors, not records: use DistributedCollection.");
            if (!state.Acquire()) continue;
            try { return await read(state); }
            finally { state.Release(); }
        }
    }

    private void VectorsOnly()
    {
        if (Layout.IsRecords)
            throw new InvalidOperationException($"Collection '{Layout.Name}' holds records: use DistributedRecordCollection, not the plain-vector calls.");
    }

    private long ReadSnapshot()
    {
        string path = Path.Combine(_dir, SnapshotFile);
        if (!File.Exists(path)) return 0;
        using var r = new IndexFileReader(path, SnapshotKind);
        if (Layout.IsRecords)
        {
            var m = r.ReadArray<long>("META", 4);
            r.VerifyEnd();
            (Sequence, Epoch, _generation) = (m[0], m[1], m[3]);
            return m[2];
        }
        if (r.Header.Dimension != Layout.Dimension)
            throw new CorruptIndexException(path, 0, $"snapshot of dimension {r.Header.Dimension}, layout says {Layout.Dimension}");
        var meta = r.ReadArray<long>("META");
        var ids = r.ReadArray<long>("IDS\0", r.Header.Count);
        if (meta.Length == 3)
        {
            // Format 1 (every vector inside the snapshot): copied into a fresh vector file, and rewritten as format 2
            // once the log is replayed.
            var vecs = r.ReadArray<float>("VECS", r.Header.Count * Layout.Dimension);
            r.VerifyEnd();
            _upgradeSnapshot = true;
            OpenVectors();
            _vectors.SetMany(ids, vecs);
        }
        else if (meta.Length == 7 && meta[6] == SnapshotFormat)
        {
            var slots = r.ReadArray<int>("SLOT", r.Header.Count);
            r.VerifyEnd();
            if (meta[3] is < 0 or > int.MaxValue || meta[4] <= 0 || meta[5] < 0)
                throw new CorruptIndexException(path, 0, $"snapshot names {meta[3]} slots, vectors generation {meta[4]}, index generation {meta[5]}");
            (_vectorsGeneration, _savedIndexGeneration) = (meta[4], meta[5]);
            if (!File.Exists(VectorsFile(_vectorsGeneration)) && ids.Length > 0)
                throw new CorruptIndexException(VectorsFile(_vectorsGeneration), 0, $"the snapshot at write {meta[0]} names this vector file, which is missing");
            _vectors = new VectorStore(VectorsFile(_vectorsGeneration), Layout.Dimension);
            _vectors.Restore(ids, slots, (int)meta[3], path);
        }
        else throw new CorruptIndexException(path, 0, $"a snapshot META of {meta.Length} values (format {(meta.Length > 6 ? meta[6] : 1)}) this version does not read");
        Sequence = meta[0];
        Epoch = meta[1];
        return meta[2];
    }

    private void Remember(WriteOp op)
    {
        _tail.Enqueue(op);
        _tailBytes += op.Bytes;
        while (_tailBytes > _tailLimitBytes && _tail.Count > 1)
        {
            var old = _tail.Dequeue();
            _tailBytes -= old.Bytes;
        }
    }

    /// <summary>
    /// What a peer at (<paramref name="sequence"/>, <paramref name="epoch"/>) needs to reach this replica: the writes
    /// after it when they are still in memory and the peer's last write is the one this replica applied at that
    /// sequence; otherwise the id list for a snapshot copy.
    /// </summary>
    public CatchUp CatchUpFrom(long sequence, long epoch)
    {
        if (OpsSince(sequence, epoch) is { } ops) return ops;
        VectorsOnly();
        // A built index ships with the copy: saved now, so the file stands at the same sequence as the id list.
        long indexGeneration = 0, indexBytes = 0;
        // (Not Flat, SPANN: a Flat index is its vectors, cheaper to add again than to send twice; SPANN is a directory.)
        if (Trained && _index is not SpannIndex and not FlatIndex && Fault is null)
        {
            Checkpoint();
            indexGeneration = _indexGeneration;
            indexBytes = new FileInfo(IndexPath(indexGeneration, spann: false)).Length;
        }
        PinForCopy();
        return new CatchUp
        {
            SnapshotIds = _vectors.SortedIds(), SnapshotSequence = Sequence, SnapshotEpoch = Epoch,
            IndexGeneration = indexGeneration, IndexBytes = indexBytes,
        };
    }

    // The writes after (sequence, epoch) when this replica still holds them (in memory, or else in its log) and applied
    // that write; else null.
    private CatchUp? OpsSince(long sequence, long epoch)
    {
        if (sequence == Sequence && epoch == Epoch) return new CatchUp { Ops = [] };
        if (sequence < Sequence)
        {
            bool linked = sequence == 0 ? OldestTailSequence == 1 : _tail.Any(o => o.Sequence == sequence && o.Epoch == epoch);
            if (linked) return new CatchUp { Ops = _tail.Where(o => o.Sequence > sequence).ToArray() };
            return OpsFromLog(sequence, epoch);
        }
        return null;
    }

    /// <summary>How long a snapshot copy served to a peer keeps this replica's log from being truncated, so that the
    /// writes made during the copy can still be sent after it (<see cref="OpsFromLog"/>).</summary>
    internal static TimeSpan CopyPinTime { get; set; } = TimeSpan.FromMinutes(30);

    // Bytes of logged writes one catch-up answer carries at most (the asker asks again for the rest).
    private long _maxOpsBytes = 32L << 20;

    private long _walBaseSequence, _walBaseEpoch, _pinSequence = -1;
    private DateTime _pinUntil;
    private bool _forceTruncate;
    private (long Sequence, long Epoch, long Address)? _resume;   // where the next part of a history sent in parts starts

    private bool Pinned => _pinSequence >= 0 && DateTime.UtcNow < _pinUntil;

    // Keeps the log from the snapshot at (sequence, epoch) on unless a snapshot copy served to a peer still needs it
    // (or force: this replica's own history was just replaced, so older records would describe another history).
    private void TruncateLog(long covered, long sequence, long epoch, bool force = false)
    {
        if (_wal is null) return;
        if (force) _pinSequence = -1;
        else if (Pinned) return;
        _wal.Truncate(covered);
        (_walBaseSequence, _walBaseEpoch) = (sequence, epoch);
        _resume = null;
    }

    // The writes after (sequence, epoch) read back from the log, when the log holds that write (or starts right after
    // it, at the snapshot it was truncated at) and a gapless chain from it; at most 32 MiB of them (More set).
    private CatchUp? OpsFromLog(long sequence, long epoch)
    {
        if (_wal is null) return null;
        bool linked = sequence == _walBaseSequence && epoch == _walBaseEpoch;
        // A history sent in parts: the next part starts where the last one stopped, not at the log's beginning.
        long from = _wal.BeginAddress;
        if (_resume is { } r && r.Sequence == sequence && r.Epoch == epoch && r.Address >= _wal.BeginAddress && r.Address <= _wal.TailAddress)
            (from, linked) = (r.Address, true);
        var ops = new List<WriteOp>();
        long bytes = 0, expected = sequence + 1, stopAt = -1;
        bool broken = false, more = false;
        _wal.Replay(from, (address, record) =>
        {
            if (broken || more) return;
            // The header says where a record stands; only the writes sent are decoded (vectors or records copied).
            if (record.Length < WalHeaderBytes) Decode(record);   // throws: damaged
            long at = BinaryPrimitives.ReadInt64LittleEndian(record[1..]);
            if (at == sequence) linked = BinaryPrimitives.ReadInt64LittleEndian(record[9..]) == epoch;
            if (at <= sequence || at > Sequence) return;
            if (at != expected) { broken = true; return; }
            var op = Decode(record);
            if (ops.Count > 0 && bytes + op.Bytes > _maxOpsBytes) { (more, stopAt) = (true, address); return; }
            ops.Add(op);
            bytes += op.Bytes;
            expected++;
        });
        if (!linked || broken || ops.Count == 0) return null;
        _resume = more ? (ops[^1].Sequence, ops[^1].Epoch, stopAt) : null;
        if (!more && _pinSequence >= 0 && sequence >= _pinSequence) _pinSequence = -1;   // the copy it was kept for is complete
        return new CatchUp { Ops = [.. ops], More = more };
    }

    // A snapshot copy starts: keep the log from here on for its writes.
    private void PinForCopy()
    {
        _pinSequence = Sequence;
        _pinUntil = DateTime.UtcNow + CopyPinTime;
    }

    /// <summary><see cref="CatchUpFrom"/> for either kind of collection (a record snapshot lists every live key).</summary>
    public async Task<CatchUp> CatchUpFromAsync(long sequence, long epoch)
    {
        if (_records is null) return CatchUpFrom(sequence, epoch);
        if (OpsSince(sequence, epoch) is { } ops) return ops;
        PinForCopy();
        return new CatchUp { RecordSnapshot = true, SnapshotSequence = Sequence, SnapshotEpoch = Epoch };
    }

    /// <summary>The ids of <paramref name="ids"/> this replica holds, in their order.</summary>
    public long[] Holding(long[] ids)
    {
        VectorsOnly();
        return Array.FindAll(ids, _vectors.Contains);
    }

    /// <summary>The stored vectors of the ids present.</summary>
    /// <param name="ids">The ids to fetch.</param>
    /// <param name="asIndexed">Return them as the index holds them (unit length for cosine, as
    /// <see cref="IVectorIndex.TryReconstruct"/> of a local index would) rather than as written (what a peer copies).</param>
    public VectorRows Get(long[] ids, bool asIndexed = false)
    {
        VectorsOnly();
        var found = Array.FindAll(ids, _vectors.Contains);
        var rows = _vectors.Gather(found);
        if (asIndexed) AsIndexed(rows);
        return new VectorRows { Ids = found, Vectors = rows };
    }

    private void AsIndexed(float[] rows)
    {
        if (Layout.Metric != Metric.Cosine) return;
        int d = Layout.Dimension;
        for (int i = 0; i < rows.Length / d; i++)
        {
            var v = rows.AsSpan(i * d, d);
            float n = Distances.SquaredNorm(v);
            if (n > 0) System.Numerics.Tensors.TensorPrimitives.Multiply(v, 1f / MathF.Sqrt(n), v);
        }
    }

    /// <summary>Top-k over this replica, with the request's knobs and filter.</summary>
    public SearchResponse Search(SearchRequest request)
    {
        VectorsOnly();
        int d = Layout.Dimension, nq = request.Queries.Length / d, k = request.K;
        var distances = new float[(long)nq * k];
        var labels = new long[(long)nq * k];
        var filter = request.Filter?.ToIdFilter();
        // While a spec that needs training is staged on exact search there are no probes or ef to set: exact search
        // is what every knob converges to, so the knobs are checked against the spec (Validate) but not applied.
        var parameters = Trained
            ? IndexFactory.CreateParameters(_index, request.Settings ?? [], request.Threads, stats: null, filter)
            : new SearchParameters { Threads = request.Threads, Filter = filter };
        if (_index.Count == 0)
        {
            Array.Fill(distances, Layout.Metric.MissingDistance());
            Array.Fill(labels, -1L);
        }
        else _index.Search(request.Queries, k, distances, labels, parameters);
        float[]? vectors = null;
        if (request.IncludeVectors)
        {
            vectors = new float[labels.LongLength * d];
            for (long i = 0; i < labels.LongLength; i++)
                if (labels[i] >= 0) _vectors.Get(labels[i], vectors.AsSpan((int)(i * d), d));
            AsIndexed(vectors);
        }
        return new SearchResponse { Distances = distances, Labels = labels, Vectors = vectors, ShardsAnswered = 1 };
    }

    /// <summary>Resident bytes: the vector map plus the index (the raw vectors are in their file).</summary>
    public long MemoryBytes => _records?.MemoryBytes ?? _vectors.MemoryBytes + (_index?.MemoryBytes ?? 0);

    private void ApplyToVectors(WriteOp op)
    {
        int d = Layout.Dimension;
        if (op.Kind == WriteKind.Upsert) _vectors.SetMany(op.Ids, op.Vectors.AsSpan(0, op.Ids.Length * d));
        else
            foreach (long id in op.Ids) _vectors.Remove(id);
        Sequence = op.Sequence;
        Epoch = op.Epoch;
    }

    private void ApplyToIndex(WriteOp op)
    {
        // Replaced and deleted ids leave the index first; upserted rows then go in as one batch.
        _indexDirty = true;
        _index.Remove(op.Ids);
        if (op.Kind == WriteKind.Upsert)
        {
            if (!Trained && _vectors.Count >= Layout.TrainingSize) BuildIndex();
            else _index.Add(op.Vectors, op.Ids);
        }
    }

    private void BuildIndex()
    {
        _index?.Dispose();
        _index = null!;
        var ids = _vectors.SortedIds();
        // SPANN lives in its own directory (postings on disk); every other index in memory until a snapshot saves it.
        long generation = NextGeneration("index-", _indexGeneration);
        IVectorIndex index;
        if (Spec.NeedsTraining && ids.Length < Layout.TrainingSize)
        {
            index = new FlatIndex(Layout.Dimension, Layout.Metric);
            Trained = false;
        }
        else
        {
            index = Spec.Spann
                ? IndexFactory.Create(Layout.Spec, Layout.Dimension, Layout.Metric, new IndexBuildOptions { Directory = IndexPath(generation, spann: true) })
                : IndexFactory.Create(Layout.Spec, Layout.Dimension, Layout.Metric);
            Trained = true;
        }
        _indexGeneration = Trained ? generation : 0;
        _indexDirty = true;
        try
        {
            if (!index.IsTrained)
            {
                // Train on an even stride over the ids (ascending), at most max(TrainingSize, 65 536) rows.
                int sample = Math.Min(ids.Length, Math.Max(Layout.TrainingSize, 65536));
                var picked = new long[sample];
                for (int i = 0; i < sample; i++) picked[i] = ids[(int)((long)i * ids.Length / sample)];
                index.Train(_vectors.Gather(picked));
            }
            const int batch = 16384;
            for (int start = 0; start < ids.Length; start += batch)
            {
                var part = ids.AsSpan(start, Math.Min(batch, ids.Length - start));
                index.Add(_vectors.Gather(part), part);
            }
        }
        catch
        {
            index.Dispose();
            throw;
        }
        _index = index;
    }

    private byte[] Encode(WriteOp op)
    {
        if (op.Records is not null) return EncodeRecords(op);
        var bytes = new byte[WalHeaderBytes + op.Ids.Length * 8L + op.Vectors.Length * 4L];
        if (bytes.Length > _wal.MaxRecordSize)
            throw new ArgumentException($"A write batch of {op.Ids.Length} rows ({bytes.Length} bytes) exceeds the log's record limit of {_wal.MaxRecordSize} bytes; send smaller batches.");
        bytes[0] = (byte)op.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(1), op.Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(9), op.Epoch);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(17), op.Ids.Length);
        MemoryMarshal.AsBytes(op.Ids.AsSpan()).CopyTo(bytes.AsSpan(WalHeaderBytes));
        MemoryMarshal.AsBytes(op.Vectors.AsSpan()).CopyTo(bytes.AsSpan(WalHeaderBytes + op.Ids.Length * 8));
        return bytes;
    }

    // Record writes: the header, then per record (or key) its length (i32) and bytes.
    private byte[] EncodeRecords(WriteOp op)
    {
        var items = op.Records!;
        long size = WalHeaderBytes + items.Sum(r => 4L + r.Length);
        if (size > _wal.MaxRecordSize)
            throw new ArgumentException($"A write batch of {items.Length} records ({size} bytes) exceeds the log's record limit of {_wal.MaxRecordSize} bytes; send smaller batches.");
        var bytes = new byte[size];
        bytes[0] = (byte)op.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(1), op.Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(9), op.Epoch);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(17), items.Length);
        int at = WalHeaderBytes;
        foreach (var r in items)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), r.Length);
            r.CopyTo(bytes.AsSpan(at + 4));
            at += 4 + r.Length;
        }
        return bytes;
    }

    private WriteOp Decode(ReadOnlySpan<byte> record)
    {
        string file = FileWriteAheadLogProvider.Instance.LogFile(_dir);
        if (record.Length < WalHeaderBytes) throw new CorruptIndexException(file, 0, $"a {record.Length}-byte record is shorter than its header");
        if (Layout.IsRecords) return DecodeRecords(record, file);
        var kind = (WriteKind)record[0];
        int n = BinaryPrimitives.ReadInt32LittleEndian(record[17..]);
        long vecBytes = kind == WriteKind.Upsert ? (long)n * Layout.Dimension * 4 : 0;
        if ((kind != WriteKind.Upsert && kind != WriteKind.Delete) || n < 0 || record.Length != WalHeaderBytes + n * 8L + vecBytes)
            throw new CorruptIndexException(file, 0, $"a write record of kind {record[0]} with {n} rows has {record.Length} bytes");
        return new WriteOp
        {
            Kind = kind,
            Sequence = BinaryPrimitives.ReadInt64LittleEndian(record[1..]),
            Epoch = BinaryPrimitives.ReadInt64LittleEndian(record[9..]),
            Ids = MemoryMarshal.Cast<byte, long>(record.Slice(WalHeaderBytes, n * 8)).ToArray(),
            Vectors = MemoryMarshal.Cast<byte, float>(record.Slice(WalHeaderBytes + n * 8, (int)vecBytes)).ToArray(),
        };
    }

    private static WriteOp DecodeRecords(ReadOnlySpan<byte> record, string file)
    {
        var kind = (WriteKind)record[0];
        int n = BinaryPrimitives.ReadInt32LittleEndian(record[17..]);
        if ((kind != WriteKind.Upsert && kind != WriteKind.Delete) || n < 0)
            throw new CorruptIndexException(file, 0, $"a record write of kind {record[0]} with {n} rows");
        var items = new byte[n][];
        int at = WalHeaderBytes;
        for (int i = 0; i < n; i++)
        {
            int len = at + 4 <= record.Length ? BinaryPrimitives.ReadInt32LittleEndian(record[at..]) : -1;
            if (len < 0 || (long)at + 4 + len > record.Length) throw new CorruptIndexException(file, 0, $"record {i} of a {n}-row write runs past its {record.Length} bytes");
            items[i] = record.Slice(at + 4, len).ToArray();
            at += 4 + len;
        }
        if (at != record.Length) throw new CorruptIndexException(file, 0, $"a {n}-row record write has {record.Length - at} trailing bytes");
        return new WriteOp
        {
            Kind = kind, Records = items, Ids = [], Vectors = [],
            Sequence = BinaryPrimitives.ReadInt64LittleEndian(record[1..]),
            Epoch = BinaryPrimitives.ReadInt64LittleEndian(record[9..]),
        };
    }

    /// <summary>Closes the log and the index and releases the directory (takes no snapshot; the grain does on a clean deactivation).</summary>
    public void Dispose()
    {
        _wal?.Dispose();
        _index?.Dispose();
        _vectors?.Dispose();
        _records?.Dispose();
        _lock?.Dispose();
        _lock = null;
    }
}
