using System.Runtime.InteropServices;
using System.Text.Json;
using Engine.Index;
using Engine.Mining.Graph;

namespace Engine.Native;

public static unsafe partial class NativeExports
{
    /// <summary>
    /// <c>int engine_knn_graph(engine_index* index, const float* x, int64_t n, int32_t d, const int64_t* ids,
    /// const char* metric, int32_t k, int32_t threads, const char* params, int64_t* neighbors, float* distances,
    /// char* report_json, int64_t report_capacity, int64_t* report_needed)</c>: the k nearest neighbours of each of the
    /// n points (self excluded), n × k best first, padded with −1. With <c>index</c> the points (ids: NULL = 0..n−1)
    /// must be in it; with <c>index == NULL</c> the automatic list-major self-join runs over x (ids 0..n−1; <c>ids</c>
    /// must be NULL; exact below 20 000 points, else k-means lists with probes chosen by a sampled recall check,
    /// recall@k ≥ 0.95) and <c>metric</c> names the metric. The report (index, search knobs,
    /// sampled recall) is copied like <c>engine_index_description</c>.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_knn_graph")]
    public static int KnnGraph(nint index, float* x, long n, int d, long* ids, byte* metric, int k, int threads, byte* settings,
        long* neighbors, float* distances, byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        try
        {
            if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be at least 1 (got {k}).");
            if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, $"threads must be >= 0 (0 = all cores), got {threads}.");
            if (d <= 0) throw new ArgumentOutOfRangeException(nameof(d), d, $"d must be positive (got {d}).");
            if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "n must not be negative.");
            if (k >= n) throw new ArgumentException($"k = {k} must be below the number of points ({n}): every point needs k neighbours other than itself.", nameof(k));
            NativeArgs.Out(x, "x");
            var rows = new ReadOnlySpan<float>(x, NativeArgs.Length(n, d, "x"));
            NativeArgs.Out(neighbors, "neighbors");
            NativeArgs.Out(distances, "distances");
            int len = NativeArgs.Length(n, k, "neighbors");
            var named = settings == null ? null : ParseSettings(NativeArgs.Utf8(settings, "params"));
            var options = new KnnGraphOptions { K = k, Threads = threads, Search = named };
            var outIds = new Span<long>(neighbors, len);
            var outDist = new Span<float>(distances, len);
            if (index == 0)
            {
                if (ids != null) throw new ArgumentException("ids must be NULL when index is NULL (the automatic graph numbers the points 0..n-1).", "ids");
                if (named is not null) throw new ArgumentException("params must be NULL when index is NULL (the automatic choice sets the search knobs).", "params");
                Metric m = MetricExtensions.ParseMetric(NativeArgs.Utf8(metric, "metric"));
                // The automatic list-major self-join, streamed straight into the caller's buffers.
                long* nbOut = neighbors;
                float* dsOut = distances;
                var choice = KnnGraphBuilder.BuildAuto(rows, d, m, options, (first, nb, ds) =>
                {
                    nb.CopyTo(new Span<long>(nbOut + (long)first * k, nb.Length));
                    ds.CopyTo(new Span<float>(dsOut + (long)first * k, ds.Length));
                });
                return NativeText.CopyOut(GraphReport(choice.Spec, options with { Search = choice.Search }, choice), reportJson, reportCapacity, reportNeeded);
            }
            var target = NativeHandles.Get<IndexHandle>(index, IndexWhat).Index;
            if (d != target.Dimension) throw new ArgumentException($"Dimension mismatch: x has {d} columns but the index dimension is {target.Dimension}.", "x");
            if (metric != null && MetricExtensions.ParseMetric(NativeArgs.Utf8(metric, "metric")) != target.Metric)
                throw new ArgumentException($"metric contradicts the index, whose metric is {target.Metric.ToShortName()} (pass NULL).", "metric");
            var pointIds = ids == null ? Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray() : NativeArgs.Ids(ids, n, "ids").ToArray();
            var graph = KnnGraphBuilder.Build(target, rows, pointIds, options);
            graph.Neighbors.CopyTo(outIds);
            graph.Distances.CopyTo(outDist);
            return NativeText.CopyOut(GraphReport(target.Description, options, null), reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    private static string GraphReport(string description, KnnGraphOptions options, KnnGraphChoice? choice)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("index", description);
            w.WriteStartObject("search");
            foreach (var (key, value) in options.Search ?? new Dictionary<string, string>()) w.WriteString(key, value);
            w.WriteEndObject();
            w.WriteBoolean("auto", choice is not null);
            if (choice is not null)
            {
                w.WriteNumber("sampled_recall", choice.SampledRecall);
                w.WriteNumber("sample_size", choice.SampleSize);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>
    /// <c>int engine_near_duplicates(const int64_t* ids, int64_t n, int32_t k, const int64_t* neighbors,
    /// const float* distances, const char* metric, float threshold, int64_t* representative, int64_t* groups)</c>:
    /// connected components of the graph edges inside the threshold (squared l2 ≤ t, similarity ≥ t); writes each
    /// point's group representative (the group's smallest id) and the group count. ids NULL = 0..n−1.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_near_duplicates")]
    public static int NearDuplicateGroups(long* ids, long n, int k, long* neighbors, float* distances, byte* metric, float threshold,
        long* representative, long* groups)
    {
        try
        {
            var graph = GraphFrom(ids, n, k, neighbors, distances, metric);
            if (n > 0) NativeArgs.Out(representative, "representative"); // no points: no rows, NULL is fine
            var dup = NearDuplicates.Find(graph, threshold);
            dup.Representative.CopyTo(new Span<long>(representative, (int)n));
            if (groups != null) *groups = dup.GroupCount;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_label_propagation(const int64_t* ids, int64_t n, int32_t k, const int64_t* neighbors,
    /// const float* distances, const char* metric, const int32_t* labels, int32_t classes, double alpha,
    /// int32_t iterations, double gamma, float* scores, int32_t* predicted)</c>: ZLaP-style label propagation over the
    /// graph (labels −1 = unlabelled); scores n × classes (may be NULL), predicted n (−1 = unreached).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_label_propagation")]
    public static int PropagateLabels(long* ids, long n, int k, long* neighbors, float* distances, byte* metric, int* labels, int classes,
        double alpha, int iterations, double gamma, float* scores, int* predicted)
    {
        try
        {
            var graph = GraphFrom(ids, n, k, neighbors, distances, metric);
            if (n > 0)
            {
                // No points: the engine's own check ("No row is labelled") answers, not a NULL-pointer complaint.
                NativeArgs.Out(labels, "labels");
                NativeArgs.Out(predicted, "predicted");
            }
            var (s, p) = LabelPropagation.Run(graph, new ReadOnlySpan<int>(labels, (int)n), classes,
                new LabelPropagationOptions { Alpha = alpha, Iterations = iterations, Gamma = gamma });
            p.CopyTo(new Span<int>(predicted, (int)n));
            if (scores != null) s.CopyTo(new Span<float>(scores, s.Length));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    private static KnnGraph GraphFrom(long* ids, long n, int k, long* neighbors, float* distances, byte* metric)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be at least 1 (got {k}).");
        if (n < 0 || n > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(n), n, "n must be in 0..2^31-1.");
        Metric m = MetricExtensions.ParseMetric(NativeArgs.Utf8(metric, "metric"));
        int len = NativeArgs.Length(n, k, "neighbors");
        if (len > 0)
        {
            NativeArgs.Out(neighbors, "neighbors");
            NativeArgs.Out(distances, "distances");
        }
        var pointIds = ids == null ? Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray() : NativeArgs.Ids(ids, n, "ids").ToArray();
        return new KnnGraph(m, k, pointIds, new ReadOnlySpan<long>(neighbors, len).ToArray(), new ReadOnlySpan<float>(distances, len).ToArray());
    }
}
