using Orleans;

namespace Engine.Distributed;

/// <summary>
/// A filter the shards apply inside their index scan (as an <see cref="IIdFilter"/>): an allow-list, a deny-list
/// and an id range, all optional; an id must pass every part that is set.
/// </summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.ShardFilter")]
public sealed record ShardFilter
{
    /// <summary>Only these ids may be returned (null: no allow-list).</summary>
    [Id(0)] public long[]? AllowIds { get; init; }

    /// <summary>These ids are never returned (null: none), e.g. an anchor's positives when mining.</summary>
    [Id(1)] public long[]? DenyIds { get; init; }

    /// <summary>Smallest id that may be returned (inclusive).</summary>
    [Id(2)] public long MinId { get; init; } = long.MinValue;

    /// <summary>Largest id that may be returned (inclusive).</summary>
    [Id(3)] public long MaxId { get; init; } = long.MaxValue;

    internal IIdFilter ToIdFilter() => new Compiled(this);

    private sealed class Compiled(ShardFilter f) : IIdFilter
    {
        private readonly HashSet<long>? _allow = f.AllowIds is null ? null : new HashSet<long>(f.AllowIds);
        private readonly HashSet<long>? _deny = f.DenyIds is null || f.DenyIds.Length == 0 ? null : new HashSet<long>(f.DenyIds);

        public bool IsAllowed(long id) =>
            id >= f.MinId && id <= f.MaxId && (_allow is null || _allow.Contains(id)) && (_deny is null || !_deny.Contains(id));

        public double EstimatedSelectivity(long corpusCount) =>
            _allow is null || corpusCount <= 0 ? -1 : Math.Min(1.0, _allow.Count / (double)corpusCount);
    }
}

/// <summary>One search call as the router and the shards see it.</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.SearchRequest")]
public sealed record SearchRequest
{
    /// <summary>nq × d queries, row-major.</summary>
    [Id(0)] public required float[] Queries { get; init; }

    /// <summary>Neighbours per query (1..10 000).</summary>
    [Id(1)] public required int K { get; init; }

    /// <summary>
    /// Per-call index knobs by name, as <c>engine bench --sweep</c> takes them (<c>probes</c>, <c>ef</c>, <c>refine</c>,
    /// ...); each shard turns them into its index's parameters and rejects a knob its index does not understand.
    /// </summary>
    [Id(2)] public Dictionary<string, string>? Settings { get; init; }

    /// <summary>Filter applied on the shards (null: none).</summary>
    [Id(3)] public ShardFilter? Filter { get; init; }

    /// <summary>Threads per shard search (0 = all of the silo's cores).</summary>
    [Id(4)] public int Threads { get; init; }

    /// <summary>Also return each hit's stored vector (the miner reads candidates this way, without a second round trip).</summary>
    [Id(5)] public bool IncludeVectors { get; init; }

    /// <summary>
    /// Centroid-range sharding: centroids each query probes (1..C; 0 = the layout's
    /// <see cref="ShardLayout.CentroidProbes"/>). The query visits only the shards owning them; C visits every shard.
    /// Must be 0 with key-hash sharding.
    /// </summary>
    [Id(6)] public int CentroidProbes { get; init; }
}

/// <summary>Top-k of a batch: nq × k distances and labels (padded with −1 and the metric's missing distance).</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.SearchResponse")]
public sealed record SearchResponse
{
    /// <summary>nq × k distances, row-major.</summary>
    [Id(0)] public required float[] Distances { get; init; }

    /// <summary>nq × k ids, row-major; −1 pads.</summary>
    [Id(1)] public required long[] Labels { get; init; }

    /// <summary>nq × k × d stored vectors of the hits when asked for (zeros for padding), else null.</summary>
    [Id(2)] public float[]? Vectors { get; init; }

    /// <summary>Shards that answered (each shard once, from one replica).</summary>
    [Id(3)] public int ShardsAnswered { get; init; }

    /// <summary>Replica calls that failed and were retried on another replica.</summary>
    [Id(4)] public int Failovers { get; init; }

    /// <summary>Shards each query visited (nq entries, filled by the router): S for every query with key-hash sharding,
    /// the owners of its probed centroids with centroid-range sharding.</summary>
    [Id(5)] public int[]? ShardsPerQuery { get; init; }
}

/// <summary>What a replica holds: its position in the shard's write sequence.</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.ReplicaStatus")]
public sealed record ReplicaStatus
{
    /// <summary>Sequence number of the last applied write batch (0: none).</summary>
    [Id(0)] public long Sequence { get; init; }

    /// <summary>Epoch of the primary that wrote that batch (detects a diverged tail; 0 with no writes).</summary>
    [Id(1)] public long Epoch { get; init; }

    /// <summary>Live vectors.</summary>
    [Id(2)] public long Count { get; init; }

    /// <summary>The silo the replica is active on (its endpoint).</summary>
    [Id(3)] public string Silo { get; init; } = "";

    /// <summary>True when the shard's index is trained (always for Flat/HNSW).</summary>
    [Id(4)] public bool Trained { get; init; }

    /// <summary>How this activation last caught up from a peer: <c>""</c> (never needed to), <c>"ops N from replica r"</c>
    /// (the writes it missed) or <c>"snapshot N from replica r"</c> (a full copy of N vectors, then the writes after it).</summary>
    [Id(5)] public string LastCatchUp { get; init; } = "";

    /// <summary>True when this replica's state is trustworthy: its directory held it before this activation, it caught
    /// up from such a replica, or the collection was created through it. A replica created on a new silo is not, until it
    /// caught up: it may be a fresh activation that knows nothing (say, while the cluster recovers from a dead silo).</summary>
    [Id(6)] public bool Durable { get; init; }

    /// <summary>True when this replica's directory records that the collection was created (every replica of it was
    /// made at its first open): a replica of it activated away from its data must then catch up or refuse, never start empty.</summary>
    [Id(7)] public bool Created { get; init; }
}

/// <summary>The kind of a logged write.</summary>
[GenerateSerializer, Alias("Engine.Distributed.WriteKind")]
public enum WriteKind : byte
{
    /// <summary>Insert or replace vectors by id.</summary>
    Upsert = 1,

    /// <summary>Delete ids (absent ids are ignored).</summary>
    Delete = 2,
}

/// <summary>One write batch of one shard, as the primary sequenced it.</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.WriteOp")]
public sealed record WriteOp
{
    /// <summary>Position in the shard's write sequence (1, 2, ...).</summary>
    [Id(0)] public required long Sequence { get; init; }

    /// <summary>Epoch of the primary activation that sequenced it.</summary>
    [Id(1)] public required long Epoch { get; init; }

    /// <summary>Upsert or delete.</summary>
    [Id(2)] public required WriteKind Kind { get; init; }

    /// <summary>The ids.</summary>
    [Id(3)] public required long[] Ids { get; init; }

    /// <summary>n × d vectors (upserts; empty for deletes).</summary>
    [Id(4)] public required float[] Vectors { get; init; }

    /// <summary>Epoch of the write before it on the primary: a follower applies the write only when its own last
    /// write has this epoch, otherwise its tail diverged and it catches up first.</summary>
    [Id(5)] public long PreviousEpoch { get; init; }

    /// <summary>Record collections: the serialized records (upserts, <see cref="Engine.Collections.RecordSerializer"/>)
    /// or keys (deletes); <see cref="Ids"/> and <see cref="Vectors"/> are then empty. Null for plain vectors.</summary>
    [Id(6)] public byte[][]? Records { get; init; }

    /// <summary>Bytes the write holds (what the in-memory tail of writes is bounded by).</summary>
    internal long Bytes => Ids.Length * 8L + Vectors.Length * 4L + (Records?.Sum(r => r.Length + 16L) ?? 0) + 64;
}

/// <summary>
/// A catch-up answer: either the writes after the asker's sequence (<see cref="Ops"/>), or, when the asker's tail
/// diverged or is older than the kept history, <see cref="SnapshotIds"/> to fetch by id then the writes after
/// <see cref="SnapshotSequence"/>.
/// </summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.CatchUp")]
public sealed record CatchUp
{
    /// <summary>Writes to apply in order (null when a snapshot is needed).</summary>
    [Id(0)] public WriteOp[]? Ops { get; init; }

    /// <summary>Every live id at <see cref="SnapshotSequence"/> (null when <see cref="Ops"/> suffices).</summary>
    [Id(1)] public long[]? SnapshotIds { get; init; }

    /// <summary>Sequence the snapshot id list was taken at.</summary>
    [Id(2)] public long SnapshotSequence { get; init; }

    /// <summary>Epoch of the write at <see cref="SnapshotSequence"/>.</summary>
    [Id(3)] public long SnapshotEpoch { get; init; }

    /// <summary>Record collections: a snapshot copy is needed (instead of <see cref="SnapshotIds"/>); the asker scans
    /// the records in pages (<see cref="IShardReplicaGrain.ScanLocalRecords"/>) and then replays the writes after
    /// <see cref="SnapshotSequence"/>.</summary>
    [Id(4)] public bool RecordSnapshot { get; init; }

    /// <summary>Plain-vector snapshot copies: the generation of the index file the peer saved at
    /// <see cref="SnapshotSequence"/> (0: none to ship, the asker builds its index from the copied vectors); read it
    /// with <see cref="IShardReplicaGrain.ReadIndexChunk"/>.</summary>
    [Id(5)] public long IndexGeneration { get; init; }

    /// <summary>Bytes of that index file.</summary>
    [Id(6)] public long IndexBytes { get; init; }

    /// <summary>True when <see cref="Ops"/> stops short of the replica's last write (an answer carries at most 32 MiB of
    /// writes): apply them and ask again.</summary>
    [Id(7)] public bool More { get; init; }
}

/// <summary>One record search as the router and the shards see it (record collections).</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.RecordSearchRequest")]
public sealed record RecordSearchRequest
{
    /// <summary>nq × d queries of the searched vector field, row-major.</summary>
    [Id(0)] public required float[] Queries { get; init; }

    /// <summary>Hits per query (1..10 000).</summary>
    [Id(1)] public required int K { get; init; }

    /// <summary>The vector field to search (null: the schema's only one).</summary>
    [Id(2)] public string? VectorName { get; init; }

    /// <summary>The filter as <see cref="Engine.Collections.FilterSerializer.ToJson"/> writes it (null: none); every shard evaluates it on its records.</summary>
    [Id(3)] public string? FilterJson { get; init; }

    /// <summary>Index knobs by name (<c>probes</c>, <c>ef</c>, ...; null for none).</summary>
    [Id(4)] public Dictionary<string, string>? Settings { get; init; }

    /// <summary>Return the hits' vectors too.</summary>
    [Id(5)] public bool IncludeVectors { get; init; }

    /// <summary>Filters that allow at most this fraction of a shard's records are answered by exact search (0..1).</summary>
    [Id(6)] public double ExactFallbackSelectivity { get; init; } = 0.01;
}

/// <summary>A page of a record snapshot copy: records in the peer's internal-id order and where to continue.</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.RecordScanPage")]
public sealed record RecordScanPage
{
    /// <summary>Serialized records, with vectors.</summary>
    [Id(0)] public required byte[][] Records { get; init; }

    /// <summary>The cursor of the next page (−1: the scan is complete).</summary>
    [Id(1)] public required long Next { get; init; }

    /// <summary>The generation of the peer's records the page comes from (a cursor is only valid within one).</summary>
    [Id(2)] public required long Generation { get; init; }
}

/// <summary>Top-k records of a batch of queries: per query up to k hits, best first.</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.RecordHits")]
public sealed record RecordHits
{
    /// <summary>nq + 1 offsets into the hit arrays: query q's hits are [Offsets[q], Offsets[q + 1]).</summary>
    [Id(0)] public required int[] Offsets { get; init; }

    /// <summary>Each hit's distance (the index's value).</summary>
    [Id(1)] public required float[] Distances { get; init; }

    /// <summary>Each hit's score (larger closer).</summary>
    [Id(2)] public required float[] Scores { get; init; }

    /// <summary>Each hit's key bytes.</summary>
    [Id(3)] public required byte[][] Keys { get; init; }

    /// <summary>Each hit's serialized record (with vectors when asked for).</summary>
    [Id(4)] public required byte[][] Records { get; init; }

    /// <summary>Shards that answered.</summary>
    [Id(5)] public int ShardsAnswered { get; init; }

    /// <summary>Replica calls that failed and were retried on another replica.</summary>
    [Id(6)] public int Failovers { get; init; }
}

/// <summary>Vectors fetched by id (ids not present are left out).</summary>
[GenerateSerializer, Immutable, Alias("Engine.Distributed.VectorRows")]
public sealed record VectorRows
{
    /// <summary>The ids found.</summary>
    [Id(0)] public required long[] Ids { get; init; }

    /// <summary>Their vectors, n × d.</summary>
    [Id(1)] public required float[] Vectors { get; init; }
}
