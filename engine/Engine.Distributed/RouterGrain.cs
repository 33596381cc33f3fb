using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Concurrency;

namespace Engine.Distributed;

/// <summary>The router grain; see <see cref="IRouterGrain"/>.</summary>
[StatelessWorker]
internal sealed class RouterGrain(IOptions<DistributedEngineOptions> options, ILogger<RouterGrain> logger) : Grain, IRouterGrain
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

    public async Task<ReplicaStatus[]> Open(ShardLayout layout)
    {
        Check(layout);
        layout.Validate();
        var all = new List<Task<ReplicaStatus>>();
        for (int s = 0; s < layout.Shards; s++)
            for (int r = 0; r < layout.Replicas; r++)
                all.Add(Replica(layout, s, r).Create(layout));
        return await Task.WhenAll(all);
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
        int d = layout.Dimension;
        var perShard = SplitByShard(layout, ids);
        await Task.WhenAll(perShard.Select(async pair =>
        {
            var (shard, rows) = pair;
            long[] shardIds = rows.Select(i => ids[i]).ToArray();
            float[] shardVectors = kind == WriteKind.Upsert ? Gather(vectors, rows, d) : [];
            // Writes are idempotent (upsert by id, delete by id), so a failed primary call is simply retried; Orleans
            // activates the primary elsewhere once its silo is gone, and it catches up from a follower first.
            var deadline = DateTime.UtcNow + options.Value.ReplicationTimeout;
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    await Replica(layout, shard, 0).Write(layout, kind, shardIds, shardVectors);
                    return;
                }
                catch (Exception e) when (IsTransient(e) && DateTime.UtcNow < deadline)
                {
                    logger.LogWarning("Write to shard {Shard} failed (attempt {Attempt}), retrying: {Error}", shard, attempt + 1, e.Message);
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5))));
                }
            }
        }));
    }

    public async Task<SearchResponse> Search(ShardLayout layout, SearchRequest request)
    {
        Check(layout);
        int nq = request.Queries.Length / layout.Dimension;
        int first = Interlocked.Increment(ref _turn);
        var parts = await Task.WhenAll(Enumerable.Range(0, layout.Shards).Select(s => FromAnyReplica(layout, s, first, r => r.Search(layout, request))));
        return TopKMerge.Merge(layout.Metric, nq, request.K, layout.Dimension, parts.Select(p => p.Value with { Failovers = p.Failovers }).ToArray(), request.IncludeVectors);
    }

    public async Task<VectorRows> Get(ShardLayout layout, long[] ids)
    {
        Check(layout);
        int first = Interlocked.Increment(ref _turn);
        var parts = await Task.WhenAll(SplitByShard(layout, ids).Select(pair =>
            FromAnyReplica(layout, pair.Key, first, r => r.Get(layout, pair.Value.Select(i => ids[i]).ToArray()))));
        return new VectorRows { Ids = parts.SelectMany(p => p.Value.Ids).ToArray(), Vectors = parts.SelectMany(p => p.Value.Vectors).ToArray() };
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
            int r = (turn + shard + i) % layout.Replicas;
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
        }
    }

    private static bool IsTransient(Exception e) => e is not (ArgumentException or InvalidOperationException or NotSupportedException);

    private static Dictionary<int, List<int>> SplitByShard(ShardLayout layout, long[] ids)
    {
        var perShard = new Dictionary<int, List<int>>();
        for (int i = 0; i < ids.Length; i++)
        {
            int s = layout.ShardOf(ids[i]);
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
