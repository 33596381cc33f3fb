// An independent client: written only against Microsoft.Extensions.VectorData's abstractions, plus the one line that
// picks the provider (new EngineVectorStore(dir)). Exits 1 with a message on the first wrong answer.
using Microsoft.Extensions.VectorData;

string dir = Path.Combine(Path.GetTempPath(), "engine-consumer-" + Guid.NewGuid().ToString("N"));
try
{
    const int n = 200;
    var rng = new Random(42);
    var vectors = Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, Doc.Dim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();

    using (VectorStore store = new Engine.VectorData.EngineVectorStore(dir))
    {
        VectorStoreCollection<string, Doc> docs = store.GetCollection<string, Doc>("docs");
        await docs.EnsureCollectionExistsAsync();
        await docs.UpsertAsync(Enumerable.Range(0, n).Select(i => new Doc
        {
            Id = "doc-" + i,
            Year = 2000 + i % 25,
            Tags = i % 2 == 0 ? ["even"] : ["odd"],
            Text = "text " + i,
            Embedding = vectors[i],
        }));

        var top = await ToList(docs.SearchAsync(vectors[17], 3));
        Check(top.Count == 3 && top[0].Record.Id == "doc-17", "nearest neighbour of doc-17's vector is doc-17");
        Check(Math.Abs(top[0].Score!.Value - 1) < 1e-4 && top[1].Score < top[0].Score, "cosine similarity scores, best first");

        var filtered = await ToList(docs.SearchAsync(vectors[17], 10, new VectorSearchOptions<Doc> { Filter = d => d.Year >= 2020 && d.Tags.Contains("even") }));
        Check(filtered.Count == 10 && filtered.All(h => h.Record.Year >= 2020 && h.Record.Tags.Contains("even")), "filtered search returns only matching records");

        var got = await docs.GetAsync("doc-5");
        Check(got is { Year: 2005, Text: "text 5" }, "get by key");
        await docs.DeleteAsync("doc-5");
        Check(await docs.GetAsync("doc-5") is null, "delete");
        var names = new List<string>();
        await foreach (var name in store.ListCollectionNamesAsync()) names.Add(name);
        Check(names.SequenceEqual(["docs"]), "list collection names");
    }

    using (VectorStore store = new Engine.VectorData.EngineVectorStore(dir))
    {
        var docs = store.GetCollection<string, Doc>("docs");
        Check(await docs.CollectionExistsAsync(), "the collection survives a reopen");
        Check(await docs.GetAsync("doc-5") is null && (await docs.GetAsync("doc-6"))?.Text == "text 6", "records survive a reopen");
        var again = await ToList(docs.SearchAsync(vectors[99], 1));
        Check(again.Single().Record.Id == "doc-99", "search after a reopen");
        await docs.EnsureCollectionDeletedAsync();
        Check(!await docs.CollectionExistsAsync(), "delete the collection");
    }
    Console.WriteLine("package consumer: all checks passed");
    return 0;
}
catch (CheckFailed e)
{
    Console.Error.WriteLine("package consumer: FAILED: " + e.Message);
    return 1;
}
finally
{
    try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
}

static void Check(bool ok, string what)
{
    if (!ok) throw new CheckFailed(what);
}

static async Task<List<T>> ToList<T>(IAsyncEnumerable<T> items)
{
    var list = new List<T>();
    await foreach (var x in items) list.Add(x);
    return list;
}

sealed class CheckFailed(string message) : Exception(message);

public sealed class Doc
{
    public const int Dim = 16;

    [VectorStoreKey] public string Id { get; set; } = "";
    [VectorStoreData(IsIndexed = true)] public int Year { get; set; }
    [VectorStoreData(IsIndexed = true)] public string[] Tags { get; set; } = [];
    [VectorStoreData] public string? Text { get; set; }
    [VectorStoreVector(Dim, DistanceFunction = DistanceFunction.CosineSimilarity, IndexKind = IndexKind.Hnsw)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}
