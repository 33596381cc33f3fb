using Engine.Collections;
using Engine.Distributed;
using Xunit.Abstractions;

namespace Engine.Distributed.Tests;

/// <summary>
/// Record collections on the cluster (<see cref="DistributedRecordCollection{TKey}"/>): results equal one
/// <see cref="RecordCollection{TKey}"/> holding every record (exact index), filters, knobs, reads, deletes, replicas
/// that catch up by copying records, a cluster restarted on its disks, and refusals.
/// </summary>
public class DistributedRecordTests(ITestOutputHelper output) : IDisposable
{
    private const int D = 16;
    private static readonly string[] Categories = ["a", "b", "c", "d"];
    private readonly string _local = Path.Combine(Path.GetTempPath(), "engine-dist-records-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_local, recursive: true); } catch (IOException) { }
    }

    private static CollectionSchema Schema(string spec = "Flat") => new(typeof(string),
        [new DataField("category", FieldType.String, Indexed: true), new DataField("year", FieldType.Int32, Indexed: true),
         new DataField("tags", FieldType.Tags, Indexed: true), new DataField("title", FieldType.String)],
        [new VectorField("emb", D, Metric.L2, spec)]);

    private static Record<string>[] Records(int n, int seed, int offset = 0)
    {
        var v = TestData.Gaussian(n, D, seed);
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(i => new Record<string>($"doc-{i + offset}")
        {
            Data =
            {
                ["category"] = Categories[rng.Next(Categories.Length)], ["year"] = 1990 + rng.Next(35),
                ["tags"] = rng.Next(3) == 0 ? new[] { "red", "big" } : new[] { "blue" }, ["title"] = $"title {i + offset}",
            },
            Vectors = { ["emb"] = v[(i * D)..((i + 1) * D)] },
        }).ToArray();
    }

    private static void AssertSameHits(IReadOnlyList<SearchResult<string>> want, IReadOnlyList<SearchResult<string>> got)
    {
        Assert.Equal(want.Select(h => h.Record.Key), got.Select(h => h.Record.Key));
        // The same vectors scored in another batch may differ in the last bits (blocked sums).
        Assert.Equal(want.Select(h => h.Distance), got.Select(h => h.Distance), (a, b) => MathF.Abs(a - b) <= 1e-5f * MathF.Max(1, MathF.Abs(a)));
        for (int i = 0; i < want.Count; i++)
            Assert.Equal(want[i].Record.Data.OrderBy(p => p.Key).Select(p => p.Value is string[] t ? string.Join(",", t) : p.Value),
                got[i].Record.Data.OrderBy(p => p.Key).Select(p => p.Value is string[] t ? string.Join(",", t) : p.Value));
    }

    [Fact]
    public async Task Records_SearchGetDeleteAndFilters_EqualOneCollectionHoldingThemAll()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(Records_SearchGetDeleteAndFilters_EqualOneCollectionHoldingThemAll));
        output.WriteLine($"cluster {clock.Elapsed.TotalSeconds:F1} s");
        var schema = Schema();
        var coll = await DistributedRecordCollection<string>.OpenAsync(c.Client, "docs", schema, shards: 3, replicas: 2);
        output.WriteLine($"open {clock.Elapsed.TotalSeconds:F1} s");
        using var single = RecordCollection<string>.Open(_local, schema);
        var records = Records(600, 1);
        await coll.UpsertBatchAsync(records);
        output.WriteLine($"upsert {clock.Elapsed.TotalSeconds:F1} s");
        await single.UpsertBatchAsync(records);
        // Replace some records (new data and vectors) and delete others, on both.
        var replaced = Records(40, 2, offset: 100);
        await coll.UpsertBatchAsync(replaced);
        output.WriteLine($"replace {clock.Elapsed.TotalSeconds:F1} s");
        await single.UpsertBatchAsync(replaced);
        var deleted = Enumerable.Range(500, 50).Select(i => $"doc-{i}").Append("never-there").ToArray();
        await coll.DeleteBatchAsync(deleted);
        output.WriteLine($"delete {clock.Elapsed.TotalSeconds:F1} s");
        await single.DeleteBatchAsync(deleted);
        Assert.Equal(550, await coll.CountAsync());
        output.WriteLine($"count {clock.Elapsed.TotalSeconds:F1} s");
        var status = await coll.StatusAsync();
        Assert.Equal(6, status.Length);
        for (int s = 0; s < 3; s++) Assert.Equal(status[2 * s].Count, status[2 * s + 1].Count);

        output.WriteLine($"writes {clock.Elapsed.TotalSeconds:F1} s");
        var queries = TestData.Gaussian(12, D, 3);
        var filters = new Filter?[]
        {
            null,
            Filter.Equal("category", "b"),
            Filter.And(Filter.In("category", "a", "c"), Filter.GreaterOrEqual("year", 2005)),
            Filter.Or(Filter.ContainsTag("tags", "red"), Filter.LessThan("year", 1995)),
            Filter.Not(Filter.Equal("category", "d")),
        };
        foreach (var filter in filters)
        {
            var options = new CollectionSearchOptions { Filter = filter };
            var batch = await coll.SearchBatchAsync(queries, 10, options);
            for (int q = 0; q < 12; q++)
            {
                var want = await single.SearchAsync(queries.AsMemory(q * D, D), 10, options);
                AssertSameHits(want, batch[q]);
                Assert.Equal(10, want.Count);
            }
        }
        output.WriteLine($"searches {clock.Elapsed.TotalSeconds:F1} s");
        // One query at a time, with vectors; k above what a filter allows returns what there is.
        var one = await coll.SearchAsync(queries.AsMemory(0, D), 5, new CollectionSearchOptions { IncludeVectors = true });
        Assert.All(one, h => Assert.Equal(D, h.Record.Vectors["emb"].Length));
        var few = await coll.SearchAsync(queries.AsMemory(0, D), 1000, new CollectionSearchOptions { Filter = Filter.Equal("year", 2000) });
        Assert.Equal((await single.SearchAsync(queries.AsMemory(0, D), 1000, new CollectionSearchOptions { Filter = Filter.Equal("year", 2000) })).Count, few.Count);

        // Reads by key, in order, null for absent and deleted keys; vectors only when asked for.
        var got = await coll.GetBatchAsync(["doc-105", "doc-7", "doc-520", "nope"], includeVectors: true);
        Assert.Equal("title 105", got[0]!.Data["title"]);
        Assert.Equal(replaced[5].Vectors["emb"], got[0]!.Vectors["emb"]);
        Assert.Equal(records[7].Data["year"], got[1]!.Data["year"]);
        Assert.Null(got[2]);
        Assert.Null(got[3]);
        Assert.Empty((await coll.GetAsync("doc-7"))!.Vectors);

        // Filtered reads: the same records as one collection (as sets), pages that cover them once.
        foreach (var filter in filters.Where(f => f is not null))
        {
            var want = (await single.GetWhereAsync(filter!, 1000)).Select(r => r.Key).Order().ToArray();
            var matched = await coll.GetWhereAsync(filter!, 1000);
            Assert.Equal(want, matched.Select(r => r.Key).Order());
            Assert.All(matched, r => Assert.Empty(r.Vectors));
            var paged = new List<string>();
            for (int skip = 0; skip < want.Length; skip += 37) paged.AddRange((await coll.GetWhereAsync(filter!, 37, skip)).Select(r => r.Key));
            Assert.Equal(want, paged.Order());
        }
        var first = await coll.GetWhereAsync(Filter.Equal("category", "a"), 1, includeVectors: true);
        Assert.Equal(D, first.Single().Vectors["emb"].Length);
        await Assert.ThrowsAsync<ArgumentException>(() => coll.GetWhereAsync(Filter.Equal("title", "x"), 5));   // not an indexed field
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => coll.GetWhereAsync(Filter.Equal("category", "a"), 100_000, skip: 1));
    }

    [Fact]
    public async Task Records_GuidKeys_SeveralVectorFields_KnobsByName_AndRefusals()
    {
        await using var c = await DistributedTestCluster.StartAsync(1, nameof(Records_GuidKeys_SeveralVectorFields_KnobsByName_AndRefusals));
        var schema = new CollectionSchema(typeof(Guid), [new DataField("n", FieldType.Int64, Indexed: true)],
            [new VectorField("text", 8, Metric.Cosine), new VectorField("image", 12, Metric.InnerProduct, "HNSW16")]);
        var coll = await DistributedRecordCollection<Guid>.OpenAsync(c.Client, "multi", schema, shards: 2, replicas: 1);
        using var single = RecordCollection<Guid>.Open(_local, schema);
        var rng = new Random(5);
        var text = TestData.Gaussian(300, 8, 6);
        var image = TestData.Gaussian(300, 12, 7);
        var records = Enumerable.Range(0, 300).Select(i => new Record<Guid>(new Guid(Enumerable.Range(0, 16).Select(_ => (byte)rng.Next(256)).ToArray()))
        {
            Data = { ["n"] = (long)i },
            Vectors = { ["text"] = text[(i * 8)..((i + 1) * 8)], ["image"] = image[(i * 12)..((i + 1) * 12)] },
        }).ToArray();
        await coll.UpsertBatchAsync(records);
        await single.UpsertBatchAsync(records);
        var q8 = TestData.Gaussian(1, 8, 8);
        var q12 = TestData.Gaussian(1, 12, 9);
        var wantText = await single.SearchAsync(q8, 7, new CollectionSearchOptions { VectorName = "text", Filter = Filter.LessThan("n", 150L) });
        var gotText = await coll.SearchAsync(q8, 7, new CollectionSearchOptions { VectorName = "text", Filter = Filter.LessThan("n", 150L) });
        Assert.Equal(wantText.Select(h => h.Record.Key), gotText.Select(h => h.Record.Key));
        Assert.All(gotText, h => Assert.True((long)h.Record.Data["n"]! < 150));
        // HNSW with a large ef over 300 vectors finds the exact neighbours on each shard and in one collection.
        var settings = new Dictionary<string, string> { ["ef"] = "300" };
        var wantImage = await single.SearchAsync(q12, 5, new CollectionSearchOptions { VectorName = "image", Settings = settings });
        var gotImage = await coll.SearchAsync(q12, 5, new CollectionSearchOptions { VectorName = "image", Settings = settings });
        Assert.Equal(wantImage.Select(h => h.Record.Key), gotImage.Select(h => h.Record.Key));
        Assert.Equal(wantImage.Select(h => h.Score), gotImage.Select(h => h.Score));

        // Refusals: each names the problem, before anything is written.
        var bad = new Record<Guid>(Guid.NewGuid()) { Vectors = { ["text"] = new float[8] } };   // "image" missing
        var e = await Assert.ThrowsAsync<ArgumentException>(() => coll.UpsertAsync(bad));
        Assert.Contains("image", e.Message);
        var nan = new Record<Guid>(Guid.NewGuid()) { Vectors = { ["text"] = new float[8], ["image"] = Enumerable.Repeat(float.NaN, 12).ToArray() } };
        await Assert.ThrowsAsync<ArgumentException>(() => coll.UpsertAsync(nan));
        Assert.Contains("vector fields", (await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(q8, 3))).Message);
        await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(q12, 3, new CollectionSearchOptions { VectorName = "text" }));
        var knob = await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(q8, 3, new CollectionSearchOptions { VectorName = "text", Settings = new Dictionary<string, string> { ["ef"] = "10" } }));
        Assert.Contains("ef", knob.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(q8, 3, new CollectionSearchOptions { VectorName = "text", Filter = Filter.Equal("missing", 1) }));
        await Assert.ThrowsAsync<ArgumentException>(() => coll.SearchAsync(q8, 3, new CollectionSearchOptions { VectorName = "text", Parameters = new SearchParameters() }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => coll.SearchAsync(q8, 0, new CollectionSearchOptions { VectorName = "text" }));
        Assert.Equal(300, await coll.CountAsync());
        // The same name with another schema, key type or kind of collection is refused.
        await Assert.ThrowsAsync<ArgumentException>(() => DistributedRecordCollection<string>.OpenAsync(c.Client, "multi2", schema, 2));
        // (ArgumentException while the replicas are active, InvalidOperationException when one reads its layout from disk.)
        var other = await Assert.ThrowsAnyAsync<Exception>(() => DistributedRecordCollection<string>.OpenAsync(c.Client, "multi", Schema(), 2, 1));
        Assert.True(other is ArgumentException or InvalidOperationException, other.ToString());
        Assert.Contains("records", (await Assert.ThrowsAsync<ArgumentException>(() => DistributedCollection.OpenExistingAsync(c.Client, "multi"))).Message);
        var reopened = await DistributedRecordCollection<Guid>.OpenExistingAsync(c.Client, "multi");
        Assert.Equal(schema.ToJson(), reopened.Schema.ToJson());
        // A hand-made blob that does not decode never reaches a shard's log.
        var router = c.Client.GetGrain<IRouterGrain>("multi");
        await Assert.ThrowsAsync<ArgumentException>(() => router.UpsertRecords(coll.Layout, [[1, 2, 3]]));
        await Assert.ThrowsAsync<InvalidOperationException>(() => router.Upsert(coll.Layout, [1], new float[8]));
    }

    [Fact]
    public async Task Records_ReplicaOnANewSilo_CopiesTheRecords_AndACleanRestartKeepsThem()
    {
        string root = Path.Combine(Path.GetTempPath(), "engine-dist-tests", "records-restart-" + Guid.NewGuid().ToString("N")[..8]);
        var schema = Schema("IVF4,Flat");
        var records = Records(400, 11);
        var queries = TestData.Gaussian(6, D, 12);
        var all = new CollectionSearchOptions { Settings = new Dictionary<string, string> { ["probes"] = "4" } };
        try
        {
            // Replicas keep only their newest write in memory for peers and snapshot every 64 KiB of log, after which
            // their log no longer holds the first writes either: one that missed them copies a snapshot.
            await using (var c = await DistributedTestCluster.StartAsync(2, "records-restart", root, o =>
                         {
                             o.CatchUpTailBytes = 0;
                             o.CheckpointLogBytes = 1 << 16;
                         }))
            {
                var coll = await DistributedRecordCollection<string>.OpenAsync(c.Client, "docs", schema, shards: 2, replicas: 2);
                // Twelve writes per shard (the same 300 records six times, ~130 KiB of log per shard): every replica has
                // snapshotted and truncated its log, so a fresh replica (at write 0) cannot catch up by ops, whichever
                // replica (primary or follower) the lost silo held.
                for (int round = 0; round < 6; round++)
                {
                    await coll.UpsertBatchAsync(records.Take(150));
                    await coll.UpsertBatchAsync(records.Skip(150).Take(150));
                }
                // Lose a silo: its replicas are activated on the survivor, where they start empty and copy every record
                // from their peer (a record snapshot), then take the writes that follow.
                var victim = c.Cluster.Silos[1];
                await c.Cluster.StopSiloAsync(victim);
                await coll.UpsertBatchAsync(records.Skip(300));
                await coll.DeleteBatchAsync(["doc-0", "doc-1"]);
                var status = await coll.StatusAsync();
                output.WriteLine(string.Join(", ", status.Select((st, i) => $"{i / 2}/{i % 2}:{st.Count} [{st.LastCatchUp}]")));
                Assert.Contains(status, st => st.LastCatchUp.StartsWith("snapshot ", StringComparison.Ordinal));
                for (int s = 0; s < 2; s++) Assert.Equal(status[2 * s].Count, status[2 * s + 1].Count);
                Assert.Equal(398, await coll.CountAsync());
                using var single = RecordCollection<string>.Open(_local, schema);
                await single.UpsertBatchAsync(records);
                await single.DeleteBatchAsync(["doc-0", "doc-1"]);
                // Every replica answers the same (searches alternate between them).
                for (int round = 0; round < 4; round++)
                {
                    var got = await coll.SearchBatchAsync(queries, 8, all);
                    for (int q = 0; q < 6; q++)
                        AssertSameHits(await single.SearchAsync(queries.AsMemory(q * D, D), 8, all), got[q]);
                }
            }
            // The whole cluster again on the same disks: the collection reopens by name with every record.
            await using (var c = await DistributedTestCluster.StartAsync(2, "records-restart", root))
            {
                var coll = await DistributedRecordCollection<string>.OpenExistingAsync(c.Client, "docs");
                Assert.Equal(398, await coll.CountAsync());
                var got = await coll.GetBatchAsync(["doc-0", "doc-399", "doc-250"]);
                Assert.Null(got[0]);
                Assert.Equal("title 399", got[1]!.Data["title"]);
                Assert.Equal("title 250", got[2]!.Data["title"]);
            }
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
