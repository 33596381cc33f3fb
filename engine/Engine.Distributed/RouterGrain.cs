using Engine.Collections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Concurrency;

namespace Engine.Distributed;

/// <summary>The router grain; see <see cref="IRouterGrain"/>.</summary>
[StatelessWorker]
internal sealed class RouterGrain(IOptions<DistributedEngineOptions> options, CentroidTableCache tables, ILogger<RouterGrain> logger) : Grain, IRouterGrain
{
    private int _turn;

    private IShardReplicaGrain Replica(ShardLayout layout, int shard, int replica) =>
        GrainFactory.GetGrain<IShardReplicaGrain>(layout.ReplicaKey(shard, replica));

    private void Check(ShardLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (layout.Name != this.GetPrimaryKeyString())
            throw new ArgumentException($"This router serves collection '{this.GetPrimaryKeyString()}', not '{layout.Name}'.", nameof(layout));
    }

    public async Task<ReplicaStatus[]> Open(ShardLayout layout, CentroidTable? centroids)
    {
        Check(layout);
        layout.Validate();
        if (layout.ByCentroid)
        {
            if (layout.CentroidDigest == 0)
                throw new ArgumentException($"Collection '{layout.Name}' is sharded by centroid ranges but its layout names no centroid table: create it with DistributedCollection.CreateAsync and a training sample, or open it with OpenExistingAsync.", nameof(layout));
            if (centroids is not null)
            {
                centroids.CheckAgainst(layout);
                tables.Put(layout, centroids);
            }
            else await Table(layout);   // an existing collection: some replica must hold the table
        }
        else if (centroids is not null)
            throw new ArgumentException($"Collection '{layout.Name}' is sharded by key hash; it takes no centroid table.", nameof(centroids));
        // Only a collection no replica records as created may start empty. Once created, a replica whose directory is
        // not on the silo it is activated on catches up from a peer, or refuses (R = 1: its only copy is on a silo
        // that is away): re-creating it empty would serve the shard without its data, and keep serving it so.
        if (await WasCreated(layout))
            return await Task.WhenAll(Replicas(layout).Select(replica => UntilPlaced(() => replica.Ready(layout))));
        var status = await Task.WhenAll(Replicas(layout).Select(replica => UntilPlaced(() => replica.Create(layout, centroids))));
        await Task.WhenAll(Replicas(layout).Select(replica => UntilPlaced(async () => { await replica.MarkCreated(layout); return true; })));
        return status;
    }

    // A replica on a silo that was just lost: Orleans rejects the call (or it times out) until the cluster declares the
    // silo dead and the replica is activated on another. Retried like a write, until ReplicationTimeout; a replica's own
    // refusal (an IOException: it has nothing to serve) and a wrong layout are not.
    private async Task<T> UntilPlaced<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow + options.Value.ReplicationTimeout;
        for (int attempt = 0; ; attempt++)
        {
            try { return await call(); }
            catch (Exception e) when (e is Orleans.Runtime.OrleansException or TimeoutException && DateTime.UtcNow < deadline)
            {
                logger.LogWarning("Opening a replica failed (attempt {Attempt}), retrying: {Error}", attempt + 1, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5))));
            }
        }
    }

    private IEnumerable<IShardReplicaGrain> Replicas(ShardLayout layout)
    {
        for (int s = 0; s < layout.Shards; s++)
            for (int r = 0; r < layout.Replicas; r++)
                yield return Replica(layout, s, r);
    }

    // True when a replica that answers records that the collection was created; refuses (ArgumentException) a layout
    // other than the one a replica was created with, before anything is opened or created. When none says created
    // but some did not answer, the collection may exist on exactly those: that is an IOException (retry once the
    // cluster is whole), never a creation, which would start their shards empty and mark them created.
    private async Task<bool> WasCreated(ShardLayout layout)
    {
        var answers = await Task.WhenAll(Replicas(layout).Select(async replica =>
        {
            try { return (bool?)await replica.WasCreated(layout).WaitAsync(options.Value.PeerTimeout); }
            catch (Exception e) when (IsTransient(e))
            {
                logger.LogWarning("Replica {Key} did not say whether collection {Name} exists: {Error}", replica.GetPrimaryKeyString(), layout.Name, e.Message);
                return null;
            }
        }));
        if (answers.Any(created => created == true)) return true;
        int silent = answers.Count(created => created is null);
        if (silent > 0)
            throw new IOException($"Collection '{layout.Name}': {silent} of its {answers.Length} replicas did not answer whether it exists, and none "
                + "that answered holds it; it is neither opened nor created (that could start shards empty whose data is on an unreachable silo). "
                + "Retry once every silo is back.");
        return false;
    }

    // The collection's centroid table: this silo's cached copy, else the first replica that keeps one on its disk.
    private async Task<CentroidTable> Table(ShardLayout layout)
    {
        if (tables.TryGet(layout) is { } cached) return cached;
        for (int s = 0; s < layout.Shards; s++)
            for (int r = 0; r < layout.Replicas; r++)
            {
                try
                {
                    if (await Replica(layout, s, r).Centroids(layout).WaitAsync(options.Value.PeerTimeout) is not { } table) continue;
                    table.CheckAgainst(layout);
                    tables.Put(layout, table);
                    return table;
                }
                catch (Exception e) when (IsTransient(e))
                {
                    logger.LogWarning("Shard {Shard} replica {Replica} could not give the centroid table: {Error}", s, r, e.Message);
                }
            }
        throw new ArgumentException($"No replica of collection '{layout.Name}' holds its centroid table ({layout.CentroidDigest:X16}): create the collection with DistributedCollection.CreateAsync and a training sample.", nameof(layout));
    }

    public async Task<ReplicaStatus[]> Status(ShardLayout layout)
    {
        Check(layout);
        var all = new List<Task<ReplicaStatus>>();
        for (int s = 0; s < layout.Shards; s++)
            for (int r = 0; r < layout.Replicas; r++)
                all.Add(Replica(layout, s, r).Ready(layout));
        return await Task.WhenAll(all);
    }

    public Task Upsert(ShardLayout layout, long[] ids, float[] vectors) => Write(layout, WriteKind.Upsert, ids, vectors);

    public Task Delete(ShardLayout layout, long[] ids) => Write(layout, WriteKind.Delete, ids, []);

    private async Task Write(ShardLayout layout, WriteKind kind, long[] ids, float[] vectors)
    {
        Check(layout);
        if (layout.ByCentroid)
        {
            await WriteByCentroid(layout, kind, ids, vectors);
            return;
        }
        int d = layout.Dimension;
        var perShard = SplitByShard(layout, ids);
        await Task.WhenAll(perShard.Select(pair =>
            WriteShard(layout, pair.Key, kind, pair.Value.Select(i => ids[i]).ToArray(), kind == WriteKind.Upsert ? Gather(vectors, pair.Value, d) : [])));
    }

    // Centroid ranges: an id's shard follows from its vector, so a write first asks every shard which of the ids it
    // holds. An upsert is made durable on the shard of its nearest centroid first, and only then deleted wherever else
    // the id lives (its old shard, or a copy a failed earlier attempt left): a failure in between leaves the record on
    // two shards, never on none, searches count it once, and the retry (every write is idempotent) removes the copy.
    private async Task WriteByCentroid(ShardLayout layout, WriteKind kind, long[] ids, float[] vectors)
    {
        var held = await Locate(layout, ids);
        var keep = new Dictionary<long, int>();
        if (kind == WriteKind.Upsert)
        {
            var table = await Table(layout);
            int[] target = table.ShardsOf(vectors);
            var perShard = new Dictionary<int, List<int>>();
            for (int i = 0; i < ids.Length; i++)
            {
                keep[ids[i]] = target[i];
                if (!perShard.TryGetValue(target[i], out var rows)) perShard[target[i]] = rows = [];
                rows.Add(i);
            }
            await Task.WhenAll(perShard.Select(pair =>
                WriteShard(layout, pair.Key, WriteKind.Upsert, pair.Value.Select(i => ids[i]).ToArray(), Gather(vectors, pair.Value, layout.Dimension))));
        }
        await Task.WhenAll(held.Select((holding, shard) => (holding, shard))
            .Select(p => (p.shard, stale: p.holding.Where(id => !keep.TryGetValue(id, out int s) || s != p.shard).ToArray()))
            .Where(p => p.stale.Length > 0)
            .Select(p => WriteShard(layout, p.shard, WriteKind.Delete, p.stale, [])));
    }

    // For every shard, the ids of the batch it holds, asked of its primary (which sequences the shard's writes) first.
    private async Task<long[][]> Locate(ShardLayout layout, long[] ids)
    {
        var parts = await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s =>
            FromAnyReplica(layout, s, -1, r => r.Holding(layout, ids))));
        return parts.Select(p => p.Value).ToArray();
    }

    private Task WriteShard(ShardLayout layout, int shard, WriteKind kind, long[] shardIds, float[] shardVectors) =>
        WriteShard(layout, shard, primary => primary.Write(layout, kind, shardIds, shardVectors));

    private async Task WriteShard(ShardLayout layout, int shard, Func<IShardReplicaGrain, Task> write)
    {
        // Writes are idempotent (upsert by id or key, delete by id or key), so a failed primary call is simply retried;
        // Orleans activates the primary elsewhere once its silo is gone, and it catches up from a follower first.
        var deadline = DateTime.UtcNow + options.Value.ReplicationTimeout;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await write(Replica(layout, shard, 0));
                return;
            }
            catch (Exception e) when (IsTransient(e) && DateTime.UtcNow < deadline)
            {
                logger.LogWarning("Write to shard {Shard} failed (attempt {Attempt}), retrying: {Error}", shard, attempt + 1, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5))));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"A write to shard {shard} of collection '{layout.Name}' did not succeed within "
                    + $"{options.Value.ReplicationTimeout.TotalSeconds:0.###} s ({attempt + 1} attempt(s)): {e.Message}", e);
            }
        }
    }

    public async Task<SearchResponse> Search(ShardLayout layout, SearchRequest request)
    {
        Check(layout);
        int d = layout.Dimension, nq = request.Queries.Length / d;
        int first = Interlocked.Increment(ref _turn) & int.MaxValue;
        if (!layout.ByCentroid)
        {
            if (request.CentroidProbes != 0)
                throw new ArgumentException($"Collection '{layout.Name}' is sharded by key hash: CentroidProbes must be 0.", nameof(request));
            var parts = await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s => FromAnyReplica(layout, s, first, r => r.Search(layout, request))));
            var merged = TopKMerge.Merge(layout.Metric, nq, request.K, d, parts.Select(p => p.Value with { Failovers = p.Failovers }).ToArray(), request.IncludeVectors);
            return merged with { ShardsPerQuery = Enumerable.Repeat(layout.Shards, nq).ToArray() };
        }
        int probes = layout.ProbesFor(request.CentroidProbes);
        var route = (await Table(layout)).ProbeShards(request.Queries, probes);
        // Each shard gets only the queries that visit it; its answers are put back at their rows for the merge.
        var rowsOf = new Dictionary<int, List<int>>();
        for (int q = 0; q < nq; q++)
            foreach (int s in route[q])
            {
                if (!rowsOf.TryGetValue(s, out var rows)) rowsOf[s] = rows = [];
                rows.Add(q);
            }
        var answers = await Task.WhenAll(rowsOf.Select(async pair =>
        {
            var sub = pair.Value.Count == nq ? request : request with { Queries = Gather(request.Queries, pair.Value, d) };
            var (value, failovers) = await FromAnyReplica(layout, pair.Key, first, r => r.Search(layout, sub));
            return Scatter(layout, value with { Failovers = failovers }, pair.Value, nq, request.K, request.IncludeVectors);
        }));
        var result = TopKMerge.Merge(layout.Metric, nq, request.K, d, answers, request.IncludeVectors);
        return result with { ShardsPerQuery = route.Select(r => r.Length).ToArray() };
    }

    // A shard's answer for some of the batch's rows, spread over all nq rows (the others padded).
    private static SearchResponse Scatter(ShardLayout layout, SearchResponse part, List<int> rows, int nq, int k, bool includeVectors)
    {
        if (rows.Count == nq) return part;
        int d = layout.Dimension;
        var distances = new float[(long)nq * k];
        var labels = new long[(long)nq * k];
        Array.Fill(distances, layout.Metric.MissingDistance());
        Array.Fill(labels, -1L);
        var vectors = includeVectors ? new float[(long)nq * k * d] : null;
        for (int i = 0; i < rows.Count; i++)
        {
            int q = rows[i];
            part.Distances.AsSpan(i * k, k).CopyTo(distances.AsSpan(q * k, k));
            part.Labels.AsSpan(i * k, k).CopyTo(labels.AsSpan(q * k, k));
            if (vectors is not null) part.Vectors.AsSpan(i * k * d, k * d).CopyTo(vectors.AsSpan(q * k * d, k * d));
        }
        return part with { Distances = distances, Labels = labels, Vectors = vectors };
    }

    public async Task<VectorRows> Get(ShardLayout layout, long[] ids)
    {
        Check(layout);
        int first = Interlocked.Increment(ref _turn) & int.MaxValue;
        if (layout.ByCentroid)
        {
            // Any shard may hold any id: ask them all, and keep one row per id (two only while a re-upsert moves it).
            var all = await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s => FromAnyReplica(layout, s, first, r => r.Get(layout, ids))));
            int d = layout.Dimension;
            var seen = new HashSet<long>();
            var found = new List<long>();
            var vectors = new List<float>();
            foreach (var (rows, _) in all)
                for (int i = 0; i < rows.Ids.Length; i++)
                    if (seen.Add(rows.Ids[i]))
                    {
                        found.Add(rows.Ids[i]);
                        vectors.AddRange(rows.Vectors.AsSpan(i * d, d));
                    }
            return new VectorRows { Ids = [.. found], Vectors = [.. vectors] };
        }
        var parts = await Task.WhenAll(SplitByShard(layout, ids).Select(pair =>
            FromAnyReplica(layout, pair.Key, first, r => r.Get(layout, pair.Value.Select(i => ids[i]).ToArray()))));
        return new VectorRows { Ids = parts.SelectMany(p => p.Value.Ids).ToArray(), Vectors = parts.SelectMany(p => p.Value.Vectors).ToArray() };
    }

    // ---------------------------------------------------------------- record collections

    private static CollectionSchema RecordsOf(ShardLayout layout) =>
        layout.Schema ?? throw new InvalidOperationException($"Collection '{layout.Name}' holds plain vectors: use DistributedCollection, not the record calls.");

    public Task UpsertRecords(ShardLayout layout, byte[][] records)
    {
        Check(layout);
        ArgumentNullException.ThrowIfNull(records);
        var serializer = new RecordSerializer(RecordsOf(layout));
        var keys = new byte[records.Length][];
        for (int i = 0; i < records.Length; i++)
        {
            try { keys[i] = serializer.KeyOf(records[i] ?? throw new ArgumentException("is null")); }
            catch (Exception e) when (e is CorruptIndexException or ArgumentException)
            {
                // No inner exception: it travels back to the client, and only the message says anything there.
                throw new ArgumentException($"Record {i} of the batch is not a serialized record of collection '{layout.Name}': {Guard.MessageWithoutParameter(e)}", nameof(records));
            }
        }
        return WriteRecords(layout, WriteKind.Upsert, keys, records);
    }

    public Task DeleteRecords(ShardLayout layout, byte[][] keys)
    {
        Check(layout);
        ArgumentNullException.ThrowIfNull(keys);
        RecordsOf(layout);
        if (Array.IndexOf(keys, null) is int i and >= 0) throw new ArgumentException($"Key {i} of the batch is null.", nameof(keys));
        return WriteRecords(layout, WriteKind.Delete, keys, keys);
    }

    // Each shard gets the items of its keys, in the batch's order (so a later record with the same key still wins).
    private Task WriteRecords(ShardLayout layout, WriteKind kind, byte[][] keys, byte[][] items) =>
        Task.WhenAll(SplitByKey(layout, keys).Select(pair =>
        {
            var part = pair.Value.Select(i => items[i]).ToArray();
            return WriteShard(layout, pair.Key, primary => primary.WriteRecords(layout, kind, part));
        }));

    private static Dictionary<int, List<int>> SplitByKey(ShardLayout layout, byte[][] keys) => Split(keys.Length, i => layout.ShardOfKey(keys[i]));

    public async Task<RecordHits> SearchRecords(ShardLayout layout, RecordSearchRequest request)
    {
        Check(layout);
        ArgumentNullException.ThrowIfNull(request);
        RecordsOf(layout);
        if (request.Queries is null || request.Queries.Length == 0) throw new ArgumentException("The request holds no queries.", nameof(request));
        if (request.K is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(request), request.K, "K must be in 1..10000.");
        int first = Interlocked.Increment(ref _turn) & int.MaxValue;
        var parts = await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s => FromAnyReplica(layout, s, first, r => r.SearchRecords(layout, request))));
        return MergeRecords(parts.Select(p => p.Value).ToArray(), request.K) with { Failovers = parts.Sum(p => p.Value.Failovers + p.Failovers) };
    }

    /// <summary>Per query, the k best hits over every shard's answer: score descending, then key bytes (a fixed order for ties).</summary>
    internal static RecordHits MergeRecords(RecordHits[] parts, int k)
    {
        int nq = parts[0].Offsets.Length - 1;
        var offsets = new int[nq + 1];
        var picked = new List<(RecordHits Part, int Hit)>();
        for (int q = 0; q < nq; q++)
        {
            var candidates = new List<(RecordHits Part, int Hit)>();
            foreach (var p in parts)
                for (int h = p.Offsets[q]; h < p.Offsets[q + 1]; h++) candidates.Add((p, h));
            candidates.Sort((a, b) =>
            {
                int c = b.Part.Scores[b.Hit].CompareTo(a.Part.Scores[a.Hit]);
                return c != 0 ? c : a.Part.Keys[a.Hit].AsSpan().SequenceCompareTo(b.Part.Keys[b.Hit]);
            });
            picked.AddRange(candidates.Take(k));
            offsets[q + 1] = picked.Count;
        }
        return new RecordHits
        {
            Offsets = offsets,
            Distances = picked.Select(x => x.Part.Distances[x.Hit]).ToArray(),
            Scores = picked.Select(x => x.Part.Scores[x.Hit]).ToArray(),
            Keys = picked.Select(x => x.Part.Keys[x.Hit]).ToArray(),
            Records = picked.Select(x => x.Part.Records[x.Hit]).ToArray(),
            ShardsAnswered = parts.Sum(p => p.ShardsAnswered),
        };
    }

    public async Task<byte[][]> GetWhereRecords(ShardLayout layout, string filterJson, int skip, int top, bool includeVectors)
    {
        Check(layout);
        ArgumentNullException.ThrowIfNull(filterJson);
        RecordsOf(layout);
        if (skip < 0 || top < 1 || (long)skip + top > 100_000)
            throw new ArgumentOutOfRangeException(nameof(top), $"skip ({skip}) + top ({top}) must be in 1..100000, skip >= 0.");
        int first = Interlocked.Increment(ref _turn) & int.MaxValue;
        var parts = await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s =>
            FromAnyReplica(layout, s, first, r => r.GetWhereRecords(layout, filterJson, skip + top, includeVectors))));
        return parts.SelectMany(p => p.Value).Skip(skip).Take(top).ToArray();
    }

    public async Task<byte[]?[]> GetRecords(ShardLayout layout, byte[][] keys, bool includeVectors)
    {
        Check(layout);
        ArgumentNullException.ThrowIfNull(keys);
        RecordsOf(layout);
        if (Array.IndexOf(keys, null) is int bad and >= 0) throw new ArgumentException($"Key {bad} of the batch is null.", nameof(keys));
        int first = Interlocked.Increment(ref _turn) & int.MaxValue;
        var result = new byte[]?[keys.Length];
        await Task.WhenAll(SplitByKey(layout, keys).Select(async pair =>
        {
            var (found, _) = await FromAnyReplica(layout, pair.Key, first, r => r.GetRecords(layout, pair.Value.Select(i => keys[i]).ToArray(), includeVectors));
            for (int i = 0; i < found.Length; i++) result[pair.Value[i]] = found[i];
        }));
        return result;
    }

    public async Task<int> Misplaced(ShardLayout layout)
    {
        Check(layout);
        var all = new List<Task<bool>>();
        for (int s = 0; s < layout.Shards; s++)
            for (int r = 0; r < layout.Replicas; r++)
                all.Add(Replica(layout, s, r).Misplaced(layout));
        return (await Task.WhenAll(all)).Count(m => m);
    }

    public async Task<int> Rebalance(ShardLayout layout)
    {
        Check(layout);
        int moved = 0;
        // One replica at a time, each caught up at its new silo before the next moves: a shard never has fewer than
        // R - 1 replicas serving, and the moved one rebuilds from a peer that still holds everything.
        for (int s = 0; s < layout.Shards; s++)
            for (int r = 0; r < layout.Replicas; r++)
            {
                var replica = Replica(layout, s, r);
                string before = (await replica.Ready(layout)).Silo;
                if (!await replica.Rebalance(layout)) continue;
                moved++;
                var deadline = DateTime.UtcNow + options.Value.ReplicationTimeout;
                while ((await replica.Ready(layout)).Silo == before && DateTime.UtcNow < deadline)
                    await Task.Delay(50);
            }
        return moved;
    }

    private async Task<(T Value, int Failovers)> FromAnyReplica<T>(ShardLayout layout, int shard, int turn, Func<IShardReplicaGrain, Task<T>> call)
    {
        int failovers = 0;
        for (int i = 0; ; i++)
        {
            // turn −1: the primary first (it sequences the shard's writes), then the followers in order.
            int r = turn < 0 ? i % layout.Replicas : (int)(((uint)turn + (uint)shard + (uint)i) % (uint)layout.Replicas);
            try
            {
                return (await call(Replica(layout, shard, r)).WaitAsync(options.Value.PeerTimeout), failovers);
            }
            catch (Exception e) when (IsTransient(e) && i + 1 < layout.Replicas * 3)
            {
                failovers++;
                logger.LogWarning("Shard {Shard} replica {Replica} failed, trying another: {Error}", shard, r, e.Message);
                if (i + 1 >= layout.Replicas) await Task.Delay(100 * (i + 1 - layout.Replicas + 1));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"No replica of shard {shard} of collection '{layout.Name}' answered in {i + 1} attempt(s) "
                    + $"of {options.Value.PeerTimeout.TotalSeconds:0.###} s: {e.Message}", e);
            }
        }
    }

    private static bool IsTransient(Exception e) => e is not (ArgumentException or InvalidOperationException or NotSupportedException);

    private static Dictionary<int, List<int>> SplitByShard(ShardLayout layout, long[] ids) => Split(ids.Length, i => layout.ShardOf(ids[i]));

    // Row positions by shard, each shard's in row order.
    private static Dictionary<int, List<int>> Split(int n, Func<int, int> shardOf)
    {
        var perShard = new Dictionary<int, List<int>>();
        for (int i = 0; i < n; i++)
        {
            int s = shardOf(i);
            if (!perShard.TryGetValue(s, out var rows)) perShard[s] = rows = [];
            rows.Add(i);
        }
        return perShard;
    }

    private static float[] Gather(float[] vectors, List<int> rows, int d)
    {
        var result = new float[(long)rows.Count * d];
        for (int i = 0; i < rows.Count; i++) vectors.AsSpan(rows[i] * d, d).CopyTo(result.AsSpan(i * d, d));
        return result;
    }
}
