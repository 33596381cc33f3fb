using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Bench;
using Engine.Data;
using Engine.Index;
using Engine.Index.MultiVector;
using Engine.MultiVector;

namespace Engine.Cli;

/// <summary>
/// Multi-vector verbs: <c>engine data mv-patches</c> (images → patch-token sets with exact Chamfer ground truth) and
/// <c>engine mv bench</c> (MUVERA recall@k / QPS / Chamfer evaluations against brute-force Chamfer).
/// </summary>
internal static class MultiVectorCommands
{
    /// <summary><c>engine data mv-patches --from DIR --out MVDIR</c>.</summary>
    public static Command CreatePatches()
    {
        var from = new Option<string>("--from") { Description = "Image data-set directory (base.fvecs / query.fvecs of side × side grey-scale images, e.g. from `engine data fetch mnist`).", Required = true };
        var output = new Option<string>("--out") { Description = "Multi-vector data-set directory to write.", Required = true };
        var side = new Option<int>("--side") { Description = "Image side in pixels.", DefaultValueFactory = _ => 28 };
        var patch = new Option<int>("--patch") { Description = "Patch side (divides --side; 7 gives 16 tokens per 28 × 28 image).", DefaultValueFactory = _ => 7 };
        var n = new Option<int>("--n") { Description = "Use only the first N base images (0 = all).", DefaultValueFactory = _ => 0 };
        var nq = new Option<int>("--nq") { Description = "Use only the first NQ query images (0 = all; exact Chamfer ground truth costs n × nq set comparisons).", DefaultValueFactory = _ => 1000 };
        var k = new Option<int>("--k") { Description = "Exact Chamfer neighbours stored per query in gt.ivecs.", DefaultValueFactory = _ => GroundTruth.DefaultK };
        var threads = new Option<int>("--threads") { Description = "Worker threads for the ground truth (0 = all cores).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("mv-patches", "Turns an image data set into a multi-vector set (one token per non-overlapping patch, with position features) with exact Chamfer top-k ground truth.");
        foreach (var o in new Option[] { from, output, side, patch, n, nq, k, threads }) cmd.Options.Add(o);
        cmd.SetAction(DataCommands.Guarded(r =>
        {
            string dir = r.GetValue(from)!;
            int sideV = r.GetValue(side), nV = r.GetValue(n), nqV = r.GetValue(nq), kV = r.GetValue(k), threadsV = r.GetValue(threads);
            if (nV < 0) throw new ArgumentException($"--n must be >= 0 (got {nV}).");
            if (nqV < 0) throw new ArgumentException($"--nq must be >= 0 (got {nqV}).");
            if (kV < 1) throw new ArgumentException($"--k must be >= 1 (got {kV}).");
            var set = DataSet.Load(dir, new DataSetLoadOptions { RequireGroundTruth = false });
            if (set.Dimension != sideV * sideV)
                throw new ArgumentException($"'{dir}' holds d={set.Dimension} vectors, not {sideV} × {sideV} images (--side {sideV}).");
            int count = nV == 0 ? set.Count : Math.Min(nV, set.Count), queries = nqV == 0 ? set.QueryCount : Math.Min(nqV, set.QueryCount);
            // One pixel scale for base and queries: the largest pixel of both.
            float scale = Math.Max(System.Numerics.Tensors.TensorPrimitives.Max<float>(set.Base), System.Numerics.Tensors.TensorPrimitives.Max<float>(set.Queries));
            var items = ImagePatches.FromImages(set.Base.AsSpan(0, count * set.Dimension), sideV, r.GetValue(patch), scale);
            var qs = ImagePatches.FromImages(set.Queries.AsSpan(0, queries * set.Dimension), sideV, r.GetValue(patch), scale);
            kV = Math.Min(kV, count);
            var clock = Stopwatch.StartNew();
            Console.Error.WriteLine($"gt: exact Chamfer of {queries} queries × {count} items ({items.TotalTokens / Math.Max(1, count)} tokens each, d={items.Dimension}), k={kV}");
            var gt = ExactChamfer.TopK(items, qs, kV, threadsV);
            Console.Error.WriteLine($"gt: {clock.Elapsed.TotalSeconds:F1} s");
            string name = string.Create(CultureInfo.InvariantCulture, $"{set.Name}-patches{r.GetValue(patch)}");
            new MultiVectorDataSet(name, items, qs, gt, kV).Save(r.GetValue(output)!);
            Console.WriteLine($"wrote {r.GetValue(output)}: {count} items, {queries} queries, {items.TotalTokens} tokens, d={items.Dimension}");
            return 0;
        }));
        return cmd;
    }

    /// <summary><c>engine mv bench</c> under <c>engine mv</c>.</summary>
    public static Command Create()
    {
        var cmd = new Command("mv", "Multi-vector (MUVERA) retrieval: bench.");
        cmd.Subcommands.Add(CreateBench());
        return cmd;
    }

    private static Command CreateBench()
    {
        var data = new Option<string>("--data") { Description = "Multi-vector data-set directory (from `engine data mv-patches`).", Required = true };
        var k = new Option<int>("--k") { Description = "Results per query (recall@k against exact Chamfer).", DefaultValueFactory = _ => 10 };
        var spec = new Option<string>("--index") { Description = "FDE index spec (any composition string: Flat, IVF256,Flat, HNSW32, ...).", DefaultValueFactory = _ => "Flat" };
        var ksim = new Option<int>("--ksim") { Description = "SimHash bits per repetition (2^ksim buckets).", DefaultValueFactory = _ => 4 };
        var dproj = new Option<int>("--dproj") { Description = "Inner projection dimension per bucket (0 = none).", DefaultValueFactory = _ => 16 };
        var reps = new Option<int>("--reps") { Description = "FDE repetitions R.", DefaultValueFactory = _ => 20 };
        var final = new Option<int>("--final") { Description = "Final count-sketch dimension (0 = none).", DefaultValueFactory = _ => 0 };
        var tokens = new Option<string>("--tokens") { Description = "Token storage for the re-rank: f32 or f16.", DefaultValueFactory = _ => "f16" };
        var seed = new Option<int>("--seed") { Description = "FDE seed.", DefaultValueFactory = _ => 42 };
        var sweep = new Option<string[]>("--sweep") { Description = "NAME=V1,V2,... to sweep: candidates (N), reps (query repetitions), and the FDE index's own knobs (probes, ef, ...).", AllowMultipleArgumentsPerToken = false };
        var nq = new Option<int>("--nq") { Description = "Use only the first NQ queries (0 = all).", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Search and build threads (0 = all cores).", DefaultValueFactory = _ => 0 };
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats per setting; QPS is the best.", DefaultValueFactory = _ => 3 };
        var exact = new Option<bool>("--exact") { Description = "Also time brute-force Chamfer search (the baseline row).", DefaultValueFactory = _ => true };
        var json = new Option<bool>("--json") { Description = "Only the JSON rows (one object per setting, on stdout); without it progress lines go to stderr too." };
        var cmd = new Command("bench", "Builds a MUVERA index over a multi-vector data set and prints recall@k, QPS, Chamfer evaluations per query and build time per setting, with brute-force Chamfer as baseline.");
        foreach (var o in new Option[] { data, k, spec, ksim, dproj, reps, final, tokens, seed, sweep, nq, threads, repeats, exact, json }) cmd.Options.Add(o);
        cmd.SetAction(DataCommands.Guarded(r =>
        {
            var options = new MuveraOptions
            {
                SimHashBits = r.GetValue(ksim), ProjectionDimension = r.GetValue(dproj), Repetitions = r.GetValue(reps),
                FinalDimension = r.GetValue(final), Seed = r.GetValue(seed),
            };
            var storage = r.GetValue(tokens)!.ToLowerInvariant() switch
            {
                "f32" => TokenEncoding.F32,
                "f16" => TokenEncoding.F16,
                var t => throw new ArgumentException($"--tokens '{t}' is not f32 or f16."),
            };
            Bench(r.GetValue(data)!, r.GetValue(k), r.GetValue(spec)!, options, storage, BenchRun.ParseSweeps(r.GetValue(sweep) ?? []),
                r.GetValue(nq), r.GetValue(threads), r.GetValue(repeats), r.GetValue(exact), Console.Out, r.GetValue(json) ? TextWriter.Null : Console.Error);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Runs the bench: JSON rows to <paramref name="output"/>, progress to <paramref name="log"/>.</summary>
    internal static void Bench(string dir, int k, string spec, MuveraOptions options, TokenEncoding storage,
        IReadOnlyList<KeyValuePair<string, string[]>> sweeps, int nq, int threads, int repeats, bool exact, TextWriter output, TextWriter log)
    {
        if (k < 1) throw new ArgumentException($"--k must be >= 1 (got {k}).");
        if (repeats < 1) throw new ArgumentException($"--repeats must be >= 1 (got {repeats}).");
        if (nq < 0) throw new ArgumentException($"--nq must be >= 0 (got {nq}).");
        SearchParameters.CheckThreads(threads, "--threads");
        var set = MultiVectorDataSet.Load(dir, nq);
        if (set.GroundTruth is null) throw new ArgumentException($"'{dir}' has no {DataSet.GroundTruthFile}; recall needs exact Chamfer ground truth (engine data mv-patches writes it).");
        if (set.GroundTruthK < k) throw new ArgumentException($"The ground truth holds {set.GroundTruthK} neighbours per query, fewer than --k {k}.");
        int resolved = threads > 0 ? threads : Environment.ProcessorCount;
        log.WriteLine($"{set.Name}: {set.Base.Count} items, {set.Queries.Count} queries, d={set.Base.Dimension}; building {options} over {spec}");
        var clock = Stopwatch.StartNew();
        using var index = new MultiVectorIndex(set.Base.Dimension, options, spec, storage);
        index.Build(set.Base, threads);
        double buildSeconds = clock.Elapsed.TotalSeconds;
        log.WriteLine($"built in {buildSeconds:F1} s ({index.MemoryBytes / (1 << 20)} MiB)");
        int q = set.Queries.Count;
        var scores = new float[q * k];
        var labels = new long[q * k];
        foreach (var setting in new BenchRun(spec, sweeps).Settings())
        {
            var parameters = MuveraSearchParameters.FromSettings(index, setting, threads);
            var (qps, stats) = Time(repeats, p => index.Search(set.Queries, k, scores, labels, p), parameters);
            output.WriteLine(JsonRow.Write(index.Description, setting, w =>
            {
                JsonRow.WriteResult(w, k, resolved, set.Name, set.Base.Count, q, GroundTruth.RecallAtK(labels, k, set.GroundTruth, set.GroundTruthK, k), qps);
                w.WriteNumber("chamfer_evals_per_query", Math.Round(stats.DistancesComputed / (double)stats.Queries, 2));
                w.WriteNumber("build_seconds", Math.Round(buildSeconds, 2));
                w.WriteNumber("memory_bytes", index.MemoryBytes);
            }));
        }
        if (!exact) return;
        var plain = new SearchParameters { Threads = threads };
        var (exactQps, exactStats) = Time(repeats, p => index.SearchExact(set.Queries, k, scores, labels, p), plain);
        output.WriteLine(JsonRow.Write("exact-chamfer", new Dictionary<string, string>(), w =>
        {
            JsonRow.WriteResult(w, k, resolved, set.Name, set.Base.Count, q, GroundTruth.RecallAtK(labels, k, set.GroundTruth, set.GroundTruthK, k), exactQps);
            w.WriteNumber("chamfer_evals_per_query", Math.Round(exactStats.DistancesComputed / (double)exactStats.Queries, 2));
            w.WriteNumber("build_seconds", 0);
        }));
    }

    /// <summary>One timed search per repeat with fresh counters; the best QPS and the last repeat's counters.</summary>
    private static (double Qps, SearchStats Stats) Time<TParams>(int repeats, Action<TParams> search, TParams parameters) where TParams : SearchParameters
    {
        double best = 0;
        SearchStats stats = new();
        for (int i = 0; i < repeats; i++)
        {
            stats = new SearchStats();
            var p = With(parameters, stats);
            var clock = Stopwatch.StartNew();
            search(p);
            best = Math.Max(best, stats.Queries / Math.Max(clock.Elapsed.TotalSeconds, 1e-9));
        }
        return (best, stats);
    }

    private static TParams With<TParams>(TParams p, SearchStats stats) where TParams : SearchParameters => p switch
    {
        MuveraSearchParameters m => (TParams)(SearchParameters)new MuveraSearchParameters
        {
            Candidates = m.Candidates, Repetitions = m.Repetitions, FdeParameters = m.FdeParameters, Threads = m.Threads, Stats = stats,
        },
        _ => (TParams)new SearchParameters { Threads = p.Threads, Stats = stats },
    };
}
