using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Data;
using Engine.Mining.Graph;

namespace Engine.Cli;

/// <summary>
/// <c>engine knn-graph</c>: the k nearest neighbours of every vector (self excluded) through any index, streamed to
/// <c>FILE.ivecs</c> or <c>FILE.npy</c> with the distances beside it (<c>FILE.distances.fvecs</c> / <c>.npy</c>);
/// without <c>--index</c> the automatic list-major self-join runs, its probes chosen by a sampled recall check
/// (<see cref="KnnGraphBuilder.BuildAuto(ReadOnlySpan{float}, int, Metric, KnnGraphOptions, KnnGraphRows, double, int, IProgress{BuildProgress}, int)"/>).
/// Optionally near-duplicate groups at a threshold and a deduplicated id list.
/// </summary>
internal static class KnnGraphCommand
{
    public static Command Create()
    {
        var input = VectorInput.Options.Create();
        var k = new Option<int>("--k") { Description = "Neighbours per point (self excluded).", DefaultValueFactory = _ => 10 };
        var index = new Option<string?>("--index") { Description = "Index spec (Flat, IVF1024,Flat, HNSW32...); default: chosen automatically for recall@k >= --target-recall." };
        var search = new Option<string?>("--search") { Description = "Search knobs of --index as NAME=V,NAME=V (probes=16, ef=128)." };
        var target = new Option<double>("--target-recall") { Description = "Recall@k the automatic choice must reach on its sample.", DefaultValueFactory = _ => 0.95 };
        var output = new Option<string>("--out") { Description = "Output FILE.ivecs (int32 ids) or FILE.npy (int64 ids); distances go to FILE.distances.fvecs / .npy.", Required = true };
        var chunk = new Option<int>("--chunk") { Description = "Points per search call (memory bound).", DefaultValueFactory = _ => 4096 };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all).", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seed of the automatic choice's samples.", DefaultValueFactory = _ => 1 };
        var dedup = new Option<float?>("--dedup") { Description = "Near-duplicate threshold (squared l2 distance <= T, or similarity >= T): groups by union-find over the graph edges." };
        var dedupOut = new Option<string?>("--dedup-out") { Description = "With --dedup: write the kept ids (one representative per group, the smallest id) to this .ivecs/.npy file." };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON." };
        var cmd = new Command("knn-graph", "k-NN graph of a vector set (self excluded), optional near-duplicate groups and deduplication.");
        input.AddTo(cmd);
        foreach (Option o in new Option[] { k, index, search, target, output, chunk, threads, seed, dedup, dedupOut, json }) cmd.Options.Add(o);
        cmd.SetAction(r => Run(input.Load(r), new KnnGraphRequest(r.GetValue(k), r.GetValue(index), r.GetValue(search), r.GetValue(target),
            r.GetValue(output)!, r.GetValue(chunk), r.GetValue(threads), r.GetValue(seed), r.GetValue(dedup), r.GetValue(dedupOut), r.GetValue(json)),
            Console.Out, Steps.ForConsole(Console.Error)));
        return cmd;
    }

    /// <summary>Builds and writes the graph; returns the exit code.</summary>
    public static int Run(VectorInput input, KnnGraphRequest q, TextWriter output, Steps steps)
    {
        var options = new KnnGraphOptions { K = q.K, ChunkSize = q.Chunk, Threads = q.Threads,
            Search = q.Search is null ? null : Engine.Index.SearchSettings.Parse(q.Search, "--search") };
        options.Validate();
        if (q.K >= input.Count) throw new ArgumentException($"--k {q.K} must be below the number of points ({input.Count}).");
        if (q.DedupOut is not null && q.Dedup is null) throw new ArgumentException("--dedup-out needs --dedup THRESHOLD.");
        if (q.Dedup is float t) RangeSearchResult.CheckRadius(input.Metric, t);
        var (idsPath, distPath) = OutputPaths(q.Out);
        var clock = Stopwatch.StartNew();
        KnnGraphChoice? choice = null;
        IVectorIndex? idx = null;
        if (q.Index is not null) idx = MineCommand.BuildIndex(q.Index, input.Vectors, input.Dimension, input.Metric, q.Threads, steps: steps);
        using (idx)
        {
            double buildSeconds = clock.Elapsed.TotalSeconds;
            var ids = input.RowIds();
            int n = input.Count, k = q.K;
            bool npy = idsPath.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
            using var idWriter = VectorFileWriter.Create(idsPath, k, elementType: npy ? VectorElementType.Int64 : null);
            using var distWriter = VectorFileWriter.Create(distPath, k);
            long[]? keep = q.Dedup is null ? null : new long[(long)n * k];
            float[]? keepDist = q.Dedup is null ? null : new float[keep!.Length];
            var rowIds = new int[Math.Min(q.Chunk, n) * k];
            void Write(int first, ReadOnlySpan<long> nb, ReadOnlySpan<float> ds)
            {
                var row = rowIds.AsSpan(0, nb.Length);
                for (int i = 0; i < nb.Length; i++) row[i] = (int)nb[i];
                idWriter.WriteRows(row);
                distWriter.WriteRows(ds);
                if (keep is not null)
                {
                    nb.CopyTo(keep.AsSpan(first * k));
                    ds.CopyTo(keepDist.AsSpan(first * k));
                }
            }
            if (idx is null)
            {
                // No index given: the automatic list-major self-join (its lists and probes chosen by a sampled recall check).
                choice = steps.Run($"k-NN graph (n={n:N0}, k={k}, automatic)",
                    p => KnnGraphBuilder.BuildAuto(input.Vectors, input.Dimension, input.Metric, options, Write, q.TargetRecall, q.Seed, p));
                options = options with { Search = choice.Search };
            }
            else steps.Run($"k-NN graph (n={n:N0}, k={k})", p => KnnGraphBuilder.Build(idx, input.Vectors, ids, options, Write, p));
            idWriter.Complete();
            distWriter.Complete();
            double seconds = clock.Elapsed.TotalSeconds;

            NearDuplicates? dup = null;
            if (q.Dedup is float threshold)
            {
                dup = NearDuplicates.Find(new KnnGraph(input.Metric, k, ids, keep!, keepDist!), threshold);
                if (q.DedupOut is string path)
                {
                    var kept = dup.Keep();
                    bool keptNpy = path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
                    using var w = VectorFileWriter.Create(path, 1, elementType: keptNpy ? VectorElementType.Int64 : null);
                    w.WriteRows(Array.ConvertAll(kept, x => (int)x));
                    w.Complete();
                }
            }
            long peak = Process.GetCurrentProcess().PeakWorkingSet64;
            Report(output, q, input, idx?.Description ?? choice!.Spec, choice, options, buildSeconds, seconds, peak, idsPath, distPath, dup);
        }
        return 0;
    }

    /// <summary>FILE.ivecs → (FILE.ivecs, FILE.distances.fvecs); FILE.npy → (FILE.npy, FILE.distances.npy).</summary>
    internal static (string Ids, string Distances) OutputPaths(string output)
    {
        string ext = Path.GetExtension(output).ToLowerInvariant();
        if (ext is not (".ivecs" or ".npy"))
            throw new ArgumentException($"--out '{output}' must end in .ivecs or .npy.");
        string stem = output[..^ext.Length];
        return (output, stem + ".distances" + (ext == ".npy" ? ".npy" : ".fvecs"));
    }

    private static void Report(TextWriter output, KnnGraphRequest q, VectorInput input, string description, KnnGraphChoice? choice,
        KnnGraphOptions options, double buildSeconds, double seconds, long peak, string idsPath, string distPath, NearDuplicates? dup)
    {
        string settings = options.Search is { Count: > 0 } s ? string.Join(',', s.Select(kv => $"{kv.Key}={kv.Value}")) : "defaults";
        if (q.Json)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteString("input", input.Name);
                w.WriteNumber("n", input.Count);
                w.WriteNumber("d", input.Dimension);
                w.WriteString("metric", input.Metric.ToShortName());
                w.WriteNumber("k", q.K);
                w.WriteString("index", description);
                w.WriteString("search", settings);
                w.WriteBoolean("auto", choice is not null);
                if (choice is not null)
                {
                    w.WriteNumber("sampled_recall", Math.Round(choice.SampledRecall, 5));
                    w.WriteNumber("sample_size", choice.SampleSize);
                    w.WriteStartArray("tried");
                    foreach (var (setting, recall) in choice.Tried)
                    {
                        w.WriteStartObject();
                        w.WriteString("setting", setting);
                        w.WriteNumber("recall", Math.Round(recall, 5));
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteNumber("index_seconds", Math.Round(buildSeconds, 3));
                w.WriteNumber("seconds", Math.Round(seconds, 3));
                w.WriteNumber("peak_working_set_bytes", peak);
                w.WriteString("ids", idsPath);
                w.WriteString("distances", distPath);
                if (dup is not null)
                {
                    w.WriteNumber("dedup_threshold", q.Dedup!.Value);
                    w.WriteNumber("groups", dup.GroupCount);
                    w.WriteNumber("duplicate_groups", dup.Groups().Count);
                    w.WriteNumber("removed", input.Count - dup.GroupCount);
                }
                w.WriteEndObject();
            }
            output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
            return;
        }
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(inv, $"knn-graph: {input.Name} n={input.Count} d={input.Dimension} metric={input.Metric.ToShortName()} k={q.K}"));
        output.WriteLine(string.Create(inv, $"  index {description} ({settings}){(choice is null ? "" : $", chosen automatically: sampled recall@{q.K}={choice.SampledRecall:F4} on {choice.SampleSize} points")}"));
        output.WriteLine(string.Create(inv, $"  {seconds:F2} s (index {buildSeconds:F2} s), peak working set {peak / 1048576.0:F0} MiB -> {idsPath}, {distPath}"));
        if (dup is not null)
            output.WriteLine(string.Create(inv, $"  near-duplicates at {q.Dedup}: {dup.Groups().Count} groups of 2+, {input.Count - dup.GroupCount} points removed, {dup.GroupCount} kept"));
    }
}

/// <summary>The arguments of one <c>engine knn-graph</c> run.</summary>
internal sealed record KnnGraphRequest(int K, string? Index, string? Search, double TargetRecall, string Out, int Chunk = 4096,
    int Threads = 0, int Seed = 1, float? Dedup = null, string? DedupOut = null, bool Json = false);
