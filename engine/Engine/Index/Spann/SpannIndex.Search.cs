using System.Buffers;
using Engine.Distance;
using Engine.Quantization;
using Engine.Storage.Postings;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    /// <summary>Per-thread search scratch (SPTAG's ExtraWorkSpace): reused across queries, no per-query allocation.</summary>
    private sealed class Scratch
    {
        public float[] Query = [];
        public float[] Chunk = [];
        public float[] HeadKeys = [];
        public long[] HeadIds = [];
        public float[] Dist = new float[256];
        public uint[] Masks = new uint[16];
        public float[] Keys = [];
        public long[] Labels = [];
        public readonly HashSet<long> Seen = new();
        public readonly List<PostingLocation> Locations = new();
        public readonly List<int> Keys32 = new();
        // Coded postings: the estimator (per index codec), candidate heap by estimate and candidate slots.
        public IDistanceEstimator? Estimator;          // codes in rows
        public RaBitQFastScanEstimator? BlockEstimator; // codes in fast-scan blocks
        public IVectorCodec? EstimatorOwner;
        public float[] CandKeys = [];
        public long[] CandSlots = [];
        public long[] SlotIds = new long[64];
        public long[] SlotOffsets = new long[64];
        public byte[] SlotVersions = new byte[64];
        public int Slots;
        // Fast-scan coded postings: the k smallest upper bounds among the query's live candidates (a max-heap kept
        // across its postings: UpperFilled entries of UpperCount = k).
        public float[] UpperKeys = [];
        public long[] UpperIds = [];
        public int UpperCount, UpperFilled;
        public float[] Vector = [];
    }

    [ThreadStatic] private static Scratch? t_scratch;

    /// <inheritdoc />
    /// <remarks>Accepts <see cref="SpannSearchParameters"/> for probes and pruning. Runs concurrently with
    /// other searches and interleaves with background maintenance.</remarks>
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite values, k ≤ 0, short buffers, parameters of another
    /// index family, or <see cref="SpannSearchParameters.Rerank"/> on an index without a posting codec.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A knob of <paramref name="parameters"/> is out of range
    /// (<see cref="SpannSearchParameters.Validate"/>: probes below 1, a negative, NaN or infinite prune factor,
    /// negative threads). Probes above the head count are clamped to it.</exception>
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
        SearchParameters? parameters = null)
    {
        ThrowIfDisposed();
        parameters?.Validate();
        SearchParameters.CheckFamily(parameters, "SPANN", this);
        int nq = Guard.Rows(queries, Dimension, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        Guard.Finite(queries, Dimension, nameof(queries));
        if (nq == 0) return;
        var sp = parameters as SpannSearchParameters;
        if (sp?.Rerank is { } asked && _codec is null)
            throw new ArgumentException(
                $"SpannSearchParameters.Rerank is {asked}, but this '{Description}' index has no posting codec (codec=none: its postings hold the " +
                "full vectors and every distance is already exact), so there is nothing to re-rank; leave Rerank null, or build with SPANN(codec=...).",
                nameof(parameters));
        int probes = sp?.Probes ?? Options.Probes;
        float eps = sp?.PruneFactor ?? Options.PruneFactor;
        int rerank = sp?.Rerank ?? Options.Rerank;
        var filter = parameters?.Filter;
        var stats = parameters?.Stats;
        // Chunks of up to MaxHeadChunk queries, smaller when the batch would not otherwise reach every thread.
        int wanted = Math.Max(1, parameters?.ResolveThreads() ?? Environment.ProcessorCount);
        int chunk = Math.Clamp((nq + wanted - 1) / wanted, 1, MaxHeadChunk);
        int chunks = (nq + chunk - 1) / chunk;
        int threads = Math.Min(wanted, chunks);
        var call = new Call(k, probes, eps, rerank, filter, stats, chunk);
        if (threads <= 1)
        {
            for (int c = 0; c < chunks; c++) SearchChunk(queries, nq, c, distances, labels, call);
            return;
        }
        float[] q = ArrayPool<float>.Shared.Rent(nq * Dimension);
        float[] dOut = ArrayPool<float>.Shared.Rent(nq * k);
        long[] lOut = ArrayPool<long>.Shared.Rent(nq * k);
        try
        {
            queries.CopyTo(q);
            ParallelWork.For(0, chunks, threads, c => SearchChunk(q.AsSpan(0, nq * Dimension), nq, c, dOut, lOut, call));
            dOut.AsSpan(0, nq * k).CopyTo(distances);
            lOut.AsSpan(0, nq * k).CopyTo(labels);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(q);
            ArrayPool<float>.Shared.Return(dOut);
            ArrayPool<long>.Shared.Return(lOut);
        }
    }

    /// <summary>Most queries per head search: a chunk's heads come from one GEMM over the head vectors, which are read
    /// once for the chunk instead of once per query (on MNIST's 1 459 × 784 heads that read dominated the head search;
    /// coded MNIST at probes 12, two threads: 8 / 16 / 32 / 64 queries ≈ 7.0k / 8.3k / 9.8k / 9.0k QPS).</summary>
    private const int MaxHeadChunk = 32;

    /// <summary>The knobs of one search call (Chunk: queries per head search).</summary>
    private sealed record Call(int K, int Probes, float Eps, int Rerank, IIdFilter? Filter, SearchStats? Stats, int Chunk);

    // Searches queries [c × call.Chunk, …) of the call: their heads in one batch, then each query's postings, all under
    // one read lock (so the probed postings are the ones the heads name).
    private void SearchChunk(ReadOnlySpan<float> queries, int nq, int c, Span<float> distances, Span<long> labels, Call call)
    {
        var s = t_scratch ??= new Scratch();
        int d = Dimension, k = call.K, q0 = c * call.Chunk, qb = Math.Min(call.Chunk, nq - q0);
        if (s.Chunk.Length < qb * d) s.Chunk = new float[MaxHeadChunk * d];
        var chunk = s.Chunk.AsSpan(0, qb * d);
        queries.Slice(q0 * d, qb * d).CopyTo(chunk);
        if (IsCosine) for (int i = 0; i < qb; i++) Distances.NormalizeInPlace(chunk.Slice(i * d, d));
        _lock.EnterRead();
        try
        {
            // Probes beyond the head count are clamped to it (heads change with splits and merges); scratch is
            // sized by the heads actually probed, never by the requested count.
            int heads = (int)Math.Min(call.Probes, _heads.Count);
            if (heads > 0)
            {
                if (s.HeadKeys.Length < qb * heads) { s.HeadKeys = new float[MaxHeadChunk * heads]; s.HeadIds = new long[MaxHeadChunk * heads]; }
                _heads.Search(chunk, heads, s.HeadKeys.AsSpan(0, qb * heads), s.HeadIds.AsSpan(0, qb * heads), SingleThread);
            }
            for (int i = 0; i < qb; i++)
                SearchOne(s, chunk.Slice(i * d, d), heads, i, distances.Slice((q0 + i) * k, k), labels.Slice((q0 + i) * k, k), call);
        }
        finally { _lock.ExitRead(); }
    }

    // One query whose heads are row i of the chunk's head search (caller holds the read lock).
    private void SearchOne(Scratch s, ReadOnlySpan<float> query, int heads, int row, Span<float> distances, Span<long> labels, Call call)
    {
        int d = Dimension, k = call.K;
        if (s.Query.Length != d) s.Query = new float[d];
        query.CopyTo(s.Query);
        if (s.Keys.Length < k) { s.Keys = new float[k]; s.Labels = new long[k]; }
        var heap = new TopKHeap(s.Keys.AsSpan(0, k), s.Labels.AsSpan(0, k));
        s.Seen.Clear();
        s.Locations.Clear();
        long bytesRead = 0, postingsRead = 0, hits = 0, computed = 0, scanned = 0;
        bool ip = Metric == Metric.InnerProduct;
        var filter = call.Filter;
        if (heads > 0)
        {
            var headKeys = s.HeadKeys.AsSpan(row * heads, heads);
            var headIds = s.HeadIds.AsSpan(row * heads, heads);
            // Query-aware pruning on distances; similarity heads (inner product) are ranked only.
            float limit = ip ? float.PositiveInfinity : (1 + call.Eps) * headKeys[0];
            s.Keys32.Clear();
            for (int h = 0; h < heads; h++)
            {
                long p = headIds[h];
                if (p < 0 || (h > 0 && headKeys[h] > limit)) break;
                s.Locations.Add(_postings[(int)p].Location);
                s.Keys32.Add((int)p);
            }
            // Each posting is scanned as it is read: in place from the store's mapping when it can (no system call,
            // copy or allocation), else from a copy (blocks written since the mapping, compressed blocks).
            var coded = _codec is not null ? BeginCoded(s, k, call.Rerank) : default;
            for (int i = 0; i < s.Locations.Count; i++)
            {
                var location = s.Locations[i];
                PostingView view;
                if (_store.TryReadInPlace(location, s.Keys32[i], out var mapped))
                {
                    view = DecodePosting(mapped, location);
                    postingsRead++;
                    bytesRead += (long)location.Pages * _store.PageSize;
                }
                else
                {
                    view = DecodePosting(_store.Read(location, s.Keys32[i], out bool cached), location);
                    if (cached) hits++;
                    else { postingsRead++; bytesRead += (long)location.Pages * _store.PageSize; }
                }
                if (_codec is not null) scanned += EstimatePosting(s, view, filter, ref coded);
                else computed += ScanRawPosting(s, view, filter, ref heap);
            }
            if (_codec is not null) computed = Rerank(s, ref coded, ref heap);
        }
        heap.SortAndPad(float.PositiveInfinity);
        for (int i = 0; i < k; i++)
        {
            labels[i] = s.Labels[i];
            float key = s.Keys[i];
            distances[i] = s.Labels[i] < 0 ? Metric.MissingDistance()
                : Metric switch { Metric.InnerProduct => -key, Metric.Cosine => 1 - key / 2, _ => key };
        }
        call.Stats?.Add(queries: 1, distances: computed, listsProbed: s.Locations.Count, codesScanned: scanned, refined: _codec is null ? 0 : computed, bytesRead: bytesRead,
            postingsRead: postingsRead, cacheHits: hits);
    }

    /// <inheritdoc />
    public bool TryReconstruct(long id, Span<float> destination)
    {
        ThrowIfDisposed();
        if (destination.Length < Dimension)
            throw new ArgumentException($"destination holds {destination.Length} floats but the dimension is {Dimension}.", nameof(destination));
        _lock.EnterRead();
        try
        {
            if (!_idMap.TryGetValue(id, out var e) || e.Posting < 0) return false;
            var info = _postings[e.Posting];
            var view = DecodePosting(_store.Read(info.Location, e.Posting, out _), info.Location);
            for (int i = 0; i < view.Count; i++)
            {
                if (view.Ids[i] == id && view.Versions[i] == e.Version)
                {
                    // Coded postings: the exact vector from the refine file (the record's id and version are checked).
                    if (_codec is not null) _refine!.Read(view.Offsets[i], id, e.Version, destination);
                    else view.Vectors.Slice(i * Dimension, Dimension).CopyTo(destination);
                    return true;
                }
            }
            throw new CorruptIndexException(_store.Device.Name, info.Location.Offset, $"id {id} is recorded in posting {e.Posting} but the posting does not hold it");
        }
        finally { _lock.ExitRead(); }
    }

    // Raw postings: exact distances of every entry; the live, allowed, unseen ones that beat the k-th enter the heap.
    private long ScanRawPosting(Scratch s, PostingView view, IIdFilter? filter, ref TopKHeap heap)
    {
        bool ip = Metric == Metric.InnerProduct;
        int m = view.Count;
        if (s.Dist.Length < m) s.Dist = new float[Math.Max(m, s.Dist.Length * 2)];
        var dist = s.Dist.AsSpan(0, m);
        if (ip) Distances.DotOneToMany(s.Query, view.Vectors, dist);
        else Distances.SquaredL2OneToMany(s.Query, view.Vectors, dist);
        for (int j = 0; j < m; j++)
        {
            float key = ip ? -dist[j] : dist[j];
            if (key > heap.Threshold) continue;
            long id = view.Ids[j];
            if (!IsLive(id, view.Versions[j]) || (filter is not null && !filter.IsAllowed(id)) || !s.Seen.Add(id)) continue;
            heap.Push(key, id);
        }
        return m;
    }

    /// <summary>
    /// Coded postings, per query: the estimator gets the query and a candidate heap of width k × <paramref name="rerank"/>
    /// (keyed by estimate, holding slots of <see cref="Scratch.SlotIds"/>) starts empty.
    /// </summary>
    private TopKHeap BeginCoded(Scratch s, int k, int rerank)
    {
        int width = (int)Math.Min((long)k * rerank, 1 << 24);
        if (s.CandKeys.Length < width) { s.CandKeys = new float[width]; s.CandSlots = new long[width]; }
        if (s.Vector.Length != Dimension) s.Vector = new float[Dimension];
        if (!ReferenceEquals(s.EstimatorOwner, _codec))
        {
            var metric = Metric == Metric.InnerProduct ? Metric.InnerProduct : Metric.L2;
            s.BlockEstimator = _codec is RaBitQFastScanCodec fs ? new RaBitQFastScanEstimator(fs, metric) : null;
            s.Estimator = s.BlockEstimator is null ? _codec!.CreateEstimator(metric) : null;
            s.EstimatorOwner = _codec;
        }
        if (s.BlockEstimator is not null) s.BlockEstimator.SetQuery(s.Query);
        else s.Estimator!.SetQuery(s.Query);
        s.Slots = 0;
        if (s.UpperKeys.Length < k) { s.UpperKeys = new float[k]; s.UpperIds = new long[k]; }
        s.UpperCount = k;
        s.UpperFilled = 0;
        return new TopKHeap(s.CandKeys.AsSpan(0, width), s.CandSlots.AsSpan(0, width));
    }

    /// <summary>
    /// Coded postings: estimates every entry of one posting from its code and offers the live, allowed, unseen ones to
    /// <paramref name="candidates"/>. RaBitQ's keys are the optimistic estimate − bound (see <see cref="Rerank"/>).
    /// Returns the codes estimated.
    /// </summary>
    private long EstimatePosting(Scratch s, PostingView view, IIdFilter? filter, ref TopKHeap candidates)
    {
        int n = view.Count;
        if (s.BlockEstimator is not null)
        {
            // Fast-scan blocks: every entry's lower-bound key at once, 32 per block, with the mask of those that can
            // enter the candidates as they stand before the posting (re-checked against the tightening threshold).
            int padded = (n + 31) & ~31, blocks = padded >> 5;
            if (s.Dist.Length < padded) s.Dist = new float[Math.Max(padded, s.Dist.Length * 2)];
            if (s.Masks.Length < blocks) s.Masks = new uint[Math.Max(blocks, s.Masks.Length * 2)];
            // An entry whose lower bound exceeds the k-th smallest upper bound among the live candidates so far cannot
            // be among the k nearest (at the bounds' confidence, the rule re-ranking stops by), so the threshold is
            // the smaller of that and the candidate heap's.
            var upper = new TopKHeap(s.UpperKeys.AsSpan(0, s.UpperCount), s.UpperIds.AsSpan(0, s.UpperCount), s.UpperFilled);
            static float Threshold(ref TopKHeap candidates, ref TopKHeap upper) => Math.Min(candidates.Threshold, upper.Threshold);
            s.BlockEstimator.LowerBoundKeys(view.Codes, n, Threshold(ref candidates, ref upper), s.Dist, s.Masks);
            for (int b = 0; b < blocks; b++)
            {
                for (uint mask = s.Masks[b]; mask != 0; mask &= mask - 1)
                {
                    int j = b * 32 + System.Numerics.BitOperations.TrailingZeroCount(mask);
                    float key = s.Dist[j];
                    if (key <= Threshold(ref candidates, ref upper) && Offer(s, view, j, key, filter, ref candidates))
                    {
                        float u = s.BlockEstimator.UpperKey(view.Codes, j, key);
                        if (u < upper.Threshold) upper.Push(u, 0);
                    }
                }
            }
            s.UpperFilled = upper.Count;
            return n;
        }
        var estimator = s.Estimator!;
        var bounded = estimator as IBoundedDistanceEstimator;
        for (int j = 0; j < n; j++)
        {
            var code = view.Code(j);
            float key = estimator.Distance(code);
            if (bounded is not null) key -= bounded.Bound(code, RaBitQCodec.DefaultEpsilon);
            if (key <= candidates.Threshold) Offer(s, view, j, key, filter, ref candidates);
        }
        return n;
    }

    // Offers entry j of a coded posting with its estimate key: live, allowed and unseen entries take a slot (true).
    private bool Offer(Scratch s, PostingView view, int j, float key, IIdFilter? filter, ref TopKHeap candidates)
    {
        long id = view.Ids[j];
        if (!IsLive(id, view.Versions[j]) || (filter is not null && !filter.IsAllowed(id)) || !s.Seen.Add(id)) return false;
        int slot = s.Slots++;
        if (slot == s.SlotIds.Length)
        {
            Array.Resize(ref s.SlotIds, slot * 2);
            Array.Resize(ref s.SlotOffsets, slot * 2);
            Array.Resize(ref s.SlotVersions, slot * 2);
        }
        s.SlotIds[slot] = id;
        s.SlotOffsets[slot] = view.Offsets[j];
        s.SlotVersions[slot] = view.Versions[j];
        candidates.Push(key, slot);
        return true;
    }

    /// <summary>
    /// Coded postings, after the query's last posting: re-ranks the candidates with exact distances from their refine
    /// records into <paramref name="heap"/>. RaBitQ's candidates are re-scored in ascending order of their lower bounds
    /// until one cannot beat the k-th exact distance (as IVF's RaBitQ refine does); other codecs re-score all of them.
    /// Returns the refine records read.
    /// </summary>
    private long Rerank(Scratch s, ref TopKHeap candidates, ref TopKHeap heap)
    {
        bool ip = Metric == Metric.InnerProduct;
        bool bounded = s.BlockEstimator is not null || s.Estimator is IBoundedDistanceEstimator;
        int n = bounded ? candidates.SortAndPad(float.PositiveInfinity) : candidates.Count;
        long refined = 0;
        for (int c = 0; c < n; c++)
        {
            if (bounded && s.CandKeys[c] > heap.Threshold) break; // lower bounds ascend: none after this can enter
            refined++;
            int slot = (int)s.CandSlots[c];
            long id = s.SlotIds[slot];
            _refine!.Read(s.SlotOffsets[slot], id, s.SlotVersions[slot], s.Vector);
            float exact = ip ? -Distances.Dot(s.Query, s.Vector) : Distances.SquaredL2(s.Query, s.Vector);
            heap.Push(exact, id);
        }
        return refined;
    }
}
