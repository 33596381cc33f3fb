using Engine.Distributed;
using Engine.Index.Flat;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace Engine.Distributed.Tests;

/// <summary>
/// A test cluster of in-process silos (Orleans TestingHost), each with its own data directory under one temp
/// directory per test, plus the data sets the tests share (fixed seeds).
/// </summary>
internal sealed class DistributedTestCluster : IAsyncDisposable
{
    public required InProcessTestCluster Cluster { get; init; }
    public required string Root { get; init; }

    /// <param name="silos">Silos to start.</param>
    /// <param name="test">Names the temp directory.</param>
    /// <param name="root">A data root to reuse (a whole cluster restarted on the same disks): silo i gets the same
    /// directory as silo i of an earlier cluster on that root, and disposing leaves the root for the caller to delete.</param>
    /// <param name="configure">Changes the silos' engine options after the defaults below (null: none).</param>
    public static async Task<DistributedTestCluster> StartAsync(int silos, string test, string? root = null, Action<DistributedEngineOptions>? configure = null)
    {
        bool owned = root is null;
        root ??= Path.Combine(Path.GetTempPath(), "engine-dist-tests", test + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var directories = new Dictionary<string, string>();
        string? reuse = null;
        var builder = new InProcessTestClusterBuilder((short)silos);
        // A silo restarted on its disk gets its old ports back (RestartOnSameDiskAsync), as a machine that comes back
        // has its old address: placement ranks silos by endpoint.
        var ports = new ReplayingPortAllocator();
        builder.ConfigureSilo((options, silo) => silo.AddVectorEngine(o =>
        {
            // A silo started to replace a stopped one gets its directory: the machine came back with its disk.
            lock (directories)
                if (!directories.TryGetValue(options.SiloName, out var dir))
                    directories[options.SiloName] = dir = reuse ?? Path.Combine(root, options.SiloName);
            lock (ports) ports.BySilo[options.SiloName] = (options.SiloPort, options.GatewayPort);
            o.DataDirectory = directories[options.SiloName];
            o.PeerTimeout = TimeSpan.FromSeconds(10);
            o.ReplicationTimeout = TimeSpan.FromSeconds(20);
            o.AutoRebalance = false;   // tests that move replicas say when (AutoRebalanceTests turns it on)
            configure?.Invoke(o);
        }));
        // Declare a killed silo dead within a few seconds (the defaults suit production, not a test), and let the
        // client wait for the router's own retries and timeouts.
        builder.ConfigureSilo((_, silo) => silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.NumMissedProbesLimit = 2;
            o.NumVotesForDeathDeclaration = 1;
        }));
        builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromMinutes(2)));
        var cluster = new InProcessTestCluster(builder.Options, ports);
        await cluster.DeployAsync();
        return new DistributedTestCluster { Cluster = cluster, Root = root, Directories = directories, SetReuse = d => reuse = d, OwnsRoot = owned, Ports = ports };
    }

    public required Dictionary<string, string> Directories { get; init; }
    public required Action<string?> SetReuse { get; init; }

    private ReplayingPortAllocator Ports { get; init; } = null!;

    /// <summary>Hands out free ports, except that the next allocation can be told to return a stopped silo's own.</summary>
    private sealed class ReplayingPortAllocator : ITestClusterPortAllocator, IDisposable
    {
        private readonly TestClusterPortAllocator _free = new();
        public readonly Dictionary<string, (int Silo, int Gateway)> BySilo = [];
        public (int, int)? Next;

        public (int, int) AllocateConsecutivePortPairs(int numPorts = 5)
        {
            lock (this)
            {
                if (Next is { } next)
                {
                    Next = null;
                    return next;
                }
            }
            return _free.AllocateConsecutivePortPairs(numPorts);
        }

        public void Dispose() => _free.Dispose();
    }

    /// <summary>True when disposing deletes <see cref="Root"/>.</summary>
    public bool OwnsRoot { get; init; } = true;

    /// <summary>Restarts the stopped (secondary) silo <paramref name="stoppedName"/>: the same name, endpoint and data
    /// directory, as a machine that comes back (a new silo generation).</summary>
    public Task<InProcessSiloHandle> RestartOnSameDiskAsync(string stoppedName)
    {
        lock (Directories)
            if (!Directories.ContainsKey(stoppedName)) throw new ArgumentException($"No silo '{stoppedName}' ran in this cluster.", nameof(stoppedName));
        if (!stoppedName.StartsWith("Silo_", StringComparison.Ordinal) || !int.TryParse(stoppedName.AsSpan(5), out int instance))
            throw new ArgumentException($"'{stoppedName}' is not a test silo name (Silo_N).", nameof(stoppedName));
        lock (Ports) Ports.Next = Ports.BySilo[stoppedName];
        return Cluster.StartSiloAsync(instance, Cluster.Options);
    }

    public IGrainFactory Client => Cluster.Client;

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        if (OwnsRoot) try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

internal static class TestData
{
    /// <summary>n × d Gaussian vectors with a fixed seed.</summary>
    public static float[] Gaussian(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n * d];
        for (int i = 0; i < v.Length; i++)
            v[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return v;
    }

    public static long[] Ids(int n, long offset = 0, long stride = 1) => Enumerable.Range(0, n).Select(i => offset + i * stride).ToArray();

    public static FlatIndex Reference(float[] vectors, long[] ids, int d, Metric metric)
    {
        var index = new FlatIndex(d, metric);
        index.Add(vectors, ids);
        return index;
    }

    public static (float[] Distances, long[] Labels) Search(IVectorIndex index, float[] queries, int k, SearchParameters? p = null)
    {
        int nq = queries.Length / index.Dimension;
        var dist = new float[nq * k];
        var labels = new long[nq * k];
        index.Search(queries, k, dist, labels, p);
        return (dist, labels);
    }
}
