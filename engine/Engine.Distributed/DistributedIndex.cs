namespace Engine.Distributed;

/// <summary>
/// A read-only <see cref="IVectorIndex"/> over a <see cref="DistributedCollection"/>, so code written against the
/// index contract — the hard-negative miner, recall measurement — runs against a cluster unchanged. Searches go
/// through the router (candidates from every shard, merged exactly); each search also fetches the hits' stored
/// vectors, so the miner's reconstruction of candidates costs no extra round trip.
/// </summary>
/// <remarks>Writes go through the collection (<see cref="DistributedCollection.UpsertAsync"/>): Train, Add, Remove
/// and Save throw <see cref="NotSupportedException"/>. Search blocks on the cluster call.</remarks>
public sealed class DistributedIndex : IVectorIndex
{
    private readonly DistributedCollection _collection;
    private readonly IReadOnlyDictionary<string, string>? _settings;
    private readonly object _cacheLock = new();
    private Dictionary<long, float[]> _recent = [];
    private long _count;

    private readonly IDisposable? _owned;
    private readonly int _centroidProbes;

    /// <summary>The setting that sets <see cref="SearchRequest.CentroidProbes"/> (centroid-range sharding) for every search.</summary>
    public const string CentroidProbesSetting = "centroid_probes";

    /// <summary>Wraps <paramref name="collection"/>; <paramref name="settings"/> are the default knobs (probes, ef, ...) of every search.</summary>
    /// <param name="collection">The cluster collection.</param>
    /// <param name="settings">Index knobs of every search (null: the shards' defaults); <see cref="CentroidProbesSetting"/>
    /// sets the router's centroid probes instead.</param>
    /// <param name="owned">Disposed with this index (the client connection the collection uses, say).</param>
    public DistributedIndex(DistributedCollection collection, IReadOnlyDictionary<string, string>? settings = null, IDisposable? owned = null)
    {
        _collection = collection ?? throw new ArgumentNullException(nameof(collection));
        // "centroid_probes" is the router's knob (centroid-range sharding), not a shard index's: take it out here.
        if (settings is not null && settings.Keys.FirstOrDefault(k => string.Equals(k, CentroidProbesSetting, StringComparison.OrdinalIgnoreCase)) is { } key)
        {
            if (!int.TryParse(settings[key], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out _centroidProbes)
                || !collection.Layout.ByCentroid || _centroidProbes < 1 || _centroidProbes > collection.Layout.Centroids)
                throw new ArgumentException($"Setting {key}={settings[key]} needs a collection sharded by centroid ranges and a whole number in 1..{collection.Layout.Centroids}.", nameof(settings));
            settings = settings.Where(p => p.Key != key).ToDictionary(p => p.Key, p => p.Value, StringComparer.OrdinalIgnoreCase);
        }
        _settings = settings;
        _owned = owned;
        _count = collection.CountAsync().GetAwaiter().GetResult();
    }

    /// <inheritdoc />
    public int Dimension => _collection.Layout.Dimension;

    /// <inheritdoc />
    public Metric Metric => _collection.Layout.Metric;

    /// <summary>Live vectors when this index was made or last refreshed (<see cref="Refresh"/>).</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <inheritdoc />
    public bool IsTrained => true;

    /// <inheritdoc />
    public string Description => $"Distributed({_collection.Layout.Spec},shards={_collection.Layout.Shards},replicas={_collection.Layout.Replicas})";

    /// <summary>0: the index lives on the silos.</summary>
    public long MemoryBytes => 0;

    /// <summary>Re-reads <see cref="Count"/> from the cluster.</summary>
    public void Refresh() => Interlocked.Exchange(ref _count, _collection.CountAsync().GetAwaiter().GetResult());

    /// <inheritdoc />
    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null)
    {
        int d = Dimension;
        int nq = Guard.Rows(queries, d, nameof(queries));
        Guard.SearchBuffers(nq, k, distances.Length, labels.Length);
        parameters?.Validate();
        if (parameters?.IndexFamily is not null)
            throw new ArgumentException($"A distributed index takes its knobs as named settings (probes, ef, ...), not {parameters.GetType().Name}.", nameof(parameters));
        ShardFilter? filter = parameters?.Filter switch
        {
            null => null,
            IdAllowListFilter allow => new ShardFilter { AllowIds = [.. allow.Ids] },
            _ => throw new ArgumentException("A distributed index applies filters on the shards: pass an IdAllowListFilter or use DistributedCollection.SearchAsync with a ShardFilter.", nameof(parameters)),
        };
        var response = _collection.SearchAsync(queries.ToArray(), k, _settings, filter, parameters?.Threads ?? 0, includeVectors: true, centroidProbes: _centroidProbes).GetAwaiter().GetResult();
        response.Distances.CopyTo(distances);
        response.Labels.CopyTo(labels);
        var recent = new Dictionary<long, float[]>();
        for (int i = 0; i < response.Labels.Length; i++)
            if (response.Labels[i] >= 0) recent[response.Labels[i]] = response.Vectors!.AsSpan(i * d, d).ToArray();
        lock (_cacheLock) _recent = recent;
        parameters?.Stats?.Add(queries: nq);
    }

    /// <inheritdoc />
    public bool TryReconstruct(long id, Span<float> destination)
    {
        if (destination.Length < Dimension) throw new ArgumentException($"destination holds {destination.Length} floats, fewer than d = {Dimension}.", nameof(destination));
        if (id < 0) return false;   // ids are >= 0 (the collection refuses a negative one)
        float[]? v;
        lock (_cacheLock) _recent.TryGetValue(id, out v);
        if (v is null)
        {
            var rows = _collection.GetAsync([id]).GetAwaiter().GetResult();
            if (rows.Ids.Length == 0) return false;
            v = rows.Vectors;
        }
        v.AsSpan(0, Dimension).CopyTo(destination);
        return true;
    }

    /// <summary>Not supported: write through <see cref="DistributedCollection"/>.</summary>
    public void Train(ReadOnlySpan<float> vectors) => throw ReadOnly();

    /// <summary>Not supported: write through <see cref="DistributedCollection.UpsertAsync"/>.</summary>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => throw ReadOnly();

    /// <summary>Not supported: delete through <see cref="DistributedCollection.DeleteAsync"/>.</summary>
    public int Remove(ReadOnlySpan<long> ids) => throw ReadOnly();

    /// <summary>Not supported: each shard replica persists itself on its silo.</summary>
    public void Save(string path) => throw ReadOnly();

    private static NotSupportedException ReadOnly() =>
        new("A DistributedIndex is a read view of a cluster collection: write through DistributedCollection; the shards persist themselves.");

    /// <summary>Releases what the index was given to own (the cluster keeps the data).</summary>
    public void Dispose() => _owned?.Dispose();
}
