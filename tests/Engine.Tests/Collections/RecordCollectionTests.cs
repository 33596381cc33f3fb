using System.Text;
using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

public class RecordCollectionTests
{
    private static RecordCollection<TKey> Open<TKey>(string dir, string spec = "Flat", int trainingSize = 0, Metric metric = Metric.L2) where TKey : notnull =>
        RecordCollection<TKey>.Open(dir, CollectionTestData.Schema(spec, typeof(TKey), metric: metric, trainingSize: trainingSize));

    [Fact]
    public async Task Upsert_Get_Replace_Delete_Reopen_RoundTrips()
    {
        using var dir = new TempDir();
        using (var c = Open<string>(dir.Path))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 50).Select(n => CollectionTestData.Make("k" + n, n)));
            Assert.Equal(50, c.Count);
            var r = await c.GetAsync("k7", includeVectors: true);
            Assert.NotNull(r);
            Assert.Equal(7L, r!.Data["n"]);
            Assert.Equal("body of 7", r.Data["body"]);
            Assert.Equal(7, r.Data["count"]);
            Assert.Equal(7 / 4f, r.Data["ratio"]);
            Assert.Equal(new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.FromHours(2)).AddHours(7), r.Data["at"]);
            Assert.Equal(TimeSpan.FromHours(2), ((DateTimeOffset)r.Data["at"]!).Offset);
            Assert.Equal(new[] { "all", "m0", "common" }, r.Data["tags"]);
            Assert.Equal(CollectionTestData.VectorOf(7), r.Vectors["embedding"]);
            Assert.Empty((await c.GetAsync("k7"))!.Vectors);
            // Replace: new payload and vector under the same key; the old vector leaves the index.
            await c.UpsertAsync(CollectionTestData.Make("k7", 1007));
            Assert.Equal(50, c.Count);
            Assert.Equal(1007L, (await c.GetAsync("k7"))!.Data["n"]);
            var hit = await c.SearchAsync(CollectionTestData.VectorOf(1007), 1);
            Assert.Equal("k7", hit[0].Record.Key);
            var old = await c.SearchAsync(CollectionTestData.VectorOf(7), 50);
            Assert.Single(old, h => h.Record.Key == "k7");
            await c.DeleteBatchAsync(["k1", "k2", "missing"]);
            Assert.Equal(48, c.Count);
            Assert.Null(await c.GetAsync("k1"));
            c.VerifyConsistency();
        }
        using (var c = Open<string>(dir.Path))
        {
            Assert.Equal(48, c.Count);
            Assert.Null(await c.GetAsync("k2"));
            Assert.Equal(1007L, (await c.GetAsync("k7"))!.Data["n"]);
            var got = await c.GetBatchAsync(["k3", "k1", "k49"], includeVectors: true);
            Assert.Equal(3L, got[0]!.Data["n"]);
            Assert.Null(got[1]);
            Assert.Equal(CollectionTestData.VectorOf(49), got[2]!.Vectors["embedding"]);
            c.VerifyConsistency();
        }
    }

    [Fact]
    public async Task WritesAfterTheLastCheckpoint_AreRedoneFromTheLog()
    {
        using var dir = new TempDir();
        using (var c = Open<long>(dir.Path))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 20).Select(n => CollectionTestData.Make((long)n, n)));
            await c.CheckpointAsync();
            await c.UpsertBatchAsync(Enumerable.Range(20, 10).Select(n => CollectionTestData.Make((long)n, n)));
            await c.DeleteAsync(3L);
        }
        // Dispose checkpointed; the log tail is empty. Reopen and write without a checkpoint, then copy the files
        // while open (a crash image) and open the copy.
        using var crash = new TempDir();
        using (var c = Open<long>(dir.Path))
        {
            Assert.Equal(29, c.Count);
            await c.UpsertAsync(CollectionTestData.Make(100L, 100));
            await c.DeleteAsync(4L);
            TempDir.CopyTree(dir.Path, crash.Path);
        }
        using (var c = Open<long>(crash.Path))
        {
            Assert.Equal(2, c.Recovery.LogRecordsReplayed);
            Assert.Equal(29, c.Count);
            Assert.NotNull(await c.GetAsync(100L));
            Assert.Null(await c.GetAsync(4L));
            Assert.Null(await c.GetAsync(3L));
            c.VerifyConsistency();
        }
    }

    [Fact]
    public async Task GuidAndIntKeys_RoundTrip()
    {
        using var dir = new TempDir();
        var g = new Guid("6f9619ff-8b86-d011-b42d-00c04fc964ff");
        using (var c = Open<Guid>(Path.Combine(dir.Path, "g")))
        {
            await c.UpsertAsync(CollectionTestData.Make(g, 5));
            Assert.Equal(5L, (await c.GetAsync(g))!.Data["n"]);
            Assert.Equal(g, (await c.SearchAsync(CollectionTestData.VectorOf(5), 1))[0].Record.Key);
        }
        using (var c = Open<int>(Path.Combine(dir.Path, "i")))
        {
            await c.UpsertAsync(CollectionTestData.Make(-12, 5));
            Assert.Equal(-12, (await c.SearchAsync(CollectionTestData.VectorOf(5), 1))[0].Record.Key);
        }
        using (var c = Open<Guid>(Path.Combine(dir.Path, "g"))) Assert.Equal(1, c.Count);
        Assert.Throws<ArgumentException>(() => Open<string>(Path.Combine(dir.Path, "g")));
    }

    [Fact]
    public async Task BadRecords_AreRejectedByName_AndNothingIsWritten()
    {
        using var dir = new TempDir();
        using var c = Open<string>(dir.Path);
        await c.UpsertAsync(CollectionTestData.Make("ok", 1));
        var shortVec = CollectionTestData.Make("a", 2);
        shortVec.Vectors["embedding"] = new float[3];
        var e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertBatchAsync([CollectionTestData.Make("b", 3), shortVec]));
        Assert.Contains("embedding", e.Message);
        var nan = CollectionTestData.Make("a", 2);
        nan.Vectors["embedding"][4] = float.NaN;
        Assert.Contains("embedding", (await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(nan))).Message);
        var wrongType = CollectionTestData.Make("a", 2);
        wrongType.Data["n"] = "seven";
        Assert.Contains("'n'", (await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(wrongType))).Message);
        var unknown = CollectionTestData.Make("a", 2);
        unknown.Data["nope"] = 1;
        Assert.Contains("nope", (await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(unknown))).Message);
        var missing = CollectionTestData.Make("a", 2);
        missing.Vectors.Clear();
        Assert.Contains("missing", (await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(missing))).Message);
        Assert.Equal(1, c.Count);
        Assert.Null(await c.GetAsync("b"));
        await Assert.ThrowsAsync<ArgumentException>(() => c.SearchAsync(new float[3], 1));
        await Assert.ThrowsAsync<ArgumentException>(() => c.SearchAsync(new float[8], 1, new CollectionSearchOptions { VectorName = "other" }));
        await Assert.ThrowsAsync<ArgumentException>(() => c.GetWhereAsync(Filter.Equal("body", "x"), 5)); // not indexed
        await Assert.ThrowsAsync<ArgumentException>(() => c.GetWhereAsync(Filter.GreaterThan("n", "x"), 5));
        await Assert.ThrowsAsync<ArgumentException>(() => c.GetWhereAsync(Filter.LessThan("title", "x"), 5));
    }

    [Fact]
    public async Task Filters_MatchABruteForcePredicate()
    {
        using var dir = new TempDir();
        using var c = Open<string>(dir.Path);
        const int N = 400;
        await c.UpsertBatchAsync(Enumerable.Range(0, N).Select(n => CollectionTestData.Make("k" + n, n)));
        await c.UpsertBatchAsync([new Record<string>("nodata") { Vectors = { ["embedding"] = CollectionTestData.VectorOf(9999) } }]);
        var day = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var cases = new (Filter F, Func<long, bool> P)[]
        {
            (Filter.Equal("title", "t3"), n => n % 10 == 3),
            (Filter.Equal("flag", true), n => n % 2 == 0),
            (Filter.Between("n", 10L, 20L), n => n is >= 10 and <= 20),
            (Filter.GreaterThan("score", 150.0), n => n * 0.5 > 150),
            (Filter.LessThan("when", day.AddDays(5)), n => n < 5),
            (Filter.ContainsTag("tags", "rare"), n => n % 100 == 0),
            (Filter.In("tags", "m1", "m2"), n => n % 7 is 1 or 2),
            (Filter.In("title", "t1", "t9"), n => n % 10 is 1 or 9),
            (Filter.And(Filter.Equal("flag", false), Filter.Or(Filter.LessOrEqual("n", 5L), Filter.GreaterOrEqual("n", 395L))), n => n % 2 == 1 && (n <= 5 || n >= 395)),
            (Filter.Not(Filter.ContainsTag("tags", "common")), n => n % 100 == 0),
            (Filter.NotEqual("title", "t0"), n => n % 10 != 0),
        };
        foreach (var (f, p) in cases)
        {
            var got = (await c.GetWhereAsync(f, 10_000)).Select(r => r.Key).Where(k => k != "nodata").OrderBy(k => k).ToArray();
            var want = Enumerable.Range(0, N).Where(n => p(n)).Select(n => "k" + n).OrderBy(k => k).ToArray();
            Assert.Equal(want, got);
            // Search under the filter returns only allowed records (Flat: exactly the nearest allowed ones).
            var allowed = (await c.GetWhereAsync(f, 10_000)).Select(r => r.Key).ToHashSet();
            var hits = await c.SearchAsync(CollectionTestData.VectorOf(1), 5, new CollectionSearchOptions { Filter = f });
            Assert.All(hits, h => Assert.Contains(h.Record.Key, allowed));
            Assert.Equal(Math.Min(5, allowed.Count), hits.Count);
        }
        // null equality matches the record without values; NOT of it everything else.
        Assert.Equal(["nodata"], (await c.GetWhereAsync(Filter.Equal("title", null), 10)).Select(r => r.Key));
        Assert.Equal(N, (await c.GetWhereAsync(Filter.NotEqual("title", null), 10_000)).Count);
        var page = await c.GetWhereAsync(Filter.Equal("flag", true), 3, skip: 2);
        Assert.Equal(["k4", "k6", "k8"], page.Select(r => r.Key));
    }

    [Theory]
    [InlineData("IVF16,Flat", 300)]
    [InlineData("SPANN(postings=16)", 300)]
    public async Task SpecsThatNeedTraining_StageExactly_ThenTrain_AndSurviveReopen(string spec, int trainingSize)
    {
        using var dir = new TempDir();
        using (var c = Open<string>(dir.Path, spec, trainingSize))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 200).Select(n => CollectionTestData.Make("k" + n, n)));
            Assert.Equal("Flat", c.IndexDescription());
            Assert.Equal("k42", (await c.SearchAsync(CollectionTestData.VectorOf(42), 1))[0].Record.Key);
            await c.UpsertBatchAsync(Enumerable.Range(200, 200).Select(n => CollectionTestData.Make("k" + n, n)));
            Assert.NotEqual("Flat", c.IndexDescription());
            c.VerifyConsistency();
            Assert.Equal("k333", (await c.SearchAsync(CollectionTestData.VectorOf(333), 1, new CollectionSearchOptions { Parameters = Probes(spec) }))[0].Record.Key);
        }
        using (var c = Open<string>(dir.Path, spec, trainingSize))
        {
            Assert.Equal(400, c.Count);
            Assert.NotEqual("Flat", c.IndexDescription());
            c.VerifyConsistency();
            Assert.Equal("k7", (await c.SearchAsync(CollectionTestData.VectorOf(7), 1, new CollectionSearchOptions { Parameters = Probes(spec) }))[0].Record.Key);
        }
    }

    private static SearchParameters Probes(string spec) => spec.StartsWith("IVF", StringComparison.Ordinal)
        ? new Engine.Index.Ivf.IvfSearchParameters { Probes = 16 }
        : new Engine.Index.Spann.SpannSearchParameters { Probes = 64 };

    [Fact]
    public async Task ConcurrentReaders_WithAWriter_SeeConsistentResults()
    {
        using var dir = new TempDir();
        using var c = Open<string>(dir.Path, "HNSW8");
        await c.UpsertBatchAsync(Enumerable.Range(0, 200).Select(n => CollectionTestData.Make("k" + n, n)));
        using var stop = new CancellationTokenSource();
        var errors = new List<Exception>();
        var readers = Enumerable.Range(0, 3).Select(t => Task.Run(async () =>
        {
            var rng = new Random(t);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    int n = rng.Next(200);
                    var hits = await c.SearchAsync(CollectionTestData.VectorOf(n), 5, new CollectionSearchOptions { Filter = Filter.Equal("flag", true) });
                    Assert.All(hits, h => Assert.True((bool)h.Record.Data["flag"]!));
                    var r = await c.GetAsync("k" + n);
                    Assert.True(r is null || (long)r.Data["n"]! % 1000 == n % 1000);
                }
                catch (Exception e) { lock (errors) errors.Add(e); }
            }
        })).ToArray();
        for (int round = 0; round < 20; round++)
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 10).Select(i => CollectionTestData.Make("k" + (round * 10 + i), 1000 + round * 10 + i)));
            await c.DeleteAsync("k" + (round * 7 % 200));
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Empty(errors);
        c.VerifyConsistency();
    }

    [Fact]
    public async Task CorruptFiles_AreRejectedClearly()
    {
        using var dir = new TempDir();
        using (var c = Open<string>(dir.Path))
            await c.UpsertBatchAsync(Enumerable.Range(0, 30).Select(n => CollectionTestData.Make("k" + n, n)));
        // A flipped byte inside a stored payload (found by its text) fails the payload checksum.
        string kvLog = Directory.GetFiles(Path.Combine(dir.Path, "kv"), "kv.log*").Single(f => FileContains(f, "body of 17"));
        var bytes = File.ReadAllBytes(kvLog);
        int at = IndexOf(bytes, Encoding.UTF8.GetBytes("body of 17"));
        bytes[at + 2] ^= 0x20;
        File.WriteAllBytes(kvLog, bytes);
        var e = Assert.Throws<CorruptIndexException>(() => Open<string>(dir.Path));
        Assert.Contains("checksum", e.Message);
        bytes[at + 2] ^= 0x20;
        File.WriteAllBytes(kvLog, bytes);
        using (var c = Open<string>(dir.Path)) Assert.Equal(30, c.Count);
        // A damaged manifest or collection file.
        string manifest = Path.Combine(dir.Path, "manifest.json");
        var good = File.ReadAllText(manifest);
        File.WriteAllText(manifest, good[..(good.Length / 2)]);
        Assert.Throws<CorruptIndexException>(() => Open<string>(dir.Path));
        File.WriteAllText(manifest, good);
        File.WriteAllText(Path.Combine(dir.Path, "collection.json"), "{ not json");
        Assert.Throws<CorruptIndexException>(() => Open<string>(dir.Path));
    }

    [Fact]
    public async Task SeveralNamedVectors_EachSearchedByItsOwnIndexAndMetric()
    {
        using var dir = new TempDir();
        var schema = new CollectionSchema(typeof(string), [new DataField("n", FieldType.Int64, Indexed: true)],
            [new VectorField("text", 8, Metric.Cosine, "HNSW8"), new VectorField("image", 4, Metric.InnerProduct, "Flat")]);
        using (var c = RecordCollection<string>.Open(dir.Path, schema))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 100).Select(n => new Record<string>("k" + n)
            {
                Data = { ["n"] = (long)n },
                Vectors = { ["text"] = CollectionTestData.VectorOf(n), ["image"] = CollectionTestData.VectorOf(n + 500, 4) },
            }));
            await Assert.ThrowsAsync<ArgumentException>(() => c.SearchAsync(new float[8], 1)); // which vector?
            var text = await c.SearchAsync(CollectionTestData.VectorOf(17), 1, new CollectionSearchOptions { VectorName = "text" });
            Assert.Equal("k17", text[0].Record.Key);
            Assert.Equal(1f, text[0].Score, 3); // cosine similarity with itself
            var q = CollectionTestData.VectorOf(517, 4);
            var image = await c.SearchAsync(q, 3, new CollectionSearchOptions { VectorName = "image", IncludeVectors = true });
            var best = Enumerable.Range(0, 100).OrderByDescending(n => Engine.Distance.Distances.Dot(q, CollectionTestData.VectorOf(n + 500, 4))).First();
            Assert.Equal("k" + best, image[0].Record.Key);
            Assert.Equal(Engine.Distance.Distances.Dot(q, image[0].Record.Vectors["image"]), image[0].Score, 4);
            Assert.Equal(2, image[0].Record.Vectors.Count);
            c.VerifyConsistency();
        }
        using (var c = RecordCollection<string>.Open(dir.Path))
        {
            Assert.Equal(100, c.Count);
            Assert.Equal("k17", (await c.SearchAsync(CollectionTestData.VectorOf(17), 1, new CollectionSearchOptions { VectorName = "text" }))[0].Record.Key);
        }
    }

    [Fact]
    public async Task CancelledWrites_WriteNothing()
    {
        using var dir = new TempDir();
        using var c = Open<string>(dir.Path);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.UpsertAsync(CollectionTestData.Make("a", 1), cts.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.SearchAsync(new float[8], 1, null, cts.Token));
        Assert.Equal(0, c.Count);
        Assert.Null(await c.GetAsync("a"));
    }

    [Fact]
    public async Task AnUnrecoverableNewestCheckpoint_FallsBackToThePreviousOne_WithEveryRecord()
    {
        using var dir = new TempDir();
        using (var c = Open<string>(dir.Path))
        {
            await c.UpsertBatchAsync(Enumerable.Range(0, 20).Select(n => CollectionTestData.Make("k" + n, n)));
            await c.CheckpointAsync();
            await c.UpsertBatchAsync(Enumerable.Range(20, 20).Select(n => CollectionTestData.Make("k" + n, n)));
            await c.DeleteAsync("k3");
        } // Dispose: the newest checkpoint
        var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "manifest.json"))).RootElement;
        string newest = manifest.GetProperty("Token").GetString()!;
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, manifest.GetProperty("PreviousToken").ValueKind);
        foreach (var f in Directory.GetFiles(Path.Combine(dir.Path, "kv", "checkpoints"), "info.dat*", SearchOption.AllDirectories).Where(f => f.Contains(newest)))
            File.WriteAllBytes(f, []);
        using (var c = Open<string>(dir.Path))
        {
            Assert.True(c.Recovery.UsedPreviousCheckpoint);
            Assert.Equal(39, c.Count);
            Assert.Null(await c.GetAsync("k3"));
            Assert.Equal(35L, (await c.GetAsync("k35"))!.Data["n"]);
            c.VerifyConsistency();
        }
        using (var c = Open<string>(dir.Path)) // and the collection checkpointed cleanly again
        {
            Assert.False(c.Recovery.UsedPreviousCheckpoint);
            Assert.Equal(39, c.Count);
        }
    }

    [Fact]
    public async Task ARecordLargerThanAStorePage_IsRejectedByName()
    {
        using var dir = new TempDir();
        var vectors = Enumerable.Range(0, 17).Select(i => new VectorField("v" + i, 65536)).ToArray(); // 17 × 256 KiB > 4 MiB
        using var c = RecordCollection<int>.Open(dir.Path, new CollectionSchema(typeof(int), [], vectors));
        var r = new Record<int>(1);
        foreach (var v in vectors) r.Vectors[v.Name] = new float[65536];
        var e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(r));
        Assert.Contains("limit", e.Message);
        Assert.Contains("Record '1'", e.Message);
        Assert.Contains("vector 'v", e.Message);
        Assert.Equal(0, c.Count);
    }

    /// <summary>A 20 MiB string payload (the audit's case): refused before anything is written, naming the record's key,
    /// the limit and the field that makes it large; the rest of the batch is not written and the collection goes on.</summary>
    [Fact]
    public async Task ARecordOverTheStoreLimit_NamesItsKey_AndItsLargestField()
    {
        using var dir = new TempDir();
        using var c = Open<string>(dir.Path);
        var big = CollectionTestData.Make("big-one", 3);
        big.Data["body"] = new string('z', 20 << 20);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertBatchAsync([CollectionTestData.Make("small", 1), big]));
        Assert.Contains("Record 'big-one'", e.Message);
        Assert.Contains($"limit of {Engine.Faster.FasterKeyValueStore.MaxEntryBytes - 9} bytes", e.Message);
        Assert.Contains($"data field 'body' ({20 << 20} bytes)", e.Message);
        Assert.Equal("records", e.ParamName);
        Assert.Equal(0, c.Count);
        // Just under the limit is stored.
        big.Data["body"] = new string('z', 4_000_000);
        await c.UpsertAsync(big);
        Assert.Equal(4_000_000, ((string)(await c.GetAsync("big-one"))!.Data["body"]!).Length);
    }

    private static bool FileContains(string path, string text) => IndexOf(File.ReadAllBytes(path), Encoding.UTF8.GetBytes(text)) >= 0;

    private static int IndexOf(byte[] hay, byte[] needle) => hay.AsSpan().IndexOf(needle);
}
