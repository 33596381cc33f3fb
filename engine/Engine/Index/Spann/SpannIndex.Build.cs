using System.Numerics;
using System.Buffers;
using Engine.Distance;
using Engine.Index.Lists;
using Engine.Storage.Postings;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    private const int AssignChunk = 4096;

    /// <summary>
    /// Chooses the heads by hierarchical balanced clustering of <paramref name="vectors"/> (n × d). Call once,
    /// on an empty index; a directory-backed index checkpoints the heads before returning.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values or fewer vectors than one posting.</exception>
    /// <exception cref="InvalidOperationException">The index is already trained.</exception>
    public void Train(ReadOnlySpan<float> vectors) => Train(vectors, null);

    /// <summary>
    /// <see cref="Train(ReadOnlySpan{float})"/> reporting <c>balanced clustering</c> (rows placed under a head, out of
    /// n, every 1 %) and <c>train</c> (done).
    /// </summary>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values or fewer vectors than one posting.</exception>
    /// <exception cref="InvalidOperationException">The index is already trained.</exception>
    public void Train(ReadOnlySpan<float> vectors, IProgress<BuildProgress>? progress)
    {
        ThrowIfDisposed();
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (n < 2) throw new ArgumentException($"SPANN needs at least 2 training vectors, got {n}.", nameof(vectors));
        float[] data = vectors.ToArray();
        if (IsCosine) for (int i = 0; i < n; i++) Distances.NormalizeInPlace(data.AsSpan(i * Dimension, Dimension));
        int leaf = Options.PostingCount > 0 ? Math.Max(1, (n + Options.PostingCount - 1) / Options.PostingCount) : Options.PostingSize;
        float[] heads = BalancedClustering.BuildHeads(data, Dimension, leaf, Options.Seed, Options.ClusteringBackend, progress);
        // Inner product over unit vectors (normalised embeddings): heads ranked by ⟨q, h⟩ favour the tight clusters,
        // whose means lie nearer the sphere, over the near ones; unit heads rank by angle, the true nearness.
        bool unitHeads = Metric == Metric.InnerProduct && Distances.SampledUnitRows(data, n, Dimension);
        if (unitHeads) for (int i = 0; i < heads.Length / Dimension; i++) Distances.NormalizeInPlace(heads.AsSpan(i * Dimension, Dimension));
        lock (_writerGate)
        {
            if (IsTrained) throw new InvalidOperationException("The SPANN index is already trained; train a new index to change its heads.");
            if (_codec is not null) TrainCodec(data, n);
            _lock.EnterWrite();
            try
            {
                int k = heads.Length / Dimension;
                var ids = new long[k];
                for (int i = 0; i < k; i++)
                {
                    ids[i] = i;
                    _postings.Add(new PostingInfo { Exists = true });
                }
                _heads.Add(heads, ids);
                _unitHeads = unitHeads;
                Volatile.Write(ref _trained, true);
            }
            finally { _lock.ExitWrite(); }
            if (_storage is not null) CheckpointLocked();
        }
        progress?.Report(new BuildProgress("train", 1, 1));
    }

    private const int CodecTrainingRows = 65_536;

    /// <summary>Trains the posting codec on (a seeded sample of at most 65 536 of) the prepared training rows.</summary>
    private void TrainCodec(float[] data, int n)
    {
        int d = Dimension;
        float[] sample = data;
        if (n > CodecTrainingRows)
        {
            var rows = Enumerable.Range(0, n).ToArray();
            new Random(Options.Seed).Shuffle(rows);
            sample = new float[CodecTrainingRows * d];
            for (int i = 0; i < CodecTrainingRows; i++) data.AsSpan(rows[i] * d, d).CopyTo(sample.AsSpan(i * d, d));
        }
        try { _codec!.Train(sample, Options.Seed, 0); }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"SPANN codec {Options.CodecSpec()} cannot be trained on {n} vectors: {Guard.MessageWithoutParameter(e)}", "vectors", e);
        }
        Volatile.Write(ref _codecBytes, SpannCodecSpec.MemoryBytes(_codec));
    }

    /// <summary>Replica choice for one vector: closure rule then RNG rule over the candidate heads.</summary>
    /// <returns>Number of postings chosen (at least 1 when any head exists); the first is the nearest.</returns>
    private int SelectReplicas(ReadOnlySpan<float> x, ReadOnlySpan<long> candidates, ReadOnlySpan<float> keys,
        Span<int> chosen, Span<float> chosenDist, Span<float> chosenHeads, Span<float> head)
    {
        int d = Dimension, count = 0;
        bool ip = Metric == Metric.InnerProduct;
        float limit = float.PositiveInfinity;
        for (int i = 0; i < candidates.Length && count < chosen.Length; i++)
        {
            if (candidates[i] < 0) break;
            var hv = HeadVector((int)candidates[i], head);
            float dx = ip ? Distances.SquaredL2(x, hv) : keys[i];
            if (count == 0) limit = (1 + Options.ClosureFactor) * dx;
            else
            {
                if (dx > limit) { if (ip) continue; break; }
                bool covered = false;
                for (int j = 0; j < count && !covered; j++)
                    covered = Options.RngFactor * Distances.SquaredL2(hv, chosenHeads.Slice(j * d, d)) < dx;
                if (covered) continue;
            }
            chosen[count] = (int)candidates[i];
            chosenDist[count] = dx;
            hv.CopyTo(chosenHeads.Slice(count * d, d));
            count++;
        }
        return count;
    }

    /// <summary>Finds the replica postings of n vectors: per vector up to R (posting, L2 distance) pairs, −1 padded.</summary>
    private (int[] Postings, float[] Dists) AssignAll(ReadOnlySpan<float> vectors, int n)
    {
        int d = Dimension, r = Options.Replicas;
        int c = (int)Math.Min(Options.AssignCandidates, _heads.Count);
        var postings = new int[n * r];
        var dists = new float[n * r];
        Array.Fill(postings, -1);
        var keys = ArrayPool<float>.Shared.Rent(AssignChunk * c);
        var labels = ArrayPool<long>.Shared.Rent(AssignChunk * c);
        try
        {
            for (int s = 0; s < n; s += AssignChunk)
            {
                int b = Math.Min(AssignChunk, n - s);
                _heads.Search(vectors.Slice(s * d, b * d), c, keys.AsSpan(0, b * c), labels.AsSpan(0, b * c));
                float[] chunkKeys = keys; long[] chunkLabels = labels;
                float[] src = vectors.Slice(s * d, b * d).ToArray();
                int start = s;
                ParallelWork.For(0, b, Environment.ProcessorCount,
                    () => (new float[r * d], new float[d]),
                    (i, _, scratch) =>
                    {
                        SelectReplicas(src.AsSpan(i * d, d), chunkLabels.AsSpan(i * c, c), chunkKeys.AsSpan(i * c, c),
                            postings.AsSpan((start + i) * r, r), dists.AsSpan((start + i) * r, r), scratch.Item1, scratch.Item2);
                        return scratch;
                    }, _ => { });
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(keys);
            ArrayPool<long>.Shared.Return(labels);
        }
        return (postings, dists);
    }

    /// <summary>
    /// Writes n prepared vectors (already normalised for cosine) with their ids into their replica postings.
    /// Caller holds the writer gate and the write lock.
    /// </summary>
    private void ApplyInsert(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        int n = ids.Length, d = Dimension, r = Options.Replicas;
        if (n == 0) return;
        var (assigned, dists) = AssignAll(vectors, n);
        var versions = new byte[n];
        for (int i = 0; i < n; i++)
        {
            if (_idMap.TryGetValue(ids[i], out var e)) { versions[i] = unchecked((byte)(e.Version + 1)); MarkStale(ids[i]); }
            else versions[i] = 0;
        }
        // Coded postings: one refine record per vector (one device write for the batch) and one code, shared by its replicas.
        long[] offsets = [];
        byte[] codes = [];
        int cs = CodeSize;
        if (_codec is not null)
        {
            offsets = new long[n];
            codes = new byte[n * cs];
            _refine!.Append(ids, versions, vectors[..(n * d)], offsets);
            _codec.Encode(vectors[..(n * d)], codes);
        }
        var groups = new SortedDictionary<int, List<(int Row, float Dist, bool Primary)>>();
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < r; j++)
            {
                int p = assigned[i * r + j];
                if (p < 0) break;
                if (!groups.TryGetValue(p, out var list)) groups[p] = list = new();
                list.Add((i, dists[i * r + j], j == 0));
            }
        }
        foreach (var (p, list) in groups)
        {
            var buffer = LoadLive(p);
            // Keep every primary copy; fill the remaining room with the nearest replicas (SPTAG's posting cap,
            // protecting each vector's nearest assignment).
            list.Sort((a, b) => a.Primary != b.Primary ? (a.Primary ? -1 : 1) : a.Dist.CompareTo(b.Dist));
            int live = 0;
            foreach (var (row, _, primary) in list)
            {
                if (!primary && buffer.Count >= Options.MaxPostingSize) break;
                if (cs == 0) buffer.Add(ids[row], versions[row], vectors.Slice(row * d, d));
                else buffer.Add(ids[row], versions[row], offsets[row], codes.AsSpan(row * cs, cs), default);
                if (primary) live++;
            }
            StorePosting(p, buffer, _postings[p].Live + live);
            if (buffer.Count > Options.MaxPostingSize) EnqueueMaintenance(p);
        }
        _idMap.EnsureCapacity(_idMap.Count + n); // one resize per batch, to about the size needed (not up to 2×)
        for (int i = 0; i < n; i++)
        {
            _idMap[ids[i]] = new IdEntry { Posting = assigned[i * r], Version = versions[i] };
        }
        RebuildStaleIds();
        Interlocked.Add(ref _live, n);
    }

    /// <summary>Reads posting <paramref name="p"/> and keeps only its current copies; <paramref name="withVectors"/>
    /// also reads a coded posting's full vectors from the refine file (raw postings always hold them).</summary>
    private PostingBuffer LoadLive(int p, bool withVectors = false)
    {
        PostingBuffer buffer;
        try
        {
            var view = AcquirePosting(_writeList, p);
            buffer = NewBuffer(view.Count + 8);
            for (int i = 0; i < view.Count; i++)
                if (IsLive(view.Ids[i], view.Versions[i]))
                    buffer.AddFrom(view, i);
        }
        finally { _writeList.Release(); }
        if (withVectors) buffer.LoadVectors(_refine!);
        return buffer;
    }

    /// <summary>
    /// Acquires posting <paramref name="p"/>'s block into <paramref name="list"/> as searches do (in place from the
    /// store's mapping when it can be, else a verified copy, the cache's or a fresh one; checked by the one payload
    /// parser, <see cref="PostingCodec.Sections"/>) and views its entries, valid until the list is released.
    /// </summary>
    /// <exception cref="CorruptIndexException">A damaged block or payload.</exception>
    private PostingView AcquirePosting(DeviceBlockInvertedList list, int p)
    {
        list.Acquire(_store, _postings[p].Location, p, Locator);
        return PostingView.Of(list, _codeLayout);
    }

    private BlockSectionLocator? _locatePosting; // LocatePosting as a delegate, made once

    /// <summary><see cref="LocatePosting"/> as the <see cref="BlockSectionLocator"/> every acquire of a posting passes.</summary>
    private BlockSectionLocator Locator => _locatePosting ??= LocatePosting;

    /// <summary>Checks a posting block's payload and says where its ids, versions, refine offsets and codes lie.</summary>
    private BlockSections LocatePosting(ReadOnlySpan<byte> payload, long blockOffset) =>
        PostingCodec.Sections(payload, Dimension, _codeLayout, _store.Device.Name, blockOffset);

    /// <summary>An empty posting buffer of this index's layout (raw, or coded without vectors).</summary>
    private PostingBuffer NewBuffer(int capacity = 16) => new(Dimension, _codeLayout, withVectors: false, capacity);

    /// <summary>Writes a new block for posting p and retires the old one.</summary>
    private void StorePosting(int p, PostingBuffer buffer, int live)
    {
        var old = _postings[p];
        var location = WriteBlock(_store, p, buffer);
        _garbageBytes += (long)old.Location.Pages * _store.PageSize;
        _postings[p] = new PostingInfo { Location = location, Entries = buffer.Count, Live = Math.Min(live, buffer.Count), Exists = true };
    }

    /// <summary>
    /// Writes <paramref name="buffer"/> as posting <paramref name="p"/>'s block in <paramref name="store"/> (this index's,
    /// or a compacted copy's): the payload from the one block writer, compressed by <see cref="BlockCompressionOf"/>;
    /// no block for an empty posting.
    /// </summary>
    private PostingLocation WriteBlock(PostingStore store, int p, PostingBuffer buffer) =>
        buffer.Count == 0 ? default : store.Write(p, buffer.Encode(), BlockCompressionOf);

    // An entry is live when its id is not deleted and its version is the id's current one. Entries of version 0
    // whose id was never deleted or re-inserted since the postings last held only live copies (no stale bit) are
    // live without the id-map lookup, a cache miss per candidate that cost more than the code estimate itself.
    private bool IsLive(long id, byte version) =>
        (version == 0 && (!_anyStale || !MaybeStale(id))) || (_idMap.TryGetValue(id, out var e) && e.Posting >= 0 && e.Version == version);

    // A summary of the id map for IsLive: one hashed bit per id that is deleted or has a non-zero version (re-inserted),
    // at 8 bits per id (so a clear bit is the common answer and a false positive only costs the id-map lookup). An
    // entry of version 0 whose id's bit is clear is live. Rebuilt from the id map when ids outgrow it and after a
    // checkpoint's compaction; written under the write lock, read under the read lock.
    private ulong[] _staleIds = new ulong[MinStaleBits / 64];
    private int _staleShift = 64 - BitOperations.Log2(MinStaleBits);
    private const int MinStaleBits = 4096;
    private bool _anyStale; // false: no id was ever deleted or re-inserted, so every version-0 entry is live (no summary look-up)

    private ulong StaleSlot(long id) => unchecked((ulong)id * 0x9E3779B97F4A7C15UL) >> _staleShift;

    private void MarkStale(long id)
    {
        ulong h = StaleSlot(id);
        _staleIds[h >> 6] |= 1UL << (int)(h & 63);
        _anyStale = true;
    }

    // Called after the id map grows or shrinks (inserts, open, compaction): sizes the summary to ≥ 8 bits per id.
    private void RebuildStaleIds(bool force = false)
    {
        long bits = Math.Max(MinStaleBits, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, _idMap.Count) * 8));
        if (!force && bits <= _staleIds.Length * 64L) return;
        _staleIds = new ulong[bits / 64];
        _staleShift = 64 - BitOperations.Log2((ulong)bits);
        _anyStale = false;
        foreach (var (id, e) in _idMap)
            if (e.Posting < 0 || e.Version != 0) MarkStale(id);
    }

    private bool MaybeStale(long id)
    {
        ulong h = StaleSlot(id);
        return (_staleIds[h >> 6] & (1UL << (int)(h & 63))) != 0;
    }
}
