using Spectre.Console;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Engine.Bench;
using Engine.Index;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>
/// Runs the bench: for each run (spec and sweep) build once, then one timed search batch per setting and an
/// optional one-query-at-a-time latency pass; prints rows, writes the CSV and the recall–QPS plot (with peers).
/// </summary>
internal static class BenchRunner
{
    /// <summary>Runs with plain progress lines on stderr (none with --json).</summary>
    public static int Run(BenchOptions o, TextWriter output) => Run(o, output, Steps.Plain(o.Json ? TextWriter.Null : Console.Error));

    /// <summary>Runs with the given progress reporter; returns the exit code (0).</summary>
    public static int Run(BenchOptions o, TextWriter output, Steps steps)
    {
        Measure(o, output, steps);
        return 0;
    }

    /// <summary>Runs everything <paramref name="o"/> asks for and returns the engine's rows (peers are not included).</summary>
    internal static IReadOnlyList<BenchResult> Measure(BenchOptions o, TextWriter output, Steps steps)
    {
        if (o.K <= 0) throw new ArgumentException($"--k must be at least 1 (got {o.K}).");
        if (o.Repeats <= 0) throw new ArgumentException($"--repeats must be at least 1 (got {o.Repeats}).");
        if (!(o.MinSeconds >= 0 && o.MinSeconds <= 3600)) throw new ArgumentException($"--min-seconds must be between 0 and 3600 (got {o.MinSeconds}).");
        if (o.Threads < 0) throw new ArgumentException($"--threads must be >= 0 (got {o.Threads}).");
        if (o.LatencyQueries < 0) throw new ArgumentException($"--latency-queries must be >= 0 (got {o.LatencyQueries}).");
        if (o.QueryLimit < 0) throw new ArgumentException($"--nq must be >= 0 (0 = all queries; got {o.QueryLimit}).");
        if (o.PlotFile is not null) CheckOutputPath(o.PlotFile, "--plot", ".png", ".svg");
        if (o.CsvFile is not null) CheckOutputPath(o.CsvFile, "--csv");
        // Everything that can be wrong with the inputs fails before the long work starts.
        var runs = o.Runs();
        IReadOnlyList<BenchResult> peers = [];
        if (o.PeersFile is not null)
        {
            var read = PeerRows.Read(o.PeersFile);
            foreach (var s in read.Skipped) Console.Error.WriteLine($"peers: skipped {s}");
            if (read.Rows.Count == 0) throw new ArgumentException($"Peers file '{o.PeersFile}' holds no result rows.");
            // recall@100 next to recall@10 would compare different things on one axis.
            if (read.Rows.FirstOrDefault(r => r.K > 0 && r.K != o.K) is { } other)
                throw new ArgumentException($"Peers file '{o.PeersFile}' has rows measured at k={other.K} ({other.Series}); this bench runs k={o.K}.");
            peers = read.Rows;
        }
        var data = steps.Run($"load {o.DataDir}", _ => BenchData.Load(o.DataDir, o.QueryLimit));
        if (data.GroundTruthK < o.K)
            throw new ArgumentException($"The ground truth of '{o.DataDir}' holds {data.GroundTruthK} neighbours per query, fewer than k={o.K}.");
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        // Every run's spec and settings are checked before the first build: a bad value in the last run must not
        // throw away the rows of the runs before it.
        steps.Run("check the runs", _ => { foreach (var run in runs) CheckRun(run, data, o, threads); });

        var rows = new List<BenchRow>();
        foreach (var run in runs)
            rows.AddRange(RunSpec(run, data, o, threads, output, steps));
        if (!o.Json && steps.Interactive) RenderTable(rows, data.Name);

        var results = rows.Select(r => r.ToResult()).ToList();
        var all = results.Concat(peers).ToList();
        if (o.CsvFile is not null)
        {
            BenchCsv.Write(o.CsvFile, all);
            if (!o.Json) Console.Error.WriteLine($"wrote {all.Count} rows to {o.CsvFile}");
        }
        if (o.PlotFile is not null)
        {
            string title = o.Title ?? string.Create(CultureInfo.InvariantCulture,
                $"{data.Name}: n={data.Count}, d={data.Dimension}, nq={data.QueryCount}, k={o.K}, {threads} threads");
            RecallQpsPlot.Save(o.PlotFile, all, new RecallQpsPlotOptions { Title = title, K = o.K });
            if (!o.Json) Console.Error.WriteLine($"wrote the recall-QPS plot of {all.Count} points to {o.PlotFile}");
        }
        return results;
    }

    private static void CheckOutputPath(string path, string option, params string[] extensions)
    {
        if (extensions.Length > 0 && !extensions.Contains(Path.GetExtension(path).ToLowerInvariant()))
            throw new ArgumentException($"{option} '{path}' must end in {string.Join(" or ", extensions)}.");
        if (Directory.Exists(path))
            throw new ArgumentException($"{option} '{path}' is a directory; give a file name.");
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{option} '{path}': directory '{dir}' does not exist.");
    }

    // The index of a run created (unbuilt) and every setting of its sweep parsed against it; the index is dropped.
    private static void CheckRun(BenchRun run, Engine.Data.DataSet data, BenchOptions o, int threads)
    {
        string? spannDir = SpannSpec.TryParse(run.Index, out _) ? NewSpannDirectory() : null;
        try
        {
            using var index = DeviceIndexes.Create(run.Index, data.Dimension, data.Metric, o.Device, spannDir);
            foreach (var setting in run.Settings()) IndexFactory.CreateParameters(index, setting, threads);
        }
        finally
        {
            if (spannDir is not null) TryDelete(spannDir);
        }
    }

    private static List<BenchRow> RunSpec(BenchRun run, Engine.Data.DataSet data, BenchOptions o, int threads, TextWriter output, Steps steps)
    {
        // SPANN is a disk index: the bench builds it in a temporary directory (postings on disk, heads in RAM), which
        // goes when the run ends, on Ctrl-C or SIGTERM (a handler deletes it before the process ends), and, when the
        // process was killed outright, at the next SPANN bench (directories of processes that no longer run).
        string? spannDir = null;
        PosixSignalRegistration[] cleanup = [];
        if (SpannSpec.TryParse(run.Index, out _))
        {
            spannDir = NewSpannDirectory();
            string dir = spannDir;
            cleanup = [PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => TryDelete(dir)),
                PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => TryDelete(dir))];
        }
        try
        {
            using var index = DeviceIndexes.Create(run.Index, data.Dimension, data.Metric, o.Device, spannDir);
            return RunOn(index, run, data, o, threads, output, steps, spannDir);
        }
        finally
        {
            foreach (var registration in cleanup) registration.Dispose();
            if (spannDir is not null) Directory.Delete(spannDir, recursive: true);
        }
    }

    private const string SpannDirectoryPrefix = "engine-bench-spann-";

    // A fresh temporary SPANN directory named after this process; those left by bench processes that no longer run
    // (killed before their cleanup) are deleted first.
    private static string NewSpannDirectory()
    {
        string temp = Path.GetTempPath();
        foreach (var stale in Directory.EnumerateDirectories(temp, SpannDirectoryPrefix + "*"))
        {
            if (!IndexPublisher.TryParseOwner(Path.GetFileName(stale).AsSpan(SpannDirectoryPrefix.Length), out int pid))
                continue; // not named by this code: leave it
            if (pid != Environment.ProcessId && !IndexPublisher.IsRunning(pid)) TryDelete(stale);
        }
        string dir = Path.Combine(temp, $"{SpannDirectoryPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    // Best effort (a signal handler, a stale directory): an error leaves the directory for the next sweep.
    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static List<BenchRow> RunOn(IVectorIndex index, BenchRun run, Engine.Data.DataSet data, BenchOptions o, int threads,
        TextWriter output, Steps steps, string? spannDir)
    {
        var settings = run.Settings().ToList();
        // Settings the index does not understand (or values out of range) fail before the build, not after it.
        var parameters = settings.Select(s => IndexFactory.CreateParameters(index, s, threads)).ToList();
        var log = o.Json ? TextWriter.Null : Console.Error;
        // On a terminal the progress bars own the screen while a step runs; the rows come in the table at the end.
        var rowLog = steps.Interactive ? TextWriter.Null : log;
        log.WriteLine($"building {index.Description} on {data.Name}: n={data.Count} d={data.Dimension} metric={data.Metric.ToShortName()}");
        var sw = Stopwatch.StartNew();
        var ids = new long[data.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        steps.Run($"train {index.Description}", progress => index.Train(data.Base, progress));
        steps.Run($"add {data.Count:N0} vectors", progress => index.Add(data.Base, ids, progress));
        double buildSeconds = sw.Elapsed.TotalSeconds;
        if (index is SpannIndex spann)
        {
            steps.Run("maintain and checkpoint", progress =>
            {
                spann.Maintain(progress);
                spann.Checkpoint();
            });
            buildSeconds = sw.Elapsed.TotalSeconds;
        }
        long? diskBytes = spannDir is null ? null : Engine.Storage.FileLengths.OfDirectory(spannDir);
        log.WriteLine($"built in {buildSeconds:F2} s, {index.MemoryBytes / 1048576.0:F1} MiB resident" + (diskBytes is null ? "" : $", {diskBytes / 1048576.0:F1} MiB on disk")
            + (BuildCommand.AnisotropicNote(index) is { } note ? $"; {note}" : ""));

        return steps.Run($"sweep {index.Description} ({settings.Count} settings)", progress =>
        {
            var rows = new List<BenchRow>();
            for (int i = 0; i < settings.Count; i++)
            {
                var row = Measure(index, data, o, threads, settings[i], parameters[i], buildSeconds, diskBytes);
                rows.Add(row);
                if (o.Json) output.WriteLine(row.ToJson());
                else rowLog.WriteLine(row.ToText());
                progress.Report(new BuildProgress("sweep", i + 1, settings.Count));
            }
            return rows;
        });
    }

    private const double WarmupSeconds = 1.0;

    private const int MaxTimedPasses = 100_000;

    private static BenchRow Measure(IVectorIndex index, Engine.Data.DataSet data, BenchOptions o, int threads,
        Dictionary<string, string> setting, SearchParameters parameters, double buildSeconds, long? diskBytes)
    {
        int nq = data.QueryCount, d = data.Dimension;
        var distances = new float[nq * o.K];
        var labels = new long[nq * o.K];
        // Warm-up (JIT tiers, caches): at least two passes and about a second, so the timed passes run tier-1 code
        // (tiered compilation promotes hot methods after a delay; a single pass of a fast setting finished before that
        // and made the first settings of every spec look slower than later ones). The second is spent whatever a pass
        // costs: a cap of 50 passes ended the warm-up of a 1 ms setting after 50 ms, and identical settings then
        // measured 166k, 261k, 308k, 386k QPS in a row.
        var warm = Stopwatch.StartNew();
        for (int pass = 0; pass < 2 || (warm.Elapsed.TotalSeconds < WarmupSeconds && pass < MaxTimedPasses); pass++)
            index.Search(data.Queries, o.K, distances, labels, parameters);
        double best = double.MaxValue;
        var sw = new Stopwatch();
        var timed = Stopwatch.StartNew();
        // --repeats passes, and more until --min-seconds of timing have run (capped, for settings of a few microseconds)
        for (int r = 0; r < o.Repeats || (timed.Elapsed.TotalSeconds < o.MinSeconds && r < MaxTimedPasses); r++)
        {
            sw.Restart();
            index.Search(data.Queries, o.K, distances, labels, parameters);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        double recall = data.RecallAtK(labels, o.K, o.K);
        double? readsPerQuery = null;
        if (index is SpannIndex)
        {
            // One more (untimed) pass with counters: postings read from disk or cache per query.
            var stats = new SearchStats();
            index.Search(data.Queries, o.K, distances, labels, IndexFactory.CreateParameters(index, setting, threads, stats));
            readsPerQuery = (stats.PostingsRead + stats.CacheHits) / (double)nq;
        }
        double? rescoredPerQuery = null;
        if (index is Engine.Index.Ivf.IvfIndex { Spec.Refine: not null })
        {
            // One more (untimed) pass with counters: candidates re-scored from the refine store per query (RaBitQ's
            // error-bound re-ranking stops early, PQ re-scores all k × refine).
            var stats = new SearchStats();
            index.Search(data.Queries, o.K, distances, labels, IndexFactory.CreateParameters(index, setting, threads, stats));
            rescoredPerQuery = stats.Refined / (double)nq;
        }
        double? p50 = null, p99 = null;
        int latencyQueries = Math.Min(o.LatencyQueries, nq);
        if (latencyQueries > 0)
        {
            // ann-benchmarks style latency: each query alone, one thread.
            var single = IndexFactory.CreateParameters(index, setting, 1);
            var ticks = new long[latencyQueries];
            for (int q = 0; q < latencyQueries; q++)
            {
                long t0 = Stopwatch.GetTimestamp();
                index.Search(data.Queries.AsSpan(q * d, d), o.K, distances.AsSpan(0, o.K), labels.AsSpan(0, o.K), single);
                ticks[q] = Stopwatch.GetTimestamp() - t0;
            }
            Array.Sort(ticks);
            p50 = Millis(Percentile(ticks, 0.50));
            p99 = Millis(Percentile(ticks, 0.99));
        }
        return new BenchRow(index.Description, setting, o.K, threads, data.Name, data.Count, nq, recall, nq / best, buildSeconds, index.MemoryBytes, DeviceIndexes.DescribeUse(index, o.Device))
        {
            DiskBytes = diskBytes,
            ReadsPerQuery = readsPerQuery,
            RescoredPerQuery = rescoredPerQuery,
            P50Ms = p50,
            P99Ms = p99,
        };
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static long Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static double Millis(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>On a terminal, a summary table (Spectre.Console); redirected output keeps the plain lines.</summary>
    private static void RenderTable(IReadOnlyList<BenchRow> rows, string dataset)
    {
        if (rows.Count == 0) return;
        var inv = CultureInfo.InvariantCulture;
        var table = new Table { Title = new TableTitle($"[bold]bench[/] on {Markup.Escape(dataset)}") };
        table.AddColumns("spec", "params", $"recall@{rows[0].K}", "QPS", "p50 ms", "p99 ms", "build s", "MiB", "reads/q");
        foreach (var r in rows)
        {
            table.AddRow(
                Markup.Escape(r.Spec),
                Markup.Escape(r.Params.Count == 0 ? "-" : string.Join(' ', r.Params.Select(p => $"{p.Key}={p.Value}"))),
                r.Recall.ToString("F4", inv),
                r.Qps.ToString("F0", inv),
                r.P50Ms?.ToString("F3", inv) ?? "-",
                r.P99Ms?.ToString("F3", inv) ?? "-",
                r.BuildSeconds.ToString("F2", inv),
                (r.IndexBytes / 1048576.0).ToString("F1", inv),
                r.ReadsPerQuery?.ToString("F1", inv) ?? "-");
        }
        AnsiConsole.Write(table);
    }
}

/// <summary>One bench result, printed with the same field names as peers.py.</summary>
internal sealed record BenchRow(string Spec, IReadOnlyDictionary<string, string> Params, int K, int Threads,
    string Dataset, int N, int Nq, double Recall, double Qps, double BuildSeconds, long IndexBytes, string Device)
{
    /// <summary>Bytes on disk (disk indexes only).</summary>
    public long? DiskBytes { get; init; }

    /// <summary>Postings read per query, from disk or cache (disk indexes only).</summary>
    public double? ReadsPerQuery { get; init; }

    /// <summary>Candidates re-scored from the refine store per query (IVF specs with a refine stage only).</summary>
    public double? RescoredPerQuery { get; init; }

    /// <summary>Median single-query, single-thread latency in milliseconds (null when not measured).</summary>
    public double? P50Ms { get; init; }

    /// <summary>99th-percentile single-query, single-thread latency in milliseconds (null when not measured).</summary>
    public double? P99Ms { get; init; }

    public string ToJson() => JsonRow.Write(Spec, Params, w =>
        {
            JsonRow.WriteResult(w, K, Threads, Dataset, N, Nq, Recall, Qps);
            w.WriteNumber("build_seconds", Math.Round(BuildSeconds, 3));
            w.WriteNumber("index_bytes", IndexBytes);
            w.WriteString("device", Device);
            if (P50Ms is double p50) w.WriteNumber("p50_ms", Math.Round(p50, 4));
            if (P99Ms is double p99) w.WriteNumber("p99_ms", Math.Round(p99, 4));
            if (DiskBytes is long disk) w.WriteNumber("disk_bytes", disk);
            if (ReadsPerQuery is double reads) w.WriteNumber("reads_per_query", Math.Round(reads, 2));
            if (RescoredPerQuery is double rescored) w.WriteNumber("rescored_per_query", Math.Round(rescored, 2));
        });

    public string ToText() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Spec,-28} {string.Join(' ', Params.Select(p => $"{p.Key}={p.Value}")),-24} recall@{K}={Recall:F4}  qps={Qps,10:F1}  build={BuildSeconds:F2}s  bytes={IndexBytes}")
        + (P50Ms is double a && P99Ms is double b ? string.Create(CultureInfo.InvariantCulture, $"  p50={a:F3}ms p99={b:F3}ms") : "");

    /// <summary>The row as a plot / CSV point.</summary>
    public BenchResult ToResult() => new(BenchResult.EngineSystem, Spec, Params, Recall, Qps)
    {
        K = K,
        BuildSeconds = BuildSeconds,
        P50Ms = P50Ms,
        P99Ms = P99Ms,
        MemoryBytes = IndexBytes,
        DiskBytes = DiskBytes,
        ReadsPerQuery = ReadsPerQuery,
    };
}

/// <summary>One JSON object per result row: <c>system</c>, <c>spec</c>, <c>params</c> (numbers where they parse), then the caller's fields.</summary>
internal static class JsonRow
{
    public static string Write(string spec, IReadOnlyDictionary<string, string> parameters, Action<Utf8JsonWriter> fields)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("system", "engine");
            w.WriteString("spec", spec);
            w.WriteStartObject("params");
            foreach (var (key, value) in parameters)
            {
                if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double num))
                    w.WriteNumber(key, num);
                else w.WriteString(key, value);
            }
            w.WriteEndObject();
            fields(w);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>The fields every result row has: k, threads, dataset, n, nq, recall, qps.</summary>
    public static void WriteResult(Utf8JsonWriter w, int k, int threads, string dataset, int n, int nq, double recall, double qps)
    {
        w.WriteNumber("k", k);
        w.WriteNumber("threads", threads);
        w.WriteString("dataset", dataset);
        w.WriteNumber("n", n);
        w.WriteNumber("nq", nq);
        w.WriteNumber("recall", Math.Round(recall, 5));
        w.WriteNumber("qps", Math.Round(qps, 1));
    }
}
