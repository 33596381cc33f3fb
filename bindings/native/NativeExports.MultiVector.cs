using System.Runtime.InteropServices;
using Engine.Index;
using Engine.Index.MultiVector;
using Engine.MultiVector;

namespace Engine.Native;

/// <summary>What an <c>engine_mv_index*</c> points at: the multi-vector index plus the next automatic id.</summary>
internal sealed class MultiVectorHandle(MultiVectorIndex index)
{
    private readonly AutoIds _ids = new(index.Count);

    /// <summary>The wrapped index.</summary>
    public MultiVectorIndex Index { get; } = index;

    /// <summary>
    /// Adds <paramref name="items"/> under the next automatic ids (after every id added through this handle) and
    /// returns the first. The ids are taken only when the add succeeds: a rejected add (bad tokens, an untrained IVF
    /// FDE index) leaves the next id where it was, as <c>engine_index_add</c> does. Automatic adds through one handle
    /// run one at a time.
    /// </summary>
    /// <exception cref="InvalidOperationException">Too few ids (for an empty add: no id) are left below 2^63.</exception>
    public long AddWithAutoIds(MultiVectorSet items, int threads)
    {
        lock (_ids)
        {
            long first = _ids.Next(items.Count);
            var ids = new long[items.Count];
            for (int i = 0; i < ids.Length; i++) ids[i] = first + i;
            Index.Add(items, ids, threads);
            _ids.Taken(first, ids.Length);
            return first;
        }
    }

    /// <summary>Moves the automatic ids above every explicit id added through this handle.</summary>
    public void NoteIds(ReadOnlySpan<long> ids)
    {
        lock (_ids) _ids.Note(ids);
    }
}

public static unsafe partial class NativeExports
{
    private const string MultiVectorWhat = "multi-vector index";

    /// <summary>
    /// <c>int engine_mv_create(int32_t d, const char* options, const char* fde_spec, const char* tokens,
    /// engine_mv_index** out)</c>: an empty MUVERA multi-vector index of token dimension d. <c>options</c>
    /// <c>"ksim=4,dproj=16,reps=20,final=0,fill=1,seed=42"</c> (NULL or "" = these defaults, a missing name keeps
    /// its default); <c>fde_spec</c> the single-vector FDE index (any composition string; NULL = "Flat");
    /// <c>tokens</c> "f16" or "f32" (NULL = "f16").
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_create")]
    public static int MultiVectorCreate(int d, byte* options, byte* fdeSpec, byte* tokens, nint* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = 0;
            var opts = MuveraOptions.Parse(options == null ? null : NativeArgs.Utf8(options, "options"));
            string spec = fdeSpec == null ? "Flat" : NativeArgs.Utf8(fdeSpec, "fde_spec");
            var storage = (tokens == null ? "f16" : NativeArgs.Utf8(tokens, "tokens")).Trim().ToLowerInvariant() switch
            {
                "f16" => TokenEncoding.F16,
                "f32" => TokenEncoding.F32,
                var t => throw new ArgumentException($"tokens '{t}' is not \"f16\" or \"f32\".", nameof(tokens)),
            };
            if (d <= 0) throw new ArgumentOutOfRangeException(nameof(d), d, $"The token dimension d must be positive (got {d}).");
            *result = NativeHandles.Create(new MultiVectorHandle(new MultiVectorIndex(d, opts, spec, storage)));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_load(const char* path, engine_mv_index** out)</c>: a directory written by <c>engine_mv_save</c> (or C#).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_load")]
    public static int MultiVectorLoad(byte* path, nint* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = 0;
            *result = NativeHandles.Create(new MultiVectorHandle(MultiVectorIndex.Load(NativeArgs.Utf8(path, "path"))));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_free(engine_mv_index* index)</c>: NULL is a no-op; a freed or foreign handle is an error.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_free")]
    public static int MultiVectorFree(nint index)
    {
        try
        {
            if (index == 0) return (int)NativeStatus.Ok;
            NativeHandles.Free<MultiVectorHandle>(index, MultiVectorWhat).Index.Dispose();
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_train(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t n,
    /// int32_t d, int32_t threads)</c>: trains the FDE index on the document FDEs of n token sets (a no-op for Flat / HNSW).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_train")]
    public static int MultiVectorTrain(nint index, float* tokens, long* offsets, long n, int d, int threads)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            var items = TokenSets(tokens, offsets, n, d, h.Index, "tokens");
            CheckThreads(threads);
            h.Index.Train(items, threads);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_mv_add(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t n, int32_t d,
    /// const int64_t* ids, int64_t* first_id, int32_t threads)</c>: adds n token sets; ids as in <c>engine_index_add</c>
    /// (NULL = consecutive ids after the largest added through this handle, the first written to <c>*first_id</c>).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_add")]
    public static int MultiVectorAdd(nint index, float* tokens, long* offsets, long n, int d, long* ids, long* firstId, int threads)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            var items = TokenSets(tokens, offsets, n, d, h.Index, "tokens");
            CheckThreads(threads);
            if (ids != null)
            {
                var given = NativeArgs.Ids(ids, n, "ids");
                h.Index.Add(items, given, threads);
                h.NoteIds(given);
                return (int)NativeStatus.Ok;
            }
            long first = h.AddWithAutoIds(items, threads);
            if (firstId != null) *firstId = first;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_mv_search(engine_mv_index* index, const float* tokens, const int64_t* offsets, int64_t nq,
    /// int32_t d, int32_t k, float* scores, int64_t* labels, int32_t threads, const char* params)</c>: MUVERA search
    /// (FDE candidates re-ranked by exact Chamfer). <c>params</c> <c>"candidates=N,reps=R"</c> plus the FDE index's
    /// own knobs (<c>probes</c>, <c>ef</c>, …); NULL or "" = defaults. Scores are Chamfer similarities, padded with
    /// −∞ / label −1.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_search")]
    public static int MultiVectorSearch(nint index, float* tokens, long* offsets, long nq, int d, int k, float* scores,
        long* labels, int threads, byte* settings)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            var queries = TokenSets(tokens, offsets, nq, d, h.Index, "queries");
            int len = SearchOutputs(queries.Count, k, threads, scores, labels);
            if (len == 0) return (int)NativeStatus.Ok;
            var named = settings == null ? s_noSettings : ParseSettings(NativeArgs.Utf8(settings, "params"));
            h.Index.Search(queries, k, new Span<float>(scores, len), new Span<long>(labels, len), MuveraSearchParameters.FromSettings(h.Index, named, threads));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_search_exact(engine_mv_index* index, const float* tokens, const int64_t* offsets,
    /// int64_t nq, int32_t d, int32_t k, float* scores, int64_t* labels, int32_t threads)</c>: brute-force Chamfer
    /// over every item (the ground truth of <c>engine_mv_search</c>).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_search_exact")]
    public static int MultiVectorSearchExact(nint index, float* tokens, long* offsets, long nq, int d, int k, float* scores,
        long* labels, int threads)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            var queries = TokenSets(tokens, offsets, nq, d, h.Index, "queries");
            int len = SearchOutputs(queries.Count, k, threads, scores, labels);
            if (len == 0) return (int)NativeStatus.Ok;
            h.Index.SearchExact(queries, k, new Span<float>(scores, len), new Span<long>(labels, len), new SearchParameters { Threads = threads });
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_remove(engine_mv_index* index, const int64_t* ids, int64_t n, int64_t* removed)</c>:
    /// absent ids are ignored; <c>removed</c> (may be NULL) receives how many were removed.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_remove")]
    public static int MultiVectorRemove(nint index, long* ids, long n, long* removed)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            int count = h.Index.Remove(NativeArgs.Ids(ids, n, "ids"));
            if (removed != null) *removed = count;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_count(engine_mv_index* index, int64_t* items, int64_t* tokens)</c>: items and stored
    /// tokens (either pointer may be NULL).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_count")]
    public static int MultiVectorCount(nint index, long* items, long* tokens)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            if (items != null) *items = h.Index.Count;
            if (tokens != null) *tokens = h.Index.TokenCount;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_dimension(engine_mv_index* index, int32_t* out)</c>: the token dimension d.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_dimension")]
    public static int MultiVectorDimension(nint index, int* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat).Index.Dimension;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_description(engine_mv_index* index, char* buffer, int64_t capacity, int64_t* needed)</c>:
    /// e.g. <c>MUVERA(ksim=4,…),F16|Flat</c>; buffer rules of <c>engine_index_description</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_description")]
    public static int MultiVectorDescription(nint index, byte* buffer, long capacity, long* needed)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            return NativeText.CopyOut(h.Index.Description, buffer, capacity, needed);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_mv_save(engine_mv_index* index, const char* path)</c>: a directory (created when missing)
    /// holding the FDE index and the token file, each written atomically.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mv_save")]
    public static int MultiVectorSave(nint index, byte* path)
    {
        try
        {
            var h = NativeHandles.Get<MultiVectorHandle>(index, MultiVectorWhat);
            h.Index.Save(NativeArgs.Utf8(path, "path"));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// n token sets from C: set i is tokens <c>offsets[i] .. offsets[i+1])</c> (rows of d floats); offsets has n + 1
    /// entries starting at 0, and a set without tokens is rejected by name.
    /// </summary>
    private static MultiVectorSet TokenSets(float* tokens, long* offsets, long n, int d, MultiVectorIndex index, string name)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(name, n, $"The number of token sets in {name} must not be negative.");
        if (d != index.Dimension)
            throw new ArgumentException($"Mixed dimensions: {name} has tokens of d={d} but the index's token dimension is {index.Dimension}.", name);
        if (n > int.MaxValue - 1) throw new ArgumentOutOfRangeException(name, n, $"{name} holds {n} token sets, more than one call accepts; split the batch.");
        if (offsets == null) throw new ArgumentNullException(name, $"the offsets of {name} are a null pointer.");
        var off = new ReadOnlySpan<long>(offsets, (int)n + 1);
        if (off[0] != 0) throw new ArgumentException($"{name} offsets must start at 0 (got {off[0]}).", name);
        var counts = new int[n];
        for (int i = 0; i < counts.Length; i++)
        {
            long c = off[i + 1] - off[i];
            if (c <= 0)
                throw new ArgumentException($"{name} item {i} has {c} tokens (offsets {off[i]}..{off[i + 1]}); every multi-vector item needs at least one token.", name);
            if (c > int.MaxValue) throw new ArgumentOutOfRangeException(name, c, $"{name} item {i} has {c} tokens; split the batch.");
            counts[i] = (int)c;
        }
        long total = off[(int)n];
        if (total == 0) return new MultiVectorSet(d, [], counts);
        if (tokens == null) throw new ArgumentNullException(name, $"{name} is a null pointer.");
        var data = new ReadOnlySpan<float>(tokens, NativeArgs.Length(total, d, name)).ToArray();
        return new MultiVectorSet(d, data, counts);
    }

    private static void CheckThreads(int threads)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be >= 0 (0 = all cores), got {threads}.");
    }

    /// <summary>Checks k, threads and the output pointers; returns the nq × k output length.</summary>
    private static int SearchOutputs(int nq, int k, int threads, float* scores, long* labels)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be at least 1 (got {k}).");
        CheckThreads(threads);
        if (nq == 0) return 0;
        NativeArgs.Out(scores, "scores");
        NativeArgs.Out(labels, "labels");
        return NativeArgs.Length(nq, k, "scores");
    }
}
