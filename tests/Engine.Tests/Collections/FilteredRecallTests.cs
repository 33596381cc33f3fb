using Engine.Collections;
using Engine.Data;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

public class FilteredRecallTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int N = 6000, D = 32, Queries = 40, K = 10;

    /// <summary>
    /// Recall@10 under a 1 % filter (a rare tag) and a 10 % filter (a string value), against exact search over the
    /// allowed records, must stay at least 0.95 × the same spec's unfiltered recall: the 1 % filter is answered by the
    /// exact fallback over the allowed ids, the 10 % one by the index scan with the id pre-filter.
    /// </summary>
    [Theory]
    [InlineData("HNSW16", 2000)]
    [InlineData("IVF64,Flat", 2000)]
    [InlineData("SPANN(postings=64)", 2000)]
    public async Task FilteredRecall_DoesNotCollapse(string spec, int trainingSize)
    {
        using var dir = new TempDir();
        var data = SyntheticData.Clustered(N, D, clusters: 40, seed: 11);
        var queries = SyntheticData.ClusteredQueries(Queries, D, clusters: 40, seed: 11);
        var schema = new CollectionSchema(typeof(long),
            [new DataField("title", FieldType.String, Indexed: true), new DataField("tags", FieldType.Tags, Indexed: true)],
            [new VectorField("v", D, Metric.L2, spec, trainingSize)]);
        using var c = RecordCollection<long>.Open(dir.Path, schema);
        await c.UpsertBatchAsync(Enumerable.Range(0, N).Select(n => new Record<long>(n)
        {
            Data = { ["title"] = "t" + (n % 10), ["tags"] = new[] { n % 100 == 0 ? "rare" : "common" } },
            Vectors = { ["v"] = data.AsSpan(n * D, D).ToArray() },
        }));
        SearchParameters? p = spec switch
        {
            _ when spec.StartsWith("IVF", StringComparison.Ordinal) => new Engine.Index.Ivf.IvfSearchParameters { Probes = 6 },
            _ when spec.StartsWith("HNSW", StringComparison.Ordinal) => new Engine.Index.Hnsw.HnswSearchParameters { Ef = 32 },
            _ => new Engine.Index.Spann.SpannSearchParameters { Probes = 8 },
        };
        double unfiltered = await Recall(c, data, queries, null, _ => true, p);
        double rare = await Recall(c, data, queries, Filter.ContainsTag("tags", "rare"), n => n % 100 == 0, p);
        double tenth = await Recall(c, data, queries, Filter.Equal("title", "t3"), n => n % 10 == 3, p);
        output.WriteLine($"{spec}: recall@10 unfiltered {unfiltered:F3}, 1% filter {rare:F3}, 10% filter {tenth:F3}");
        Assert.True(unfiltered > 0.5, $"{spec}: unfiltered recall {unfiltered:F3} is too low for the comparison to mean anything");
        Assert.True(rare >= 0.95 * unfiltered, $"{spec}: recall under a 1% filter {rare:F3} < 0.95 × unfiltered {unfiltered:F3}");
        Assert.True(tenth >= 0.95 * unfiltered, $"{spec}: recall under a 10% filter {tenth:F3} < 0.95 × unfiltered {unfiltered:F3}");
    }

    private static async Task<double> Recall(RecordCollection<long> c, float[] data, float[] queries, Filter? filter, Func<long, bool> allowed, SearchParameters? p)
    {
        int found = 0, total = 0;
        for (int q = 0; q < Queries; q++)
        {
            var query = queries.AsMemory(q * D, D);
            var truth = Enumerable.Range(0, N).Where(n => allowed(n))
                .Select(n => (N: (long)n, Dist: Engine.Distance.Distances.SquaredL2(query.Span, data.AsSpan(n * D, D))))
                .OrderBy(x => x.Dist).ThenBy(x => x.N).Take(K).Select(x => x.N).ToHashSet();
            var hits = await c.SearchAsync(query, K, new CollectionSearchOptions { Filter = filter, Parameters = p });
            Assert.All(hits, h => Assert.True(allowed(h.Record.Key), $"record {h.Record.Key} does not pass the filter"));
            found += hits.Count(h => truth.Contains(h.Record.Key));
            total += truth.Count;
        }
        return found / (double)total;
    }
}
