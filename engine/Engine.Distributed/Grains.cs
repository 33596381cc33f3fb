using Orleans;
using Orleans.Concurrency;

namespace Engine.Distributed;

/// <summary>
/// One replica of one shard (key <c>collection/shard/replica</c>, see <see cref="ShardLayout.ReplicaKey"/>). Replica 0
/// is the shard's primary: it sequences the shard's writes and replicates each to the other replicas; a write is
/// acknowledged once every replica logged it durably. Any replica answers searches.
/// </summary>
[Alias("Engine.Distributed.IShardReplicaGrain")]
public interface IShardReplicaGrain : IGrainWithStringKey
{
    /// <summary>Primary only: sequences a write batch, logs it, replicates it to every other replica, returns its sequence.</summary>
    [Alias("Write")]
    Task<long> Write(ShardLayout layout, WriteKind kind, long[] ids, float[] vectors);

    /// <summary>Primary only, record collections: sequences a write of serialized records (upsert) or of keys (delete),
    /// checked against the schema before it is logged, and replicates it like <see cref="Write"/>.</summary>
    [Alias("WriteRecords")]
    Task<long> WriteRecords(ShardLayout layout, WriteKind kind, byte[][] items);

    /// <summary>Record collections: the top-k records of this replica per query (filter and knobs applied here).</summary>
    [AlwaysInterleave, Alias("SearchRecords")]
    Task<RecordHits> SearchRecords(ShardLayout layout, RecordSearchRequest request);

    /// <summary>Record collections: serialized records by key (null where absent), after catching up.</summary>
    [AlwaysInterleave, Alias("GetRecords")]
    Task<byte[]?[]> GetRecords(ShardLayout layout, byte[][] keys, bool includeVectors);

    /// <summary>Record collections: the first <paramref name="top"/> records that match the filter (JSON of
    /// <see cref="Engine.Collections.FilterSerializer"/>), in this replica's insertion order.</summary>
    [AlwaysInterleave, Alias("GetWhereRecords")]
    Task<byte[][]> GetWhereRecords(ShardLayout layout, string filterJson, int top, bool includeVectors);

    /// <summary>Record collections: a page of this replica's records as it holds them now, with vectors, after cursor
    /// <paramref name="after"/> (−1: from the start), about <paramref name="maxBytes"/> of them (the snapshot half of a
    /// peer's catch-up). <paramref name="generation"/> is the generation the scan began in (−1 on the first page): a
    /// replica whose records were replaced since refuses the page.</summary>
    [AlwaysInterleave, Alias("ScanLocalRecords")]
    Task<RecordScanPage> ScanLocalRecords(ShardLayout layout, long after, int maxBytes, long generation);

    /// <summary>Follower: applies writes sequenced by the primary (catching up first when they do not follow its own).</summary>
    [Alias("Apply")]
    Task Apply(ShardLayout layout, WriteOp[] ops);

    /// <summary>Top-k over this replica (after catching up if it was just activated). Interleaves with a write that
    /// waits on its followers, so reads never queue behind a slow or failed follower; such a write is already applied
    /// here (durable on this replica, acknowledged once the followers have it).</summary>
    [AlwaysInterleave, Alias("Search")]
    Task<SearchResponse> Search(ShardLayout layout, SearchRequest request);

    /// <summary>Stored vectors by id (after catching up); interleaves like <see cref="Search"/>.</summary>
    [AlwaysInterleave, Alias("Get")]
    Task<VectorRows> Get(ShardLayout layout, long[] ids);

    /// <summary>Catches up if needed and reports where the replica stands.</summary>
    [Alias("Ready")]
    Task<ReplicaStatus> Ready(ShardLayout layout);

    /// <summary><see cref="Ready"/> for a collection being created: a replica that finds no durable peer may start empty
    /// instead of refusing. The router calls it only while no replica records that the collection was created
    /// (<see cref="WasCreated"/>); an existing collection is opened with <see cref="Ready"/>.</summary>
    /// <param name="layout">The collection's layout.</param>
    /// <param name="centroids">Centroid-range sharding: the collection's centroid table, kept in the replica's directory (null: key-hash sharding, or reopening).</param>
    [Alias("Create")]
    Task<ReplicaStatus> Create(ShardLayout layout, CentroidTable? centroids);

    /// <summary>True when this replica's directory on its current silo records that the collection was created (every
    /// replica of it made at its first open); opens nothing. A replica whose directory was made with another layout
    /// refuses this one (<see cref="ArgumentException"/> naming what differs).</summary>
    [AlwaysInterleave, Alias("WasCreated")]
    Task<bool> WasCreated(ShardLayout layout);

    /// <summary>Records in this replica's directory that the collection was created (the router calls it on every
    /// replica once all of them were created).</summary>
    [Alias("MarkCreated")]
    Task MarkCreated(ShardLayout layout);

    /// <summary>Centroid-range sharding: the centroid table this replica keeps on its silo's disk (null: none); opens nothing.</summary>
    [AlwaysInterleave, Alias("Centroids")]
    Task<CentroidTable?> Centroids(ShardLayout layout);

    /// <summary>The ids of <paramref name="ids"/> this replica holds (after catching up); interleaves like <see cref="Search"/>.
    /// Centroid-range sharding uses it to find where an id lives, since the id alone does not say.</summary>
    [AlwaysInterleave, Alias("Holding")]
    Task<long[]> Holding(ShardLayout layout, long[] ids);

    /// <summary>Where the replica stands on this silo's disk, without contacting peers (peers call it while catching up).</summary>
    [AlwaysInterleave, Alias("Peek")]
    Task<ReplicaStatus> Peek(ShardLayout layout);

    /// <summary>What a peer at (<paramref name="sequence"/>, <paramref name="epoch"/>) needs to reach this replica.</summary>
    [AlwaysInterleave, Alias("CatchUpFrom")]
    Task<CatchUp> CatchUpFrom(ShardLayout layout, long sequence, long epoch);

    /// <summary>Stored vectors by id as this replica holds them now (the snapshot half of a peer's catch-up).</summary>
    [AlwaysInterleave, Alias("GetLocal")]
    Task<VectorRows> GetLocal(ShardLayout layout, long[] ids);

    /// <summary>Bytes [<paramref name="offset"/>, + <paramref name="count"/>) of the index file of generation
    /// <paramref name="generation"/> (a snapshot copy ships the built index instead of rebuilding it).</summary>
    /// <exception cref="InvalidOperationException">The replica saved a newer index meanwhile (the copy starts again).</exception>
    [AlwaysInterleave, Alias("ReadIndexChunk")]
    Task<byte[]> ReadIndexChunk(ShardLayout layout, long generation, long offset, int count);

    /// <summary>The layout this replica's directory on the current silo was created with (null: none); opens nothing.</summary>
    [AlwaysInterleave, Alias("StoredLayout")]
    Task<ShardLayout?> StoredLayout();

    /// <summary>True when the replica is not on the silo its placement picks in the current membership (opens nothing).</summary>
    [AlwaysInterleave, Alias("Misplaced")]
    Task<bool> Misplaced(ShardLayout layout);

    /// <summary>When the replica is not on the silo its placement picks in the current membership, moves there
    /// (migration; the new activation catches up from a peer). Returns true when a move was started.</summary>
    [Alias("Rebalance")]
    Task<bool> Rebalance(ShardLayout layout);
}

/// <summary>
/// The query router of one collection (key: the collection name): a stateless worker, so every silo runs local
/// copies. Splits writes by shard, fans searches out to one replica per shard (another on failure), merges top-k.
/// </summary>
[Alias("Engine.Distributed.IRouterGrain")]
public interface IRouterGrain : IGrainWithStringKey
{
    /// <summary>Activates every replica and returns their status, shard-major. A collection no replica records as
    /// created is created (every replica may start empty, then each records the creation); an existing one is opened
    /// (a replica whose directory is elsewhere catches up from a peer, or refuses when none holds the shard).</summary>
    /// <param name="layout">The collection's layout.</param>
    /// <param name="centroids">Centroid-range sharding, at creation: the trained centroid table (checked against
    /// <see cref="ShardLayout.CentroidDigest"/>), kept by every replica. Null to open an existing collection.</param>
    [Alias("Open")]
    Task<ReplicaStatus[]> Open(ShardLayout layout, CentroidTable? centroids);

    /// <summary>Inserts or replaces vectors by id; returns when every replica of every touched shard made them durable.</summary>
    [Alias("Upsert")]
    Task Upsert(ShardLayout layout, long[] ids, float[] vectors);

    /// <summary>Deletes ids (absent ones are ignored); returns when every replica made the delete durable.</summary>
    [Alias("Delete")]
    Task Delete(ShardLayout layout, long[] ids);

    /// <summary>Exact top-k merge of the top-k of every shard the query visits: all of them with key-hash sharding;
    /// with centroid-range sharding the owners of its <see cref="SearchRequest.CentroidProbes"/> nearest centroids.</summary>
    [Alias("Search")]
    Task<SearchResponse> Search(ShardLayout layout, SearchRequest request);

    /// <summary>Stored vectors by id, from any replica of the owning shards.</summary>
    [Alias("Get")]
    Task<VectorRows> Get(ShardLayout layout, long[] ids);

    /// <summary>Status of every replica, shard-major (after each caught up).</summary>
    [Alias("Status")]
    Task<ReplicaStatus[]> Status(ShardLayout layout);

    /// <summary>Record collections: inserts or replaces serialized records (each shard gets those of its keys); returns
    /// when every replica of every touched shard made them durable.</summary>
    [Alias("UpsertRecords")]
    Task UpsertRecords(ShardLayout layout, byte[][] records);

    /// <summary>Record collections: deletes records by key bytes (absent keys are ignored).</summary>
    [Alias("DeleteRecords")]
    Task DeleteRecords(ShardLayout layout, byte[][] keys);

    /// <summary>Record collections: the exact merge of every shard's top-k records per query.</summary>
    [Alias("SearchRecords")]
    Task<RecordHits> SearchRecords(ShardLayout layout, RecordSearchRequest request);

    /// <summary>Record collections: serialized records by key bytes, in the keys' order (null where absent).</summary>
    [Alias("GetRecords")]
    Task<byte[]?[]> GetRecords(ShardLayout layout, byte[][] keys, bool includeVectors);

    /// <summary>Record collections: records that match a filter, shard by shard (shard 0 first), each shard's in its
    /// insertion order; <paramref name="skip"/> + <paramref name="top"/> at most 100 000.</summary>
    [Alias("GetWhereRecords")]
    Task<byte[][]> GetWhereRecords(ShardLayout layout, string filterJson, int skip, int top, bool includeVectors);

    /// <summary>Replicas not on the silo the placement rule picks in the current membership (what <see cref="Rebalance"/> would move).</summary>
    [Alias("Misplaced")]
    Task<int> Misplaced(ShardLayout layout);

    /// <summary>Moves misplaced replicas one at a time (each caught up before the next moves); returns how many moved.</summary>
    [Alias("Rebalance")]
    Task<int> Rebalance(ShardLayout layout);
}
