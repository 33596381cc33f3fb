using Engine.Collections;
using Orleans;

namespace Engine.Distributed;

/// <summary>
/// A client's handle on a distributed collection of records (key, data fields, named vectors): the
/// <see cref="RecordCollection{TKey}"/> API over a cluster. Records are spread over the shards by a hash of their key;
/// every shard replica keeps its records in its own <see cref="RecordCollection{TKey}"/> on its silo's disk (FASTER
/// payload store, filter columns, one index per vector field), fed by the shard's replicated write log. Searches fan
/// out to every shard, each applies the filter and knobs to its records, and the router merges the top-k exactly.
/// </summary>
/// <remarks>Records are checked against the schema here, before anything travels, and again on the shard's primary
/// before its log takes them. Writes are idempotent and retried after a timeout (<see cref="Attempts"/>), but not
/// ordered across calls: two concurrent writes of one key from different calls may land in either order, and a retried
/// write may land after a later one; write one key from one caller at a time when its final value matters. See
/// docs/scale-out.md ("Records").</remarks>
/// <typeparam name="TKey">string, Guid, int or long (as in the schema).</typeparam>
public sealed class DistributedRecordCollection<TKey> where TKey : notnull
{
    private readonly IGrainFactory _grains;
    private readonly RecordSerializer _serializer;

    private DistributedRecordCollection(IGrainFactory grains, ShardLayout layout, CollectionSchema schema, TimeSpan callTimeout)
    {
        _grains = grains;
        Layout = layout;
        Schema = schema;
        _serializer = new RecordSerializer(schema);
        CallTimeout = callTimeout;
    }

    /// <summary>The collection's layout (its <see cref="ShardLayout.RecordSchema"/> is <see cref="Schema"/>).</summary>
    public ShardLayout Layout { get; }

    /// <summary>The records' schema.</summary>
    public CollectionSchema Schema { get; }

    /// <summary>Most records per write call to the router (default 4 096).</summary>
    public int WriteBatchRows { get; set; } = 4096;

    /// <summary>Most serialized bytes per write call to the router (default 16 MiB; a single larger record goes alone).</summary>
    public long WriteBatchBytes { get; set; } = 16L << 20;

    /// <summary>How long one router call may take before it is retried (default 60 s; every operation is idempotent).</summary>
    public TimeSpan CallTimeout { get; set; }

    /// <summary>Attempts per operation (1..100, default 3).</summary>
    public int Attempts { get; set; } = 3;

    private Task<T> Call<T>(Func<IRouterGrain, Task<T>> call, CancellationToken cancellationToken) =>
        RouterCalls.Call(_grains.GetGrain<IRouterGrain>(Layout.Name), call, CallTimeout, Attempts, cancellationToken);

    /// <summary>The layout of a record collection: S shards × R replicas; dimension, metric and spec from the schema's first vector field.</summary>
    /// <exception cref="ArgumentException">A bad name, shard or replica count, or a schema whose keys are not <typeparamref name="TKey"/>.</exception>
    public static ShardLayout LayoutFor(string name, CollectionSchema schema, int shards, int replicas = 2)
    {
        ArgumentNullException.ThrowIfNull(schema);
        CheckKeyType(schema);
        var first = schema.Vectors[0];
        var layout = new ShardLayout
        {
            Name = name, Dimension = first.Dimension, Metric = first.Metric, Spec = first.IndexSpec, Shards = shards, Replicas = replicas,
            RecordSchema = schema.ToJson(),
        };
        layout.Validate();
        return layout;
    }

    /// <summary>Opens (creating on first use) the record collection <paramref name="name"/>: every replica is activated on its silo and caught up.</summary>
    /// <param name="grains">The cluster client's grain factory.</param>
    /// <param name="name">Collection name (letters, digits, '-', '_', '.').</param>
    /// <param name="schema">The records' schema; an existing collection must have the same one.</param>
    /// <param name="shards">Shards S (1..4096).</param>
    /// <param name="replicas">Replication factor R (1..16, default 2).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="callTimeout">Overrides <see cref="CallTimeout"/> (null: 60 s).</param>
    /// <exception cref="ArgumentException">A bad layout or schema.</exception>
    /// <exception cref="InvalidOperationException">The cluster holds a collection of that name with another schema, spec or shard count.</exception>
    public static Task<DistributedRecordCollection<TKey>> OpenAsync(IGrainFactory grains, string name, CollectionSchema schema, int shards,
        int replicas = 2, CancellationToken cancellationToken = default, TimeSpan? callTimeout = null) =>
        OpenAsync(grains, LayoutFor(name, schema, shards, replicas), cancellationToken, callTimeout);

    /// <summary>Opens (creating on first use) the record collection with this layout (from <see cref="LayoutFor"/>).</summary>
    public static async Task<DistributedRecordCollection<TKey>> OpenAsync(IGrainFactory grains, ShardLayout layout, CancellationToken cancellationToken = default,
        TimeSpan? callTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(layout);
        layout.Validate();
        var schema = layout.Schema ?? throw new ArgumentException($"Collection '{layout.Name}''s layout has no record schema: it is a plain-vector collection (DistributedCollection).", nameof(layout));
        CheckKeyType(schema);
        if (callTimeout is { } t && t <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(callTimeout), t, "callTimeout must be positive.");
        var collection = new DistributedRecordCollection<TKey>(grains, layout, schema, callTimeout ?? TimeSpan.FromSeconds(60));
        await collection.Call(r => r.Open(layout, null), cancellationToken);
        return collection;
    }

    /// <summary>Opens an existing record collection by name (its layout and schema are read from a replica of shard 0).</summary>
    /// <exception cref="ArgumentException">No such collection, or it holds plain vectors, or keys of another type.</exception>
    public static async Task<DistributedRecordCollection<TKey>> OpenExistingAsync(IGrainFactory grains, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var layout = await RouterCalls.StoredLayoutAsync(grains, name, cancellationToken);
        if (!layout.IsRecords) throw new ArgumentException($"Collection '{name}' holds plain vectors: open it with DistributedCollection.", nameof(name));
        return await OpenAsync(grains, layout, cancellationToken);
    }

    private static void CheckKeyType(CollectionSchema schema)
    {
        if (schema.KeyClrType != typeof(TKey))
            throw new ArgumentException($"The collection's keys are {schema.KeyType}, not {typeof(TKey).Name}.", nameof(schema));
    }

    /// <summary>Inserts or replaces one record; returns once every replica of its shard made it durable.</summary>
    public Task UpsertAsync(Record<TKey> record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        return UpsertBatchAsync([record], cancellationToken);
    }

    /// <summary>
    /// Inserts or replaces records (a later record with the same key wins); returns once every replica of every touched
    /// shard made them durable. Every record is checked before anything is sent. A batch larger than
    /// <see cref="WriteBatchRows"/> / <see cref="WriteBatchBytes"/> goes in several router calls, each durable when it
    /// returns: a failure part-way leaves the earlier parts written (every write is idempotent, so send the batch again).
    /// </summary>
    /// <exception cref="ArgumentException">A record that does not fit the schema (named); nothing is sent.</exception>
    public async Task UpsertBatchAsync(IEnumerable<Record<TKey>> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var blobs = records.Select(r => _serializer.Serialize(r ?? throw new ArgumentException("A record in the batch is null.", nameof(records)))).ToArray();
        foreach (var part in Batches(blobs))
            await Call(async r => { await r.UpsertRecords(Layout, part); return true; }, cancellationToken);
    }

    private IEnumerable<byte[][]> Batches(byte[][] items)
    {
        if (WriteBatchRows < 1) throw new ArgumentOutOfRangeException(nameof(WriteBatchRows), WriteBatchRows, "WriteBatchRows must be positive.");
        int start = 0;
        while (start < items.Length)
        {
            int end = start;
            long bytes = 0;
            while (end < items.Length && end - start < WriteBatchRows && (end == start || bytes + items[end].Length <= WriteBatchBytes)) bytes += items[end++].Length;
            yield return items[start..end];
            start = end;
        }
    }

    /// <summary>Deletes the record with <paramref name="key"/> (absent keys are ignored).</summary>
    public Task DeleteAsync(TKey key, CancellationToken cancellationToken = default) => DeleteBatchAsync([key], cancellationToken);

    /// <summary>Deletes records by key (absent keys are ignored); returns once every replica made the deletes durable.</summary>
    public async Task DeleteBatchAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var encoded = keys.Select(k => RecordSerializer.SerializeKey(k ?? throw new ArgumentException("A key in the batch is null.", nameof(keys)))).ToArray();
        foreach (var part in Batches(encoded))
            await Call(async r => { await r.DeleteRecords(Layout, part); return true; }, cancellationToken);
    }

    /// <summary>The record with <paramref name="key"/>, or null.</summary>
    public async Task<Record<TKey>?> GetAsync(TKey key, bool includeVectors = false, CancellationToken cancellationToken = default) =>
        (await GetBatchAsync([key], includeVectors, cancellationToken))[0];

    /// <summary>The records with these keys, in the same order (null for an absent key).</summary>
    public async Task<IReadOnlyList<Record<TKey>?>> GetBatchAsync(IEnumerable<TKey> keys, bool includeVectors = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var encoded = keys.Select(k => RecordSerializer.SerializeKey(k ?? throw new ArgumentException("A key in the batch is null.", nameof(keys)))).ToArray();
        var result = new List<Record<TKey>?>(encoded.Length);
        foreach (var part in Batches(encoded))   // the answers (records) are what grows: a call per WriteBatchRows keys
        {
            var found = await Call(r => r.GetRecords(Layout, part, includeVectors), cancellationToken);
            result.AddRange(found.Select(b => b is null ? null : _serializer.Deserialize<TKey>(b, includeVectors)));
        }
        return result;
    }

    /// <summary>
    /// Records that match <paramref name="filter"/>, at most <paramref name="top"/> after skipping <paramref name="skip"/>
    /// (<paramref name="skip"/> + <paramref name="top"/> at most 100 000): shard by shard (shard 0 first), each shard's
    /// in its insertion order — a stable order for paging while nothing is written, not the collection's insertion order.
    /// </summary>
    /// <exception cref="ArgumentException">A filter on an unknown or non-indexed field, or a constant of the wrong type (from the shards).</exception>
    public async Task<IReadOnlyList<Record<TKey>>> GetWhereAsync(Filter filter, int top, int skip = 0, bool includeVectors = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(skip);
        if ((long)skip + top > 100_000) throw new ArgumentOutOfRangeException(nameof(top), top, $"skip ({skip}) + top ({top}) must be at most 100000.");
        string json = FilterSerializer.ToJson(filter);
        var found = await Call(r => r.GetWhereRecords(Layout, json, skip, top, includeVectors), cancellationToken);
        return found.Select(b => _serializer.Deserialize<TKey>(b, includeVectors)).ToArray();
    }

    /// <summary>The <paramref name="k"/> records nearest to <paramref name="query"/> over every shard that pass the
    /// options' filter, closest first (for exact indexes, the same records a single collection holding them all returns).</summary>
    /// <param name="query">The query (the searched vector field's dimension).</param>
    /// <param name="k">Records to return (1..10 000).</param>
    /// <param name="options">Vector field, filter, <see cref="CollectionSearchOptions.Settings"/> (index knobs by name),
    /// vectors, exact-fallback selectivity; <see cref="CollectionSearchOptions.Parameters"/> cannot travel and must be null.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="ArgumentException">Wrong query length, non-finite values, an unknown vector name, a bad filter or knob.</exception>
    public async Task<IReadOnlyList<SearchResult<TKey>>> SearchAsync(ReadOnlyMemory<float> query, int k, CollectionSearchOptions? options = null,
        CancellationToken cancellationToken = default) =>
        (await SearchBatchAsync(query.ToArray(), k, options, cancellationToken))[0];

    /// <summary><see cref="SearchAsync"/> for nq queries at once (nq × d, row-major): one round trip to every shard.</summary>
    public async Task<IReadOnlyList<IReadOnlyList<SearchResult<TKey>>>> SearchBatchAsync(float[] queries, int k, CollectionSearchOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        options ??= new CollectionSearchOptions();
        if (options.Parameters is not null)
            throw new ArgumentException("SearchParameters cannot be sent to a cluster: set the knobs by name in CollectionSearchOptions.Settings.", nameof(options));
        if (k is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be in 1..10000.");
        if (!(options.ExactFallbackSelectivity is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), options.ExactFallbackSelectivity, "ExactFallbackSelectivity must be in 0..1.");
        var field = Schema.VectorFieldFor(options.VectorName);
        if (queries.Length == 0 || queries.Length % field.Dimension != 0)
            throw new ArgumentException($"The queries hold {queries.Length} values; vector '{field.Name}' has dimension {field.Dimension}.", nameof(queries));
        Guard.Finite(queries, field.Dimension, nameof(queries));
        var request = new RecordSearchRequest
        {
            Queries = queries, K = k, VectorName = field.Name, IncludeVectors = options.IncludeVectors,
            FilterJson = options.Filter is null ? null : FilterSerializer.ToJson(options.Filter),
            Settings = options.Settings is null ? null : new Dictionary<string, string>(options.Settings, StringComparer.OrdinalIgnoreCase),
            ExactFallbackSelectivity = options.ExactFallbackSelectivity,
        };
        var hits = await Call(r => r.SearchRecords(Layout, request), cancellationToken);
        int nq = queries.Length / field.Dimension;
        var result = new IReadOnlyList<SearchResult<TKey>>[nq];
        for (int q = 0; q < nq; q++)
        {
            var list = new List<SearchResult<TKey>>(hits.Offsets[q + 1] - hits.Offsets[q]);
            for (int h = hits.Offsets[q]; h < hits.Offsets[q + 1]; h++)
                list.Add(new SearchResult<TKey>(_serializer.Deserialize<TKey>(hits.Records[h], options.IncludeVectors), hits.Distances[h], hits.Scores[h]));
            result[q] = list;
        }
        return result;
    }

    /// <summary>Live records (sum over shards, from replica 0's count).</summary>
    public async Task<long> CountAsync(CancellationToken cancellationToken = default)
    {
        var status = await StatusAsync(cancellationToken);
        return status.Where((_, i) => i % Layout.Replicas == 0).Sum(s => s.Count);
    }

    /// <summary>Every replica's status, shard-major (replica r of shard s at index s × R + r).</summary>
    public Task<ReplicaStatus[]> StatusAsync(CancellationToken cancellationToken = default) => Call(r => r.Status(Layout), cancellationToken);

    /// <summary>Moves replicas whose silo is not the one the placement rule picks now (after silos joined); returns how many moved.</summary>
    public Task<int> RebalanceAsync(CancellationToken cancellationToken = default) => Call(r => r.Rebalance(Layout), cancellationToken);

    /// <summary>Replicas whose silo is not the one the placement rule picks now: what <see cref="RebalanceAsync"/> would
    /// move (0 once an automatic or requested rebalance finished).</summary>
    public Task<int> MisplacedAsync(CancellationToken cancellationToken = default) => Call(r => r.Misplaced(Layout), cancellationToken);
}
