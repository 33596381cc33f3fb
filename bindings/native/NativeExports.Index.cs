using System.Globalization;
using System.Runtime.InteropServices;
using Engine.Index;

namespace Engine.Native;

/// <summary>
/// The C ABI (see engine.h). Every export returns a <see cref="NativeStatus"/> code; on failure the message is
/// available from <c>engine_last_error()</c> on the same thread. No exception ever crosses the boundary.
/// </summary>
public static unsafe partial class NativeExports
{
    private const string IndexWhat = "index";
    private static readonly Dictionary<string, string> s_noSettings = new();
    private static readonly byte* s_version = NativeErrors.AllocUtf8(
        typeof(NativeExports).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");

    /// <summary><c>const char* engine_version(void)</c>: the library version (static string).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_version")]
    public static byte* Version() => s_version;

    /// <summary><c>const char* engine_last_error(void)</c>: the calling thread's last error message, "" when none.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_last_error")]
    public static byte* LastError() => NativeErrors.LastMessage;

    /// <summary><c>int engine_index_create(const char* spec, int32_t d, const char* metric, engine_index** out)</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_create")]
    public static int IndexCreate(byte* spec, int d, byte* metric, nint* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = 0;
            string s = NativeArgs.Utf8(spec, "spec");
            Metric m = MetricExtensions.ParseMetric(NativeArgs.Utf8(metric, "metric"));
            *result = NativeHandles.Create(new IndexHandle(IndexFactory.Create(s, d, m)));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_load(const char* path, engine_index** out)</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_load")]
    public static int IndexLoad(byte* path, nint* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = 0;
            string p = NativeArgs.Utf8(path, "path");
            *result = NativeHandles.Create(new IndexHandle(IndexFactory.Load(p)));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_free(engine_index* index)</c>: NULL is a no-op; a freed or foreign handle is an error.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_free")]
    public static int IndexFree(nint index)
    {
        try
        {
            if (index == 0) return (int)NativeStatus.Ok;
            NativeHandles.Free<IndexHandle>(index, IndexWhat).Index.Dispose();
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_train(engine_index* index, const float* x, int64_t n, int32_t d)</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_train")]
    public static int IndexTrain(nint index, float* x, long n, int d)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            h.Index.Train(NativeArgs.Rows(x, n, d, h.Index, "x"));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_index_add(engine_index* index, const float* x, int64_t n, int32_t d, const int64_t* ids,
    /// int64_t* first_id)</c>. With <c>ids == NULL</c> the vectors get consecutive ids after the largest id added
    /// through this handle (starting at the count of a created or loaded index) and <c>*first_id</c> (may be NULL)
    /// receives the first of them.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_add")]
    public static int IndexAdd(nint index, float* x, long n, int d, long* ids, long* firstId)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            var rows = NativeArgs.Rows(x, n, d, h.Index, "x");
            if (ids != null)
            {
                var given = NativeArgs.Ids(ids, n, "ids");
                h.Index.Add(rows, given);
                h.NoteIds(given);
                return (int)NativeStatus.Ok;
            }
            long first = h.AddWithAutoIds(rows, n);
            if (firstId != null) *firstId = first;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_index_search(engine_index* index, const float* q, int64_t nq, int32_t d, int32_t k,
    /// float* distances, int64_t* labels, int32_t threads, int32_t probes, float refine)</c>.
    /// Outputs are nq × k, row-major, padded with label -1. <c>threads</c> 0 = all cores; <c>probes</c> and
    /// <c>refine</c> 0 = the index's defaults (an index that has no such knob rejects a positive value). Negative
    /// values, a NaN, infinite or fractional <c>refine</c> are rejected (status 1, the message names the argument
    /// and its range).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_search")]
    public static int IndexSearch(nint index, float* q, long nq, int d, int k, float* distances, long* labels,
        int threads, int probes, float refine)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            var queries = NativeArgs.Rows(q, nq, d, h.Index, "queries");
            if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be at least 1 (got {k}).");
            if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be >= 0 (0 = all cores), got {threads}.");
            if (probes < 0) throw new ArgumentOutOfRangeException(nameof(probes), probes, $"probes must be >= 0 (0 = the index default), got {probes}.");
            if (!(refine >= 0 && refine <= Engine.Index.Ivf.IvfSearchParameters.MaxRefineFactor && refine == MathF.Floor(refine)))
                throw new ArgumentOutOfRangeException(nameof(refine), refine,
                    $"refine must be a whole number in 0..{Engine.Index.Ivf.IvfSearchParameters.MaxRefineFactor} (0 = the index default), got {refine}.");
            var parameters = IndexFactory.CreateParameters(h.Index, Settings(probes, refine), threads);
            RunSearch(h, queries, nq, k, distances, labels, parameters);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_index_search_with(engine_index* index, const float* q, int64_t nq, int32_t d, int32_t k,
    /// float* distances, int64_t* labels, int32_t threads, const char* params)</c>: as <c>engine_index_search</c>
    /// with the index's knobs named in <c>params</c>, <c>"NAME=V,NAME=V"</c> (the names of <c>engine bench --sweep</c>:
    /// <c>ef</c> for HNSW, <c>probes</c>/<c>refine</c>/<c>maxcodes</c> for IVF, <c>probes</c>/<c>eps</c> for SPANN);
    /// NULL or "" = the index defaults. A name the index does not know is rejected.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_search_with")]
    public static int IndexSearchWith(nint index, float* q, long nq, int d, int k, float* distances, long* labels,
        int threads, byte* settings)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            var queries = NativeArgs.Rows(q, nq, d, h.Index, "queries");
            if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be at least 1 (got {k}).");
            if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be >= 0 (0 = all cores), got {threads}.");
            var named = settings == null ? s_noSettings : ParseSettings(NativeArgs.Utf8(settings, "params"));
            RunSearch(h, queries, nq, k, distances, labels, IndexFactory.CreateParameters(h.Index, named, threads));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    private static void RunSearch(IndexHandle h, ReadOnlySpan<float> queries, long nq, int k, float* distances, long* labels, SearchParameters parameters)
    {
        if (nq == 0) return;
        NativeArgs.Out(distances, "distances");
        NativeArgs.Out(labels, "labels");
        int len = NativeArgs.Length(nq, k, "distances");
        h.Index.Search(queries, k, new Span<float>(distances, len), new Span<long>(labels, len), parameters);
    }

    // "ef=64,probes=8" → {ef: 64, probes: 8}; empty parts are ignored.
    internal static Dictionary<string, string> ParseSettings(string text) => SearchSettings.Parse(text, "params");

    private static IReadOnlyDictionary<string, string> Settings(int probes, float refine)
    {
        if (probes == 0 && refine == 0) return s_noSettings;
        var settings = new Dictionary<string, string>();
        if (probes > 0) settings["probes"] = probes.ToString(CultureInfo.InvariantCulture);
        if (refine > 0) settings["refine"] = ((int)refine).ToString(CultureInfo.InvariantCulture);
        return settings;
    }

    /// <summary><c>int engine_index_remove(engine_index* index, const int64_t* ids, int64_t n, int64_t* removed)</c>;
    /// <c>removed</c> may be NULL.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_remove")]
    public static int IndexRemove(nint index, long* ids, long n, long* removed)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            int count = h.Index.Remove(NativeArgs.Ids(ids, n, "ids"));
            if (removed != null) *removed = count;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_count(engine_index* index, int64_t* out)</c>: live vectors.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_count")]
    public static int IndexCount(nint index, long* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = NativeHandles.Get<IndexHandle>(index, IndexWhat).Index.Count;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_dimension(engine_index* index, int32_t* out)</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_dimension")]
    public static int IndexDimension(nint index, int* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = NativeHandles.Get<IndexHandle>(index, IndexWhat).Index.Dimension;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_metric(engine_index* index, int32_t* out)</c>: 0 = l2, 1 = ip, 2 = cosine.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_metric")]
    public static int IndexMetric(nint index, int* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = (int)NativeHandles.Get<IndexHandle>(index, IndexWhat).Index.Metric;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_is_trained(engine_index* index, int32_t* out)</c>: 1 when add is accepted.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_is_trained")]
    public static int IndexIsTrained(nint index, int* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = NativeHandles.Get<IndexHandle>(index, IndexWhat).Index.IsTrained ? 1 : 0;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_index_description(engine_index* index, char* buffer, int64_t capacity, int64_t* needed)</c>:
    /// copies the composition string (NUL-terminated, truncated to capacity) and reports the bytes it needs
    /// including the NUL. <c>buffer</c> may be NULL with capacity 0 to ask for the size.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_description")]
    public static int IndexDescription(nint index, byte* buffer, long capacity, long* needed)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            return NativeText.CopyOut(h.Index.Description, buffer, capacity, needed);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_reconstruct(engine_index* index, int64_t id, float* out, int32_t d, int32_t* found)</c>:
    /// copies the stored vector of <c>id</c> into <c>out</c> (d floats); <c>*found</c> = 0 when absent.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_reconstruct")]
    public static int IndexReconstruct(nint index, long id, float* result, int d, int* found)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            NativeArgs.Out(result, "out");
            NativeArgs.Out(found, "found");
            if (d != h.Index.Dimension)
                throw new ArgumentException($"Dimension mismatch: out holds {d} floats but the index dimension is {h.Index.Dimension}.", "d");
            *found = h.Index.TryReconstruct(id, new Span<float>(result, d)) ? 1 : 0;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_index_save(engine_index* index, const char* path)</c>: atomic write.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_save")]
    public static int IndexSave(nint index, byte* path)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            h.Index.Save(NativeArgs.Utf8(path, "path"));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }
}
