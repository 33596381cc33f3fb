using Engine.Distributed;

namespace Engine.Distributed.Tests;

/// <summary>
/// Sharding by IVF centroid ranges: probing every centroid gives exactly the key-hash and single-index results, fewer
/// probes visit fewer shards at a measured recall, a re-upsert moves a record between shards, and the trained centroid
/// table survives a whole-cluster restart.
/// </summary>
public class CentroidShardingTests
{
    private const int D = 16;

    /// <summary>n × d points around 24 seeded cluster centres (spread 0.35): data with the structure IVF routing relies on.</summary>
    private static float[] Clustered(int n, int seed)
    {
        var centres = TestData.Gaussian(24, D, seed: 1000);
        var noise = TestData.Gaussian(n, D, seed);
        var rng = new Random(seed);
        var v = new float[n * D];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(24);
            for (int t = 0; t < D; t++) v[i * D + t] = 2f * centres[c * D + t] + 0.35f * noise[i * D + t];
        }
        return v;
    }

    private static ShardLayout Layout(string name, ShardingMode mode, int shards = 4, int replicas = 2, Metric metric = Metric.L2) => new()
    {
        Name = name, Dimension = D, Metric = metric, Spec = "Flat", Shards = shards, Replicas = replicas, Sharding = mode,
        Centroids = mode == ShardingMode.CentroidRanges ? 32 : 0,
    };

    private static double Recall(long[] expected, long[] got, int k)
    {
        int hits = 0, total = 0;
        for (int q = 0; q < expected.Length / k; q++)
        {
            var truth = expected.AsSpan(q * k, k).ToArray().Where(l => l >= 0).ToHashSet();
            total += truth.Count;
            hits += got.AsSpan(q * k, k).ToArray().Count(truth.Contains);
        }
        return hits / (double)total;
    }

    [Fact]
    public void CentroidTable_IsDeterministic_WithContiguousBalancedRanges_AndRejectsBadInput()
    {
        var layout = Layout("t", ShardingMode.CentroidRanges);
        var sample = Clustered(3000, seed: 5);
        var a = CentroidTable.Train(layout, sample);
        var b = CentroidTable.Train(layout, sample);
        Assert.Equal(a.Digest, b.Digest);
        Assert.Equal(a.Centroids, b.Centroids);
        Assert.Equal(0, a.Starts[0]);
        Assert.Equal(32, a.Starts[^1]);
        // Every shard owns a range, and the ranges split the sample's vectors about evenly.
        var perShard = new int[4];
        foreach (int s in a.ShardsOf(sample)) perShard[s]++;
        for (int s = 0; s < 4; s++)
        {
            Assert.True(a.Starts[s + 1] > a.Starts[s]);
            Assert.InRange(perShard[s], 3000 / 4 / 2, 3000 / 4 * 2);
        }
        a.CheckAgainst(layout with { CentroidDigest = a.Digest });
        Assert.Throws<ArgumentException>(() => a.CheckAgainst(layout with { CentroidDigest = a.Digest + 1 }));
        Assert.Throws<ArgumentException>(() => CentroidTable.Train(layout, sample.AsSpan(0, 10 * D)));   // fewer rows than centroids
        Assert.Throws<ArgumentException>(() => CentroidTable.Train(Layout("t", ShardingMode.KeyHash), sample));
        Assert.Throws<ArgumentOutOfRangeException>(() => (layout with { Centroids = 3 }).Validate());   // fewer centroids than shards
        Assert.Throws<ArgumentException>(() => (Layout("t", ShardingMode.KeyHash) with { Centroids = 8 }).Validate());
        var bad = (float[])sample.Clone();
        bad[7] = float.NaN;
        Assert.Throws<ArgumentException>(() => CentroidTable.Train(layout, bad));
    }

    [Fact]
    public async Task AllProbes_EqualKeyHashAndSingleIndex_FewerProbesVisitFewerShards()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(AllProbes_EqualKeyHashAndSingleIndex_FewerProbesVisitFewerShards));
        const int n = 3000, k = 10;
        var vectors = Clustered(n, seed: 31);
        var ids = TestData.Ids(n, offset: 7, stride: 2);
        var queries = Clustered(60, seed: 32);
        using var single = TestData.Reference(vectors, ids, D, Metric.L2);
        var expected = TestData.Search(single, queries, k);

        var hash = await DistributedCollection.CreateAsync(c.Client, Layout("by-hash", ShardingMode.KeyHash), sample: null);
        await hash.UpsertAsync(vectors, ids);
        var byHash = await hash.SearchAsync(queries, k);
        Assert.All(byHash.ShardsPerQuery!, s => Assert.Equal(4, s));
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = hash.SearchAsync(queries, k, centroidProbes: 2); });

        // The coarse quantizer is trained on a sample (every third vector), not on the whole corpus.
        var sample = vectors.Where((_, i) => i / D % 3 == 0).ToArray();
        var cent = await DistributedCollection.CreateAsync(c.Client, Layout("by-centroid", ShardingMode.CentroidRanges), sample);
        Assert.NotEqual(0, cent.Layout.CentroidDigest);
        await cent.UpsertAsync(vectors, ids);
        Assert.Equal(n, await cent.CountAsync());
        // The shards hold different amounts (ranges follow the data), but none is empty.
        var status = await cent.StatusAsync();
        Assert.All(Enumerable.Range(0, 4), s => Assert.True(status[s * 2].Count > 0));

        // Probing all C centroids (the layout's default) visits every shard: identical ids, as key hash and the single index.
        var all = await cent.SearchAsync(queries, k);
        Assert.Equal(expected.Labels, byHash.Labels);
        Assert.Equal(expected.Labels, all.Labels);
        for (int i = 0; i < all.Distances.Length; i++) Assert.Equal(expected.Distances[i], all.Distances[i], 1e-3f);
        Assert.All(all.ShardsPerQuery!, s => Assert.Equal(4, s));
        Assert.Equal(expected.Labels, (await cent.SearchAsync(queries, k, centroidProbes: 32)).Labels);

        // Two probes of 32: each query visits at most 2 shards, far fewer on average, at a recall floor.
        var few = await cent.SearchAsync(queries, k, centroidProbes: 2);
        Assert.All(few.ShardsPerQuery!, s => Assert.InRange(s, 1, 2));
        double meanShards = few.ShardsPerQuery!.Average();
        double recall = Recall(expected.Labels, few.Labels, k);
        Assert.True(meanShards < 2, $"mean shards visited {meanShards}");
        Assert.True(recall >= 0.9, $"recall@{k} with 2 of 32 probes: {recall}");
        // A view through the index contract takes the probes as a setting.
        using var view = new DistributedIndex(cent, new Dictionary<string, string> { [DistributedIndex.CentroidProbesSetting] = "2" });
        Assert.Equal(few.Labels, TestData.Search(view, queries, k).Labels);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => cent.SearchAsync(queries, k, centroidProbes: 33));
    }

    [Fact]
    public async Task ReUpsert_MovesRecordToItsNewShard_AndDeleteRemovesItEverywhere()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(ReUpsert_MovesRecordToItsNewShard_AndDeleteRemovesItEverywhere));
        const int n = 1200;
        var vectors = Clustered(n, seed: 41);
        var ids = TestData.Ids(n);
        var coll = await DistributedCollection.CreateAsync(c.Client, Layout("moves", ShardingMode.CentroidRanges, metric: Metric.Cosine), vectors);
        await coll.UpsertAsync(vectors, ids);
        var layout = coll.Layout;

        async Task<int[]> Holders(long id)
        {
            var where = new List<int>();
            for (int s = 0; s < layout.Shards; s++)
                for (int r = 0; r < layout.Replicas; r++)
                    if ((await c.Client.GetGrain<IShardReplicaGrain>(layout.ReplicaKey(s, r)).Holding(layout, [id])).Length > 0)
                        where.Add(s * 10 + r);
            return [.. where];
        }

        // Every record lives on exactly one shard, on both of its replicas.
        var before = await Holders(0);
        Assert.Equal(2, before.Length);
        Assert.Equal(before[0] / 10, before[1] / 10);
        int oldShard = before[0] / 10;
        // Give id 0 the vector of a record on another shard: it moves there.
        long other = -1;
        for (long j = 1; j < n && other < 0; j++)
            if ((await Holders(j))[0] / 10 != oldShard) other = j;
        Assert.True(other > 0);
        var moved = vectors.AsSpan((int)other * D, D).ToArray();
        await coll.UpsertAsync(moved, [0]);
        var after = await Holders(0);
        int newShard = (await Holders(other))[0] / 10;
        Assert.Equal(new[] { newShard * 10, newShard * 10 + 1 }, after);
        Assert.Equal(n, await coll.CountAsync());
        // Cosine rows are stored at unit length: the stored vector points the way the new one does.
        var stored = (await coll.GetAsync([0])).Vectors;
        double dot = 0, nm = 0;
        for (int t = 0; t < D; t++) { dot += stored[t] * moved[t]; nm += moved[t] * moved[t]; }
        Assert.Equal(1.0, dot / Math.Sqrt(nm), 4);
        var hit = await coll.SearchAsync(moved, 2, centroidProbes: 1);
        Assert.Equal(1, hit.ShardsPerQuery![0]);
        Assert.Equal(new long[] { 0, other }.Order(), hit.Labels.Order());

        // Re-upserting a batch where nothing moves changes nothing; deleting finds the id wherever it lives.
        await coll.UpsertAsync(moved, [0]);
        Assert.Equal(after, await Holders(0));
        await coll.DeleteAsync([0, 5]);
        Assert.Empty(await Holders(0));
        Assert.Empty(await Holders(5));
        Assert.Equal(n - 2, await coll.CountAsync());
        Assert.Empty((await coll.GetAsync([0, 5])).Ids);
    }

    [Fact]
    public async Task CentroidTable_SurvivesAWholeClusterRestart()
    {
        string root = Path.Combine(Path.GetTempPath(), "engine-dist-tests", "centroid-restart-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            const int n = 1500, k = 5;
            var vectors = Clustered(n, seed: 51);
            var ids = TestData.Ids(n, offset: 100);
            var queries = Clustered(30, seed: 52);
            SearchResponse before;
            ShardLayout layout;
            await using (var first = await DistributedTestCluster.StartAsync(1, "centroid-restart", root))
            {
                var coll = await DistributedCollection.CreateAsync(first.Client, Layout("kept", ShardingMode.CentroidRanges, shards: 3, replicas: 1) with { CentroidProbes = 3 }, vectors);
                await coll.UpsertAsync(vectors, ids);
                layout = coll.Layout;
                before = await coll.SearchAsync(queries, k);
            }
            await using var second = await DistributedTestCluster.StartAsync(1, "centroid-restart", root);
            // The layout (mode, C, default probes, table digest) comes back from the replicas' disks, and the new
            // routers read the table itself from there: the same queries visit the same shards and find the same ids.
            var reopened = await DistributedCollection.OpenExistingAsync(second.Client, "kept");
            Assert.Equal(layout, reopened.Layout);
            var after = await reopened.SearchAsync(queries, k);
            Assert.Equal(before.Labels, after.Labels);
            Assert.Equal(before.ShardsPerQuery, after.ShardsPerQuery);
            Assert.True(after.ShardsPerQuery!.Average() < 3);
            // Writes route by the same table: a re-upsert of an unchanged vector leaves the count alone.
            await reopened.UpsertAsync(vectors[..(10 * D)], ids[..10]);
            Assert.Equal(n, await reopened.CountAsync());
            // Opening it with a layout that names another table fails clearly.
            await Assert.ThrowsAnyAsync<ArgumentException>(() => DistributedCollection.OpenAsync(second.Client, layout with { CentroidDigest = 12345 }));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
