using System.Diagnostics;
using System.Globalization;
using Engine.Collections;
using Engine.Data;
using Engine.Index.Hnsw;

namespace Engine.Benchmarks;

/// <summary>
/// <c>-- collections [N] [D] [SPEC]</c>: a record collection (long keys, an indexed string and tags field, one vector
/// field of SPEC, default HNSW16, over N = 20 000 synthetic clustered vectors of D = 384, 100 clusters, seed 5) on the
/// default FASTER log. Times durable upserts one record per call (the first 500) and in batches of 1 000 (the rest),
/// search QPS unfiltered and under 10 % and 1 % filters (200 queries, one at a time), memory per record, files on
/// disk, a checkpoint (KV + index snapshot), and reopen from the snapshot (then, for HNSW, unfiltered search at ef 64,
/// 128, 256 and 512 on the reopened index) and by a full rebuild (snapshots off). Each search setting also reports
/// recall@10 against exact search
/// over the records that setting allows (the target: filtered recall ≥ 0.95 × unfiltered), and the process's
/// managed heap and working set after loading. The target size is <c>collections 1000000 384 HNSW16</c>
/// (a quiet machine: about 1.5 GB of vectors plus the index; the ground truth is a brute-force pass per setting).
/// </summary>
public static class CollectionsReport
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
        int d = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 384;
        string spec = args.Length > 2 ? args[2] : "HNSW16";
        int singles = Math.Min(500, n / 2); const int batch = 1000, nq = 200;
        var data = SyntheticData.Clustered(n, d, 100, 5);
        var queries = SyntheticData.ClusteredQueries(nq, d, 100, 5);
        string dir = Path.Combine(Path.GetTempPath(), "engine-collections-" + Guid.NewGuid().ToString("N"));
        var schema = new CollectionSchema(typeof(long),
            [new DataField("title", FieldType.String, Indexed: true), new DataField("tags", FieldType.Tags, Indexed: true)],
            [new VectorField("v", d, Metric.L2, spec)]);
        Record<long> Make(int i) => new(i)
        {
            Data = { ["title"] = "t" + (i % 10), ["tags"] = new[] { i % 100 == 0 ? "rare" : "common" } },
            Vectors = { ["v"] = data.AsSpan(i * d, d).ToArray() },
        };
        HashSet<long>[] unfilteredTruth = [];
        try
        {
            using (var c = RecordCollection<long>.Open(dir, schema))
            {
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < singles; i++) c.UpsertAsync(Make(i)).GetAwaiter().GetResult();
                double single = singles / clock.Elapsed.TotalSeconds;
                clock.Restart();
                for (int s = singles; s < n; s += batch)
                    c.UpsertBatchAsync(Enumerable.Range(s, Math.Min(batch, n - s)).Select(Make)).GetAwaiter().GetResult();
                double batched = (n - singles) / clock.Elapsed.TotalSeconds;
                Console.WriteLine($"{spec}, {n} records of d={d}: upsert batch of 1: {single:F0} records/s; batch of {batch}: {batched:F0} records/s");
                var settings = new (string Name, Filter? Filter, Func<int, bool> Allowed)[]
                {
                    ("unfiltered", null, _ => true),
                    ("10% filter", Filter.Equal("title", "t3"), i => i % 10 == 3),
                    ("1% filter", Filter.ContainsTag("tags", "rare"), i => i % 100 == 0),
                };
                double unfilteredRecall = 0;
                foreach (var (name, filter, allowed) in settings)
                {
                    var (found, qps) = Search(c, queries, nq, d, new CollectionSearchOptions { Filter = filter });
                    var truth = Truth(data, queries, n, d, allowed);
                    if (filter is null) unfilteredTruth = truth;
                    double recall = Recall(truth, found);
                    if (filter is null) unfilteredRecall = recall;
                    Console.WriteLine($"  search k=10 {name}: {qps:F0} QPS, recall@10 {recall:F3} ({recall / unfilteredRecall:F3} of unfiltered)");
                }
                GC.Collect();
                Console.WriteLine($"  process: managed heap {GC.GetTotalMemory(false) / (double)n:F0} B/record, working set {Environment.WorkingSet / (double)n:F0} B/record");
                Console.WriteLine($"  resident index + filter columns: {c.MemoryBytes / (double)n:F0} B/record");
                clock.Restart();
                c.CheckpointAsync().GetAwaiter().GetResult();
                Console.WriteLine($"  checkpoint (KV checkpoint + index snapshot): {clock.Elapsed.TotalSeconds:F1} s");
            }
            long disk = new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
            long snapshotDisk = new DirectoryInfo(Path.Combine(dir, "snapshots")).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
            Console.WriteLine($"  files: {disk / (double)n:F0} B/record (KV log, checkpoints, WAL, index snapshot), of which the snapshot {snapshotDisk / (double)n:F0} B/record");
            // Reopen from the snapshot (payload checksums verified), then the same directory rebuilt from the records.
            var reopen = Stopwatch.StartNew();
            using (var c = RecordCollection<long>.Open(dir))
            {
                Console.WriteLine($"  reopen ({c.Count} records, {c.Recovery.IndexSource}, {c.Recovery.TailRecordsReplayed} tail records): {reopen.Elapsed.TotalSeconds:F1} s");
                // The reopened index answers like the one written, and unfiltered recall is a matter of ef at this size.
                if (spec.StartsWith("HNSW", StringComparison.Ordinal))
                    foreach (int ef in new[] { 64, 128, 256, 512 })
                    {
                        var (found, qps) = Search(c, queries, nq, d, new CollectionSearchOptions { Parameters = new HnswSearchParameters { Ef = ef } });
                        Console.WriteLine($"  after reopen, search k=10 unfiltered ef={ef}: {qps:F0} QPS, recall@10 {Recall(unfilteredTruth, found):F3}");
                    }
            }
            reopen.Restart();
            using (var c = RecordCollection<long>.Open(dir, options: new CollectionOptions { VerifyPayloadsOnOpen = false }))
                Console.WriteLine($"  reopen ({c.Count} records, {c.Recovery.IndexSource}, payload checksums not verified): {reopen.Elapsed.TotalSeconds:F1} s");
            reopen.Restart();
            using (var c = RecordCollection<long>.Open(dir, options: new CollectionOptions { IndexSnapshots = false }))
                Console.WriteLine($"  reopen ({c.Count} records, {c.Recovery.IndexSource}: KV recovery + index rebuild): {reopen.Elapsed.TotalSeconds:F1} s");
            return 0;
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>One query at a time: each query's result keys and the queries per second.</summary>
    static (long[][] Found, double Qps) Search(RecordCollection<long> c, float[] queries, int nq, int d, CollectionSearchOptions options)
    {
        var found = new long[nq][];
        var clock = Stopwatch.StartNew();
        for (int q = 0; q < nq; q++)
            found[q] = c.SearchAsync(queries.AsMemory(q * d, d), 10, options).GetAwaiter().GetResult().Select(r => r.Record.Key).ToArray();
        return (found, nq / clock.Elapsed.TotalSeconds);
    }

    /// <summary>Each query's exact top-10 (L2) over the allowed records.</summary>
    static HashSet<long>[] Truth(float[] data, float[] queries, int n, int d, Func<int, bool> allowed)
    {
        int nq = queries.Length / d;
        var truth = new HashSet<long>[nq];
        Parallel.For(0, nq, q =>
        {
            var query = queries.AsSpan(q * d, d);
            var best = new PriorityQueue<long, float>();
            for (int i = 0; i < n; i++)
            {
                if (!allowed(i)) continue;
                float dist = System.Numerics.Tensors.TensorPrimitives.Distance(query, data.AsSpan(i * d, d));
                if (best.Count < 10) best.Enqueue(i, -dist);
                else if (best.TryPeek(out _, out float worst) && -dist > worst) best.EnqueueDequeue(i, -dist);
            }
            var set = new HashSet<long>();
            while (best.Count > 0) set.Add(best.Dequeue());
            truth[q] = set;
        });
        return truth;
    }

    /// <summary>Mean recall@10 of <paramref name="found"/> against <paramref name="truth"/>.</summary>
    static double Recall(HashSet<long>[] truth, long[][] found) =>
        found.Select((f, q) => f.Count(truth[q].Contains)).Sum() / (10.0 * found.Length);
}
