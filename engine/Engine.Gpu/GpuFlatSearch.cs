namespace Engine.Gpu;

/// <summary>
/// One-call exact search on the accelerator, for callers such as the CLI's <c>--device gpu</c>.
/// </summary>
public static class GpuFlatSearch
{
    private static readonly Lazy<GpuContext> s_shared = new(() => GpuContext.Create(GpuDeviceKind.Auto), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The process-wide context used when no context is passed (created on first use with
    /// <see cref="GpuDeviceKind.Auto"/>: CUDA when present, else ILGPU's CPU accelerator).
    /// </summary>
    public static GpuContext Shared => s_shared.Value;

    /// <summary>
    /// Exact top-k of <paramref name="queries"/> (nq × d) against <paramref name="corpus"/> (n × d), with the
    /// same output contract as <c>FlatIndex.Search</c> over ids 0..n-1: nq × k distances and labels, best first,
    /// padded with label -1.
    /// </summary>
    /// <exception cref="ArgumentException">Bad dimension, non-finite data, k ≤ 0 or short output buffers.</exception>
    public static void Search(ReadOnlySpan<float> corpus, int d, Metric metric, ReadOnlySpan<float> queries, int k,
        Span<float> distances, Span<long> labels) =>
        Search(Shared, corpus, d, metric, queries, k, distances, labels);

    /// <summary>As <see cref="Search(ReadOnlySpan{float}, int, Metric, ReadOnlySpan{float}, int, Span{float}, Span{long})"/>
    /// on the given context.</summary>
    public static void Search(GpuContext context, ReadOnlySpan<float> corpus, int d, Metric metric,
        ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels)
    {
        using var searcher = new GpuFlatSearcher(context, d, metric);
        searcher.SetCorpus(corpus);
        searcher.Search(queries, k, distances, labels);
    }
}
