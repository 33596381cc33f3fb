using Orleans;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Engine.Distributed;

/// <summary>
/// Places shard replicas by rendezvous (highest-random-weight) hashing: for shard s of collection c every active silo
/// gets a score h(c, s, silo endpoint), and replica r goes to the silo ranked r-th (mod N). The replicas of one shard
/// sit on distinct silos when there are at least R, shards spread evenly in expectation, and a change of membership
/// touches only the shards whose top R silos it changes (a joining silo enters a shard's top R with probability
/// R / N; then the replicas from its rank down shift by one, at most R moves), where the former rule,
/// <c>(h(c) + s + r) mod N</c>, moved almost every replica when N changed. A silo restarted at the same endpoint gets its
/// replicas back. The same rule drives rebalancing (<see cref="IShardReplicaGrain.Rebalance"/>).
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("Engine.Distributed.ShardPlacementStrategy")]
public sealed class ShardPlacementStrategy : PlacementStrategy
{
    /// <summary>The one instance.</summary>
    public static ShardPlacementStrategy Instance { get; } = new();
}

/// <summary>Marks a grain class as placed by <see cref="ShardPlacementStrategy"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardPlacementAttribute : PlacementAttribute
{
    /// <summary>Creates the attribute.</summary>
    public ShardPlacementAttribute() : base(ShardPlacementStrategy.Instance) { }
}

/// <summary>The placement director of <see cref="ShardPlacementStrategy"/>.</summary>
internal sealed class ShardPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        // A migration names its destination (the rebalancer computed it with the same rule).
        if (IPlacementDirector.GetPlacementHint(target.RequestContextData, silos) is { } hinted) return Task.FromResult(hinted);
        var (name, shard, replica) = ParseKey(target.GrainIdentity.Key.ToString()!);
        return Task.FromResult(Pick(silos, name, shard, replica) ?? silos[0]);
    }

    /// <summary>The silo the rule picks among <paramref name="silos"/>, or null when there are none.</summary>
    internal static SiloAddress? Pick(IReadOnlyList<SiloAddress> silos, string name, int shard, int replica)
    {
        if (silos.Count == 0) return null;
        // By endpoint, not generation: a silo restarted at the same address gets its replicas back.
        var ranked = silos.Select(s => (Silo: s, Endpoint: s.Endpoint.ToString()))
            .OrderByDescending(s => Score(name, shard, s.Endpoint)).ThenBy(s => s.Endpoint, StringComparer.Ordinal).ThenBy(s => s.Silo.Generation)
            .ToArray();
        return ranked[replica % ranked.Length].Silo;
    }

    // FNV-1a over the collection name, the shard and the endpoint, then the SplitMix64 finaliser (stable across processes).
    private static ulong Score(string name, int shard, string endpoint)
    {
        ulong h = StableHash.Add(StableHash.Add(StableHash.Add(StableHash.Empty, name), (uint)shard), endpoint);
        return StableHash.Mix(h);
    }

    /// <summary>Splits a replica key <c>name/shard/replica</c>.</summary>
    internal static (string Name, int Shard, int Replica) ParseKey(string key)
    {
        var parts = key.Split('/');
        if (parts.Length != 3 || !int.TryParse(parts[1], out int shard) || !int.TryParse(parts[2], out int replica) || shard < 0 || replica < 0)
            throw new ArgumentException($"'{key}' is not a shard replica key (name/shard/replica).", nameof(key));
        return (parts[0], shard, replica);
    }
}
