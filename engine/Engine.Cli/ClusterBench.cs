using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Bench;
using Engine.Collections;
using Engine.Data;
using Engine.Distributed;
using Engine.Index;

namespace Engine.Cli;

/// <summary>Options of <c>engine cluster bench</c>.</summary>
internal sealed record ClusterBenchOptions(
    string DataPath, string Spec, int[] SiloCounts, int Shards, int Replicas, int K, Dictionary<string, string> Settings,
    int QueryLimit, int Batch, int LatencyQueries, int BasePort, bool Baseline, bool Json, int InFlight = 4,
    string Sharding = "hash", int Centroids = 0, int CentroidProbes = 0, bool Records = false, double WarmUpSeconds = 3)
{
    /// <summary>How long the throughput and latency loops run untimed before they are timed (see <c>ClusterBench.Latency</c>).</summary>
    public TimeSpan WarmUp => TimeSpan.FromSeconds(WarmUpSeconds);

    public void Validate()
    {
        if (!(WarmUpSeconds is >= 0 and <= 600)) throw new ArgumentOutOfRangeException(nameof(WarmUpSeconds), WarmUpSeconds, "--warm-up must be in 0..600 seconds.");
        if (Records && Sharding != "hash") throw new ArgumentException("--records shards by key hash only (a record may hold several vectors): drop --sharding centroid.", nameof(Records));
        if (Sharding is not ("hash" or "centroid")) throw new ArgumentException($"--sharding '{Sharding}' is not hash or centroid.", nameof(Sharding));
        if (Sharding == "hash" && (Centroids != 0 || CentroidProbes != 0))
            throw new ArgumentException("--centroids and --centroid-probes need --sharding centroid.", nameof(Centroids));
        if (Centroids is < 0 or > 65536) throw new ArgumentOutOfRangeException(nameof(Centroids), Centroids, "--centroids must be in 0..65536 (0 = 8 per shard).");
        if (CentroidProbes < 0) throw new ArgumentOutOfRangeException(nameof(CentroidProbes), CentroidProbes, "--centroid-probes must be >= 0 (0 = all).");
        if (K is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(K), K, "--k must be in 1..10000.");
        if (Shards is < 0 or > 4096) throw new ArgumentOutOfRangeException(nameof(Shards), Shards, "--shards must be in 0..4096 (0 = 2 per silo).");
        if (Replicas is < 1 or > 16) throw new ArgumentOutOfRangeException(nameof(Replicas), Replicas, "--replicas must be in 1..16.");
        if (InFlight is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(InFlight), InFlight, "--in-flight must be in 1..256.");
        if (Batch < 1) throw new ArgumentOutOfRangeException(nameof(Batch), Batch, "--batch must be >= 1.");
        if (LatencyQueries < 0) throw new ArgumentOutOfRangeException(nameof(LatencyQueries), LatencyQueries, "--latency-queries must be >= 0.");
        if (QueryLimit < 0) throw new ArgumentOutOfRangeException(nameof(QueryLimit), QueryLimit, "--nq must be >= 0.");
        if (BasePort < 1024 || BasePort + 100 * SiloCounts.Length > 65000)
            throw new ArgumentOutOfRangeException(nameof(BasePort), BasePort, "--base-port must leave 100 ports per silo count between 1024 and 65000.");
    }
}

/// <summary>One row of <c>engine cluster bench</c>.</summary>
internal sealed record ClusterBenchRow(int Silos, int Shards, int Replicas, string Index, string Mode, int N, int Nq, int K,
    double Recall, double Qps, double P50Ms, double P99Ms, double LoadSeconds, IReadOnlyDictionary<string, string> Settings,
    string Sharding = "hash", double ShardsPerQuery = double.NaN, int Centroids = 0, int CentroidProbes = 0, bool Records = false);

/// <summary>Runs the cluster benchmark: silo processes on loopback, loading and searching through the router.</summary>
internal static class ClusterBench
{
    public static int Run(ClusterBenchOptions o, TextWriter output, TextWriter log)
    {
        o.Validate();
        var data = BenchData.Load(o.DataPath, o.QueryLimit);
        if (data.GroundTruth is null) throw new ArgumentException($"Data set '{o.DataPath}' has no ground truth: run 'engine data gt' first.");
        log.WriteLine($"cluster bench: {data.Name}, n = {data.Count}, d = {data.Dimension}, {data.QueryCount} queries, spec {o.Spec}");
        if (o.Baseline) Print(o.Records ? InProcessRecords(o, data) : InProcess(o, data), o.Json, output);
        for (int run = 0; run < o.SiloCounts.Length; run++)
            Print(Cluster(o, data, o.SiloCounts[run], o.BasePort + 100 * run, log).GetAwaiter().GetResult(), o.Json, output);
        return 0;
    }

    private static void Print(ClusterBenchRow row, bool json, TextWriter output)
    {
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["silos"] = row.Silos, ["shards"] = row.Shards, ["replicas"] = row.Replicas, ["index"] = row.Index, ["mode"] = row.Mode,
                ["n"] = row.N, ["nq"] = row.Nq, ["k"] = row.K, ["recall"] = Math.Round(row.Recall, 4), ["qps"] = Math.Round(row.Qps, 1),
                ["p50_ms"] = Math.Round(row.P50Ms, 3), ["p99_ms"] = Math.Round(row.P99Ms, 3), ["load_s"] = Math.Round(row.LoadSeconds, 2),
                ["params"] = row.Settings, ["sharding"] = row.Sharding,
                ["shards_per_query"] = double.IsNaN(row.ShardsPerQuery) ? row.Shards : Math.Round(row.ShardsPerQuery, 2),
                ["centroids"] = row.Centroids, ["centroid_probes"] = row.CentroidProbes, ["records"] = row.Records,
            }));
        }
        else
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.Mode,-10} silos {row.Silos} shards {row.Shards} R {row.Replicas}  recall@{row.K} {row.Recall:F4}  QPS {row.Qps:F0}  p50 {row.P50Ms:F3} ms  p99 {row.P99Ms:F3} ms  load {row.LoadSeconds:F1} s")
                + (double.IsNaN(row.ShardsPerQuery) ? "" : string.Create(CultureInfo.InvariantCulture, $"  {row.Sharding} sharding, {row.ShardsPerQuery:F2} shards/query")));
        }
        output.Flush();
    }

    /// <summary>The same spec, batches and latency loop on one local index: what the router's overhead is measured against.</summary>
    private static ClusterBenchRow InProcess(ClusterBenchOptions o, DataSet data)
    {
        var clock = Stopwatch.StartNew();
        using var index = IndexFactory.Create(o.Spec, data.Dimension, data.Metric);
        if (!index.IsTrained) index.Train(data.Base);
        index.Add(data.Base, Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray());
        double load = clock.Elapsed.TotalSeconds;
        var batchParams = IndexFactory.CreateParameters(index, o.Settings, 0);
        var singleParams = IndexFactory.CreateParameters(index, o.Settings, 1);
        int d = data.Dimension, k = o.K;
        var (labels, qps) = Throughput(data, o, (q, n) =>
        {
            var dist = new float[n * k];
            var lab = new long[n * k];
            index.Search(q, k, dist, lab, batchParams);
            return Task.FromResult(lab);
        });
        var (p50, p99) = Latency(data, o, q =>
        {
            index.Search(q, k, new float[k], new long[k], singleParams);
            return Task.CompletedTask;
        });
        return new ClusterBenchRow(0, 1, 1, o.Spec, "in-process", data.Count, data.QueryCount, k, data.RecallAtK(labels, k, k), qps, p50, p99, load, o.Settings);
    }

    private static async Task<ClusterBenchRow> Cluster(ClusterBenchOptions o, DataSet data, int silos, int port, TextWriter log)
    {
        int shards = o.Shards > 0 ? o.Shards : 2 * silos;
        int replicas = Math.Min(o.Replicas, silos);
        string name = $"engine-cluster-bench-{Environment.ProcessId}-{silos}-{Guid.NewGuid():N}";
        string work = Path.Combine(Path.GetTempPath(), name[..Math.Min(60, name.Length)]); // short: a low process id made [..60] throw
        var processes = new List<Process>();
        try
        {
            for (int i = 0; i < silos; i++)
            {
                // The first silo is the primary of the development clustering; the others join through it.
                processes.Add(StartSilo(port + i, port + 50 + i, Path.Combine(work, $"silo-{i}"), i == 0 ? null : $"127.0.0.1:{port}"));
                if (i == 0) await WaitReady(processes[0]);
            }
            await Task.WhenAll(processes.Skip(1).Select(WaitReady));
            using var client = await DistributedHosts.ConnectAsync(Enumerable.Range(0, silos).Select(i => port + 50 + i).ToArray());
            var grains = DistributedHosts.Client(client);
            if (o.Records)
            {
                var row = await ClusterRecords(o, data, grains, silos, shards, replicas, log);
                await client.StopAsync();
                return row;
            }
            var layout = new ShardLayout
            {
                Name = "bench", Dimension = data.Dimension, Metric = data.Metric, Spec = o.Spec, Shards = shards, Replicas = replicas,
                TrainingSize = Math.Max(1000, data.Count / shards / 2),
            };
            bool byCentroid = o.Sharding == "centroid";
            int centroids = byCentroid ? (o.Centroids > 0 ? o.Centroids : Math.Min(8 * shards, data.Count)) : 0;
            if (byCentroid) layout = layout with { Sharding = ShardingMode.CentroidRanges, Centroids = centroids, CentroidProbes = Math.Min(o.CentroidProbes, centroids) };
            int d = data.Dimension;
            var clock = Stopwatch.StartNew();
            // Centroid ranges: the coarse quantizer trains on a seeded sample (64 rows per centroid, at least 10 000).
            var coll = await DistributedCollection.CreateAsync(grains, layout, byCentroid ? Sample(data, Math.Max(10_000, 64 * centroids)) : null);
            const int chunk = 20000;
            for (int start = 0; start < data.Count; start += chunk)
            {
                int m = Math.Min(chunk, data.Count - start);
                await coll.UpsertAsync(data.Base[(start * d)..((start + m) * d)], Enumerable.Range(start, m).Select(i => (long)i).ToArray());
            }
            await coll.StatusAsync();
            double load = clock.Elapsed.TotalSeconds;
            log.WriteLine($"  {silos} silo(s): loaded {data.Count} vectors into {shards} shards × {replicas} replicas in {load:F1} s");
            int k = o.K;
            long visited = 0;
            var (labels, qps) = Throughput(data, o, async (q, n) =>
            {
                var response = await coll.SearchAsync(q, k, o.Settings);
                Interlocked.Add(ref visited, response.ShardsPerQuery!.Sum());
                return response.Labels;
            }, o.InFlight);
            // One query alone, one thread per shard search (as the in-process row searches it).
            var (p50, p99) = Latency(data, o, q => coll.SearchAsync(q, k, o.Settings, threads: 1));
            await client.StopAsync();
            return new ClusterBenchRow(silos, shards, replicas, o.Spec, "cluster", data.Count, data.QueryCount, k, data.RecallAtK(labels, k, k), qps, p50, p99, load, o.Settings,
                o.Sharding, visited / (2.0 * data.QueryCount), centroids, coll.Layout.CentroidProbes);
        }
        finally
        {
            foreach (var p in processes)
            {
                try { if (!p.HasExited) p.Kill(entireProcessTree: true); p.WaitForExit(10000); }
                catch (InvalidOperationException) { }
                p.Dispose();
            }
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    // --records: every base row is a record (key = row number, an indexed Int32 field "part" = row % 16, vector "v" with
    // the spec); the same schema in a local RecordCollection (in-process row) or a DistributedRecordCollection (cluster rows).
    private static CollectionSchema RecordSchema(ClusterBenchOptions o, DataSet data, int trainingSize) => new(typeof(long),
        [new DataField("part", FieldType.Int32, Indexed: true)],
        [new VectorField("v", data.Dimension, data.Metric, o.Spec, trainingSize)]);

    private static IEnumerable<Record<long>[]> RecordBatches(DataSet data, int size = 5000)
    {
        int d = data.Dimension;
        for (int start = 0; start < data.Count; start += size)
        {
            int m = Math.Min(size, data.Count - start);
            var batch = new Record<long>[m];
            for (int i = 0; i < m; i++)
            {
                long row = start + i;
                batch[i] = new Record<long>(row) { Data = { ["part"] = (int)(row % 16) }, Vectors = { ["v"] = data.Base[((start + i) * d)..((start + i + 1) * d)] } };
            }
            yield return batch;
        }
    }

    private static long[] Keys(IReadOnlyList<SearchResult<long>> hits, int k)
    {
        var keys = new long[k];
        Array.Fill(keys, -1L);
        for (int j = 0; j < Math.Min(k, hits.Count); j++) keys[j] = hits[j].Record.Key;
        return keys;
    }

    /// <summary>--records: a local record collection (FASTER payloads, one index), batches searched query by query on the
    /// index's threads (a record collection searches one query per call).</summary>
    private static ClusterBenchRow InProcessRecords(ClusterBenchOptions o, DataSet data)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"engine-cluster-bench-records-{Environment.ProcessId}-{Guid.NewGuid():N}"[..60]);
        try
        {
            var clock = Stopwatch.StartNew();
            using var coll = RecordCollection<long>.Open(dir, RecordSchema(o, data, Math.Max(1000, data.Count / 2)));
            foreach (var batch in RecordBatches(data)) coll.UpsertBatchAsync(batch).GetAwaiter().GetResult();
            double load = clock.Elapsed.TotalSeconds;
            var options = new CollectionSearchOptions { Settings = o.Settings };
            int d = data.Dimension, k = o.K;
            var (labels, qps) = Throughput(data, o, async (q, n) =>
            {
                var lab = new long[n * k];
                await Parallel.ForAsync(0, n, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, async (i, ct) =>
                    Keys(await coll.SearchAsync(q.AsMemory(i * d, d), k, options, ct), k).CopyTo(lab, i * k));
                return lab;
            });
            var (p50, p99) = Latency(data, o, q => coll.SearchAsync(q, k, options));
            return new ClusterBenchRow(0, 1, 1, o.Spec, "in-process", data.Count, data.QueryCount, k, data.RecallAtK(labels, k, k), qps, p50, p99, load, o.Settings,
                Records: true);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task<ClusterBenchRow> ClusterRecords(ClusterBenchOptions o, DataSet data, IGrainFactory grains, int silos, int shards, int replicas, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        var coll = await DistributedRecordCollection<long>.OpenAsync(grains, "bench-records", RecordSchema(o, data, Math.Max(1000, data.Count / shards / 2)), shards, replicas);
        foreach (var batch in RecordBatches(data)) await coll.UpsertBatchAsync(batch);
        await coll.StatusAsync();
        double load = clock.Elapsed.TotalSeconds;
        log.WriteLine($"  {silos} silo(s): loaded {data.Count} records into {shards} shards × {replicas} replicas in {load:F1} s");
        var options = new CollectionSearchOptions { Settings = o.Settings };
        int k = o.K;
        var (labels, qps) = Throughput(data, o, async (q, n) =>
        {
            var hits = await coll.SearchBatchAsync(q, k, options);
            var lab = new long[n * k];
            for (int i = 0; i < n; i++) Keys(hits[i], k).CopyTo(lab, i * k);
            return lab;
        }, o.InFlight);
        var (p50, p99) = Latency(data, o, q => coll.SearchAsync(q, k, options));
        return new ClusterBenchRow(silos, shards, replicas, o.Spec, "cluster", data.Count, data.QueryCount, k, data.RecallAtK(labels, k, k), qps, p50, p99, load, o.Settings,
            Records: true);
    }

    /// <summary>
    /// All queries in batches of <see cref="ClusterBenchOptions.Batch"/>, up to <paramref name="inFlight"/> batches
    /// outstanding (a client keeps the cluster's pipeline full; the in-process index uses its threads instead); untimed
    /// passes for <see cref="ClusterBenchOptions.WarmUp"/> (at least one), then one timed.
    /// </summary>
    private static (long[] Labels, double Qps) Throughput(DataSet data, ClusterBenchOptions o, Func<float[], int, Task<long[]>> search, int inFlight = 1)
    {
        int d = data.Dimension, nq = data.QueryCount, k = o.K;
        var labels = new long[nq * k];
        double seconds = 0;
        // Untimed passes until WarmUp has passed (at least one), then one timed pass (see Latency on why).
        var warm = Stopwatch.StartNew();
        for (int pass = 0; ; pass++)
        {
            bool timed = pass > 0 && warm.Elapsed >= o.WarmUp;
            long t0 = Stopwatch.GetTimestamp();
            int next = -o.Batch;
            async Task Worker()
            {
                for (int start; (start = Interlocked.Add(ref next, o.Batch)) < nq;)
                {
                    int n = Math.Min(o.Batch, nq - start);
                    var got = await search(data.Queries[(start * d)..((start + n) * d)], n);
                    got.CopyTo(labels, start * k);
                }
            }
            Task.WhenAll(Enumerable.Range(0, inFlight).Select(_ => Task.Run(Worker))).GetAwaiter().GetResult();
            seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            if (timed) break;
        }
        return (labels, nq / seconds);
    }

    /// <summary>A seeded sample of at most <paramref name="rows"/> base vectors (all when there are fewer).</summary>
    private static float[] Sample(DataSet data, int rows)
    {
        int d = data.Dimension, n = data.Count;
        if (rows >= n) return data.Base[..(n * d)];
        var picked = Enumerable.Range(0, n).ToArray();
        var rng = new Random(1234);
        for (int i = 0; i < rows; i++)
        {
            int j = rng.Next(i, n);
            (picked[i], picked[j]) = (picked[j], picked[i]);
        }
        var sample = new float[(long)rows * d];
        for (int i = 0; i < rows; i++) data.Base.AsSpan(picked[i] * d, d).CopyTo(sample.AsSpan(i * d, d));
        return sample;
    }

    /// <summary>The first <see cref="ClusterBenchOptions.LatencyQueries"/> queries one at a time; nearest-rank p50 and p99 in ms.</summary>
    private static (double P50, double P99) Latency(DataSet data, ClusterBenchOptions o, Func<float[], Task> search)
    {
        int d = data.Dimension, n = Math.Min(o.LatencyQueries, data.QueryCount);
        if (n == 0) return (double.NaN, double.NaN);
        var ticks = new long[n];
        // Warm-up, untimed: at least one pass and o.WarmUp of single queries. The one-query path (client, router, shard,
        // index at one thread) is new code to the JIT: timed cold, its tier-0 code and the background tier-1
        // compilations on the same two cores put bursts of 3–5 ms queries into the first second (p99 5.6 ms against
        // 0.9 ms with tiering off), which is the JIT's start-up, not the cluster's steady state.
        var warm = Stopwatch.StartNew();
        for (int pass = 0; pass == 0 || warm.Elapsed < o.WarmUp; pass++)
            for (int q = 0; q < n && (pass == 0 || warm.Elapsed < o.WarmUp); q++)
                search(data.Queries[(q * d)..((q + 1) * d)]).GetAwaiter().GetResult();
        for (int q = 0; q < n; q++)
        {
            var query = data.Queries[(q * d)..((q + 1) * d)];
            long t0 = Stopwatch.GetTimestamp();
            search(query).GetAwaiter().GetResult();
            ticks[q] = Stopwatch.GetTimestamp() - t0;
        }
        Array.Sort(ticks);
        return (BenchRunner.Percentile(ticks, 0.50) * 1000.0 / Stopwatch.Frequency, BenchRunner.Percentile(ticks, 0.99) * 1000.0 / Stopwatch.Frequency);
    }

    internal static Process StartSilo(int siloPort, int gatewayPort, string dataDir, string? seed)
    {
        // Run this same CLI again: its apphost directly, else `dotnet Engine.Cli.dll` (started through dotnet, or hosted
        // by another program such as a test runner).
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this process' executable to start silos.");
        string cliDll = typeof(ClusterBench).Assembly.Location;
        bool apphost = Path.GetFileNameWithoutExtension(self) == Path.GetFileNameWithoutExtension(cliDll);
        string program = apphost ? self
            : Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase) ? self
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (!apphost) psi.ArgumentList.Add(cliDll);
        // Record replicas get the FASTER memory a local record collection gets by default (the in-process row's), so
        // both rows page payloads alike.
        long recordMemoryMb = CollectionOptions.Default.StoreMemoryBytes >> 20;
        foreach (var a in new[] { "cluster", "silo", "--port", siloPort.ToString(CultureInfo.InvariantCulture), "--gateway", gatewayPort.ToString(CultureInfo.InvariantCulture), "--data-dir", dataDir, "--rebalance-delay", "-1",
                     "--record-memory-mb", recordMemoryMb.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        if (seed is not null)
        {
            psi.ArgumentList.Add("--seed");
            psi.ArgumentList.Add(seed);
        }
        return Process.Start(psi) ?? throw new InvalidOperationException($"Could not start a silo process ({program}).");
    }

    internal static async Task WaitReady(Process p)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(deadline - DateTime.UtcNow);
            if (line is null) break;
            if (line.StartsWith("silo ready", StringComparison.Ordinal))
            {
                _ = p.StandardOutput.ReadToEndAsync();   // keep draining so the silo never blocks on a full pipe
                return;
            }
        }
        string err = p.HasExited ? await stderr : "";
        throw new InvalidOperationException($"A silo process did not become ready{(p.HasExited ? $" (exit code {p.ExitCode})" : " within 2 minutes")}: {err.Trim()}");
    }
}
