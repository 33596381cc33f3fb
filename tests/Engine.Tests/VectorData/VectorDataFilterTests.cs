using System.Linq.Expressions;
using Engine.Tests.Support;
using Engine.VectorData;
using Microsoft.Extensions.VectorData;
using static Engine.Tests.VectorData.VectorDataTestData;

namespace Engine.Tests.VectorData;

/// <summary>LINQ filters: each operator against the same predicate run over the records in memory.</summary>
public class VectorDataFilterTests
{
    private const int Count = 120;

    private static async Task<(EngineVectorStore Store, VectorStoreCollection<string, VdDoc> Docs, List<VdDoc> All)> OpenAsync(TempDir dir)
    {
        var store = new EngineVectorStore(dir.Path);
        var docs = store.GetCollection<string, VdDoc>("docs");
        await docs.EnsureCollectionExistsAsync();
        var all = Enumerable.Range(0, Count).Select(Doc).ToList();
        await docs.UpsertAsync(all);
        return (store, docs, all);
    }

    public static TheoryData<string> FilterNames() => [.. Filters.Keys];

    private static readonly string Blog = "blog";
    private static readonly int[] Years = [2003, 2007, 2011];

    private static readonly Dictionary<string, Expression<Func<VdDoc, bool>>> Filters = new()
    {
        ["string =="] = d => d.Category == "news",
        ["string == captured"] = d => d.Category == Blog,
        ["string !="] = d => d.Category != "news",
        ["== null"] = d => d.Category == null,
        ["!= null"] = d => d.Score != null,
        ["int =="] = d => d.Year == 2010,
        ["int !="] = d => d.Year != 2010,
        ["int <"] = d => d.Year < 2005,
        ["int <="] = d => d.Year <= 2005,
        ["int >"] = d => d.Year > 2020,
        ["int >="] = d => d.Year >= 2020,
        ["constant on the left"] = d => 2020 < d.Year,
        ["long range"] = d => d.Views >= 30_000 && d.Views < 60_000,
        ["double >"] = d => d.Rating > 2.5,
        ["float <="] = d => d.Weight <= 1.5f,
        ["nullable int >"] = d => d.Score > 50,
        ["bool"] = d => d.Active,
        ["!bool"] = d => !d.Active,
        ["bool == false"] = d => d.Active == false,
        ["DateTimeOffset <"] = d => d.Published < new DateTimeOffset(2020, 2, 15, 0, 0, 0, TimeSpan.Zero),
        ["DateTime >="] = d => d.Created >= new DateTime(2021, 1, 3, 0, 0, 0, DateTimeKind.Utc),
        // values computed without the record are evaluated once (the DateTime.UtcNow.AddDays(-7) idiom)
        ["computed DateTimeOffset"] = d => d.Published < new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero).AddDays(45),
        ["computed from a captured list"] = d => d.Year > Years.Max(),
        ["computed on the left"] = d => DateTime.SpecifyKind(new DateTime(2021, 1, 3), DateTimeKind.Utc).AddHours(12) <= d.Created,
        ["tags Contains"] = d => d.Tags.Contains("t1"),
        ["List tags Contains"] = d => d.Labels.Contains("l0"),
        ["IN list"] = d => new[] { "news", "wiki" }.Contains(d.Category),
        ["IN captured ints"] = d => Years.Contains(d.Year),
        ["tags Any IN"] = d => d.Tags.Any(t => new[] { "t0", "t2" }.Contains(t)),
        ["&&"] = d => d.Active && d.Year > 2010,
        ["||"] = d => d.Category == "paper" || d.Rating >= 4,
        ["!(a || b)"] = d => !(d.Category == "paper" || d.Tags.Contains("t2")),
        ["nested"] = d => (d.Year < 2005 || d.Year > 2020) && !(d.Active && d.Category == "news") || d.Score == 7,
        ["true"] = d => true,
    };

    [Theory]
    [MemberData(nameof(FilterNames))]
    public async Task GetByFilter_MatchesTheSamePredicateInMemory(string name)
    {
        using var dir = new TempDir();
        var (store, docs, all) = await OpenAsync(dir);
        using var _ = store;
        var filter = Filters[name];
        var expected = all.Where(filter.Compile()).Select(d => d.Id).ToList();
        Assert.NotEmpty(expected); // every filter selects something...
        if (name != "true") Assert.NotEqual(all.Count, expected.Count); // ...and not everything
        var got = await docs.GetAsync(filter, 1000).ToListAsync();
        Assert.Equal(expected, got.Select(d => d.Id)); // insertion order
        // Search under the filter: only allowed records, the exact nearest ones among them.
        var query = VectorOf(999);
        var hits = await docs.SearchAsync(query, 5, new VectorSearchOptions<VdDoc> { Filter = filter }).ToListAsync();
        var bruteForce = all.Where(filter.Compile()).OrderBy(d => L2Squared(query, d.Embedding.ToArray())).Take(5).Select(d => d.Id);
        Assert.Equal(bruteForce, hits.Select(h => h.Record.Id));
    }

    [Fact]
    public async Task GetByFilter_TopSkipAndOrderBy()
    {
        using var dir = new TempDir();
        var (store, docs, all) = await OpenAsync(dir);
        using var _ = store;
        var page = await docs.GetAsync(d => d.Active, 7, new FilteredRecordRetrievalOptions<VdDoc> { Skip = 3 }).ToListAsync();
        Assert.Equal(all.Where(d => d.Active).Skip(3).Take(7).Select(d => d.Id), page.Select(d => d.Id));
        var ordered = await docs.GetAsync(d => d.Year > 2005, 10, new FilteredRecordRetrievalOptions<VdDoc>
        {
            Skip = 2,
            OrderBy = o => o.Descending(d => d.Rating).Ascending(d => d.Id),
        }).ToListAsync();
        var expected = all.Where(d => d.Year > 2005).OrderByDescending(d => d.Rating).ThenBy(d => d.Id, StringComparer.Ordinal).Skip(2).Take(10);
        Assert.Equal(expected.Select(d => d.Id), ordered.Select(d => d.Id));
    }

    [Fact]
    public async Task UnsupportedConstructs_AreNotSupportedExceptions_NamingThem()
    {
        using var dir = new TempDir();
        var (store, docs, _) = await OpenAsync(dir);
        using var __ = store;
        async Task<string> Fails(Expression<Func<VdDoc, bool>> filter)
        {
            var e = await Assert.ThrowsAsync<NotSupportedException>(() => docs.GetAsync(filter, 10).ToListAsync());
            var s = await Assert.ThrowsAsync<NotSupportedException>(() => docs.SearchAsync(VectorOf(1), 3, new VectorSearchOptions<VdDoc> { Filter = filter }).ToListAsync());
            Assert.Equal(e.Message, s.Message);
            return e.Message;
        }
        Assert.Contains("StartsWith", await Fails(d => d.Category!.StartsWith("n")));
        Assert.Contains("d.Year + 1", await Fails(d => d.Year + 1 > 2010));
        Assert.Contains("key property 'Id'", await Fails(d => d.Id == "doc-1"));
        var twoProperties = await Fails(d => d.Year == d.Views);
        Assert.Contains("d.Year", twoProperties);
        Assert.Contains("d.Views", twoProperties);
        Assert.Contains("ToUpper", await Fails(d => d.Category!.ToUpper() == "NEWS"));
        Assert.Contains("Contains", await Fails(d => d.Category!.Contains("ew")));
    }

    [Fact]
    public async Task FiltersOnFieldsThatCannotBeFiltered_AreArgumentExceptions()
    {
        using var dir = new TempDir();
        var (store, docs, _) = await OpenAsync(dir);
        using var __ = store;
        var notIndexed = await Assert.ThrowsAsync<ArgumentException>(() => docs.GetAsync(d => d.Body == "body 1", 10).ToListAsync());
        Assert.Contains("Body", notIndexed.Message);
        Assert.Contains("not indexed", notIndexed.Message);
        var tags = new[] { "t1" };
        var tagsEqual = await Assert.ThrowsAsync<ArgumentException>(() => docs.GetAsync(d => d.Active && d.Tags == tags, 10).ToListAsync());
        Assert.Contains("Tags", tagsEqual.Message);
    }

    [Fact]
    public async Task DynamicCollection_FiltersThroughTheIndexer()
    {
        using var dir = new TempDir();
        using var store = new EngineVectorStore(dir.Path);
        var definition = new VectorStoreCollectionDefinition
        {
            Properties =
            [
                new VectorStoreKeyProperty("Key", typeof(long)),
                new VectorStoreDataProperty("Year", typeof(int)) { IsIndexed = true },
                new VectorStoreDataProperty("Tags", typeof(string[])) { IsIndexed = true },
                new VectorStoreVectorProperty("Vector", typeof(ReadOnlyMemory<float>), Dim) { DistanceFunction = DistanceFunction.EuclideanDistance },
            ],
        };
        var c = store.GetDynamicCollection("dyn", definition);
        await c.EnsureCollectionExistsAsync();
        await c.UpsertAsync(Enumerable.Range(0, 30).Select(n => new Dictionary<string, object?>
        {
            ["Key"] = (long)n,
            ["Year"] = 2000 + n,
            ["Tags"] = n % 2 == 0 ? new[] { "even" } : new[] { "odd" },
            ["Vector"] = new ReadOnlyMemory<float>(VectorOf(n)),
        }));
        var got = await c.GetAsync(r => (int)r["Year"]! >= 2025 && ((string[])r["Tags"]!).Contains("odd"), 100).ToListAsync();
        Assert.Equal([25L, 27L, 29L], got.Select(r => (long)r["Key"]!));
        Assert.Equal(2025, got[0]["Year"]);
        var one = (await c.GetAsync(4L, new RecordRetrievalOptions { IncludeVectors = true }))!;
        Assert.Equal(VectorOf(4), ((ReadOnlyMemory<float>)one["Vector"]!).ToArray());
        var hit = (await c.SearchAsync(VectorOf(6), 1, new VectorSearchOptions<Dictionary<string, object?>> { Filter = r => (int)r["Year"]! > 2005 }).ToListAsync()).Single();
        Assert.Equal(6L, hit.Record["Key"]);
        Assert.Equal(0, hit.Score!.Value, 3);
        await Assert.ThrowsAsync<ArgumentException>(() => c.GetAsync("not a long"));
        // A value of another type than declared, or an entry the definition lacks, names the record and the entry;
        // nothing of the batch is written.
        Dictionary<string, object?> Row(long key) => new()
        {
            ["Key"] = key,
            ["Year"] = 1999,
            ["Tags"] = new[] { "listed" },
            ["Vector"] = new ReadOnlyMemory<float>(VectorOf(100)),
        };
        var wrongType = Row(100);
        wrongType["Year"] = "1999";
        var e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync([Row(101), wrongType]));
        Assert.Contains("Record '100'", e.Message);
        Assert.Contains("'Year'", e.Message);
        Assert.Contains("String", e.Message);
        var wrongTags = Row(104);
        wrongTags["Tags"] = new List<string> { "listed" };
        e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(wrongTags));
        Assert.Contains("Record '104'", e.Message);
        var unknown = Row(102);
        unknown["Nope"] = 1;
        e = await Assert.ThrowsAsync<ArgumentException>(() => c.UpsertAsync(unknown));
        Assert.Contains("'Nope' is not a property of collection 'dyn'", e.Message);
        Assert.Null(await c.GetAsync(101L));
        await c.UpsertAsync(Row(103));
        Assert.Equal(["listed"], (string[])(await c.GetAsync(103L))!["Tags"]!);
    }
}
