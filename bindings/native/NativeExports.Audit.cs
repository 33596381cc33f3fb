using System.Runtime.InteropServices;
using Engine.Mining;
using Engine.Mining.Evaluation;

namespace Engine.Native;

public static unsafe partial class NativeExports
{
    private const string CutoffWhat = "calibrated cutoff";

    /// <summary>
    /// <c>int engine_mine_audit(engine_index* approximate, engine_index* exact, const float* anchors, int64_t n,
    /// int32_t d, const int64_t* anchor_ids, const int64_t* positive_offsets, const int64_t* positives,
    /// const int64_t* exclusion_offsets, const int64_t* exclusions, const char* options_json, char* report_json,
    /// int64_t report_capacity, int64_t* report_needed)</c>: <see cref="MiningAudit.Run"/>. Mines the input (the
    /// arguments of <c>engine_mine</c>) on <c>approximate</c> and on <c>exact</c> (an exact index, e.g. <c>Flat</c>,
    /// holding the same ids and vectors) with the same options and seed, and writes the audit report as JSON
    /// (<c>set_flips</c>, <c>flip_rate</c>, <c>rows_changed</c>, <c>threshold_flips</c>, <c>band</c>, <c>in_band</c>,
    /// <c>mean_score_error</c>, ...). Indexes of different dimension, metric or count are status 1.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mine_audit")]
    public static int MineAudit(nint approximate, nint exact, float* anchors, long n, int d, long* anchorIds,
        long* positiveOffsets, long* positives, long* exclusionOffsets, long* exclusions, byte* optionsJson,
        byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        try
        {
            var a = NativeHandles.Get<IndexHandle>(approximate, IndexWhat);
            var e = NativeHandles.Get<IndexHandle>(exact, IndexWhat);
            var options = MiningOptionsJson.Mining(optionsJson == null ? null : NativeArgs.Utf8(optionsJson, "options_json"), null, a.Index);
            var input = MiningInputFrom(a, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets, exclusions);
            var report = MiningAudit.Run(a.Index, e.Index, input, options);
            return NativeText.CopyOut(report.ToJson(), reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception ex) { return NativeErrors.Fail(ex); }
    }

    /// <summary>
    /// <c>int engine_cutoff_fit(const float* scores, const uint8_t* relevant, const int64_t* offsets,
    /// int64_t n_queries, int32_t top_k, int32_t iterations, engine_cutoff** out)</c>: fits a
    /// <see cref="CalibratedCutoff"/> on labelled queries given as CSR lists (query i owns
    /// <c>scores[offsets[i] .. offsets[i+1])</c>, larger is closer, and the aligned 0/1 <c>relevant</c> flags).
    /// Free the handle with <c>engine_cutoff_free</c>.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_cutoff_fit")]
    public static int CutoffFit(float* scores, byte* relevant, long* offsets, long nQueries, int topK, int iterations, nint* result)
    {
        try
        {
            NativeArgs.Out(result, "out");
            *result = 0;
            var queries = LabelledQueries(scores, relevant, offsets, nQueries, needLabels: true);
            *result = NativeHandles.Create(CalibratedCutoff.Fit(queries, topK, iterations));
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_cutoff_info(engine_cutoff* cutoff, int32_t* top_k, double* threshold,
    /// double* plain_threshold)</c>: the fitted top-k, the threshold on the calibrated probability and the best plain
    /// threshold on raw scores (any pointer may be NULL).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_cutoff_info")]
    public static int CutoffInfo(nint cutoff, int* topK, double* threshold, double* plainThreshold)
    {
        try
        {
            var c = NativeHandles.Get<CalibratedCutoff>(cutoff, CutoffWhat);
            if (topK != null) *topK = c.TopK;
            if (threshold != null) *threshold = c.Threshold;
            if (plainThreshold != null) *plainThreshold = c.PlainThreshold;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_cutoff_apply(engine_cutoff* cutoff, const float* scores, const int64_t* offsets,
    /// int64_t n_queries, uint8_t* keep)</c>: 1 in <c>keep</c> (offsets[n_queries] entries) for each candidate the
    /// calibrated cutoff keeps, 0 otherwise; each query's scores are mapped with that query's own statistics.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_cutoff_apply")]
    public static int CutoffApply(nint cutoff, float* scores, long* offsets, long nQueries, byte* keep)
    {
        try
        {
            var c = NativeHandles.Get<CalibratedCutoff>(cutoff, CutoffWhat);
            var queries = LabelledQueries(scores, null, offsets, nQueries, needLabels: false);
            long total = queries.Sum(q => (long)q.Scores.Length);
            if (total == 0) return (int)NativeStatus.Ok;
            NativeArgs.Out(keep, "keep");
            var output = new Span<byte>(keep, (int)total);
            int o = 0;
            foreach (var q in queries)
                foreach (bool k in c.Apply(q.Scores)) output[o++] = k ? (byte)1 : (byte)0;
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_cutoff_evaluate(engine_cutoff* cutoff, const float* scores, const uint8_t* relevant,
    /// const int64_t* offsets, int64_t n_queries, double* quality)</c>: micro-averaged precision, recall and F1 of the
    /// calibrated cutoff, then of the plain global threshold, on labelled queries (six doubles in <c>quality</c>).</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_cutoff_evaluate")]
    public static int CutoffEvaluate(nint cutoff, float* scores, byte* relevant, long* offsets, long nQueries, double* quality)
    {
        try
        {
            var c = NativeHandles.Get<CalibratedCutoff>(cutoff, CutoffWhat);
            NativeArgs.Out(quality, "quality");
            var (calibrated, plain) = c.Evaluate(LabelledQueries(scores, relevant, offsets, nQueries, needLabels: true));
            var q = new Span<double>(quality, 6);
            (q[0], q[1], q[2]) = (calibrated.Precision, calibrated.Recall, calibrated.F1);
            (q[3], q[4], q[5]) = (plain.Precision, plain.Recall, plain.F1);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary><c>int engine_cutoff_free(engine_cutoff* cutoff)</c>: NULL is a no-op; a freed or foreign handle is an
    /// error.</summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_cutoff_free")]
    public static int CutoffFree(nint cutoff)
    {
        try
        {
            if (cutoff == 0) return (int)NativeStatus.Ok;
            NativeHandles.Free<CalibratedCutoff>(cutoff, CutoffWhat);
            return (int)NativeStatus.Ok;
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    // CSR scores (and 0/1 relevance flags when labelled) as labelled queries; unlabelled queries get all-false flags.
    private static LabelledQuery[] LabelledQueries(float* scores, byte* relevant, long* offsets, long nQueries, bool needLabels)
    {
        if (nQueries < 0) throw new ArgumentOutOfRangeException("n_queries", nQueries, "n_queries must not be negative.");
        int rows = NativeArgs.Length(nQueries, 1, "offsets");
        NativeArgs.Out(offsets, "offsets");
        var off = new ReadOnlySpan<long>(offsets, rows + 1);
        if (off[0] != 0) throw new ArgumentException($"offsets must start at 0 (got {off[0]}).", "offsets");
        for (int i = 0; i < rows; i++)
            if (off[i + 1] < off[i])
                throw new ArgumentException($"offsets decrease at query {i} ({off[i]} > {off[i + 1]}).", "offsets");
        int total = NativeArgs.Length(off[rows], 1, "scores");
        if (total > 0) NativeArgs.Out(scores, "scores");
        if (total > 0 && needLabels) NativeArgs.Out(relevant, "relevant");
        var s = new ReadOnlySpan<float>(scores, total);
        var r = needLabels ? new ReadOnlySpan<byte>(relevant, total) : ReadOnlySpan<byte>.Empty;
        var queries = new LabelledQuery[rows];
        for (int i = 0; i < rows; i++)
        {
            int a = (int)off[i], b = (int)off[i + 1];
            var flags = new bool[b - a];
            for (int j = a; needLabels && j < b; j++)
            {
                if (r[j] > 1) throw new ArgumentException($"relevant[{j}] is {r[j]}; relevance flags must be 0 or 1.", "relevant");
                flags[j - a] = r[j] == 1;
            }
            queries[i] = new LabelledQuery(s[a..b].ToArray(), flags);
        }
        return queries;
    }
}
