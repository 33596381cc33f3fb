using Engine.Index;
using Orleans;

namespace Engine.Distributed;

/// <summary>
/// What a distributed collection is: its vectors, the index every shard builds, and how the ids are spread.
/// Every call to a shard replica carries it, so a replica activated on a silo that never saw the collection
/// (after a failure or a move) knows what to build and which peers to catch up from.
/// </summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.ShardLayout")]
public sealed record ShardLayout
{
    /// <summary>Collection name: letters, digits, '-', '_' and '.' (it names directories and grain keys).</summary>
    [Id(0)] public required string Name { get; init; }

    /// <summary>Vector dimension d (1..65536).</summary>
    [Id(1)] public required int Dimension { get; init; }

    /// <summary>The metric distances are reported in (default L2).</summary>
    public Metric Metric { get => (Metric)MetricCode; init => MetricCode = (int)value; }

    /// <summary>The metric as its integer value (what travels: the core's enum carries no Orleans serializer).</summary>
    [Id(2)] public int MetricCode { get; init; }

    /// <summary>The index spec every shard builds (any <c>IndexFactory</c> spec: Flat, IVF…, HNSW…, SPANN…).</summary>
    [Id(3)] public required string Spec { get; init; }

    /// <summary>Number of shards S (1..4096). Ids are spread over them by a hash of the id (<see cref="ShardOf"/>).</summary>
    [Id(4)] public required int Shards { get; init; }

    /// <summary>Replication factor R (1..16, default 2): copies of each shard, each on its own silo when there are R silos.</summary>
    [Id(5)] public int Replicas { get; init; } = 2;

    /// <summary>
    /// Specs that need training (IVF, SPANN): a shard answers by exact search over its vectors until it holds this
    /// many, then trains its index on them (1..10^8, default 1 000). Ignored for Flat and HNSW.
    /// </summary>
    [Id(6)] public int TrainingSize { get; init; } = 1000;

    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (string.IsNullOrEmpty(Name) || Name.Length > 128 || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || Name is "." or "..")
            throw new ArgumentException($"Collection name '{Name}' is invalid: use 1..128 letters, digits, '-', '_' or '.'.", nameof(Name));
        if (Dimension is < 1 or > 65536) throw new ArgumentOutOfRangeException(nameof(Dimension), Dimension, "Dimension must be in 1..65536.");
        if (!Enum.IsDefined(Metric)) throw new ArgumentOutOfRangeException(nameof(Metric), Metric, "Unknown metric.");
        if (Shards is < 1 or > 4096) throw new ArgumentOutOfRangeException(nameof(Shards), Shards, "Shards must be in 1..4096.");
        if (Replicas is < 1 or > 16) throw new ArgumentOutOfRangeException(nameof(Replicas), Replicas, "Replicas must be in 1..16.");
        if (TrainingSize is < 1 or > 100_000_000) throw new ArgumentOutOfRangeException(nameof(TrainingSize), TrainingSize, "TrainingSize must be in 1..10^8.");
        ArgumentException.ThrowIfNullOrWhiteSpace(Spec, nameof(Spec));
        // Parse the spec once here so a typo fails at the client, not on every shard.
        using var probe = IndexFactory.Create(Spec, Dimension, Metric);
    }

    /// <summary>
    /// The shard that owns <paramref name="id"/>: a 64-bit mix (SplitMix64 finaliser) of the id, modulo
    /// <see cref="Shards"/>. Hashing spreads any id pattern (dense, strided, clustered) evenly.
    /// </summary>
    public int ShardOf(long id)
    {
        ulong z = unchecked((ulong)id + 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z % (ulong)Shards);
    }

    /// <summary>The grain key of replica <paramref name="replica"/> of shard <paramref name="shard"/>: <c>name/shard/replica</c>.</summary>
    public string ReplicaKey(int shard, int replica) => $"{Name}/{shard}/{replica}";
}
