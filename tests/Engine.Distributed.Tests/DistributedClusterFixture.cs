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
        builder.ConfigureSilo((options, silo) => silo.AddVectorEngine(o =>
        {
            // A silo started to replace a stopped one gets its directory: the machine came back with its disk.
            lock (directories)
                if (!directories.TryGetValue(options.SiloName, out var dir))
                    directories[options.SiloName] = dir = reuse ?? Path.Combine(root, options.SiloName);
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
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new DistributedTestCluster { Cluster = cluster, Root = root, Directories = directories, SetReuse = d => reuse = d, OwnsRoot = owned };
    }

    public required Dictionary<string, string> Directories { get; init; }
    public required Action<string?> SetReuse { get; init; }

    /// <summary>True when disposing deletes <see cref="Root"/>.</summary>
    public bool OwnsRoot { get; init; } = true;

    /// <summary>Starts a silo that takes over the data directory of the stopped silo <paramref name="stoppedName"/>.</summary>
    public async Task<InProcessSiloHandle> RestartOnSameDiskAsync(string stoppedName)
    {
        string dir;
        lock (Directories) dir = Directories[stoppedName];
        SetReuse(dir);
        try { return await Cluster.StartAdditionalSiloAsync(); }
        finally { SetReuse(null); }
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
