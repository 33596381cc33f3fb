using System.Runtime.InteropServices;
using Engine.Mining;
using Engine.Mining.Hubness;
using Engine.Mining.Output;

namespace Engine.Native;

public static unsafe partial class NativeExports
{
    /// <summary>
    /// <c>int engine_mine(engine_index* index, const float* anchors, int64_t n, int32_t d, const int64_t* anchor_ids,
    /// const int64_t* positive_offsets, const int64_t* positives, const int64_t* exclusion_offsets,
    /// const int64_t* exclusions, const char* options_json, int64_t* negatives, float* scores, int32_t width,
    /// char* report_json, int64_t report_capacity, int64_t* report_needed)</c>.
    /// </summary>
    /// <remarks>
    /// Anchors are either external vectors (<c>anchors</c>, n × d) or corpus ids (<c>anchor_ids</c>, n); exactly one
    /// is given. Positives (and optional exclusions) are CSR lists: anchor i owns
    /// <c>positives[positive_offsets[i] .. positive_offsets[i+1])</c>. Results: row i of <c>negatives</c> /
    /// <c>scores</c> (n × width, width ≥ num_negatives) holds anchor i's negatives best first, padded with -1 / NaN
    /// (a row dropped by the shortfall policy is all padding). The mining report (JSON) goes to
    /// <c>report_json</c> when given.
    /// </remarks>
    [UnmanagedCallersOnly(EntryPoint = "engine_mine")]
    public static int Mine(nint index, float* anchors, long n, int d, long* anchorIds, long* positiveOffsets,
        long* positives, long* exclusionOffsets, long* exclusions, byte* optionsJson, long* negatives, float* scores,
        int width, byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        try
        {
            return MineToBuffers(index, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets,
                exclusions, null, optionsJson, negatives, scores, width, reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_mine_with_occurrence(engine_index* index, const float* anchors, int64_t n, int32_t d,
    /// const int64_t* anchor_ids, const int64_t* positive_offsets, const int64_t* positives,
    /// const int64_t* exclusion_offsets, const int64_t* exclusions, const int64_t* occurrence_ids,
    /// const int32_t* occurrence, int64_t n_occurrence, const char* options_json, int64_t* negatives, float* scores,
    /// int32_t width, char* report_json, int64_t report_capacity, int64_t* report_needed)</c>: <c>engine_mine</c>
    /// with hubness-aware sampling. <c>occurrence[i]</c> is the k-occurrence N_k of corpus id
    /// <c>occurrence_ids[i]</c> (e.g. from <c>engine_hubness</c>); with option <c>hubness_gamma</c> = γ &gt; 0 a
    /// candidate's sampling weight is multiplied by max(N_k, 1)^−γ (<see cref="MiningOptions.HubnessGamma"/>).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mine_with_occurrence")]
    public static int MineWithOccurrence(nint index, float* anchors, long n, int d, long* anchorIds,
        long* positiveOffsets, long* positives, long* exclusionOffsets, long* exclusions, long* occurrenceIds,
        int* occurrence, long nOccurrence, byte* optionsJson, long* negatives, float* scores, int width,
        byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        try
        {
            var table = OccurrenceTable(occurrenceIds, occurrence, nOccurrence);
            return MineToBuffers(index, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets,
                exclusions, table, optionsJson, negatives, scores, width, reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    private static int MineToBuffers(nint index, float* anchors, long n, int d, long* anchorIds, long* positiveOffsets,
        long* positives, long* exclusionOffsets, long* exclusions, Dictionary<long, int>? occurrence, byte* optionsJson,
        long* negatives, float* scores, int width, byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
        var options = MiningOptionsJson.Mining(optionsJson == null ? null : NativeArgs.Utf8(optionsJson, "options_json"), occurrence, h.Index);
        if (width < options.NumNegatives)
            throw new ArgumentException($"width ({width}) is smaller than num_negatives ({options.NumNegatives}).", nameof(width));
        if (n > 0) NativeArgs.Out(negatives, "negatives"); // no anchors: no rows, NULL outputs are fine
        var input = MiningInputFrom(h, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets, exclusions);
        int len = NativeArgs.Length(n, width, "negatives");
        var outIds = new Span<long>(negatives, len);
        var outScores = scores == null ? Span<float>.Empty : new Span<float>(scores, len);
        var report = new MiningReport(options.Seed);
        new HardNegativeMiner(h.Index, options).MineToRows(input, report, width, outIds, outScores);
        if (reportJson == null && reportCapacity == 0 && reportNeeded == null) return (int)NativeStatus.Ok;
        return NativeText.CopyOut(report.ToJson(indented: false), reportJson, reportCapacity, reportNeeded);
    }

    /// <summary>
    /// <c>int engine_mine_to_file(engine_index* index, const float* anchors, int64_t n, int32_t d,
    /// const int64_t* anchor_ids, const int64_t* positive_offsets, const int64_t* positives,
    /// const int64_t* exclusion_offsets, const int64_t* exclusions, const char* options_json, const char* jsonl_path,
    /// char* report_json, int64_t report_capacity, int64_t* report_needed)</c>: like <c>engine_mine</c>, but the rows
    /// go to a JSON-lines file (one <c>{"anchor", "positives", "negatives", "scores", "positive_scores"}</c> object
    /// per kept anchor, written to a temporary file and renamed when complete).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mine_to_file")]
    public static int MineToFile(nint index, float* anchors, long n, int d, long* anchorIds, long* positiveOffsets,
        long* positives, long* exclusionOffsets, long* exclusions, byte* optionsJson, byte* jsonlPath,
        byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        try
        {
            return MineToJsonl(index, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets,
                exclusions, null, optionsJson, jsonlPath, reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    /// <summary>
    /// <c>int engine_mine_to_file_with_occurrence(engine_index* index, const float* anchors, int64_t n, int32_t d,
    /// const int64_t* anchor_ids, const int64_t* positive_offsets, const int64_t* positives,
    /// const int64_t* exclusion_offsets, const int64_t* exclusions, const int64_t* occurrence_ids,
    /// const int32_t* occurrence, int64_t n_occurrence, const char* options_json, const char* jsonl_path,
    /// char* report_json, int64_t report_capacity, int64_t* report_needed)</c>: <c>engine_mine_to_file</c> with the
    /// k-occurrence table of <c>engine_mine_with_occurrence</c>.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_mine_to_file_with_occurrence")]
    public static int MineToFileWithOccurrence(nint index, float* anchors, long n, int d, long* anchorIds,
        long* positiveOffsets, long* positives, long* exclusionOffsets, long* exclusions, long* occurrenceIds,
        int* occurrence, long nOccurrence, byte* optionsJson, byte* jsonlPath, byte* reportJson, long reportCapacity,
        long* reportNeeded)
    {
        try
        {
            var table = OccurrenceTable(occurrenceIds, occurrence, nOccurrence);
            return MineToJsonl(index, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets,
                exclusions, table, optionsJson, jsonlPath, reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }

    private static int MineToJsonl(nint index, float* anchors, long n, int d, long* anchorIds, long* positiveOffsets,
        long* positives, long* exclusionOffsets, long* exclusions, Dictionary<long, int>? occurrence, byte* optionsJson,
        byte* jsonlPath, byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
        var options = MiningOptionsJson.Mining(optionsJson == null ? null : NativeArgs.Utf8(optionsJson, "options_json"), occurrence, h.Index);
        string path = NativeArgs.Utf8(jsonlPath, "jsonl_path");
        var input = MiningInputFrom(h, anchors, n, d, anchorIds, positiveOffsets, positives, exclusionOffsets, exclusions);
        var miner = new HardNegativeMiner(h.Index, options);
        MiningReport report;
        using (var sink = new JsonlMiningWriter(path)) report = miner.MineTo(input, sink);
        if (reportJson == null && reportCapacity == 0 && reportNeeded == null) return (int)NativeStatus.Ok;
        return NativeText.CopyOut(report.ToJson(indented: false), reportJson, reportCapacity, reportNeeded);
    }

    /// <summary>
    /// Reads a k-occurrence table: <paramref name="n"/> (id, N_k) pairs with distinct ids and N_k ≥ 0. An empty
    /// table (n = 0) is allowed; ids absent from the table count as N_k ≤ 1 (weight 1).
    /// </summary>
    private static Dictionary<long, int> OccurrenceTable(long* ids, int* counts, long n)
    {
        var keys = NativeArgs.Ids(ids, n, "occurrence_ids");
        if (n > 0 && counts == null) throw new ArgumentNullException("occurrence", "occurrence is a null pointer.");
        var values = n == 0 ? ReadOnlySpan<int>.Empty : new ReadOnlySpan<int>(counts, keys.Length);
        var table = new Dictionary<long, int>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            if (values[i] < 0)
                throw new ArgumentException($"occurrence[{i}] (N_k of id {keys[i]}) is {values[i]}; k-occurrences must be >= 0.", "occurrence");
            if (!table.TryAdd(keys[i], values[i]))
                throw new ArgumentException($"occurrence_ids lists id {keys[i]} twice (again at position {i}).", "occurrence_ids");
        }
        return table;
    }

    private static MiningInput MiningInputFrom(IndexHandle h, float* anchors, long n, int d, long* anchorIds,
        long* positiveOffsets, long* positives, long* exclusionOffsets, long* exclusions)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "The number of anchors must not be negative.");
        if ((anchors == null) == (anchorIds == null) && n > 0)
            throw new ArgumentException("Give exactly one of anchors (vectors) and anchor_ids (corpus ids).", "anchors");
        int rows = NativeArgs.Length(n, 1, "anchors");
        var pos = NativeArgs.Csr(positiveOffsets, positives, rows, "positives")
            ?? throw new ArgumentNullException("positives", "positive_offsets / positives are null pointers.");
        var exc = NativeArgs.Csr(exclusionOffsets, exclusions, rows, "exclusions");
        return anchors != null
            ? MiningInput.FromVectors(NativeArgs.Rows(anchors, n, d, h.Index, "anchors").ToArray(), d, pos, exc)
            : MiningInput.FromCorpusIds(NativeArgs.Ids(anchorIds, n, "anchor_ids").ToArray(), pos, exc);
    }

    /// <summary>
    /// <c>int engine_hubness(engine_index* index, const int64_t* corpus_ids, int64_t n_ids, const float* queries,
    /// int64_t nq, int32_t d, const char* options_json, int32_t* occurrence, char* report_json,
    /// int64_t report_capacity, int64_t* report_needed)</c>: k-occurrence N_k of every id in <c>corpus_ids</c>
    /// (written to <c>occurrence</c>, may be NULL) and the hubness summary as JSON. With <c>queries == NULL</c> and
    /// <c>nq == 0</c> the corpus itself (or a seeded sample, option <c>sample_size</c>) is the query bank; given queries
    /// with <c>nq == 0</c> are refused (status 1 naming nq), as C# refuses an empty query bank.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "engine_hubness")]
    public static int Hubness(nint index, long* corpusIds, long nIds, float* queries, long nq, int d, byte* optionsJson,
        int* occurrence, byte* reportJson, long reportCapacity, long* reportNeeded)
    {
        try
        {
            var h = NativeHandles.Get<IndexHandle>(index, IndexWhat);
            var options = MiningOptionsJson.Hubness(optionsJson == null ? null : NativeArgs.Utf8(optionsJson, "options_json"));
            long[] ids = NativeArgs.Ids(corpusIds, nIds, "corpus_ids").ToArray();
            // queries == NULL with nq == 0 selects the corpus bank; given queries must hold rows (as in C#).
            if (queries != null && nq == 0)
                throw new ArgumentException("nq is 0 but queries is given: hubness needs at least one query (pass queries = NULL with nq = 0 to use the corpus as the query bank).", "nq");
            HubnessReport report = queries == null && nq == 0
                ? HubnessAnalyzer.Analyze(h.Index, ids, options)
                : HubnessAnalyzer.Analyze(h.Index, ids, NativeArgs.Rows(queries, nq, d, h.Index, "queries"), options);
            if (occurrence != null)
            {
                var occ = new Span<int>(occurrence, ids.Length);
                for (int i = 0; i < ids.Length; i++) occ[i] = report.Occurrence[ids[i]];
            }
            return NativeText.CopyOut(report.ToJson(), reportJson, reportCapacity, reportNeeded);
        }
        catch (Exception e) { return NativeErrors.Fail(e); }
    }
}
