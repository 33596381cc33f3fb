using System.Diagnostics;
using Engine.Data;
using Engine.Index.Spann;

namespace Engine.Benchmarks;

/// <summary>
/// <c>-- wal-spann [N]</c>: SPANN recovery for each log kind. Trains a default-spec SPANN index on 50 000 of N synthetic
/// clustered vectors (d = 96, 1 000 clusters, seed 7), checkpoints, adds all N in batches of 10 000 (logged and
/// committed, never checkpointed), closes, then times <c>SpannIndex.Open</c>: log recovery plus replaying the N
/// inserts into the index. One run per kind (each takes minutes); files in the page cache.
/// </summary>
public static class WalSpannRecoveryReport
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000;
        const int d = 96, batch = 10_000;
        var data = SyntheticData.Clustered(n, d, 1000, 7);
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        foreach (var kind in new[] { "file", "faster" })
        {
            string dir = Path.Combine(Path.GetTempPath(), "engine-wal-spann-" + Guid.NewGuid().ToString("N"));
            try
            {
                var clock = Stopwatch.StartNew();
                using (var idx = SpannIndex.Create(dir, d, Metric.L2, null, WalKinds.Provider(kind)))
                {
                    idx.Train(data.AsSpan(0, Math.Min(n, 50_000) * d));
                    for (int s = 0; s < n; s += batch)
                    {
                        int b = Math.Min(batch, n - s);
                        idx.Add(data.AsSpan(s * d, b * d), ids.AsSpan(s, b));
                    }
                }
                double build = clock.Elapsed.TotalSeconds;
                long logBytes = new DirectoryInfo(Path.Combine(dir, "wal")).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
                clock.Restart();
                using (var idx = SpannIndex.Open(dir))
                {
                    double open = clock.Elapsed.TotalSeconds;
                    Console.WriteLine($"{kind}: {n} vectors logged ({logBytes / 1048576.0:F0} MiB of log, train + add {build:F1} s); " +
                                      $"Open {open:F1} s = {n / open:F0} vectors/s replayed; count {idx.Count}; {idx.Recovery}");
                    idx.BackgroundMaintenance = false;
                }
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
        }
        return 0;
    }
}
