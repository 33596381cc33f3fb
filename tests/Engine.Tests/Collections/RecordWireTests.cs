using Engine.Collections;
using FsCheck.Xunit;

namespace Engine.Tests.Collections;

/// <summary>
/// Records, keys, filters and schemas as they travel between processes (what the distributed record collections send):
/// round trips, refusals, and the collection calls they rely on (knobs by name, every live key).
/// </summary>
public class RecordWireTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-wire-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static readonly string[] Fields = ["title", "n", "score", "flag", "when", "tags", "count", "ratio", "at"];

    // A random filter tree of depth <= 3 with constants of every type filters hold.
    private static Filter RandomFilter(Random rng, int depth)
    {
        int kind = depth >= 3 ? rng.Next(2) : rng.Next(5);
        switch (kind)
        {
            case 0: return new CompareFilter(Fields[rng.Next(Fields.Length)], (CompareOp)rng.Next(5), RandomValue(rng));
            case 1: return new InFilter(Fields[rng.Next(Fields.Length)], Enumerable.Range(0, rng.Next(1, 4)).Select(_ => RandomValue(rng) ?? "x").ToArray());
            case 2: return new AndFilter(Enumerable.Range(0, rng.Next(0, 3)).Select(_ => RandomFilter(rng, depth + 1)).ToArray());
            case 3: return new OrFilter(Enumerable.Range(0, rng.Next(0, 3)).Select(_ => RandomFilter(rng, depth + 1)).ToArray());
            default: return new NotFilter(RandomFilter(rng, depth + 1));
        }
    }

    private static object? RandomValue(Random rng) => rng.Next(10) switch
    {
        0 => null,
        1 => "s" + rng.Next(100) + (rng.Next(4) == 0 ? " \"quoted\" é" : ""),
        2 => rng.Next(2) == 0,
        3 => rng.Next(int.MinValue, int.MaxValue),
        4 => rng.NextInt64(long.MinValue, long.MaxValue),
        5 => (float)(rng.NextDouble() * 1e6 - 5e5),
        6 => rng.Next(8) == 0 ? double.NaN : rng.NextDouble() * 1e300,
        7 => new DateTime(rng.NextInt64(DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks), (DateTimeKind)rng.Next(2) == 0 ? DateTimeKind.Utc : DateTimeKind.Unspecified),
        8 => new DateTimeOffset(rng.NextInt64(new DateTime(1900, 1, 1).Ticks, new DateTime(2900, 1, 1).Ticks), TimeSpan.FromMinutes(rng.Next(-14 * 60, 14 * 60 + 1))),
        _ => (long)rng.Next(),
    };

    // Structural equality with exact types (the records' list members compare by reference).
    private static bool Same(Filter a, Filter b) => (a, b) switch
    {
        (CompareFilter x, CompareFilter y) => x.Field == y.Field && x.Op == y.Op && SameValue(x.Value, y.Value),
        (InFilter x, InFilter y) => x.Field == y.Field && x.Values.Count == y.Values.Count && x.Values.Zip(y.Values).All(p => SameValue(p.First, p.Second)),
        (AndFilter x, AndFilter y) => x.Operands.Count == y.Operands.Count && x.Operands.Zip(y.Operands).All(p => Same(p.First, p.Second)),
        (OrFilter x, OrFilter y) => x.Operands.Count == y.Operands.Count && x.Operands.Zip(y.Operands).All(p => Same(p.First, p.Second)),
        (NotFilter x, NotFilter y) => Same(x.Operand, y.Operand),
        _ => false,
    };

    private static bool SameValue(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (DateTime x, DateTime y) => x.Ticks == y.Ticks && x.Kind == y.Kind,
        (DateTimeOffset x, DateTimeOffset y) => x.Ticks == y.Ticks && x.Offset == y.Offset,
        (double x, double y) => x.Equals(y),
        (float x, float y) => x.Equals(y),
        _ => a is not null && b is not null && a.GetType() == b.GetType() && a.Equals(b),
    };

    [Property(MaxTest = 300, Replay = "(20261205,1)")]
    public bool Filters_RoundTripThroughJson_WithTheirConstantsExactTypes(int seed)
    {
        var f = RandomFilter(new Random(seed), 0);
        var back = FilterSerializer.FromJson(FilterSerializer.ToJson(f));
        return Same(f, back) && FilterSerializer.ToJson(back) == FilterSerializer.ToJson(f);
    }

    [Fact]
    public void Filters_BadJsonAndUnsupportedConstants_AreRefusedByName()
    {
        foreach (var bad in new[] { "{", "[]", "null", "{\"cmp\":\"Less\",\"field\":\"x\"}", "{\"cmp\":\"Sideways\",\"field\":\"x\",\"value\":null}", "{\"cmp\":\"99\",\"field\":\"x\",\"value\":null}",
                     "{\"in\":\"x\",\"values\":[null]}", "{\"cmp\":\"Less\",\"field\":\"x\",\"value\":{\"decimal\":\"1\"}}", "{\"and\":[1]}", "{\"xor\":[]}",
                     "{\"cmp\":\"Less\",\"field\":\"x\",\"value\":{\"int64\":\"1e3\"}}", "{\"not\":{\"and\":[]},\"or\":[]}" })
            Assert.Throws<ArgumentException>(() => FilterSerializer.FromJson(bad));
        var e = Assert.Throws<ArgumentException>(() => FilterSerializer.ToJson(Filter.Equal("x", 1.5m)));
        Assert.Contains("Decimal", e.Message);
    }

    [Property(MaxTest = 100, Replay = "(20261205,3)")]
    public bool Records_RoundTrip_WithAndWithoutVectors(int seed)
    {
        var rng = new Random(seed);
        var schema = CollectionTestData.Schema(d: 1 + rng.Next(40));
        var serializer = new RecordSerializer(schema);
        var record = CollectionTestData.Make("key-" + seed, rng.NextInt64(-1000, 1000), schema.Vectors[0].Dimension);
        if (rng.Next(3) == 0) record.Data.Remove("body");
        var blob = serializer.Serialize(record);
        var back = serializer.Deserialize<string>(blob);
        var lean = serializer.Deserialize<string>(serializer.Serialize(back, includeVectors: false));
        bool sameData(Record<string> r) => r.Key == record.Key && r.Data.Count == record.Data.Count
            && record.Data.All(p => r.Data.TryGetValue(p.Key, out var v) && (v is string[] t ? t.SequenceEqual((string[])p.Value!) : SameValue(v, p.Value)));
        return sameData(back) && back.Vectors["embedding"].SequenceEqual(record.Vectors["embedding"])
            && sameData(lean) && lean.Vectors.Count == 0
            && serializer.KeyOf(blob).SequenceEqual(RecordSerializer.SerializeKey("key-" + seed));
    }

    [Fact]
    public void Records_BadBlobsKeysAndSchemas_AreRefused()
    {
        var schema = CollectionTestData.Schema();
        var serializer = new RecordSerializer(schema);
        var blob = serializer.Serialize(CollectionTestData.Make("a", 1));
        blob[5] ^= 0x40;
        Assert.Throws<CorruptIndexException>(() => serializer.Deserialize<string>(blob));
        Assert.Throws<CorruptIndexException>(() => serializer.Deserialize<string>(new byte[] { 1, 2, 3 }));
        Assert.Throws<ArgumentException>(() => serializer.Serialize(CollectionTestData.Make(7L, 1)));   // keys are strings
        var noVector = new Record<string>("b");
        Assert.Contains("embedding", Assert.Throws<ArgumentException>(() => serializer.Serialize(noVector)).Message);
        Assert.Empty(serializer.Deserialize<string>(serializer.Serialize(noVector, includeVectors: false)).Vectors);
        // Another schema's blob does not decode as this one's.
        var other = new RecordSerializer(new CollectionSchema(typeof(string), [], [new VectorField("v", 3)]));
        Assert.Throws<CorruptIndexException>(() => serializer.Deserialize<string>(other.Serialize(new Record<string>("c") { Vectors = { ["v"] = [1, 2, 3] } })));
        Assert.Equal(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), RecordSerializer.DeserializeKey<Guid>(RecordSerializer.SerializeKey(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"))));
        // Schemas.
        Assert.True(CollectionSchema.Parse(schema.ToJson()).SameAs(schema));
        Assert.Throws<ArgumentException>(() => CollectionSchema.Parse("{"));
        Assert.Throws<ArgumentException>(() => CollectionSchema.Parse(schema.ToJson().Replace("\"Flat\"", "\"IVF0,Nope\"")));
    }

    /// <summary>Runs tasks on the thread pool and counts them.</summary>
    private sealed class CountingScheduler : TaskScheduler
    {
        public int Executed;

        protected override void QueueTask(Task task) => ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            Interlocked.Increment(ref Executed);
            TryExecuteTask(task);
        }, null);

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

        protected override IEnumerable<Task> GetScheduledTasks() => [];
    }

    [Fact]
    public async Task Reads_RunOnTheGivenScheduler_WhichTheReadsDoNotSeeAsCurrent()
    {
        var scheduler = new CountingScheduler();
        using var c = RecordCollection<string>.Open(_dir, CollectionTestData.Schema(), new CollectionOptions { ReadScheduler = scheduler });
        await c.UpsertBatchAsync(Enumerable.Range(0, 40).Select(i => CollectionTestData.Make($"k{i}", i)));
        int before = scheduler.Executed;
        Assert.Equal(5, (await c.SearchAsync(CollectionTestData.VectorOf(3), 5)).Count);
        Assert.NotNull(await c.GetAsync("k7"));
        Assert.Equal(2, (await c.GetBatchAsync(["k1", "k2"])).Count);
        Assert.Equal(40, (await c.ScanAsync(-1, 100, long.MaxValue)).Records.Count);
        Assert.Equal(40, (await c.KeysAsync()).Count);
        Assert.Single(await c.GetWhereAsync(Filter.Equal("n", 5L), 10));
        Assert.Equal(before + 6, scheduler.Executed);
    }

    [Fact]
    public async Task Collection_KnobsByName_AndEveryLiveKey()
    {
        var schema = CollectionTestData.Schema("IVF4,Flat", trainingSize: 100);
        using var c = RecordCollection<string>.Open(_dir, schema);
        var settings = new Dictionary<string, string> { ["probes"] = "4" };
        // Staged on exact search: knobs are checked against the spec, then have nothing to set.
        await c.UpsertBatchAsync(Enumerable.Range(0, 50).Select(i => CollectionTestData.Make($"k{i}", i)));
        var q = CollectionTestData.VectorOf(1000);
        var staged = await c.SearchAsync(q, 5, new CollectionSearchOptions { Settings = settings });
        Assert.Equal(5, staged.Count);
        await c.UpsertBatchAsync(Enumerable.Range(50, 250).Select(i => CollectionTestData.Make($"k{i}", i)));
        Assert.StartsWith("IVF4", c.IndexDescription());
        // All four lists probed = exact: the same hits as an exact scan with every record allowed.
        var all = await c.SearchAsync(q, 10, new CollectionSearchOptions { Settings = settings });
        var exact = await c.SearchAsync(q, 10, new CollectionSearchOptions { Filter = Filter.GreaterOrEqual("n", 0L), ExactFallbackSelectivity = 1 });
        Assert.Equal(exact.Select(h => h.Record.Key), all.Select(h => h.Record.Key));
        Assert.Contains("ef", (await Assert.ThrowsAsync<ArgumentException>(() => c.SearchAsync(q, 3, new CollectionSearchOptions { Settings = new Dictionary<string, string> { ["ef"] = "9" } }))).Message);
        await Assert.ThrowsAsync<ArgumentException>(() => c.SearchAsync(q, 3, new CollectionSearchOptions { Settings = settings, Parameters = new SearchParameters() }));
        await c.DeleteBatchAsync(["k3", "k77"]);
        var keys = await c.KeysAsync();
        Assert.Equal(298, keys.Count);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"k{i}").Except(["k3", "k77"]).Order(), keys.Order());
        // Scanning in pages (by count, then by bytes) gives every live record once, with its data and vectors.
        foreach (var (maxRecords, maxBytes) in new[] { (7, long.MaxValue), (1000, 500L) })
        {
            var scanned = new List<Record<string>>();
            long cursor = -1;
            int pages = 0;
            do
            {
                var page = await c.ScanAsync(cursor, maxRecords, maxBytes);
                Assert.InRange(page.Records.Count, 1, maxRecords);
                scanned.AddRange(page.Records);
                cursor = page.Next;
                pages++;
            }
            while (cursor >= 0);
            Assert.Equal(keys.Order(), scanned.Select(r => r.Key).Order());
            Assert.True(pages > 2, $"{pages} pages");
            var k9 = scanned.Single(r => r.Key == "k9");
            Assert.Equal(9L, k9.Data["n"]);
            Assert.Equal(CollectionTestData.VectorOf(9), k9.Vectors["embedding"]);
        }
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => c.ScanAsync(-2, 10, 10));
    }
}
