using Engine.Distance;
using Engine.Storage;
using Engine.Storage.Format;
using Engine.Storage.Postings;
using Engine.Storage.Wal;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    private static string PostingFile(int generation) => $"postings-{generation}.dat";

    /// <summary>The refine file of coded postings (full vectors, <see cref="VectorRecordStore"/>).</summary>
    private static string RefineFile(int generation) => $"vectors-{generation}.dat";

    private int _refineGeneration;

    /// <summary>
    /// Creates an empty durable index in <paramref name="directory"/> (created if missing; must not hold an index):
    /// <see cref="Create(IIndexStorage, int, Metric, SpannOptions?, IWriteAheadLogProvider?)"/> over a
    /// <see cref="FileIndexStorage"/>.
    /// </summary>
    /// <param name="directory">Index directory.</param>
    /// <param name="dimension">Vector dimension.</param>
    /// <param name="metric">Metric.</param>
    /// <param name="options">Settings (defaults when null).</param>
    /// <param name="log">The write-ahead log kind (default <see cref="WriteAheadLogs.Default"/>: FASTER's FasterLog when
    /// <c>Engine.Faster</c> is deployed, else <see cref="FileWriteAheadLog"/>); the metadata records it for
    /// <see cref="Open(string, SpannOpenOptions?)"/>.</param>
    /// <exception cref="IOException">The directory already holds an index, or is a file.</exception>
    public static SpannIndex Create(string directory, int dimension, Metric metric = Metric.L2, SpannOptions? options = null,
        IWriteAheadLogProvider? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        return Create(new FileIndexStorage(directory), dimension, metric, options, log);
    }

    /// <summary>
    /// Creates an empty durable index in the caller's <paramref name="storage"/> (which must not hold an index): the
    /// posting, refine and metadata files and the write-ahead log are made, opened, replaced and deleted only through it.
    /// </summary>
    /// <param name="storage">Where the index lives (<see cref="FileIndexStorage"/>, <see cref="MemoryIndexStorage"/> or
    /// the caller's own).</param>
    /// <param name="dimension">Vector dimension.</param>
    /// <param name="metric">Metric.</param>
    /// <param name="options">Settings (defaults when null).</param>
    /// <param name="log">The write-ahead log kind (default <see cref="WriteAheadLogs.Default"/>), made by
    /// <see cref="IIndexStorage.CreateLog"/>; the metadata records it.</param>
    /// <exception cref="IOException">The storage already holds an index.</exception>
    public static SpannIndex Create(IIndexStorage storage, int dimension, Metric metric = Metric.L2, SpannOptions? options = null,
        IWriteAheadLogProvider? log = null)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (storage.Exists(MetaFileName))
            throw new IOException($"'{storage.Location}' already holds a SPANN index; open it with SpannIndex.Open.");
        options ??= new SpannOptions();
        options.Validate();
        log ??= WriteAheadLogs.Default;
        LogKindCode(log.Kind);
        if (options.IsCoded) options.CodecSpec()!.Create(dimension, metric); // a codec that does not fit d fails before any file is made
        var store = new PostingStore(storage.OpenOrCreateDevice(PostingFile(0)), new PostingCache(options.CacheBytes));
        VectorRecordStore? refine = null;
        SpannIndex index;
        try
        {
            if (options.IsCoded) refine = new VectorRecordStore(storage.OpenOrCreateDevice(RefineFile(0)), dimension, 0);
            index = new SpannIndex(dimension, metric, options, store, storage, refine);
        }
        catch
        {
            refine?.Dispose();
            store.Dispose();
            throw;
        }
        try
        {
            index._logProvider = log;
            index._wal = storage.CreateLog(log, WalDirectoryName);
            lock (index._writerGate) index.CheckpointLocked();
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a durable index in <paramref name="directory"/>: <see cref="Open(IIndexStorage, SpannOpenOptions?)"/> over a
    /// <see cref="FileIndexStorage"/>.
    /// </summary>
    /// <param name="directory">The index directory.</param>
    /// <param name="options">Log provider and whether to accept losing logged writes (default: refuse).</param>
    /// <exception cref="FileNotFoundException">No index in <paramref name="directory"/>.</exception>
    /// <exception cref="CorruptIndexException">A damaged metadata file, posting block or log record (names file and offset),
    /// or a log that cannot give back every acknowledged write (missing, empty, not reaching the checkpoint's replay
    /// address, starting after it, or ending before its last commit) unless <see cref="SpannOpenOptions.AcceptLogLoss"/>.</exception>
    /// <exception cref="IndexFormatException">The index uses a log kind this process does not have.</exception>
    public static SpannIndex Open(string directory, SpannOpenOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        return Open(new FileIndexStorage(directory), options);
    }

    /// <summary>
    /// Opens a durable index in the caller's <paramref name="storage"/>: loads the last checkpoint and replays the log
    /// after it (the log kind recorded in the metadata). <see cref="Recovery"/> then says what was replayed and what
    /// torn tail was dropped. Files of other generations are deleted through the storage.
    /// </summary>
    /// <param name="storage">Where the index lives.</param>
    /// <param name="options">Log provider and whether to accept losing logged writes (default: refuse).</param>
    /// <exception cref="FileNotFoundException">The storage holds no index.</exception>
    /// <exception cref="CorruptIndexException">As for <see cref="Open(string, SpannOpenOptions?)"/>.</exception>
    /// <exception cref="IndexFormatException">The index uses a log kind this process does not have.</exception>
    public static SpannIndex Open(IIndexStorage storage, SpannOpenOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(storage);
        string meta = storage.PathOf(MetaFileName);
        if (!storage.Exists(MetaFileName)) throw new FileNotFoundException($"No SPANN index in '{storage.Location}' ({MetaFileName} is missing).", meta);
        var index = ReadMeta(storage, out string? logKind);
        try
        {
            foreach (var f in storage.List("postings-", ".dat"))
                if (f != PostingFile(index._generation)) storage.Delete(f);
            foreach (var f in storage.List("vectors-", ".dat"))
                if (index._refine is null || f != RefineFile(index._refineGeneration)) storage.Delete(f);
            options ??= new SpannOpenOptions();
            index._mapPostings = options.MapPostings;
            index.RefreshPostingMap(force: true);
            index.OpenLog(meta, logKind, options);
            index.QueueOutOfShape();
            index.StartMaintenance();
            return index;
        }
        catch
        {
            index.BackgroundMaintenance = false;
            index.Dispose();
            throw;
        }
    }

    private long _replayFrom;

    /// <summary>
    /// Durable index: checkpoints it in place when <paramref name="path"/> is its directory (or null/empty);
    /// otherwise (and for in-memory indexes) writes a compacted copy into the directory <paramref name="path"/>,
    /// which <see cref="Open(string, SpannOpenOptions?)"/> can load.
    /// </summary>
    public void Save(string path)
    {
        if (_storage is not null && (string.IsNullOrEmpty(path) || (_storage is FileIndexStorage files && files.IsAt(path))))
        {
            Save(_storage);
            return;
        }
        ArgumentException.ThrowIfNullOrEmpty(path);
        Save(new FileIndexStorage(path));
    }

    /// <summary>
    /// Durable index: checkpoints it in place when <paramref name="target"/> is its own storage; otherwise (and for
    /// in-memory indexes) writes a compacted copy (no log; posting and refine files of generation 0, any others there
    /// deleted) into <paramref name="target"/>, which <see cref="Open(IIndexStorage, SpannOpenOptions?)"/> can load.
    /// </summary>
    public void Save(IIndexStorage target)
    {
        ArgumentNullException.ThrowIfNull(target);
        ThrowIfDisposed();
        WaitForMaintenance();
        lock (_writerGate)
        {
            // Its own storage, also through another object over the same directory: saving a compacted copy there
            // would delete the live posting files and log under the open index.
            if (ReferenceEquals(target, _storage) || (target is FileIndexStorage files && _storage is FileIndexStorage own && files.IsAt(own.Location)))
            {
                CheckpointLocked();
                return;
            }
            _lock.EnterRead();
            try
            {
                foreach (var f in target.List("postings-", ".dat")) target.Delete(f);
                foreach (var f in target.List("vectors-", ".dat")) target.Delete(f);
                using var copy = new PostingStore(target.OpenOrCreateDevice(PostingFile(0)));
                // Coded postings: the copy gets its own refine file holding only the live records (offsets remapped).
                using var refine = _refine is null ? null : new VectorRecordStore(target.OpenOrCreateDevice(RefineFile(0)), Dimension, 0);
                var locations = CopyPostings(copy, out var counts, refine);
                refine?.Flush();
                copy.Flush();
                WriteMeta(target, 0, locations, counts, 0, NoLogCode, dropTombstones: true, refineGeneration: 0, refineLength: refine?.Length ?? 0);
                target.DeleteLog(WalDirectoryName);
            }
            finally { _lock.ExitRead(); }
        }
    }

    /// <summary>Flushes postings, writes the metadata and truncates the log (durable indexes only).</summary>
    public void Checkpoint()
    {
        ThrowIfDisposed();
        if (_storage is null) throw new InvalidOperationException("An in-memory SPANN index has no checkpoint; use Save(directory).");
        lock (_writerGate) CheckpointLocked();
    }

    /// <summary>Writes every posting's live entries to <paramref name="target"/>; with <paramref name="refine"/> (coded
    /// postings saved elsewhere) their refine records are copied there too, once per id, and the offsets remapped.</summary>
    private PostingLocation[] CopyPostings(PostingStore target, out int[] counts, VectorRecordStore? refine = null)
    {
        var locations = new PostingLocation[_postings.Count];
        counts = new int[_postings.Count];
        var moved = new Dictionary<long, long>();
        var vector = new float[Dimension];
        var one = new long[1];
        for (int p = 0; p < _postings.Count; p++)
        {
            if (!_postings[p].Exists) continue;
            var b = LoadLive(p);
            if (refine is not null)
            {
                var copy = NewBuffer(b.Count);
                for (int i = 0; i < b.Count; i++)
                {
                    if (!moved.TryGetValue(b.Offset(i), out long at))
                    {
                        _refine!.Read(b.Offset(i), b.Ids[i], b.Versions[i], vector);
                        refine.Append(b.Ids.Slice(i, 1), b.Versions.Slice(i, 1), vector, one);
                        moved[b.Offset(i)] = at = one[0];
                    }
                    copy.Add(b.Ids[i], b.Versions[i], at, b.Code(i), default);
                }
                b = copy;
            }
            counts[p] = b.Count;
            locations[p] = WriteBlock(target, p, b);
        }
        return locations;
    }

    private void CheckpointLocked()
    {
        var storage = _storage!;
        _lock.EnterWrite();
        try
        {
            bool compact = _garbageBytes > _store.Length / 2 && _garbageBytes > 0;
            // The refine records the postings reference must be durable before the metadata that commits their length.
            _refine?.Flush();
            long walAddress = _wal?.TailAddress ?? 0;
            long logCode = _logProvider is null ? NoLogCode : LogKindCode(_logProvider.Kind);
            if (compact)
            {
                int gen = _generation + 1;
                // The cache is keyed by byte offset; the compacted file starts again at offset 0, so it gets its own cache
                // (sharing the old one would serve stale postings at reused offsets).
                var next = new PostingStore(storage.OpenOrCreateDevice(PostingFile(gen)), new PostingCache(_store.Cache.ByteBudget));
                PostingLocation[] locations;
                int[] counts;
                try
                {
                    locations = CopyPostings(next, out counts);
                    next.Flush();
                    WriteMeta(storage, gen, locations, counts, walAddress, logCode, dropTombstones: true, _refineGeneration, RefineBytes);
                }
                catch
                {
                    next.Dispose();
                    storage.Delete(PostingFile(gen));
                    throw;
                }
                for (int p = 0; p < _postings.Count; p++)
                {
                    var info = _postings[p];
                    info.Location = locations[p];
                    info.Entries = counts[p];
                    _postings[p] = info;
                }
                var old = _store;
                _store = next;
                old.Dispose();
                storage.Delete(PostingFile(_generation));
                _generation = gen;
                _garbageBytes = 0;
                foreach (var id in _idMap.Where(kv => kv.Value.Posting < 0).Select(kv => kv.Key).ToList()) _idMap.Remove(id);
                RebuildStaleIds(force: true); // tombstones are gone with the dead copies
            }
            else
            {
                _store.Flush();
                WriteMeta(storage, _generation, _postings.Select(x => x.Location).ToArray(), _postings.Select(x => x.Entries).ToArray(), walAddress, logCode, dropTombstones: false, _refineGeneration, RefineBytes);
            }
            _wal?.Truncate(walAddress);
            RefreshPostingMap(force: true);
        }
        finally { _lock.ExitWrite(); }
    }

    private void WriteMeta(IIndexStorage target, int generation, PostingLocation[] locations, int[] entryCounts, long walAddress, long logCode, bool dropTombstones,
        int refineGeneration, long refineLength)
    {
        var header = new IndexFileHeader(FileKind, Description, Metric, Dimension, Count, IndexFile.FormatVersion);
        using var w = target.CreateIndexFile(MetaFileName, header);
        var o = Options;
        w.WriteArray<int>("OPTI", [o.PostingSize, o.PostingCount, o.MaxPostingSize, o.MinPostingSize, o.Replicas, o.AssignCandidates, o.Probes, o.Seed]);
        w.WriteArray<float>("OPTF", [o.ClosureFactor, o.RngFactor, o.PruneFactor]);
        w.WriteArray<long>("STAT", [generation, walAddress, IsTrained ? 1 : 0, o.CacheBytes, logCode]);
        int np = _postings.Count;
        var offsets = new long[np]; var pages = new int[np]; var live = new int[np]; var exists = new byte[np]; var entries = new int[np];
        for (int p = 0; p < np; p++)
        {
            offsets[p] = locations[p].Offset; pages[p] = locations[p].Pages; entries[p] = entryCounts[p];
            live[p] = _postings[p].Live; exists[p] = _postings[p].Exists ? (byte)1 : (byte)0;
        }
        w.WriteArray<long>("POFF", offsets);
        w.WriteArray<int>("PPAG", pages);
        w.WriteArray<int>("PLIV", live);
        w.WriteArray<byte>("PEXI", exists);
        w.WriteArray<int>("PENT", entries);
        var headVectors = new float[np * Dimension];
        for (int p = 0; p < np; p++) if (_postings[p].Exists) HeadVector(p, headVectors.AsSpan(p * Dimension, Dimension));
        w.WriteArray<float>("HEAD", headVectors);
        var ids = _idMap.Where(kv => !dropTombstones || kv.Value.Posting >= 0).ToArray();
        w.WriteArray<long>("IDSK", ids.Select(e => e.Key).ToArray());
        w.WriteArray<int>("IDSP", ids.Select(e => e.Value.Posting).ToArray());
        w.WriteArray<byte>("IDSV", ids.Select(e => e.Value.Version).ToArray());
        w.WriteArray<long>("PCRC", BlockChecksums(locations));
        WriteCodecSections(w, refineGeneration, refineLength);
        w.Commit();
    }

    private static SpannIndex ReadMeta(IIndexStorage storage, out string? logKind)
    {
        using var r = storage.OpenIndexFile(MetaFileName, FileKind);
        string meta = r.Path;
        var h = r.Header;
        var oi = r.ReadArray<int>("OPTI", 8);
        var of = r.ReadArray<float>("OPTF", 3);
        var st = r.ReadArray<long>("STAT");
        if (st.Length is not (4 or 5)) throw new CorruptIndexException(meta, 0, $"section 'STAT' holds {st.Length} values, expected 4 or 5");
        // Metadata written before the log kind was recorded: the file log, or none in a saved copy (address 0, no log).
        logKind = st.Length == 5 ? LogKindOf(st[4], meta)
            : st[1] == 0 && !storage.LogExists(WalDirectoryName) ? null : FileWriteAheadLogProvider.KindName;
        int generation = checked((int)st[0]);
        var offsets = r.ReadArray<long>("POFF");
        int np = offsets.Length;
        var pages = r.ReadArray<int>("PPAG", np);
        var live = r.ReadArray<int>("PLIV", np);
        var exists = r.ReadArray<byte>("PEXI", np);
        var entryCounts = r.ReadArray<int>("PENT", np);
        var heads = r.ReadArray<float>("HEAD", (long)np * h.Dimension);
        var keys = r.ReadArray<long>("IDSK");
        var idp = r.ReadArray<int>("IDSP", keys.Length);
        var idv = r.ReadArray<byte>("IDSV", keys.Length);
        var blockCrcs = r.PeekTag() == "PCRC" ? r.ReadArray<long>("PCRC", np) : null; // absent before block checksums were recorded
        var coded = ReadCodecSections(r); // absent in indexes with raw postings and the default rerank
        r.VerifyEnd();
        SpannOptions options;
        try
        {
            options = new SpannOptions
            {
                PostingSize = oi[0], PostingCount = oi[1], MaxPostingSize = oi[2], MinPostingSize = oi[3], Replicas = oi[4],
                AssignCandidates = oi[5], Probes = oi[6], Seed = oi[7], ClosureFactor = of[0], RngFactor = of[1], PruneFactor = of[2],
                CacheBytes = st[3],
                Codec = coded?.Codec,
                // Builds before the rule that raw postings take no rerank could record one (never used): it is dropped.
                Rerank = coded?.Codec is null ? SpannOptions.DefaultRerank : checked((int)coded.Value.Info[0]),
            };
            options.Validate();
        }
        catch (Exception e) when (e is ArgumentException or OverflowException) { throw new CorruptIndexException(meta, 0, "stored options are invalid: " + e.Message, e); }
        if (generation < 0 || !storage.Exists(PostingFile(generation)))
            throw new CorruptIndexException(meta, 0, $"posting file '{storage.PathOf(PostingFile(generation))}' of generation {generation} is missing");
        var store = new PostingStore(storage.OpenDevice(PostingFile(generation)), new PostingCache(options.CacheBytes));
        SpannIndex index;
        VectorRecordStore? refine = null;
        try
        {
            if (options.IsCoded) refine = OpenRefine(meta, storage, h.Dimension, coded!.Value.Info);
            index = new SpannIndex(h.Dimension, h.Metric, options, store, storage, refine);
        }
        catch (ArgumentException e)
        {
            refine?.Dispose();
            store.Dispose();
            throw new CorruptIndexException(meta, 0, "stored options are invalid: " + e.Message, e);
        }
        catch
        {
            refine?.Dispose();
            store.Dispose();
            throw;
        }
        try
        {
            if (options.IsCoded) index.InstallCodec(meta, coded!.Value.Info, coded.Value.Parameters);
            index._generation = generation;
            index._replayFrom = st[1];
            index._trained = st[2] != 0;
            CheckPostingTable(r, store, offsets, pages, live, exists, entryCounts, blockCrcs, heads, h.Dimension, index._codeLayout);
            var headIds = new List<long>();
            var headVecs = new List<float>();
            for (int p = 0; p < np; p++)
            {
                bool ex = exists[p] == 1;
                var location = new PostingLocation(offsets[p], pages[p]) { Checksum = ChecksumAt(blockCrcs, p) };
                index._postings.Add(new PostingInfo { Location = location, Live = live[p], Exists = ex, Entries = entryCounts[p] });
                if (ex) { headIds.Add(p); headVecs.AddRange(heads.AsSpan(p * h.Dimension, h.Dimension).ToArray()); }
                else index._freePostings.Push(p);
            }
            // Blocks past the last referenced one were written after this checkpoint (the log replay rewrites what
            // was acknowledged); without the cut, every open that is not followed by a checkpoint would grow the file.
            long usedEnd = 0;
            foreach (var info in index._postings) usedEnd = Math.Max(usedEnd, info.Location.Offset + (long)info.Location.Pages * store.PageSize);
            if (store.Length > usedEnd && usedEnd % store.PageSize == 0) store.TruncateTo(usedEnd);
            float[] headRows = headVecs.ToArray();
            index._heads.Add(headRows, headIds.ToArray());
            // Unit heads (inner product over unit vectors, see Train) are recognised by their norms: means of
            // non-unit data are never all unit.
            index._unitHeads = index.Metric == Metric.InnerProduct && Distances.SampledUnitRows(headRows, headIds.Count, index.Dimension);
            long liveCount = 0;
            index._idMap.EnsureCapacity(keys.Length); // sized once: growth by doubling would leave up to 2× the slots
            for (int i = 0; i < keys.Length; i++)
            {
                if (keys[i] < 0 || idp[i] < -1 || idp[i] >= np || (idp[i] >= 0 && exists[idp[i]] == 0) || !index._idMap.TryAdd(keys[i], new IdEntry { Posting = idp[i], Version = idv[i] }))
                    throw new CorruptIndexException(meta, 0, $"id table entry {i} (id {keys[i]}) is impossible");
                if (idp[i] >= 0) liveCount++;
            }
            index._live = liveCount;
            index.RebuildStaleIds(force: true);
            return index;
        }
        catch
        {
            index.BackgroundMaintenance = false;
            index.Dispose();
            throw;
        }
    }
}
