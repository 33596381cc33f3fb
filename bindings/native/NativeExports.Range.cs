using System.Runtime.InteropServices;
using Engine.Index;

namespace Engine.Native;

public static unsafe partial class NativeExports
{
    private const string RangeWhat = "range result";

    /// <summary>
    /// <c>int engine_index_range_search(engine_index* index, const float* queries, int64_t nq, int32_t d, float radius,
    /// int32_t threads, const char* params, engine_range_result** out)</c>: every stored vector with squared L2 distance
    /// ≤ radius (similarity ≥ radius for ip / cosine) per query; <c>params</c> as in <c>engine_index_search_with</c>.
    /// Read the result with <c>engine_range_result_size</c> / <c>engine_range_result_copy</c>, free it with
    /// <c>engine_range_result_free</c>. NaN/±∞, negative l2 radii and cosine thresholds outside [−1, 1] are status 1.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_index_range_search")]
    public static int IndexRangeSearch(nint index, float* q, long nq, int d, float radius, int threads, byte* settings, nint* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = 0;
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            var queries = NativeArgs.Rows(q, nq, d, h.Index, "queries");
            RangeSearchResult.CheckRadius(h.Index.Metric, radius);
            if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be >= 0 (0 = all cores), got {threads}.");
            var named = settings == null ? s_noSettings : ParseSettings(NativeArgs.Utf8(settings, "params"));
            var found = h.Index.RangeSearch(queries, radius, IndexFactory.CreateParameters(h.Index, named, threads));
            *result = NativeHandles.Create(found);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_range_result_size(engine_range_result* result, int64_t* nq, int64_t* total)</c>: the
    /// query count and the number of results in all (either pointer may be NULL).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_range_result_size")]
    public static int RangeResultSize(nint result, long* nq, long* total)
    {
        try
        {
            var r = NativeHandles.Get<RangeSearchResult>(result, RangeWhat);
            if (nq != null) *nq = r.QueryCount;
            if (total != null) *total = r.TotalCount;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_range_result_copy(engine_range_result* result, int64_t* lims, int64_t* ids, float* distances)</c>:
    /// copies the offsets (nq + 1 entries, faiss' lims), the ids and the distances (total entries each, best first per
    /// query). <c>ids</c> and <c>distances</c> may be NULL when total is 0.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_range_result_copy")]
    public static int RangeResultCopy(nint result, long* lims, long* ids, float* distances)
    {
        try
        {
            var r = NativeHandles.Get<RangeSearchResult>(result, RangeWhat);
            NativeArgs.Out(lims, "lims");
            r.Offsets.CopyTo(new Span<long>(lims, r.Offsets.Length));
            if (r.TotalCount == 0) return (int)NativeStatus.Ok;
            NativeArgs.Out(ids, "ids");
            NativeArgs.Out(distances, "distances");
            r.Ids.CopyTo(new Span<long>(ids, r.Ids.Length));
            r.Distances.CopyTo(new Span<float>(distances, r.Distances.Length));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_range_result_free(engine_range_result* result)</c>: NULL is a no-op; a freed or foreign
    /// handle is an error.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_range_result_free")]
    public static int RangeResultFree(nint result)
    {
        try
        {
            if (result == 0) return (int)NativeStatus.Ok;
            NativeHandles.Free<RangeSearchResult>(result, RangeWhat);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }
}
