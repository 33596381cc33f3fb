using System.Diagnostics;
using System.Globalization;
using Engine.Collections;
using Engine.Data;

namespace Engine.Benchmarks;

/// <summary>
/// <c>-- collections [N] [D] [SPEC]</c>: a record collection (long keys, an indexed string and tags field, one vector
/// field of SPEC, default HNSW16, over N = 20 000 synthetic clustered vectors of D = 384, 100 clusters, seed 5) on the
/// default FASTER log. Times durable upserts one record per call (the first 500) and in batches of 1 000 (the rest),
/// search QPS unfiltered and under 10 % and 1 % filters (200 queries, one at a time), memory per record, files on
/// disk, and reopen (KV recovery + index rebuild).
/// </summary>
public static class CollectionsReport
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
        int d = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 384;
        string spec = args.Length > 2 ? args[2] : "HNSW16";
        const int singles = 500, batch = 1000, nq = 200;
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
                foreach (var (name, filter) in new (string, Filter?)[] { ("unfiltered", null), ("10% filter", Filter.Equal("title", "t3")), ("1% filter", Filter.ContainsTag("tags", "rare")) })
                {
                    clock.Restart();
                    for (int q = 0; q < nq; q++)
                        c.SearchAsync(queries.AsMemory(q * d, d), 10, new CollectionSearchOptions { Filter = filter }).GetAwaiter().GetResult();
                    Console.WriteLine($"  search k=10 {name}: {nq / clock.Elapsed.TotalSeconds:F0} QPS");
                }
                long disk = new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
                Console.WriteLine($"  resident index + filter columns: {c.MemoryBytes / (double)n:F0} B/record; files: {disk / (double)n:F0} B/record (KV log, checkpoints, WAL)");
            }
            var reopen = Stopwatch.StartNew();
            using (var c = RecordCollection<long>.Open(dir)) Console.WriteLine($"  reopen ({c.Count} records: KV recovery + index rebuild): {reopen.Elapsed.TotalSeconds:F1} s");
            return 0;
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
