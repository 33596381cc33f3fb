using Engine.Distributed;
using Microsoft.Extensions.Hosting;

namespace Engine.Cli;

/// <summary><c>engine mine --cluster GATEWAYS --collection NAME</c>: mine against a collection served by a cluster.</summary>
internal static class ClusterMining
{
    /// <summary>
    /// Connects to the cluster and opens <paramref name="collection"/> as a read-only index whose searches go through
    /// the router with <paramref name="settings"/>; it must hold the corpus (same d, metric and count).
    /// </summary>
    public static IVectorIndex Open(string gateways, string collection, int d, Metric metric, int n, IReadOnlyDictionary<string, string> settings)
    {
        var endpoints = gateways.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(g => SiloSettings.ParseEndpoint(g, "--cluster")).ToArray();
        if (endpoints.Length == 0) throw new ArgumentException("--cluster lists no gateway (HOST:PORT,...).");
        var host = DistributedHosts.ConnectAsync(endpoints).GetAwaiter().GetResult();
        try
        {
            var coll = DistributedCollection.OpenExistingAsync(DistributedHosts.Client(host), collection).GetAwaiter().GetResult();
            var l = coll.Layout;
            var index = new DistributedIndex(coll, settings, new Connection(host));
            string? problem = l.Dimension != d ? $"dimension {l.Dimension}, the corpus has {d}"
                : l.Metric != metric ? $"metric {l.Metric.ToShortName()}, --metric is {metric.ToShortName()}"
                : index.Count != n ? $"{index.Count} vectors, the corpus has {n}"
                : null;
            if (problem is not null)
                throw new ArgumentException($"Cluster collection '{collection}' holds {problem}; load this corpus into it (ids = row numbers).");
            return index;
        }
        catch
        {
            host.StopAsync().GetAwaiter().GetResult();
            host.Dispose();
            throw;
        }
    }

    /// <summary>Stops and disposes a client host.</summary>
    private sealed class Connection(IHost host) : IDisposable
    {
        public void Dispose()
        {
            host.StopAsync().GetAwaiter().GetResult();
            host.Dispose();
        }
    }
}
