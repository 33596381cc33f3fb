using System.Diagnostics;
using System.Globalization;
using Engine.Data;
using Engine.Index.Hnsw;

namespace Engine.Benchmarks;

/// <summary>
/// <c>-- hnsw DIR [SPEC] [NQ]</c>: the engine's half of the HNSW comparison with hnswlib (the other half is
/// <c>bench/hnsw/hnswlib_report.py</c>, which prints the same lines for hnswlib). Builds SPEC (default
/// <c>HNSW16</c>, efConstruction 200 like hnswlib's M 16 / efC 200) over the data set with 2 build threads and
/// prints, per ef: recall@10, process CPU time per query of a one-thread batch search (best of 3; CPU time is
/// what a shared machine leaves comparable), and wall-clock p50 / p99 of single-query calls (one thread; only
/// meaningful on a quiet machine). Also build wall and CPU seconds and resident bytes per vector.
/// </summary>
public static class HnswPeerReport
{
    private static readonly int[] Efs = [10, 15, 20, 30, 40, 60, 80, 120, 160, 240, 320];

    public static int Run(string[] args)
    {
        if (args.Length < 1)
        {
            Console.Error.WriteLine("usage: hnsw DIR [SPEC] [NQ]");
            return 2;
        }
        try { return Measure(args); }
        catch (Exception ex) when (ex is ArgumentException or IOException or FormatException or InvalidOperationException)
        {
            // a missing directory, a bad spec or NQ: one line naming it, not a stack trace
            Console.Error.WriteLine($"error: {ex.Message}");
            return 2;
        }
    }

    private static int Measure(string[] args)
    {
        var data = DataSet.Load(args[0]);
        string spec = args.Length > 1 ? args[1] : "HNSW16";
        int nq = data.QueryCount;
        if (args.Length > 2 && (!int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out nq) || nq < 1))
            throw new ArgumentException($"NQ '{args[2]}' must be a positive integer.");
        nq = Math.Min(nq, data.QueryCount);
        const int k = 10;
        int d = data.Dimension;
        using var proc = Process.GetCurrentProcess();
        var ids = new long[data.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        GC.Collect();
        proc.Refresh();
        long rss0 = proc.WorkingSet64;
        using var index = new HnswIndex(spec, d, data.Metric) { BuildThreads = 2 };
        var clock = Stopwatch.StartNew();
        var cpu0 = proc.TotalProcessorTime;
        index.Train(data.Base);
        index.Add(data.Base, ids);
        double buildWall = clock.Elapsed.TotalSeconds;
        proc.Refresh();
        double buildCpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
        GC.Collect();
        proc.Refresh();
        Console.WriteLine(FormattableString.Invariant(
            $"engine {index.Description} on {data.Name} n={data.Count} d={d} nq={nq}: build wall {buildWall:F2} s, cpu {buildCpu:F2} s (2 threads), {(proc.WorkingSet64 - rss0) / (double)data.Count:F0} B/vector resident growth ({index.MemoryBytes / (double)data.Count:F0} counted by MemoryBytes)"));
        var queries = data.Queries.AsSpan(0, nq * d).ToArray();
        var dist = new float[nq * k];
        var labels = new long[nq * k];
        var lat = new double[nq];
        foreach (int ef in Efs)
        {
            var p = new HnswSearchParameters { Ef = ef, Threads = 1 };
            index.Search(queries, k, dist, labels, p); // warm-up
            double cpu = double.MaxValue;
            for (int r = 0; r < 3; r++)
            {
                proc.Refresh();
                var c0 = proc.TotalProcessorTime;
                index.Search(queries, k, dist, labels, p);
                proc.Refresh();
                cpu = Math.Min(cpu, (proc.TotalProcessorTime - c0).TotalSeconds);
            }
            double recall = Recall(data, labels, nq, k);
            for (int i = 0; i < nq; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                index.Search(queries.AsSpan(i * d, d), k, dist.AsSpan(0, k), labels.AsSpan(0, k), p);
                lat[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }
            Array.Sort(lat);
            Console.WriteLine(FormattableString.Invariant(
                $"ef {ef} recall {recall:F4} cpu_us_per_query {cpu / nq * 1e6:F1} p50_us {lat[nq / 2]:F1} p99_us {lat[Math.Min(nq - 1, (int)(nq * 0.99))]:F1}"));
        }
        return 0;
    }

    // Recall@k of the first nq queries (the ground truth cut to the same rows).
    private static double Recall(DataSet data, long[] labels, int nq, int k) =>
        GroundTruth.RecallAtK(labels.AsSpan(0, nq * k), k, data.GroundTruth.AsSpan(0, nq * data.GroundTruthK), data.GroundTruthK, k);
}
