using System.CommandLine;
using Engine.Distributed;
using Microsoft.Extensions.Hosting;

namespace Engine.Cli;

/// <summary><c>engine cluster silo|bench</c>: run a silo of the distributed engine (Orleans), or benchmark 1..n silos on loopback.</summary>
internal static class ClusterCommand
{
    public static Command Create()
    {
        var cmd = new Command("cluster", "Distributed engine on Orleans: run a silo, load a corpus into a cluster, serve a gateway for the Python binding, or benchmark clusters of silos on loopback (docs/scale-out.md).");
        cmd.Subcommands.Add(CreateSilo());
        cmd.Subcommands.Add(CreateBench());
        cmd.Subcommands.Add(CreateLoad());
        cmd.Subcommands.Add(CreateGateway());
        return cmd;
    }

    private static Command CreateGateway()
    {
        var cluster = new Option<string>("--cluster") { Description = "Gateways of the cluster, HOST:PORT,...", Required = true };
        var http = new Option<int>("--http") { Description = "HTTP port the gateway listens on.", Required = true };
        var bind = new Option<string>("--bind") { Description = "Address to listen on (127.0.0.1; '+' for every interface).", DefaultValueFactory = _ => "127.0.0.1" };
        var cmd = new Command("gateway", "Serves a cluster over HTTP for clients without an Orleans client (the Python package's minedex.ClusterIndex): "
            + "search, get, upsert, delete and hard-negative mining of plain-vector collections; prints 'gateway ready' once it listens.")
        {
            cluster, http, bind,
        };
        cmd.SetAction(r =>
        {
            int port = r.GetValue(http);
            if (port is < 1 or > 65535) throw new ArgumentException($"--http must be in 1..65535, not {port}.");
            var endpoints = r.GetValue(cluster)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(g => SiloSettings.ParseEndpoint(g, "--cluster")).ToArray();
            using var host = DistributedHosts.ConnectAsync(endpoints).GetAwaiter().GetResult();
            using var gateway = new ClusterGateway(DistributedHosts.Client(host), $"http://{r.GetValue(bind)}:{port}/");
            gateway.Start();
            Console.WriteLine($"gateway ready: {gateway.Prefix} -> cluster {r.GetValue(cluster)}");
            Console.Out.Flush();
            using var stop = new ManualResetEventSlim();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Set(); };
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
            stop.Wait();
            return 0;
        });
        return cmd;
    }

    private static Command CreateLoad()
    {
        var cluster = new Option<string>("--cluster") { Description = "Gateways of the cluster, HOST:PORT,...", Required = true };
        var collection = new Option<string>("--collection") { Description = "Collection name (created on first load).", Required = true };
        var corpus = new Option<string>("--corpus") { Description = "Vectors to upsert (.fvecs); ids are row numbers.", Required = true };
        var index = new Option<string>("--index") { Description = "Index spec every shard builds.", DefaultValueFactory = _ => "Flat" };
        var metric = new Option<string>("--metric") { Description = "l2, ip or cosine.", DefaultValueFactory = _ => "l2" };
        var shards = new Option<int>("--shards") { Description = "Shards.", DefaultValueFactory = _ => 4 };
        var replicas = new Option<int>("--replicas") { Description = "Replication factor R.", DefaultValueFactory = _ => 2 };
        var trainingSize = new Option<int>("--training-size") { Description = "Vectors a shard holds before it trains an IVF/SPANN spec.", DefaultValueFactory = _ => 1000 };
        var cmd = new Command("load", "Upserts a corpus into a cluster collection (created with the given layout if new; an existing one must match it).")
        {
            cluster, collection, corpus, index, metric, shards, replicas, trainingSize,
        };
        cmd.SetAction(r =>
        {
            var (vectors, d) = VecsFile.ReadFvecs(r.GetValue(corpus)!, "--corpus");
            var layout = new ShardLayout
            {
                Name = r.GetValue(collection)!, Dimension = d, Metric = MetricExtensions.ParseMetric(r.GetValue(metric)!), Spec = r.GetValue(index)!,
                Shards = r.GetValue(shards), Replicas = r.GetValue(replicas), TrainingSize = r.GetValue(trainingSize),
            };
            layout.Validate();
            var endpoints = r.GetValue(cluster)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(g => SiloSettings.ParseEndpoint(g, "--cluster")).ToArray();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var host = DistributedHosts.ConnectAsync(endpoints).GetAwaiter().GetResult();
            var coll = DistributedCollection.OpenAsync(DistributedHosts.Client(host), layout).GetAwaiter().GetResult();
            coll.UpsertAsync(vectors, Enumerable.Range(0, vectors.Length / d).Select(i => (long)i).ToArray()).GetAwaiter().GetResult();
            long count = coll.CountAsync().GetAwaiter().GetResult();
            host.StopAsync().GetAwaiter().GetResult();
            Console.WriteLine($"loaded {vectors.Length / d} vectors into '{layout.Name}' ({layout.Shards} shards × {layout.Replicas} replicas, {layout.Spec}); it holds {count}; {clock.Elapsed.TotalSeconds:F1} s");
            return 0;
        });
        return cmd;
    }

    private static Command CreateSilo()
    {
        var port = new Option<int>("--port") { Description = "Silo-to-silo port.", Required = true };
        var gateway = new Option<int>("--gateway") { Description = "Client gateway port.", Required = true };
        var dataDir = new Option<string>("--data-dir") { Description = "Directory for this silo's shard replicas (created if missing).", Required = true };
        var seed = new Option<string?>("--seed") { Description = "HOST:PORT of the primary silo (development clustering on one machine); omit on the primary itself." };
        var clusterId = new Option<string>("--cluster-id") { Description = "Cluster id shared by the silos and clients.", DefaultValueFactory = _ => "engine" };
        var verbose = new Option<bool>("--verbose") { Description = "Log Orleans' information messages (default: warnings and errors)." };
        var rebalanceDelay = new Option<double>("--rebalance-delay")
        {
            Description = "Seconds the set of active silos must hold still before replicas move automatically to where the placement rule puts them (negative: never, only on request).",
            DefaultValueFactory = _ => 10,
        };
        var recordMemory = new Option<long>("--record-memory-mb")
        {
            Description = "FASTER memory of each record replica's payload store, in MiB (payloads beyond it are paged to disk).", DefaultValueFactory = _ => 64,
        };
        var cmd = new Command("silo", "Runs one silo until it is stopped (Ctrl+C / SIGTERM); prints 'silo ready' once it has joined the cluster.")
        {
            port, gateway, dataDir, seed, clusterId, verbose, rebalanceDelay, recordMemory,
        };
        cmd.SetAction(r =>
        {
            string? seedText = r.GetValue(seed);
            var settings = new SiloSettings
            {
                SiloPort = r.GetValue(port), GatewayPort = r.GetValue(gateway), DataDirectory = r.GetValue(dataDir)!,
                Seed = seedText is null ? null : SiloSettings.ParseEndpoint(seedText, "--seed"),
                ClusterId = r.GetValue(clusterId)!,
                AutoRebalanceDelay = r.GetValue(rebalanceDelay) is var delay && double.IsFinite(delay) && delay >= 0 && delay <= 86400 ? TimeSpan.FromSeconds(delay)
                    : double.IsNaN(delay) || delay > 86400 ? throw new ArgumentException($"--rebalance-delay must be at most 86400 seconds (a day), or negative for never; got {delay}.") : null,
                LogLevel = r.GetValue(verbose) ? Microsoft.Extensions.Logging.LogLevel.Information : Microsoft.Extensions.Logging.LogLevel.Warning,
                RecordStoreMemoryBytes = r.GetValue(recordMemory) is long mb && mb is >= 16 and <= 1L << 30 ? mb << 20
                    : throw new ArgumentException($"--record-memory-mb must be in 16..{1L << 30}, not {r.GetValue(recordMemory)}."),
            };
            using var host = DistributedHosts.BuildSilo(settings);
            host.Start();
            Console.WriteLine($"silo ready: silo 127.0.0.1:{settings.SiloPort}, gateway {settings.GatewayPort}, data {Path.GetFullPath(settings.DataDirectory)}");
            Console.Out.Flush();
            host.WaitForShutdown();
            return 0;
        });
        return cmd;
    }

    private static Command CreateBench()
    {
        var data = new Option<string>("--data") { Description = "Data set directory (base/query/gt, as for engine bench) or .hdf5 file.", Required = true };
        var index = new Option<string>("--index") { Description = "Index spec every shard builds (Flat, IVF…, HNSW…, SPANN…).", DefaultValueFactory = _ => "Flat" };
        var silos = new Option<string>("--silos") { Description = "Silo counts to run, comma-separated (one JSON row each).", DefaultValueFactory = _ => "1,2,3" };
        var shards = new Option<int>("--shards") { Description = "Shards per collection (0 = 2 per silo).", DefaultValueFactory = _ => 0 };
        var replicas = new Option<int>("--replicas") { Description = "Replication factor R (capped at the silo count).", DefaultValueFactory = _ => 2 };
        var k = new Option<int>("--k") { Description = "Neighbours per query.", DefaultValueFactory = _ => 10 };
        var sweep = new Option<string[]>("--set") { Description = "NAME=V search knob for every query (probes=16, ef=64, ...; repeatable).", AllowMultipleArgumentsPerToken = false };
        var nq = new Option<int>("--nq") { Description = "Use only the first NQ queries (0 = all).", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch") { Description = "Queries per router call in the throughput pass.", DefaultValueFactory = _ => 100 };
        var inFlight = new Option<int>("--in-flight") { Description = "Batches outstanding at once in the cluster throughput pass.", DefaultValueFactory = _ => 4 };
        var latency = new Option<int>("--latency-queries") { Description = "Queries sent one at a time for p50/p99.", DefaultValueFactory = _ => 200 };
        var basePort = new Option<int>("--base-port") { Description = "First loopback port; each silo count uses a block of 100 above it.", DefaultValueFactory = _ => 31000 };
        var baseline = new Option<bool>("--baseline") { Description = "Also print the in-process row (silos 0): the same spec, batches and latency loop without Orleans.", DefaultValueFactory = _ => true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per row (recall, qps, p50_ms, p99_ms, silos, shards, ...)." };
        var sharding = new Option<string>("--sharding") { Description = "hash (default: every query visits every shard) or centroid (IVF centroid ranges: a query visits the shards owning its probed centroids).", DefaultValueFactory = _ => "hash" };
        var centroids = new Option<int>("--centroids") { Description = "--sharding centroid: coarse centroids C (0 = 8 per shard).", DefaultValueFactory = _ => 0 };
        var centroidProbes = new Option<int>("--centroid-probes") { Description = "--sharding centroid: centroids each query probes (0 = all C: every shard, key-hash results).", DefaultValueFactory = _ => 0 };
        var warmUp = new Option<double>("--warm-up") { Description = "Seconds each timed loop first runs untimed (JIT tiering on the cluster's paths; 0 = one untimed pass).", DefaultValueFactory = _ => 3 };
        var records = new Option<bool>("--records") { Description = "Load the rows as records (key = row number, an indexed field, vector 'v') into a record collection (DistributedRecordCollection; in-process: RecordCollection) instead of plain vectors." };
        var cmd = new Command("bench", "Starts N silo processes on loopback for each N in --silos, loads the data through the router, searches it, prints a row, stops them.")
        {
            data, index, silos, shards, replicas, k, sweep, nq, batch, inFlight, latency, basePort, baseline, json,
            sharding, centroids, centroidProbes, records, warmUp,
        };
        cmd.SetAction(r =>
        {
            var counts = ParseCounts(r.GetValue(silos)!);
            var options = new ClusterBenchOptions(r.GetValue(data)!, r.GetValue(index)!, counts, r.GetValue(shards), r.GetValue(replicas),
                r.GetValue(k), ParseSettings(r.GetValue(sweep) ?? []), r.GetValue(nq), r.GetValue(batch), r.GetValue(latency),
                r.GetValue(basePort), r.GetValue(baseline), r.GetValue(json), r.GetValue(inFlight),
                r.GetValue(sharding)!, r.GetValue(centroids), r.GetValue(centroidProbes), r.GetValue(records), r.GetValue(warmUp));
            return ClusterBench.Run(options, Console.Out, Console.Error);
        });
        return cmd;
    }

    internal static int[] ParseCounts(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--silos lists no silo count.");
        return parts.Select(p => int.TryParse(p, out int n) && n is >= 1 and <= 16 ? n
            : throw new ArgumentException($"--silos entry '{p}' is not a silo count in 1..16.")).ToArray();
    }

    internal static Dictionary<string, string> ParseSettings(string[] items)
    {
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var item in items)
        {
            int eq = item.IndexOf('=');
            if (eq <= 0 || eq == item.Length - 1) throw new ArgumentException($"--set '{item}' is not NAME=VALUE.");
            if (!settings.TryAdd(item[..eq].Trim(), item[(eq + 1)..].Trim())) throw new ArgumentException($"--set names '{item[..eq]}' twice.");
        }
        return settings;
    }
}
