using System.Collections.Concurrent;

namespace Engine.Distributed;

/// <summary>
/// A silo's copy of the centroid tables its routers route by (centroid-range sharding), keyed by collection name and
/// table digest, so a recreated collection of the same name never meets a stale table. The routers are stateless
/// workers: they share this one cache and fetch a missing table once from a replica's disk.
/// </summary>
internal sealed class CentroidTableCache
{
    private readonly ConcurrentDictionary<(string Name, long Digest), CentroidTable> _tables = new();

    public CentroidTable? TryGet(ShardLayout layout) => _tables.TryGetValue((layout.Name, layout.CentroidDigest), out var t) ? t : null;

    public void Put(ShardLayout layout, CentroidTable table) => _tables[(layout.Name, layout.CentroidDigest)] = table;
}
