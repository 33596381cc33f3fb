using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Data;
using Engine.Index;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>
/// <c>engine search</c>: opens an index directory written by <c>engine build</c>, searches the data set's queries
/// one query per call on <c>--threads</c> workers (closed loop), and reports recall against gt.ivecs, QPS,
/// p50/p99 per-query latency and, for disk indexes, postings and bytes read per query and cache hits.
/// </summary>
internal static class SearchCommand
{
    private const int WarmupQueries = 100;

    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "Index directory written by 'engine build'.", Required = true };
        var data = new Option<string>("--data") { Description = "Data-set directory (query.fvecs, gt.ivecs, meta.json).", Required = true };
        var k = new Option<int>("--k") { Description = "Neighbours per query.", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "Concurrent query workers, one query per call each (0 = all cores).", DefaultValueFactory = _ => 0 };
        var probes = new Option<int>("--probes") { Description = "Postings (SPANN) or lists (IVF) probed per query (0 = index default).", DefaultValueFactory = _ => 0 };
        var refine = new Option<int>("--refine") { Description = "Candidates re-ranked per result: k × R from the refine store (IVF and binary specs with ',RFlat' / ',Refine(...)', fast-scan PQ), or SPANN's rerank of coded postings (0 = index default).", DefaultValueFactory = _ => 0 };
        var eps = new Option<float?>("--eps") { Description = "SPANN query-aware pruning ε (default: the index's)." };
        var nq = new Option<int>("--nq") { Description = "Use only the first NQ queries (0 = all).", DefaultValueFactory = _ => 0 };
        var ef = new Option<int>("--ef") { Description = "HNSW: candidate list size of the search (0 = index default).", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var acceptLoss = new Option<bool>(AcceptLogLossOption) { Description = AcceptLogLossDescription };
        var device = new Option<string>("--device") { Description = "cpu, gpu (ILGPU: CUDA when present, else its CPU accelerator) or cuda (CUDA or an error): IVF indexes with PQ lists scan them on the device.", DefaultValueFactory = _ => "cpu" };
        var radius = new Option<float?>("--radius") { Description = "Range search instead of k-NN: every result with squared distance <= R (l2) or similarity >= R (ip, cosine); reports results per query and, for an approximate index, recall against an exact scan." };
        var cmd = new Command("search", "Searches a built index with a data set's queries; prints recall, QPS, latency and I/O counters.")
        {
            dir, data, k, threads, probes, refine, eps, nq, json, ef, acceptLoss, radius, device,
        };
        cmd.SetAction(r => Run(new SearchOptions(r.GetValue(dir)!, r.GetValue(data)!, r.GetValue(k), r.GetValue(threads),
            r.GetValue(probes), r.GetValue(eps), r.GetValue(nq), r.GetValue(json), r.GetValue(acceptLoss), r.GetValue(ef), r.GetValue(radius), r.GetValue(device)!,
            r.GetValue(refine)), Console.Out));
        return cmd;
    }

    /// <summary>Name of the flag that opens a SPANN index whose log lost acknowledged writes.</summary>
    public const string AcceptLogLossOption = "--accept-log-loss";

    /// <summary>Help text of <see cref="AcceptLogLossOption"/>.</summary>
    public const string AcceptLogLossDescription =
        "SPANN: open even when the write-ahead log cannot give back every acknowledged write (missing, empty, cut short); " +
        "keeps the last checkpoint and what the log still holds, moves the log aside (wal.lost-N) and starts a new one. Without it such an index is refused.";

    /// <summary>Runs the search; returns the exit code. Opening the index changes it only to cut a torn log tail (or,
    /// with <c>--accept-log-loss</c>, to start a new log).</summary>
    public static int Run(SearchOptions o, TextWriter output)
    {
        if (o.K <= 0) throw new ArgumentException($"--k must be at least 1 (got {o.K}).");
        if (o.Threads < 0) throw new ArgumentException($"--threads must be >= 0 (got {o.Threads}).");
        if (o.Probes < 0) throw new ArgumentException($"--probes must be >= 0 (got {o.Probes}).");
        if (o.Ef < 0) throw new ArgumentException($"--ef must be >= 0 (got {o.Ef}).");
        if (o.Refine < 0) throw new ArgumentException($"--refine must be >= 0 (got {o.Refine}).");
        if (o.QueryLimit < 0) throw new ArgumentException($"--nq must be >= 0 (got {o.QueryLimit}).");
        using var index = IndexDirectory.Open(o.IndexDir, o.AcceptLogLoss);
        DeviceIndexes.Attach(index, o.Device);
        var set = DataSet.Load(o.DataDir, new DataSetLoadOptions { MaxQueries = o.QueryLimit, RequireGroundTruth = o.Radius is null });
        if (o.Radius is null && set.GroundTruthK < o.K)
            throw new ArgumentException($"gt.ivecs in '{o.DataDir}' holds {set.GroundTruthK} neighbours per query, fewer than k={o.K}.");
        if (index.Dimension != set.Dimension)
            throw new ArgumentException($"The data set '{o.DataDir}' has dimension {set.Dimension} but the index in '{o.IndexDir}' has dimension {index.Dimension}.");
        if (index.Metric != set.Metric)
            throw new ArgumentException($"The data set '{o.DataDir}' uses metric {set.Metric.ToShortName()} but the index in '{o.IndexDir}' uses {index.Metric.ToShortName()}.");
        var settings = new Dictionary<string, string>();
        if (o.Probes > 0) settings["probes"] = o.Probes.ToString(CultureInfo.InvariantCulture);
        if (o.Eps is float e) settings["eps"] = e.ToString("R", CultureInfo.InvariantCulture);
        if (o.Ef > 0) settings["ef"] = o.Ef.ToString(CultureInfo.InvariantCulture);
        if (o.Refine > 0) settings["refine"] = o.Refine.ToString(CultureInfo.InvariantCulture);
        // The knobs are checked once, before any query runs (and before a range search, which takes the same ones).
        IndexFactory.CreateParameters(index, settings, 1);
        // Non-finite query values are named by their row in the data set here: the searches below take one query
        // at a time, and the index would count rows from 0 in each call.
        Guard.Finite(set.Queries, set.Dimension, $"The queries of '{o.DataDir}'");
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        if (o.Radius is float radius) return RangeSearchRun.Run(index, set, radius, settings, threads, o.Json, output);

        int nq = set.QueryCount, d = set.Dimension, k = o.K;
        var distances = new float[nq * k];
        var labels = new long[nq * k];
        // Warm-up (JIT, head index) on a few queries, untimed and uncounted.
        var warm = IndexFactory.CreateParameters(index, settings, 1);
        for (int i = 0; i < Math.Min(WarmupQueries, nq); i++)
            index.Search(set.Queries.AsSpan(i * d, d), k, distances.AsSpan(i * k, k), labels.AsSpan(i * k, k), warm);

        var stats = new SearchStats();
        var parameters = IndexFactory.CreateParameters(index, settings, 1, stats);
        var latency = new long[nq];
        int next = -1;
        var wall = Stopwatch.StartNew();
        var workers = new Thread[threads];
        Exception? failure = null;
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                try
                {
                    for (int i = Interlocked.Increment(ref next); i < nq; i = Interlocked.Increment(ref next))
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        index.Search(set.Queries.AsSpan(i * d, d), k, distances.AsSpan(i * k, k), labels.AsSpan(i * k, k), parameters);
                        latency[i] = Stopwatch.GetTimestamp() - t0;
                    }
                }
                catch (Exception ex)
                {
                    Interlocked.CompareExchange(ref failure, ex, null);
                    Volatile.Write(ref next, nq); // stop the other workers
                }
            }) { IsBackground = true, Name = $"search-{t}" };
            workers[t].Start();
        }
        foreach (var w in workers) w.Join();
        double seconds = wall.Elapsed.TotalSeconds;
        if (failure is not null) ParallelWork.Rethrow(failure);

        Array.Sort(latency);
        var result = new SearchResult(index.Description, set.Name, (int)index.Count, nq, k, threads, settings,
            set.RecallAtK(labels, k, k), nq / seconds, Millis(Percentile(latency, 0.50)), Millis(Percentile(latency, 0.99)),
            stats.PostingsRead / (double)nq, stats.CacheHits / (double)nq, stats.BytesRead, stats.CacheHits,
            stats.ListsProbed / (double)nq, index.MemoryBytes, IndexDirectory.Bytes(Path.GetFullPath(o.IndexDir)), index is SpannIndex);
        if (o.Json) output.WriteLine(result.ToJson());
        else if (output == Console.Out && Terminal.IsInteractive) Spectre.Console.AnsiConsole.Write(Tables.Search(result));
        else output.WriteLine(result.ToText());
        return 0;
    }

    /// <summary>Nearest-rank percentile of sorted ticks.</summary>
    private static long Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static double Millis(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

/// <summary>Options of one <c>engine search</c> run.</summary>
internal sealed record SearchOptions(string IndexDir, string DataDir, int K = 10, int Threads = 0, int Probes = 0,
    float? Eps = null, int QueryLimit = 0, bool Json = false, bool AcceptLogLoss = false, int Ef = 0, float? Radius = null, string Device = "cpu", int Refine = 0);

/// <summary>What <c>engine search</c> measured.</summary>
internal sealed record SearchResult(string Spec, string Dataset, int N, int Nq, int K, int Threads,
    IReadOnlyDictionary<string, string> Params, double Recall, double Qps, double P50Ms, double P99Ms,
    double PostingsReadPerQuery, double CacheHitsPerQuery, long BytesRead, long CacheHits, double ProbedPerQuery,
    long IndexBytes, long DiskBytes, bool DiskIndex)
{
    public string ToJson() => JsonRow.Write(Spec, Params, w =>
        {
            JsonRow.WriteResult(w, K, Threads, Dataset, N, Nq, Recall, Qps);
            w.WriteNumber("p50_ms", Math.Round(P50Ms, 4));
            w.WriteNumber("p99_ms", Math.Round(P99Ms, 4));
            w.WriteNumber("index_bytes", IndexBytes);
            w.WriteNumber("disk_bytes", DiskBytes);
            if (DiskIndex)
            {
                w.WriteNumber("postings_probed_per_query", Math.Round(ProbedPerQuery, 2));
                w.WriteNumber("postings_read_per_query", Math.Round(PostingsReadPerQuery, 2));
                w.WriteNumber("cache_hits_per_query", Math.Round(CacheHitsPerQuery, 2));
                w.WriteNumber("reads_per_query", Math.Round(PostingsReadPerQuery + CacheHitsPerQuery, 2));
                w.WriteNumber("bytes_read", BytesRead);
                w.WriteNumber("bytes_read_per_query", Math.Round(BytesRead / (double)Math.Max(1, Nq), 1));
                w.WriteNumber("cache_hits", CacheHits);
            }
        });

    public string ToText()
    {
        var inv = CultureInfo.InvariantCulture;
        string p = Params.Count == 0 ? "defaults" : string.Join(' ', Params.Select(kv => $"{kv.Key}={kv.Value}"));
        string text = string.Create(inv,
            $"{Spec} on {Dataset} (n={N}, {p}): nq={Nq} k={K} threads={Threads}\n" +
            $"  recall@{K}={Recall:F4}  qps={Qps:F1}  p50={P50Ms:F3} ms  p99={P99Ms:F3} ms\n" +
            $"  resident {IndexBytes / 1048576.0:F2} MiB, on disk {DiskBytes / 1048576.0:F1} MiB");
        if (DiskIndex)
            text += string.Create(inv,
                $"\n  postings/query: probed {ProbedPerQuery:F1}, read {PostingsReadPerQuery:F1}, cache hits {CacheHitsPerQuery:F1}; " +
                $"bytes read {BytesRead} ({BytesRead / (double)Math.Max(1, Nq) / 1024:F1} KiB/query), cache hits {CacheHits}");
        return text;
    }
}
