using Engine.Collections;
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

    /// <summary>
    /// How vectors are spread over the shards (default <see cref="ShardingMode.KeyHash"/>: exact with any index, even
    /// load whatever the data, no training sample, and a write's shard follows from its id alone). See
    /// <see cref="ShardingMode.CentroidRanges"/> for the alternative and docs/scale-out.md for the trade-off.
    /// </summary>
    public ShardingMode Sharding { get => (ShardingMode)ShardingCode; init => ShardingCode = (int)value; }

    /// <summary>The sharding mode as its integer value (what travels).</summary>
    [Id(7)] public int ShardingCode { get; init; }

    /// <summary>
    /// <see cref="ShardingMode.CentroidRanges"/> only: number C of coarse centroids the router routes by (Shards..65536;
    /// 0 with key-hash sharding). Each shard owns a contiguous range of them.
    /// </summary>
    [Id(8)] public int Centroids { get; init; }

    /// <summary>
    /// <see cref="ShardingMode.CentroidRanges"/> only: centroids a query probes when the call does not say
    /// (<see cref="SearchRequest.CentroidProbes"/>); 0 (the default) probes all C, which visits every shard and gives
    /// exactly the key-hash results. Fewer probes visit fewer shards at some cost in recall.
    /// </summary>
    [Id(9)] public int CentroidProbes { get; init; }

    /// <summary>
    /// <see cref="ShardingMode.CentroidRanges"/> only: the checksum of the collection's <see cref="CentroidTable"/>, set
    /// when the collection is created (<see cref="DistributedCollection.CreateAsync"/>); names which trained centroids
    /// the collection routes by, so a replica or router never pairs the layout with another table.
    /// </summary>
    [Id(10)] public long CentroidDigest { get; init; }

    /// <summary>
    /// Record collections only (<see cref="DistributedRecordCollection{TKey}"/>): the records' schema as
    /// <see cref="CollectionSchema.ToJson"/> writes it; null for a collection of plain vectors with <c>long</c> ids.
    /// Records are spread by a hash of their key (<see cref="ShardOfKey"/>); each shard replica keeps them in a
    /// <see cref="RecordCollection{TKey}"/> (FASTER payload store, filter columns, one index per vector field), and
    /// <see cref="Dimension"/>, <see cref="Metric"/> and <see cref="Spec"/> repeat the schema's first vector field.
    /// </summary>
    [Id(11)] public string? RecordSchema { get; init; }

    /// <summary>True for a record collection.</summary>
    internal bool IsRecords => RecordSchema is not null;

    /// <summary>The parsed <see cref="RecordSchema"/> (null for plain vectors).</summary>
    internal CollectionSchema? Schema => RecordSchema is null ? null : SchemaCache.Get(RecordSchema);

    /// <summary>Checks every field; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (RecordSchema is not null)
        {
            var schema = CollectionSchema.Parse(RecordSchema);
            var first = schema.Vectors[0];
            if (Sharding != ShardingMode.KeyHash)
                throw new ArgumentException("Record collections are sharded by key hash only.", nameof(Sharding));
            if (Dimension != first.Dimension || Metric != first.Metric || Spec != first.IndexSpec)
                throw new ArgumentException($"A record collection's Dimension, Metric and Spec repeat its first vector field '{first.Name}' ({first.Dimension}, {first.Metric}, {first.IndexSpec}).", nameof(RecordSchema));
        }
        if (string.IsNullOrEmpty(Name) || Name.Length > 128 || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || Name is "." or "..")
            throw new ArgumentException($"Collection name '{Name}' is invalid: use 1..128 letters, digits, '-', '_' or '.'.", nameof(Name));
        if (Dimension is < 1 or > 65536) throw new ArgumentOutOfRangeException(nameof(Dimension), Dimension, "Dimension must be in 1..65536.");
        if (!Enum.IsDefined(Metric)) throw new ArgumentOutOfRangeException(nameof(Metric), Metric, "Unknown metric.");
        if (Shards is < 1 or > 4096) throw new ArgumentOutOfRangeException(nameof(Shards), Shards, "Shards must be in 1..4096.");
        if (Replicas is < 1 or > 16) throw new ArgumentOutOfRangeException(nameof(Replicas), Replicas, "Replicas must be in 1..16.");
        if (TrainingSize is < 1 or > 100_000_000) throw new ArgumentOutOfRangeException(nameof(TrainingSize), TrainingSize, "TrainingSize must be in 1..10^8.");
        ArgumentException.ThrowIfNullOrWhiteSpace(Spec, nameof(Spec));
        switch (Sharding)
        {
            case ShardingMode.KeyHash:
                if (Centroids != 0 || CentroidProbes != 0 || CentroidDigest != 0)
                    throw new ArgumentException("Centroids, CentroidProbes and CentroidDigest apply to centroid-range sharding only; leave them 0 with key-hash sharding.", nameof(Centroids));
                break;
            case ShardingMode.CentroidRanges:
                if (Centroids < Shards || Centroids > 65536)
                    throw new ArgumentOutOfRangeException(nameof(Centroids), Centroids, $"Centroid-range sharding needs Centroids in Shards ({Shards})..65536: every shard owns at least one centroid.");
                if (CentroidProbes < 0 || CentroidProbes > Centroids)
                    throw new ArgumentOutOfRangeException(nameof(CentroidProbes), CentroidProbes, $"CentroidProbes must be in 0..Centroids ({Centroids}); 0 probes all.");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(Sharding), Sharding, "Unknown sharding mode.");
        }
        // Parse the spec once here so a typo fails at the client, not on every shard.
        using var probe = IndexFactory.Create(Spec, Dimension, Metric);
    }

    /// <summary>True for <see cref="ShardingMode.CentroidRanges"/>.</summary>
    internal bool ByCentroid => Sharding == ShardingMode.CentroidRanges;

    /// <summary>Probes a call asks for (0: the layout's <see cref="CentroidProbes"/>, whose 0 means all C).</summary>
    internal int ProbesFor(int requested)
    {
        if (requested < 0 || requested > Centroids)
            throw new ArgumentOutOfRangeException(nameof(requested), requested, $"Centroid probes must be in 0..{Centroids} (0: the layout's default).");
        int p = requested > 0 ? requested : CentroidProbes;
        return p > 0 ? p : Centroids;
    }

    /// <summary>
    /// Key-hash sharding: the shard that owns <paramref name="id"/>: a 64-bit mix (SplitMix64 finaliser) of the id, modulo
    /// <see cref="Shards"/>. Hashing spreads any id pattern (dense, strided, clustered) evenly.
    /// </summary>
    public int ShardOf(long id)
    {
        ulong z = StableHash.Mix(unchecked((ulong)id + 0x9E3779B97F4A7C15UL));
        return (int)(z % (ulong)Shards);
    }

    /// <summary>
    /// Record collections: the shard that owns the key with these bytes (<see cref="RecordSerializer.SerializeKey{TKey}"/>):
    /// FNV-1a over the bytes, then the mix and modulo of <see cref="ShardOf"/>.
    /// </summary>
    public int ShardOfKey(ReadOnlySpan<byte> key)
    {
        return ShardOf(unchecked((long)StableHash.Add(StableHash.Empty, key)));
    }

    /// <summary>
    /// What of this call's layout differs from <paramref name="created"/>, the layout the collection was created with,
    /// among what can never change (dimension, metric, spec, shard count, replication factor, sharding mode and its
    /// centroid table, record schema); null when nothing does. Training size and default probes may differ.
    /// </summary>
    internal string? DifferenceFrom(ShardLayout created)
    {
        var diffs = new List<string>();
        if (Dimension != created.Dimension) diffs.Add($"dimension {created.Dimension}, not {Dimension}");
        if (MetricCode != created.MetricCode) diffs.Add($"metric {created.Metric}, not {Metric}");
        if (Spec != created.Spec) diffs.Add($"spec {created.Spec}, not {Spec}");
        if (Shards != created.Shards) diffs.Add($"{created.Shards} shards, not {Shards}");
        if (Replicas != created.Replicas) diffs.Add($"{created.Replicas} replicas, not {Replicas}");
        if (ShardingCode != created.ShardingCode) diffs.Add($"sharding {created.Sharding}, not {Sharding}");
        else if (CentroidDigest != created.CentroidDigest) diffs.Add($"centroid table {created.CentroidDigest:X16}, not {CentroidDigest:X16}");
        if (RecordSchema != created.RecordSchema) diffs.Add(created.RecordSchema is null ? "plain vectors, not records" : RecordSchema is null ? "records, not plain vectors" : "another record schema");
        return diffs.Count == 0 ? null : string.Join(", ", diffs);
    }

    /// <summary>The refusal of a layout that differs from the one the collection was created with (see <see cref="DifferenceFrom"/>).</summary>
    internal ArgumentException Mismatch(ShardLayout created, string difference) =>
        new($"Collection '{Name}' was created with {difference} (its layout: {created.Shards} shards × {created.Replicas} replicas, d = {created.Dimension}, "
            + $"metric {created.Metric}, spec {created.Spec}): a collection's dimension, metric, spec, shard count, replication factor, sharding and "
            + "record schema cannot change; open it with the layout it was created with (DistributedCollection.OpenExistingAsync reads it).", "layout");

    /// <summary>The grain key of replica <paramref name="replica"/> of shard <paramref name="shard"/>: <c>name/shard/replica</c>.</summary>
    public string ReplicaKey(int shard, int replica) => $"{Name}/{shard}/{replica}";
}

/// <summary>How a distributed collection spreads its vectors over shards.</summary>
[GenerateSerializer, Alias("Engine.Distributed.ShardingMode")]
public enum ShardingMode
{
    /// <summary>
    /// The default: by a hash of the id (<see cref="ShardLayout.ShardOf"/>). Every search visits every shard; the
    /// merged top-k equals a single index for exact indexes, load is even for any data, writes need no lookup.
    /// </summary>
    KeyHash = 0,

    /// <summary>
    /// By IVF centroid ranges: a coarse quantizer of <see cref="ShardLayout.Centroids"/> centroids, trained once on a
    /// sample when the collection is created, assigns each vector to its nearest centroid, and each shard owns a
    /// contiguous range of centroids. A query visits only the shards owning its nearest
    /// <see cref="SearchRequest.CentroidProbes"/> centroids; probing all C visits every shard and gives the key-hash
    /// results. A write first locates the id's current shard, since the id alone no longer says where it lives.
    /// </summary>
    CentroidRanges = 1,
}

/// <summary>Parsed record schemas by their JSON (a layout travels with every call; parsing it each time would cost).</summary>
internal static class SchemaCache
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, CollectionSchema> Parsed = new(StringComparer.Ordinal);

    public static CollectionSchema Get(string json)
    {
        if (Parsed.TryGetValue(json, out var s)) return s;
        s = CollectionSchema.Parse(json);
        if (Parsed.Count < 1024) Parsed[json] = s;
        return s;
    }
}
