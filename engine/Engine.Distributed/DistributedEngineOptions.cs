using Microsoft.Extensions.DependencyInjection;
using Orleans;
using Orleans.Hosting;
using Orleans.Runtime;

namespace Engine.Distributed;

/// <summary>Silo-side settings of the distributed engine.</summary>
public sealed class DistributedEngineOptions
{
    /// <summary>Where this silo keeps its shard replicas (<c>DIR/collection/shard-s/replica-r</c>). Required.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>Log bytes after which a replica writes a snapshot and truncates its log (default 64 MiB).</summary>
    public long CheckpointLogBytes { get; set; } = 64L << 20;

    /// <summary>Record collections: memory of each replica's FASTER KV in-memory log (default 64 MiB, at least 16 MiB;
    /// older records page to the replica's disk).</summary>
    public long RecordStoreMemoryBytes { get; set; } = 64L << 20;

    /// <summary>Bytes of recent writes each replica keeps in memory so that a peer that fell behind catches up with the
    /// writes it missed (default 64 MiB; at least the newest write is always kept). A peer further behind copies a
    /// snapshot of the whole shard instead.</summary>
    public long CatchUpTailBytes { get; set; } = 64L << 20;

    /// <summary>How long one call to a peer replica may take before it counts as failed (default 30 s).</summary>
    public TimeSpan PeerTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a primary keeps retrying a follower that fails before the write fails (default 60 s): long
    /// enough for the cluster to declare a dead silo dead and activate the follower elsewhere.</summary>
    public TimeSpan ReplicationTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Move replicas automatically when the set of active silos changes (default true): once it has held still for
    /// <see cref="RebalanceDelay"/>, the replicas the placement rule now puts on other silos move there one at a time,
    /// each caught up before the next (as <see cref="DistributedCollection.RebalanceAsync"/> does on request); while
    /// replicas stay misplaced after three passes, it tries again every RebalanceDelay + 1 s.
    /// </summary>
    public bool AutoRebalance { get; set; } = true;

    /// <summary>How long the set of active silos must hold still before an automatic rebalance (default 10 s).</summary>
    public TimeSpan RebalanceDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory)) throw new ArgumentException("DataDirectory is required: the directory where this silo keeps its shard replicas.", nameof(DataDirectory));
        if (CheckpointLogBytes < 1 << 16) throw new ArgumentOutOfRangeException(nameof(CheckpointLogBytes), CheckpointLogBytes, "CheckpointLogBytes must be at least 64 KiB.");
        if (RecordStoreMemoryBytes < 16L << 20) throw new ArgumentOutOfRangeException(nameof(RecordStoreMemoryBytes), RecordStoreMemoryBytes, "RecordStoreMemoryBytes must be at least 16 MiB.");
        if (CatchUpTailBytes < 0) throw new ArgumentOutOfRangeException(nameof(CatchUpTailBytes), CatchUpTailBytes, "CatchUpTailBytes must be >= 0.");
        if (RebalanceDelay < TimeSpan.Zero || RebalanceDelay > TimeSpan.FromDays(1))
            throw new ArgumentOutOfRangeException(nameof(RebalanceDelay), RebalanceDelay, "RebalanceDelay must be in 0..1 day.");
        if (PeerTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(PeerTimeout), PeerTimeout, "PeerTimeout must be positive.");
        if (ReplicationTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ReplicationTimeout), ReplicationTimeout, "ReplicationTimeout must be >= 0.");
    }
}

/// <summary>Adds the distributed engine (shard replica and router grains, shard placement) to a silo.</summary>
public static class DistributedEngineHosting
{
    /// <summary>
    /// Registers the engine's grains' services on <paramref name="silo"/>: the shard placement director and the
    /// options (the data directory is required; the silo holds it locked while it runs, so two silos never share one).
    /// Clustering (localhost, ADO.NET, Azure, Redis, Kubernetes) is the
    /// caller's choice, configured on the same builder.
    /// </summary>
    public static ISiloBuilder AddVectorEngine(this ISiloBuilder silo, Action<DistributedEngineOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(configure);
        var probe = new DistributedEngineOptions();
        configure(probe);
        probe.Validate();
        Directory.CreateDirectory(probe.DataDirectory);
        silo.Services.Configure(configure);
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, SiloDataDirectoryLock>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, AutoRebalancer>();
        silo.AddPlacementDirector<ShardPlacementStrategy, ShardPlacementDirector>();
        silo.Services.AddSingleton<CentroidTableCache>();
        return silo;
    }
}
