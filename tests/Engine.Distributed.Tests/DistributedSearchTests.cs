using Engine.Distributed;

namespace Engine.Distributed.Tests;

/// <summary>Sharded search equals single-index search (exact specs: identical ids), with filters and per-call knobs.</summary>
public class DistributedSearchTests
{
    private const int D = 16;

    [Fact]
    public async Task ShardedFlat_EqualsSingleIndex_ForL2AndInnerProduct_WithFilters()
    {
        await using var c = await DistributedTestCluster.StartAsync(3, nameof(ShardedFlat_EqualsSingleIndex_ForL2AndInnerProduct_WithFilters));
        var vectors = TestData.Gaussian(3000, D, seed: 11);
        var ids = TestData.Ids(3000, offset: 5, stride: 3);
        var queries = TestData.Gaussian(40, D, seed: 12);
        foreach (var metric in new[] { Metric.L2, Metric.InnerProduct })
        {
            var layout = new ShardLayout { Name = "flat-" + metric, Dimension = D, Metric = metric, Spec = "Flat", Shards = 5, Replicas = 2 };
            var coll = await DistributedCollection.OpenAsync(c.Client, layout);
            await coll.UpsertAsync(vectors, ids);
            Assert.Equal(3000, await coll.CountAsync());
            using var single = TestData.Reference(vectors, ids, D, metric);

            var expected = TestData.Search(single, queries, 10);
            var got = await coll.SearchAsync(queries, 10);
            Assert.Equal(expected.Labels, got.Labels);
            for (int i = 0; i < got.Distances.Length; i++) Assert.Equal(expected.Distances[i], got.Distances[i], 1e-3f);
            Assert.Equal(5, got.ShardsAnswered);

            // Filters run on the shards: an allow-list (every 7th id) and an id range with a deny-list.
            var allow = ids.Where((_, i) => i % 7 == 0).ToArray();
            var expAllow = TestData.Search(single, queries, 10, new SearchParameters { Filter = new IdAllowListFilter(allow) });
            Assert.Equal(expAllow.Labels, (await coll.SearchAsync(queries, 10, filter: new ShardFilter { AllowIds = allow })).Labels);
            var deny = expected.Labels.Where(l => l >= 0).Distinct().Take(50).ToArray();
            var rangeFilter = new ShardFilter { MinId = 1000, MaxId = 6000, DenyIds = deny };
            var expRange = TestData.Search(single, queries, 10, new SearchParameters { Filter = new PredicateFilter(id => id >= 1000 && id <= 6000 && !deny.Contains(id)) });
            Assert.Equal(expRange.Labels, (await coll.SearchAsync(queries, 10, filter: rangeFilter)).Labels);

            // k larger than a shard holds: padding only where the whole collection runs out.
            var few = await coll.SearchAsync(queries[..D], 20, filter: new ShardFilter { AllowIds = ids[..3] });
            Assert.Equal(3, few.Labels.Count(l => l >= 0));
        }
    }

    [Fact]
    public async Task PerCallKnobs_ReachTheShards_AndUnknownKnobsAreRejected()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(PerCallKnobs_ReachTheShards_AndUnknownKnobsAreRejected));
        var vectors = TestData.Gaussian(4000, D, seed: 21);
        var ids = TestData.Ids(4000);
        var queries = TestData.Gaussian(30, D, seed: 22);
        var layout = new ShardLayout { Name = "ivf", Dimension = D, Metric = Metric.L2, Spec = "IVF16,Flat", Shards = 2, Replicas = 2, TrainingSize = 500 };
        var coll = await DistributedCollection.OpenAsync(c.Client, layout);
        await coll.UpsertAsync(vectors, ids);
        Assert.All(await coll.StatusAsync(), s => Assert.True(s.Trained));
        using var single = TestData.Reference(vectors, ids, D, Metric.L2);
        var truth = TestData.Search(single, queries, 10).Labels;

        double Recall(long[] got) => Enumerable.Range(0, 30).Average(q => got.Skip(q * 10).Take(10).Intersect(truth.Skip(q * 10).Take(10)).Count() / 10.0);
        double one = Recall((await coll.SearchAsync(queries, 10, new Dictionary<string, string> { ["probes"] = "1" })).Labels);
        double all = Recall((await coll.SearchAsync(queries, 10, new Dictionary<string, string> { ["probes"] = "16" })).Labels);
        Assert.Equal(1.0, all);           // every list probed on every shard: exact
        Assert.True(one < all, $"probes=1 recall {one} should be below probes=16 recall {all}");

        var bad = await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(queries, 10, new Dictionary<string, string> { ["ef"] = "10" }));
        Assert.Contains("ef", bad.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => coll.SearchAsync(queries, 0));
        await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(queries[..(D - 1)], 5));
        var nan = (float[])queries.Clone();
        nan[3] = float.NaN;
        await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(nan, 5));
        await Assert.ThrowsAsync<ArgumentException>(() => coll.UpsertAsync(vectors[..(2 * D)], [1, 1]));
        await Assert.ThrowsAsync<ArgumentException>(() => coll.UpsertAsync(vectors[..D], [-4]));
        await Assert.ThrowsAsync<ArgumentException>(() => DistributedCollection.OpenAsync(c.Client, layout with { Name = "bad/name" }));
        await Assert.ThrowsAsync<ArgumentException>(() => DistributedCollection.OpenAsync(c.Client, layout with { Spec = "IVF16,Nope" }));
        await Assert.ThrowsAsync<ArgumentException>(() => DistributedCollection.OpenAsync(c.Client, layout with { Dimension = D + 1 }));
    }

    [Fact]
    public async Task UpsertReplacesAndDeleteRemoves_OnEveryReplica()
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(UpsertReplacesAndDeleteRemoves_OnEveryReplica));
        var vectors = TestData.Gaussian(600, D, seed: 31);
        var ids = TestData.Ids(600);
        var layout = new ShardLayout { Name = "hnsw", Dimension = D, Metric = Metric.L2, Spec = "HNSW16", Shards = 3, Replicas = 2 };
        var coll = await DistributedCollection.OpenAsync(c.Client, layout);
        await coll.UpsertAsync(vectors, ids);
        var replaced = TestData.Gaussian(100, D, seed: 32);
        await coll.UpsertAsync(replaced, ids[..100]);
        await coll.DeleteAsync(ids[500..]);
        var status = await coll.StatusAsync();
        for (int s = 0; s < 3; s++)
        {
            Assert.Equal(status[2 * s].Count, status[2 * s + 1].Count);
            Assert.Equal(status[2 * s].Sequence, status[2 * s + 1].Sequence);
        }
        Assert.Equal(500, await coll.CountAsync());
        var rows = await coll.GetAsync([0, 99, 550]);
        Assert.Equal(new long[] { 0, 99 }, rows.Ids.Order().ToArray());
        int at99 = Array.IndexOf(rows.Ids, 99L);
        Assert.Equal(replaced.AsSpan(99 * D, D).ToArray(), rows.Vectors.AsSpan(at99 * D, D).ToArray());
        // A replaced vector is found as itself; a deleted one never comes back.
        var hit = await coll.SearchAsync(replaced[(5 * D)..(6 * D)], 1, new Dictionary<string, string> { ["ef"] = "64" });
        Assert.Equal(5, hit.Labels[0]);
        var gone = await coll.SearchAsync(vectors[(550 * D)..(551 * D)], 10, new Dictionary<string, string> { ["ef"] = "64" });
        Assert.DoesNotContain(gone.Labels, l => l >= 500);
    }

    private sealed class PredicateFilter(Func<long, bool> allowed) : IIdFilter
    {
        public bool IsAllowed(long id) => allowed(id);
    }
}
