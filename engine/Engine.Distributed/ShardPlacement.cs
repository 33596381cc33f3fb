using Orleans;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace Engine.Distributed;

/// <summary>
/// Places shard replicas so that the replicas of one shard sit on distinct silos (when there are at least R) and the
/// shards spread evenly: replica r of shard s of collection c goes to silo <c>(h(c) + s + r) mod N</c> of the active
/// silos ordered by address. The same rule drives rebalancing (<see cref="IShardReplicaGrain.Rebalance"/>).
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
        var ordered = silos.OrderBy(s => s.Endpoint.ToString(), StringComparer.Ordinal).ThenBy(s => s.Generation).ToArray();
        uint h = 2166136261;
        foreach (char c in name) h = (h ^ c) * 16777619;
        return ordered[(int)((h + (uint)shard + (uint)replica) % (uint)ordered.Length)];
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
