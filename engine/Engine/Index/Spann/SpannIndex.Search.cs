using System.Buffers;
using System.Runtime.InteropServices;
using Engine.Distance;
using Engine.Index.Ivf;
using Engine.Index.Lists;
using Engine.Quantization;
using Engine.Runtime;
using Engine.Storage.Postings;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    /// <summary>Search scratch of one worker (SPTAG's ExtraWorkSpace), pooled by the index: reused across queries, no per-query allocation.</summary>
    private sealed class Scratch
    {
        public float[] Query = [];
        public float[] Chunk = [];
        public float[] HeadKeys = [];
        public long[] HeadIds = [];
        public float[] Keys = [];
        public long[] Labels = [];
        public readonly HashSet<long> Seen = new();
        public readonly List<PostingLocation> Locations = new();
        public readonly List<int> Keys32 = new();
        // The probed posting, as an inverted list read in place or from a pinned copy, and the list scanner of the
        // index's codec (made on the scratch's first query: ScannerFor; the pool is the index's, so is the scanner).
        public readonly DeviceBlockInvertedList List = new();
        public IvfListScanner? Scanner;
        // Coded postings: candidate heap by estimate and candidate slots.
        public float[] CandKeys = [];
        public long[] CandSlots = [];
        public long[] SlotIds = new long[64];
        public long[] SlotOffsets = new long[64];
        public byte[] SlotVersions = new byte[64];
        public int Slots;
        // Fast-scan coded postings: the k smallest upper bounds among the query's live candidates (a max-heap kept
        // across its postings).
        public float[] UpperKeys = [];
        public long[] UpperIds = [];
        public float[] Vector = [];
    }

    // Rented per chunk of queries, never per thread: a filter that searches this index again on the same thread gets
    // a scratch of its own instead of the one its caller is still using.
    private readonly ScratchPool<Scratch> _scratch = new(() => new Scratch());

    /// <inheritdoc />
    /// <remarks>Accepts <see cref="SpannSearchParameters"/> for probes and pruning. Runs concurrently with
    /// other searches and interleaves with background maintenance.</remarks>
    /// <exception cref="ArgumentException">Wrong query dimension, non-finite values, k ≤ 0, short buffers, parameters of another
    /// index family, or <see cref="SpannSearchParameters.Rerank"/> on an index without a posting codec.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A knob of <paramref name="parameters"/> is out of range
    /// (<see cref="SpannSearchParameters.Validate"/>: probes below 1, a negative, NaN or infinite prune factor,
    /// negative threads). Probes above the head count are clamped to it.</exception>
    public unsafe void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels,
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
        var call = new Call(k, probes, eps, rerank, filter, stats, chunk);
        // Results written over the queries (the same buffer passed twice) must not change rows still to be read: copy them.
        bool aliased = queries.Overlaps(distances) || MemoryMarshal.AsBytes(queries).Overlaps(MemoryMarshal.AsBytes(labels));
        float[]? copy = aliased ? ArrayPool<float>.Shared.Rent(nq * Dimension) : null;
        try
        {
            ReadOnlySpan<float> rows = queries;
            if (copy is not null)
            {
                queries.CopyTo(copy);
                rows = copy.AsSpan(0, nq * Dimension);
            }
            fixed (float* pq = rows)
            fixed (float* pd = distances)
            fixed (long* pl = labels)
                QueryFanOut.Run(nq, chunk, wanted, _scratch, new ChunkSearch(this, pq, pd, pl, nq, call));
        }
        finally
        {
            if (copy is not null) ArrayPool<float>.Shared.Return(copy);
        }
    }

    /// <summary>One chunk of a batch (<see cref="SearchChunk"/>) for the shared fan-out; the rows stay pinned by
    /// <see cref="Search"/> while it runs.</summary>
    private readonly unsafe struct ChunkSearch(SpannIndex index, float* queries, float* distances, long* labels, int nq, Call call)
        : IQueryChunk<Scratch>
    {
        public void Run(int c, int first, int count, Scratch s) =>
            index.SearchChunk(s, new ReadOnlySpan<float>(queries, nq * index.Dimension), nq, c,
                new Span<float>(distances, nq * call.K), new Span<long>(labels, nq * call.K), call);
    }

    /// <summary>Most queries per head search: a chunk's heads come from one GEMM over the head vectors, which are read
    /// once for the chunk instead of once per query (on MNIST's 1 459 × 784 heads that read dominated the head search;
    /// coded MNIST at probes 12, two threads: 8 / 16 / 32 / 64 queries ≈ 7.0k / 8.3k / 9.8k / 9.0k QPS).</summary>
    private const int MaxHeadChunk = 32;

    /// <summary>The knobs of one search call (Chunk: queries per head search); a struct, so a call allocates nothing for it.</summary>
    private readonly record struct Call(int K, int Probes, float Eps, int Rerank, IIdFilter? Filter, SearchStats? Stats, int Chunk);

    // Searches queries [c × call.Chunk, …) of the call: their heads in one batch, then each query's postings, all under
    // one read lock (so the probed postings are the ones the heads name).
    private void SearchChunk(Scratch s, ReadOnlySpan<float> queries, int nq, int c, Span<float> distances, Span<long> labels, Call call)
    {
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
            // Each posting is scanned as it is read: acquired as an inverted list (in place from the store's mapping
            // when it can: no system call, copy or allocation; else from a pinned copy: blocks written since the
            // mapping, compressed blocks) and handed to the codec's list scanner, whose sink keeps the live, allowed,
            // unseen entries.
            var scanner = ScannerFor(s);
            scanner.SetQuery(s.Query);
            // Codes are of whole vectors: the one "list centre" is the origin, so the coarse key is ‖q‖² (L2) or 0
            // (raw postings have no coarse term).
            scanner.SetList(0, ip || _codec is null ? 0 : Distances.SquaredNorm(s.Query));
            var list = s.List;
            var coded = _codec is not null ? BeginCoded(s, k, call.Rerank) : default;
            var upper = _codec is not null ? new TopKHeap(s.UpperKeys.AsSpan(0, k), s.UpperIds.AsSpan(0, k)) : default;
            var bounds = scanner as RaBitQFastScanListScanner; // the upper-bound threshold (fast-scan codes only)
            try
            {
                for (int i = 0; i < s.Locations.Count; i++)
                {
                    var location = s.Locations[i];
                    list.Acquire(_store, location, s.Keys32[i], Locator);
                    if (list.FromCache) hits++;
                    else { postingsRead++; bytesRead += (long)location.Pages * _store.PageSize; }
                    if (_codec is not null)
                    {
                        var sink = new CodedSink(this, s, list, filter, coded, upper, bounds);
                        scanner.ScanTo(list, i, ref sink);
                        coded = sink.Candidates;
                        upper = sink.Upper;
                        scanned += list.Count;
                    }
                    else
                    {
                        var sink = new RawSink(this, s, list, filter, heap);
                        scanner.ScanTo(list, i, ref sink);
                        heap = sink.Heap;
                        computed += list.Count;
                    }
                }
            }
            finally { list.Release(); }
            if (_codec is not null) computed = Rerank(s, scanner.HasErrorBounds, ref coded, ref heap);
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
            // A scratch of its own from the pool (an id filter may call this from inside a search on the thread).
            var scratch = _scratch.Rent();
            var list = scratch.List;
            try
            {
                var view = AcquirePosting(list, e.Posting);
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
            }
            finally
            {
                list.Release();
                _scratch.Return(scratch);
            }
            throw new CorruptIndexException(_store.Device.Name, _postings[e.Posting].Location.Offset, $"id {id} is recorded in posting {e.Posting} but the posting does not hold it");
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>
    /// The list scanner of this index's postings held by <paramref name="s"/> (made on the scratch's first query; the
    /// scratch pool is this index's, so codec, dimension and metric never change under it): <see cref="RaBitQFastScanListScanner"/> for <c>RaBitQfs{b}</c>,
    /// <see cref="RaBitQListScanner"/> for <c>RaBitQ{b}</c> (both with error bounds: keys are the estimate minus its
    /// bound, and the re-ranking stops by them), <see cref="PQListScanner"/> for <c>PQ{m}</c> and <c>PQ{m}x4</c> (one
    /// table of whole-vector distances, no residual tables), <see cref="EstimatorListScanner"/> for SQ8 and BIN,
    /// <see cref="TransformedListScanner"/> over the inner codec's scanner for <c>OPQ{m},…</c> (the query rotated once),
    /// and <see cref="FlatListScanner"/> for raw postings (exact distances). Cosine is L2 inside.
    /// </summary>
    private IvfListScanner ScannerFor(Scratch s)
    {
        if (s.Scanner is not null) return s.Scanner;
        bool ip = Metric == Metric.InnerProduct;
        var metric = ip ? Metric.InnerProduct : Metric.L2;
        s.Scanner = _codec is null ? new FlatListScanner(Dimension, metric) : ScannerOf(_codec, metric);
        return s.Scanner;
    }

    // The scanner of one codec's whole-vector codes; a codec behind a transform gets its own codec's scanner behind
    // the transform of the query.
    private static IvfListScanner ScannerOf(IVectorCodec codec, Metric metric) => codec switch
    {
        TransformedCodec t => new TransformedListScanner(t.Transform, ScannerOf(t.Inner, metric)),
        RaBitQFastScanCodec fs => new RaBitQFastScanListScanner(fs, Origin(fs.Dimension, metric), hasRefine: true),
        RaBitQCodec rq => new RaBitQListScanner(rq, Origin(rq.Dimension, metric), hasRefine: true),
        ProductQuantizer pq => new PQListScanner(pq, tables: null, metric),
        var other => new EstimatorListScanner(other, metric),
    };

    // Whole-vector codes: one list whose centre is 0.
    private static FlatCoarseQuantizer Origin(int dimension, Metric metric) => new(1, dimension, metric);

    /// <summary>
    /// True when entry <paramref name="row"/> of the acquired posting may enter the query's results: its copy is live
    /// (id and version), the caller's filter allows its id, and no other replica of the id entered before (the id is
    /// then recorded as seen). Checked only for entries whose key beats the sink's threshold, in this order.
    /// </summary>
    private bool Admit(Scratch s, DeviceBlockInvertedList list, int row, IIdFilter? filter, out long id)
    {
        id = list.Ids[row];
        return IsLive(id, list.Versions[row]) && (filter is null || filter.IsAllowed(id)) && s.Seen.Add(id);
    }

    /// <summary>Raw postings: the admitted entries go to the query's result heap with their exact distance and id.</summary>
    private ref struct RawSink(SpannIndex index, Scratch s, DeviceBlockInvertedList list, IIdFilter? filter, TopKHeap heap) : ICandidateSink
    {
        public TopKHeap Heap = heap;

        public readonly float Threshold => Heap.Threshold;

        public void Push(float key, long label)
        {
            if (index.Admit(s, list, IvfListScanner.RowOf(label), filter, out long id)) Heap.Push(key, id);
        }
    }

    /// <summary>
    /// Coded postings: the admitted entries take a candidate slot (id, refine offset, version) and enter the candidate
    /// heap by their estimate key. With fast-scan codes (<paramref name="bounds"/> given) the threshold is also the k-th
    /// smallest upper bound among the query's admitted candidates (<see cref="RaBitQFastScanListScanner.UpperKey"/>).
    /// </summary>
    private ref struct CodedSink(SpannIndex index, Scratch s, DeviceBlockInvertedList list, IIdFilter? filter, TopKHeap candidates,
        TopKHeap upper, RaBitQFastScanListScanner? bounds) : ICandidateSink
    {
        public TopKHeap Candidates = candidates;
        public TopKHeap Upper = upper;

        public readonly float Threshold => bounds is null ? Candidates.Threshold : Math.Min(Candidates.Threshold, Upper.Threshold);

        public void Push(float key, long label)
        {
            int row = IvfListScanner.RowOf(label);
            if (!index.Admit(s, list, row, filter, out long id)) return;
            int slot = s.Slots++;
            if (slot == s.SlotIds.Length)
            {
                Array.Resize(ref s.SlotIds, slot * 2);
                Array.Resize(ref s.SlotOffsets, slot * 2);
                Array.Resize(ref s.SlotVersions, slot * 2);
            }
            s.SlotIds[slot] = id;
            s.SlotOffsets[slot] = list.RefineOffsets[row];
            s.SlotVersions[slot] = list.Versions[row];
            Candidates.Push(key, slot);
            if (bounds is null) return;
            float u = bounds.UpperKey(list, row, key);
            if (u < Upper.Threshold) Upper.Push(u, 0);
        }
    }

    /// <summary>
    /// Coded postings, per query: a candidate heap of width k × <paramref name="rerank"/> (keyed by estimate, holding
    /// slots of <see cref="Scratch.SlotIds"/>) starts empty.
    /// </summary>
    private static TopKHeap BeginCoded(Scratch s, int k, int rerank)
    {
        int width = (int)Math.Min((long)k * rerank, 1 << 24);
        if (s.CandKeys.Length < width) { s.CandKeys = new float[width]; s.CandSlots = new long[width]; }
        if (s.Vector.Length != s.Query.Length) s.Vector = new float[s.Query.Length];
        s.Slots = 0;
        if (s.UpperKeys.Length < k) { s.UpperKeys = new float[k]; s.UpperIds = new long[k]; }
        return new TopKHeap(s.CandKeys.AsSpan(0, width), s.CandSlots.AsSpan(0, width));
    }

    /// <summary>
    /// Coded postings, after the query's last posting: re-ranks the candidates with exact distances from their refine
    /// records into <paramref name="heap"/>. Error-bounded candidates (<paramref name="bounded"/>: RaBitQ) are re-scored in ascending order of their lower bounds
    /// until one cannot beat the k-th exact distance (as IVF's RaBitQ refine does); other codecs re-score all of them.
    /// Returns the refine records read.
    /// </summary>
    private long Rerank(Scratch s, bool bounded, ref TopKHeap candidates, ref TopKHeap heap)
    {
        bool ip = Metric == Metric.InnerProduct;
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
