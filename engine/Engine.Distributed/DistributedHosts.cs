using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Engine.Distributed;

/// <summary>How a silo process joins its cluster.</summary>
public sealed record SiloSettings
{
    /// <summary>Silo-to-silo port (1..65535).</summary>
    public required int SiloPort { get; init; }

    /// <summary>Client gateway port (1..65535, not the silo port).</summary>
    public required int GatewayPort { get; init; }

    /// <summary>Where this silo keeps its shard replicas.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>The primary silo's silo endpoint (development clustering); null: this silo is the primary.</summary>
    public IPEndPoint? Seed { get; init; }

    /// <summary>Cluster id (silos and clients of one cluster share it).</summary>
    public string ClusterId { get; init; } = "engine";

    /// <summary>Service id (stable across cluster restarts).</summary>
    public string ServiceId { get; init; } = "engine";

    /// <summary>
    /// Replaces the development (localhost) clustering with a real membership provider: for example
    /// <c>silo =&gt; silo.UseAdoNetClustering(...)</c> from Microsoft.Orleans.Clustering.AdoNet, or Redis, Azure,
    /// Kubernetes. When set, <see cref="Seed"/> is ignored and the endpoints are configured by the callback.
    /// </summary>
    public Action<ISiloBuilder>? Clustering { get; init; }

    /// <summary>Move replicas automatically once the set of active silos changed and held still for this long (default
    /// 10 s; null: never, only on <c>RebalanceAsync</c>). See <see cref="DistributedEngineOptions.AutoRebalance"/>.</summary>
    public TimeSpan? AutoRebalanceDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>FASTER memory of each record replica's payload store, in bytes (default 64 MiB; see
    /// <see cref="DistributedEngineOptions.RecordStoreMemoryBytes"/>): payloads beyond it are paged to disk.</summary>
    public long RecordStoreMemoryBytes { get; init; } = 64L << 20;

    /// <summary>Minimum log level of the silo's console log (default Warning).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;

    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (SiloPort is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(SiloPort), SiloPort, "--port must be in 1..65535.");
        if (GatewayPort is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(GatewayPort), GatewayPort, "--gateway must be in 1..65535.");
        if (SiloPort == GatewayPort) throw new ArgumentException($"--port and --gateway must differ (both {SiloPort}).", nameof(GatewayPort));
        if (string.IsNullOrWhiteSpace(DataDirectory)) throw new ArgumentException("--data-dir is required.", nameof(DataDirectory));
        if (AutoRebalanceDelay is { } delay && (delay < TimeSpan.Zero || delay > TimeSpan.FromDays(1)))
            throw new ArgumentOutOfRangeException(nameof(AutoRebalanceDelay), delay, "--rebalance-delay must be in 0..86400 seconds.");
        if (RecordStoreMemoryBytes < 16L << 20)
            throw new ArgumentOutOfRangeException(nameof(RecordStoreMemoryBytes), RecordStoreMemoryBytes, "--record-memory-mb must be at least 16.");
        ArgumentException.ThrowIfNullOrWhiteSpace(ClusterId);
        ArgumentException.ThrowIfNullOrWhiteSpace(ServiceId);
    }

    /// <summary>Parses <c>HOST:PORT</c> (an IP address or <c>localhost</c>).</summary>
    /// <exception cref="ArgumentException">Not HOST:PORT, or a port outside 1..65535.</exception>
    public static IPEndPoint ParseEndpoint(string text, string what)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 1 or > 65535)
            throw new ArgumentException($"{what} '{text}' is not HOST:PORT with a port in 1..65535.", what);
        string host = text[..colon];
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return new IPEndPoint(IPAddress.Loopback, port);
        if (!IPAddress.TryParse(host.Trim('[', ']'), out var address))
            throw new ArgumentException($"{what} '{text}': '{host}' is not an IP address or localhost.", what);
        return new IPEndPoint(address, port);
    }
}

/// <summary>Builds silo hosts and cluster clients for the distributed engine (used by <c>engine cluster</c>).</summary>
public static class DistributedHosts
{
    /// <summary>A silo host: development clustering on loopback (or <see cref="SiloSettings.Clustering"/>) plus the engine.</summary>
    public static IHost BuildSilo(SiloSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(settings.LogLevel);
        builder.UseOrleans(silo =>
        {
            if (settings.Clustering is not null) settings.Clustering(silo);
            else
                silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort,
                    settings.Seed ?? new IPEndPoint(IPAddress.Loopback, settings.SiloPort), settings.ServiceId, settings.ClusterId);
            silo.AddVectorEngine(o =>
            {
                o.DataDirectory = Path.GetFullPath(settings.DataDirectory);
                o.AutoRebalance = settings.AutoRebalanceDelay is not null;
                if (settings.AutoRebalanceDelay is { } delay) o.RebalanceDelay = delay;
                o.RecordStoreMemoryBytes = settings.RecordStoreMemoryBytes;
            });
        });
        return builder.Build();
    }

    /// <summary>How long <c>ConnectAsync</c> keeps retrying a cluster that does not answer (silos may still be starting)
    /// before it gives up, unless the call says otherwise.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Starts a client host connected to the gateways on loopback; dispose the host to disconnect.</summary>
    /// <exception cref="InvalidOperationException">No gateway answered within <paramref name="connectTimeout"/>
    /// (default <see cref="DefaultConnectTimeout"/>); the message names the gateways.</exception>
    public static Task<IHost> ConnectAsync(int[] gatewayPorts, string clusterId = "engine", string serviceId = "engine", CancellationToken cancellationToken = default,
        TimeSpan? connectTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(gatewayPorts);
        if (gatewayPorts.Length == 0) throw new ArgumentException("At least one gateway port is needed.", nameof(gatewayPorts));
        return ConnectAsync(client => client.UseLocalhostClustering(gatewayPorts, serviceId, clusterId),
            "localhost gateway port(s) " + string.Join(", ", gatewayPorts), connectTimeout, cancellationToken);
    }

    /// <summary>Starts a client host connected to the given gateways (any hosts: a static gateway list).</summary>
    /// <exception cref="InvalidOperationException">No gateway answered within <paramref name="connectTimeout"/>
    /// (default <see cref="DefaultConnectTimeout"/>); the message names the gateways.</exception>
    public static Task<IHost> ConnectAsync(IPEndPoint[] gateways, string clusterId = "engine", string serviceId = "engine", CancellationToken cancellationToken = default,
        TimeSpan? connectTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(gateways);
        if (gateways.Length == 0) throw new ArgumentException("At least one gateway is needed.", nameof(gateways));
        return ConnectAsync(client =>
        {
            client.UseStaticClustering(gateways);
            client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (clusterId, serviceId));
        }, "gateway(s) " + string.Join(", ", gateways.Select(g => g.ToString())), connectTimeout, cancellationToken);
    }

    private static async Task<IHost> ConnectAsync(Action<IClientBuilder> clustering, string what, TimeSpan? connectTimeout, CancellationToken cancellationToken)
    {
        var budget = connectTimeout ?? DefaultConnectTimeout;
        if (budget <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(connectTimeout), budget, "The connect timeout must be positive.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client =>
        {
            clustering(client);
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromMinutes(5));
            // Retry while silos may still be starting, then give up instead of retrying forever.
            client.UseConnectionRetryFilter(async (_, ct) =>
            {
                if (clock.Elapsed >= budget) return false;
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
                return clock.Elapsed < budget;
            });
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            host.Dispose();
            throw new InvalidOperationException($"No Orleans gateway answered at {what} within {budget.TotalSeconds:0.#} s: is a silo running there (engine cluster silo)? {e.Message}", e);
        }
        return host;
    }

    /// <summary>The grain factory of a client host from one of the <c>ConnectAsync</c> overloads.</summary>
    public static IClusterClient Client(IHost clientHost) => clientHost.Services.GetRequiredService<IClusterClient>();
}
