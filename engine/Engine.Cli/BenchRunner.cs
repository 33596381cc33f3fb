using Spectre.Console;
using System.Diagnostics;
using System.Text.Json;
using Engine.Index;
using Engine.Index.Ivf;
using Engine.Index.Spann;

namespace Engine.Cli;

/// <summary>Runs the bench: build once, then one timed search batch per setting; prints rows.</summary>
internal static class BenchRunner
{
    public static int Run(BenchOptions o, TextWriter output)
    {
        if (o.K <= 0) throw new ArgumentException($"--k must be at least 1 (got {o.K}).");
        if (o.Repeats <= 0) throw new ArgumentException($"--repeats must be at least 1 (got {o.Repeats}).");
        if (o.Threads < 0) throw new ArgumentException($"--threads must be >= 0 (got {o.Threads}).");
        var data = Engine.Data.DataSet.Load(o.DataDir, new Engine.Data.DataSetLoadOptions { MaxQueries = o.QueryLimit });
        if (data.GroundTruthK < o.K)
            throw new ArgumentException($"gt.ivecs in '{o.DataDir}' holds {data.GroundTruthK} neighbours per query, fewer than k={o.K}.");
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        var log = o.Json ? TextWriter.Null : Console.Error;

        // SPANN is a disk index: the bench builds it in a temporary directory (postings on disk, heads in RAM).
        string? spannDir = null;
        if (SpannSpec.TryParse(o.Spec, out _))
        {
            spannDir = Path.Combine(Path.GetTempPath(), "engine-bench-spann-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(spannDir);
        }
        try
        {
            using var index = DeviceIndexes.Create(o.Spec, data.Dimension, data.Metric, o.Device, spannDir);
            RunOn(index, data, o, threads, log, output, spannDir);
        }
        finally
        {
            if (spannDir is not null) Directory.Delete(spannDir, recursive: true);
        }
        return 0;
    }

    private static void RunOn(IVectorIndex index, Engine.Data.DataSet data, BenchOptions o, int threads, TextWriter log, TextWriter output, string? spannDir)
    {
        log.WriteLine($"building {index.Description} on {data.Name}: n={data.Count} d={data.Dimension} metric={data.Metric.ToShortName()}");
        var sw = Stopwatch.StartNew();
        index.Train(data.Base);
        var ids = new long[data.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        index.Add(data.Base, ids);
        double buildSeconds = sw.Elapsed.TotalSeconds;
        if (index is SpannIndex spann)
        {
            spann.Maintain();
            spann.Checkpoint();
            buildSeconds = sw.Elapsed.TotalSeconds;
        }
        long? diskBytes = spannDir is null ? null : Engine.Storage.FileLengths.OfDirectory(spannDir);
        log.WriteLine($"built in {buildSeconds:F2} s, {index.MemoryBytes / 1048576.0:F1} MiB resident" + (diskBytes is null ? "" : $", {diskBytes / 1048576.0:F1} MiB on disk"));

        var rows = new List<BenchRow>();
        int nq = data.QueryCount;
        var distances = new float[nq * o.K];
        var labels = new long[nq * o.K];
        foreach (var setting in o.Settings())
        {
            var parameters = IndexFactory.CreateParameters(index, setting, threads);
            index.Search(data.Queries, o.K, distances, labels, parameters); // warm-up (JIT, caches)
            double best = double.MaxValue;
            for (int r = 0; r < o.Repeats; r++)
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
            var row = new BenchRow(index.Description, setting, o.K, threads, data.Name, data.Count, nq, recall, nq / best, buildSeconds, index.MemoryBytes, DeviceIndexes.Describe(o.Device))
            {
                DiskBytes = diskBytes,
                ReadsPerQuery = readsPerQuery,
            };
            rows.Add(row);
            if (o.Json) output.WriteLine(row.ToJson());
            else log.WriteLine(row.ToText());
        }
        if (!o.Json && !Console.IsOutputRedirected) RenderTable(rows);
    }

    /// <summary>On a terminal, a summary table (Spectre.Console); redirected output keeps the plain lines.</summary>
    private static void RenderTable(IReadOnlyList<BenchRow> rows)
    {
        var table = new Table { Title = new TableTitle($"[bold]{Markup.Escape(rows[0].Spec)}[/] on {Markup.Escape(rows[0].Dataset)}") };
        table.AddColumns("params", $"recall@{rows[0].K}", "QPS", "build s", "MiB", "reads/q");
        foreach (var r in rows)
        {
            table.AddRow(
                Markup.Escape(r.Params.Count == 0 ? "-" : string.Join(' ', r.Params.Select(p => $"{p.Key}={p.Value}"))),
                r.Recall.ToString("F4", System.Globalization.CultureInfo.InvariantCulture),
                r.Qps.ToString("F0", System.Globalization.CultureInfo.InvariantCulture),
                r.BuildSeconds.ToString("F2", System.Globalization.CultureInfo.InvariantCulture),
                (r.IndexBytes / 1048576.0).ToString("F1", System.Globalization.CultureInfo.InvariantCulture),
                r.ReadsPerQuery?.ToString("F1", System.Globalization.CultureInfo.InvariantCulture) ?? "-");
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

    public string ToJson() => JsonRow.Write(Spec, Params, w =>
        {
            JsonRow.WriteResult(w, K, Threads, Dataset, N, Nq, Recall, Qps);
            w.WriteNumber("build_seconds", Math.Round(BuildSeconds, 3));
            w.WriteNumber("index_bytes", IndexBytes);
            w.WriteString("device", Device);
            if (DiskBytes is long disk) w.WriteNumber("disk_bytes", disk);
            if (ReadsPerQuery is double reads) w.WriteNumber("reads_per_query", Math.Round(reads, 2));
        });

    public string ToText() =>
        $"{Spec,-28} {string.Join(' ', Params.Select(p => $"{p.Key}={p.Value}")),-24} recall@{K}={Recall:F4}  qps={Qps,10:F1}  build={BuildSeconds:F2}s  bytes={IndexBytes}";
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
