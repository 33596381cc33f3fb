using Orleans;

namespace Engine.Distributed;

/// <summary>
/// A client's handle on a distributed collection: validates input where it is cheapest (here, before anything
/// travels), splits large batches, and calls the collection's router grain.
/// </summary>
/// <remarks>The layout is the collection's definition: the application keeps it (as it keeps a schema) and every
/// handle on the collection must use the same one; a replica refuses a layout whose dimension, metric, spec, shard
/// count, replication factor, sharding or record schema differs from the one it was created with.</remarks>
public sealed class DistributedCollection
{
    private readonly IGrainFactory _grains;

    private DistributedCollection(IGrainFactory grains, ShardLayout layout)
    {
        _grains = grains;
        Layout = layout;
    }

    /// <summary>The collection's layout.</summary>
    public ShardLayout Layout { get; }

    /// <summary>Rows per write call to the router (default 4 096, capped so one shard's log record stays under 32 MiB).</summary>
    public int WriteBatchRows { get; set; } = 4096;

    /// <summary>
    /// How long one router call may take before the handle gives up on it and retries (default 60 s). Every operation is
    /// idempotent (upsert and delete by id, reads), so a call stranded on a silo that died — the client only learns of
    /// its death from membership — is sent again, through a live gateway.
    /// </summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts per operation (1..100, default 3): the first call plus retries after a timeout or a lost silo.</summary>
    public int Attempts { get; set; } = 3;

    private IRouterGrain Router => _grains.GetGrain<IRouterGrain>(Layout.Name);

    private Task<T> Call<T>(Func<IRouterGrain, Task<T>> call, CancellationToken cancellationToken, Func<string>? describe = null) =>
        RouterCalls.Call(Router, call, CallTimeout, Attempts, cancellationToken, describe);

    private Task Call(Func<IRouterGrain, Task> call, CancellationToken cancellationToken, Func<string>? describe = null) =>
        Call(async r => { await call(r); return true; }, cancellationToken, describe);

    // "an upsert of 50 ids to shards 0, 3" (key hash: the shards follow from the ids), for a timeout's message.
    private Func<string> Describe(string what, long[] ids) => () =>
        $"{what} of {ids.Length} id(s) " + (Layout.ByCentroid
            ? "(shards by centroid)"
            : $"to shard(s) {string.Join(", ", ids.Select(Layout.ShardOf).Distinct().Order())}");

    /// <summary>Opens (creating on first use) the collection: every replica is activated on its silo and caught up.
    /// Only a collection that no replica records as created starts empty; an existing one whose shard has no reachable
    /// copy (R = 1 and its silo away) is refused while another replica of it answers. Limits (docs/scale-out.md): the
    /// record lives with the replicas, so a collection none of whose replicas can answer (e.g. one shard, R = 1, its
    /// silo away and its grain placed elsewhere) looks new, as does one created before the record existed.</summary>
    /// <exception cref="ArgumentException">An invalid layout (the message names the field), or one that differs from the
    /// layout the collection was created with (the message names what differs).</exception>
    /// <exception cref="IOException">A shard of the existing collection has no replica that can serve it now (the
    /// message names the collection and the shard); it can once the silo holding it returns.</exception>
    /// <param name="grains">The cluster client's grain factory.</param>
    /// <param name="layout">The collection's layout.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="callTimeout">Overrides <see cref="CallTimeout"/> (null: 60 s).</param>
    public static async Task<DistributedCollection> OpenAsync(IGrainFactory grains, ShardLayout layout, CancellationToken cancellationToken = default,
        TimeSpan? callTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(layout);
        layout.Validate();
        if (layout.IsRecords)
            throw new ArgumentException($"Collection '{layout.Name}' holds records: open it with DistributedRecordCollection.", nameof(layout));
        if (callTimeout is { } t && t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(callTimeout), t, "callTimeout must be positive.");
        if (layout.ByCentroid && layout.CentroidDigest == 0)
            throw new ArgumentException($"Collection '{layout.Name}' is sharded by centroid ranges: create it with CreateAsync and a training sample (that trains its centroids), or open it with OpenExistingAsync.", nameof(layout));
        var collection = new DistributedCollection(grains, layout) { CallTimeout = callTimeout ?? TimeSpan.FromSeconds(60) };
        await collection.Call(r => r.Open(layout, null), cancellationToken);
        return collection;
    }

    /// <summary>
    /// Creates (or opens, when it exists with the same definition) a collection. With
    /// <see cref="ShardingMode.CentroidRanges"/>, first trains its coarse quantizer of <see cref="ShardLayout.Centroids"/>
    /// centroids on <paramref name="sample"/> (k-means, seeded: the same sample gives the same table, so creating
    /// again opens), stamps its digest into the layout (<see cref="Layout"/> of the result; keep that one) and hands
    /// the table to every replica, which keeps it next to the layout. With key-hash sharding the sample is not needed
    /// and this is <see cref="OpenAsync"/>.
    /// </summary>
    /// <param name="grains">The cluster client's grain factory.</param>
    /// <param name="layout">The collection's layout (its <see cref="ShardLayout.CentroidDigest"/> is filled in here).</param>
    /// <param name="sample">n × d training vectors (n ≥ C) for centroid-range sharding; ignored (may be null) for key hash.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="callTimeout">Overrides <see cref="CallTimeout"/> (null: 60 s).</param>
    /// <exception cref="ArgumentException">An invalid layout or sample; the collection exists with other centroids.</exception>
    public static async Task<DistributedCollection> CreateAsync(IGrainFactory grains, ShardLayout layout, float[]? sample,
        CancellationToken cancellationToken = default, TimeSpan? callTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(layout);
        if (!layout.ByCentroid) return await OpenAsync(grains, layout, cancellationToken, callTimeout);
        ArgumentNullException.ThrowIfNull(sample);
        if (callTimeout is { } t && t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(callTimeout), t, "callTimeout must be positive.");
        var table = CentroidTable.Train(layout with { CentroidDigest = 0 }, sample);
        var stamped = layout with { CentroidDigest = table.Digest };
        if (layout.CentroidDigest != 0 && layout.CentroidDigest != stamped.CentroidDigest)
            throw new ArgumentException($"The layout names centroid table {layout.CentroidDigest:X16} but the sample trains {stamped.CentroidDigest:X16}: open an existing collection with OpenAsync or OpenExistingAsync.", nameof(layout));
        var collection = new DistributedCollection(grains, stamped) { CallTimeout = callTimeout ?? TimeSpan.FromSeconds(60) };
        await collection.Call(r => r.Open(stamped, table), cancellationToken);
        return collection;
    }

    /// <summary>
    /// Opens an existing collection by name: its layout is read from a replica of shard 0 (each replica records the
    /// layout it was created with on its silo's disk, with the sharding mode and, for centroid ranges, which centroid
    /// table it routes by; the routers read the table itself from the replicas' disks).
    /// </summary>
    /// <exception cref="ArgumentException">No replica of shard 0 on the cluster knows the collection.</exception>
    /// <exception cref="IOException">No replica of shard 0 that answered knows the collection, and some did not answer
    /// (a silo lost or still joining; the message names the collection).</exception>
    public static async Task<DistributedCollection> OpenExistingAsync(IGrainFactory grains, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var layout = await RouterCalls.StoredLayoutAsync(grains, name, cancellationToken);
        return await OpenAsync(grains, layout, cancellationToken);
    }

    /// <summary>Inserts or replaces n vectors (n × d) by id; returns once every replica of every shard made them durable.</summary>
    /// <exception cref="ArgumentException">Wrong shapes, non-finite values, negative or repeated ids.</exception>
    public async Task UpsertAsync(float[] vectors, long[] ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        ArgumentNullException.ThrowIfNull(ids);
        int d = Layout.Dimension;
        int n = Guard.Rows(vectors, d, nameof(vectors));
        if (ids.Length != n) throw new ArgumentException($"ids holds {ids.Length} entries for {n} vectors.", nameof(ids));
        Guard.Finite(vectors, d, nameof(vectors));
        CheckIds(ids);
        int batch = Math.Max(1, Math.Min(WriteBatchRows, (32 << 20) / (d * 4 + 8)));
        for (int start = 0; start < n; start += batch)
        {
            int m = Math.Min(batch, n - start);
            long[] batchIds = ids[start..(start + m)];
            float[] batchVectors = vectors[(start * d)..((start + m) * d)];
            await Call(r => r.Upsert(Layout, batchIds, batchVectors), cancellationToken, Describe("an upsert", batchIds));
        }
    }

    /// <summary>Deletes ids (absent ones are ignored); returns once every replica made the delete durable.</summary>
    public async Task DeleteAsync(long[] ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        CheckIds(ids);
        for (int start = 0; start < ids.Length; start += 1 << 20)
            {
            long[] batch = ids[start..Math.Min(ids.Length, start + (1 << 20))];
            await Call(r => r.Delete(Layout, batch), cancellationToken, Describe("a delete", batch));
        }
    }

    /// <summary>Searches nq queries (nq × d): the exact merge of every shard's top-k.</summary>
    /// <param name="queries">nq × d queries, row-major.</param>
    /// <param name="k">Neighbours per query (1..10 000).</param>
    /// <param name="settings">Index knobs by name (<c>probes</c>, <c>ef</c>, <c>refine</c>, ...; null for none).</param>
    /// <param name="filter">Filter the shards apply (null for none).</param>
    /// <param name="threads">Threads per shard search (0 = all of a silo's cores).</param>
    /// <param name="includeVectors">Also return the hits' stored vectors.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="centroidProbes">Centroid-range sharding: centroids each query probes, hence the shards it visits
    /// (1..C; 0 = the layout's <see cref="ShardLayout.CentroidProbes"/>). Must be 0 with key-hash sharding.</param>
    /// <exception cref="ArgumentException">Wrong shapes, non-finite queries, k or probes out of range; an unknown knob (from the shards).</exception>
    public Task<SearchResponse> SearchAsync(float[] queries, int k, IReadOnlyDictionary<string, string>? settings = null,
        ShardFilter? filter = null, int threads = 0, bool includeVectors = false, CancellationToken cancellationToken = default,
        int centroidProbes = 0)
    {
        if (!Layout.ByCentroid && centroidProbes != 0)
            throw new ArgumentOutOfRangeException(nameof(centroidProbes), centroidProbes, $"Collection '{Layout.Name}' is sharded by key hash: centroidProbes must be 0.");
        if (Layout.ByCentroid && (centroidProbes < 0 || centroidProbes > Layout.Centroids))
            throw new ArgumentOutOfRangeException(nameof(centroidProbes), centroidProbes, $"centroidProbes must be in 0..{Layout.Centroids} (0: the layout's default).");
        ArgumentNullException.ThrowIfNull(queries);
        Guard.Rows(queries, Layout.Dimension, nameof(queries));
        Guard.Finite(queries, Layout.Dimension, nameof(queries));
        if (k is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be in 1..10000.");
        SearchParameters.CheckThreads(threads, nameof(threads));
        if (filter is not null && filter.MinId > filter.MaxId)
            throw new ArgumentException($"Filter MinId {filter.MinId} is above MaxId {filter.MaxId}.", nameof(filter));
        var request = new SearchRequest
        {
            Queries = queries, K = k, Filter = filter, Threads = threads, IncludeVectors = includeVectors, CentroidProbes = centroidProbes,
            Settings = settings is null ? null : new Dictionary<string, string>(settings, StringComparer.OrdinalIgnoreCase),
        };
        return Call(r => r.Search(Layout, request), cancellationToken);
    }

    /// <summary>Stored vectors by id (ids not present are left out of the answer).</summary>
    /// <exception cref="ArgumentException">A negative id (as for <see cref="UpsertAsync"/> and <see cref="DeleteAsync"/>).</exception>
    public Task<VectorRows> GetAsync(long[] ids, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        CheckNonNegative(ids);
        return Call(r => r.Get(Layout, ids), cancellationToken, Describe("a get", ids));
    }

    /// <summary>Every replica's status, shard-major (replica r of shard s at index s × R + r).</summary>
    public Task<ReplicaStatus[]> StatusAsync(CancellationToken cancellationToken = default) => Call(r => r.Status(Layout), cancellationToken);

    /// <summary>Moves replicas whose silo is not the one the placement rule picks now (after silos joined); returns how many moved.</summary>
    public Task<int> RebalanceAsync(CancellationToken cancellationToken = default) => Call(r => r.Rebalance(Layout), cancellationToken);

    /// <summary>Replicas whose silo is not the one the placement rule picks now: what <see cref="RebalanceAsync"/> would
    /// move (0 once an automatic or requested rebalance finished).</summary>
    public Task<int> MisplacedAsync(CancellationToken cancellationToken = default) => Call(r => r.Misplaced(Layout), cancellationToken);

    /// <summary>Live vectors (sum over shards, from replica 0's count).</summary>
    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        var status = await StatusAsync(cancellationToken);
        return status.Where((_, i) => i % Layout.Replicas == 0).Sum(s => s.Count);
    }

    private static void CheckIds(long[] ids)
    {
        CheckNonNegative(ids);
        var seen = new HashSet<long>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
            if (!seen.Add(ids[i])) throw new ArgumentException($"ids[{i}] = {ids[i]} repeats an earlier id of the same batch.", nameof(ids));
    }

    private static void CheckNonNegative(long[] ids)
    {
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] < 0) throw new ArgumentException($"ids[{i}] = {ids[i]} is negative; ids must be >= 0.", nameof(ids));
    }
}

/// <summary>Router calls from a client handle, with the handle's timeout and retries.</summary>
internal static class RouterCalls
{
    /// <summary>How long opening by name waits for one replica of shard 0 to read its layout from its disk.</summary>
    private static readonly TimeSpan LayoutProbeTimeout = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The layout collection <paramref name="name"/> was created with, read from the first replica of its shard 0 that
    /// holds it on its silo's disk. A replica that does not answer (its silo was just lost: Orleans rejects the call or
    /// it times out) is passed over for the next.
    /// </summary>
    /// <exception cref="ArgumentException">Every replica answered, and none holds the collection.</exception>
    /// <exception cref="IOException">None that answered holds it, and some did not answer.</exception>
    public static async Task<ShardLayout> StoredLayoutAsync(IGrainFactory grains, string name, CancellationToken cancellationToken)
    {
        var probe = new ShardLayout { Name = name, Dimension = 1, Spec = "Flat", Shards = 1 };
        probe.Validate();   // the name
        var failures = new List<Exception>();
        for (int r = 0; r < 16; r++)
        {
            try
            {
                var layout = await grains.GetGrain<IShardReplicaGrain>(probe.ReplicaKey(0, r)).StoredLayout().WaitAsync(LayoutProbeTimeout, cancellationToken);
                if (layout is not null) return layout;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not (ArgumentException or OperationCanceledException))
            {
                failures.Add(e);
            }
        }
        if (failures.Count > 0)
            throw new IOException($"Collection '{name}' could not be opened: no replica of its shard 0 that answered holds its layout, and "
                + $"{failures.Count} did not answer ({failures[0].GetType().Name}: {failures[0].Message.Split('\n')[0]}); a silo may be down or still joining: retry.",
                failures[0]);
        throw new ArgumentException($"The cluster holds no collection '{name}' (no replica of its shard 0 has a layout on its silo's disk).", nameof(name));
    }

    /// <summary>
    /// Calls the router, retrying after a timeout or a lost silo (every operation is idempotent: upserts and deletes by
    /// id or key, reads); argument, state and cancellation errors are not retried.
    /// </summary>
    /// <param name="router">The collection's router.</param>
    /// <param name="call">The call.</param>
    /// <param name="timeout">How long one attempt may take.</param>
    /// <param name="attempts">Attempts in all (1..100).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="describe">What the call does, for the message of a <see cref="TimeoutException"/> after the last
    /// attempt (e.g. "an upsert of 50 ids to shards 0, 3"; null: "a call").</param>
    /// <exception cref="TimeoutException">The last attempt timed out; the message names the collection (and what
    /// <paramref name="describe"/> says), the inner exception is the last attempt's.</exception>
    public static async Task<T> Call<T>(IRouterGrain router, Func<IRouterGrain, Task<T>> call, TimeSpan timeout, int attempts, CancellationToken cancellationToken,
        Func<string>? describe = null)
    {
        if (attempts is < 1 or > 100) throw new ArgumentOutOfRangeException("Attempts", attempts, "Attempts must be in 1..100.");
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await call(router).WaitAsync(timeout, cancellationToken);
            }
            catch (Exception e) when (attempt < attempts && !cancellationToken.IsCancellationRequested
                                      && e is not (ArgumentException or InvalidOperationException or NotSupportedException or OperationCanceledException))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellationToken);
            }
            catch (TimeoutException e) when (!cancellationToken.IsCancellationRequested)
            {
                // The bare "The operation has timed out." of WaitAsync says neither what nor where.
                throw new TimeoutException($"Collection '{router.GetPrimaryKeyString()}': {describe?.Invoke() ?? "a call"} did not complete "
                    + $"in {attempts} attempt(s) of {timeout.TotalSeconds:0.###} s each: {e.Message}", e);
            }
        }
    }
}
