using System.CommandLine;
using System.Diagnostics;
using Engine.Data;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Hubness;

namespace Engine.Cli;

/// <summary>
/// <c>engine demo</c>: the main job end to end on embedded, seeded synthetic data (no network): build exact and
/// approximate indexes, search, report recall and speed, then mine hard negatives and measure hubness.
/// <c>engine demo train</c> (<see cref="TrainDemoCommand"/>) trains a small model on negatives mined every epoch.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var n = new Option<int>("--n") { Description = "Base vectors.", DefaultValueFactory = _ => 20_000 };
        var nq = new Option<int>("--nq") { Description = "Queries (also the mining anchors).", DefaultValueFactory = _ => 500 };
        var d = new Option<int>("--d") { Description = "Dimension.", DefaultValueFactory = _ => 64 };
        var seed = new Option<long>("--seed") { Description = "Seed of the synthetic data and of mining.", DefaultValueFactory = _ => 7 };
        var threads = new Option<int>("--threads") { Description = "Threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("demo", "Builds indexes on embedded seeded data, searches them, mines hard negatives; prints recall and speed.")
        {
            n, nq, d, seed, threads,
        };
        cmd.Subcommands.Add(TrainDemoCommand.Create());
        cmd.Subcommands.Add(RefreshDemoCommand.Create());
        cmd.SetAction(r => Run(r.GetValue(n), r.GetValue(nq), r.GetValue(d), r.GetValue(seed), r.GetValue(threads), Console.Out));
        return cmd;
    }

    internal static int Run(int n, int nq, int d, long seed, int threads, TextWriter o)
    {
        if (n < 1000) throw new ArgumentException($"--n must be at least 1000 (got {n}).");
        if (nq < 1) throw new ArgumentException($"--nq must be at least 1 (got {nq}).");
        if (d < 4) throw new ArgumentException($"--d must be at least 4 (got {d}).");
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        const int k = 10;
        int clusters = Math.Max(8, n / 300);

        var sw = Stopwatch.StartNew();
        var data = SyntheticData.ClusteredDataSet("demo", n, nq, d, clusters, seed, Metric.L2, groundTruthK: 100, threads: threads);
        o.WriteLine($"data     {n} base + {nq} queries, d={d}, {clusters} clusters, seed {seed}, exact top-100 in {sw.Elapsed.TotalSeconds:F2} s");

        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        var specs = new List<(string Spec, Dictionary<string, string> Settings)>
        {
            ("Flat", new()),
        };
        specs.AddRange(DemoSpecs.Approximate(n, d));
        IVectorIndex? exact = null;
        foreach (var (spec, settings) in specs)
        {
            var index = IndexFactory.Create(spec, d, Metric.L2);
            sw.Restart();
            index.Train(data.Base);
            index.Add(data.Base, ids);
            double build = sw.Elapsed.TotalSeconds;
            var parameters = IndexFactory.CreateParameters(index, settings, threads);
            var dist = new float[nq * k];
            var lab = new long[nq * k];
            index.Search(data.Queries, k, dist, lab, parameters); // warm-up
            sw.Restart();
            index.Search(data.Queries, k, dist, lab, parameters);
            double secs = sw.Elapsed.TotalSeconds;
            double recall = GroundTruth.RecallAtK(lab, k, data.GroundTruth!, data.GroundTruthK, k);
            string set = settings.Count == 0 ? "" : " " + string.Join(' ', settings.Select(kv => $"{kv.Key}={kv.Value}"));
            o.WriteLine($"search   {index.Description + set,-46} recall@{k}={recall:F4}  qps={nq / secs,10:F0}  build={build:F2}s  memory={index.MemoryBytes / 1048576.0:F1} MiB");
            if (exact is null) exact = index;
            else index.Dispose();
        }

        // Mining: anchors are the queries, the positive of each is its exact nearest neighbour.
        var positives = new long[nq][];
        for (int i = 0; i < nq; i++) positives[i] = [data.GroundTruth![i * data.GroundTruthK]];
        var options = new MiningOptions
        {
            NumNegatives = 5, RangeMin = 5, RangeMax = 100, RelativeMargin = 0.05f,
            DuplicateThreshold = 0.99f, Sampling = SamplingStrategy.Top, Seed = (ulong)seed, Threads = threads,
        };
        var miner = new HardNegativeMiner(exact!, options);
        var rows = miner.MineAll(MiningInput.FromVectors(data.Queries, d, positives), out var report);
        o.WriteLine($"mine     {report.RowsWritten} rows × {options.NumNegatives} negatives in {report.WallSeconds:F2} s; " +
            $"skipped: positives {report.SkippedPositives}, near-duplicates {report.SkippedNearDuplicates}, margin {report.SkippedMargin}; " +
            $"shortfall rows {report.ShortfallRows}; distinct-negative ratio {report.DistinctNegativeRatio:F3}");
        if (rows.Count > 0)
        {
            var row = rows[0];
            o.WriteLine($"         anchor {row.Anchor}: positive {row.Positives[0]} (score {row.PositiveScores[0]:F2}) → negatives [{string.Join(", ", row.Negatives)}]");
            o.WriteLine($"         scores [{string.Join(", ", row.Scores.Select(s => s.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))}]  (−squared L2)");
        }

        var hub = HubnessAnalyzer.Analyze(exact!, ids, new HubnessOptions { K = k, SampleSize = Math.Min(n, 5000), Seed = (ulong)seed, Threads = threads });
        o.WriteLine($"hubness  N_{k} over {hub.QueryCount} sampled items: skewness {hub.Skewness:F2}, Robin Hood {hub.RobinHood:F2}, Gini {hub.Gini:F2}, antihubs {hub.AntihubShare:P1}");
        exact!.Dispose();
        return 0;
    }
}

/// <summary>Approximate index settings the demo runs after the exact one.</summary>
internal static class DemoSpecs
{
    public static IEnumerable<(string, Dictionary<string, string>)> Approximate(int n, int d)
    {
        // nlist: a power of two near 2·√n; PQ with d/2 sub-quantizers at 4 bits (fast-scan), exact refine.
        int nlist = 1 << (int)Math.Round(Math.Log2(Math.Max(16, 2 * Math.Sqrt(n))));
        int m = d % 2 == 0 ? d / 2 : d;
        yield return ($"IVF{nlist},PQ{m}x4fs,RFlat", new() { ["probes"] = "8", ["refine"] = "4" });
        yield return ("SPANN", new() { ["probes"] = "32" });
    }
}
