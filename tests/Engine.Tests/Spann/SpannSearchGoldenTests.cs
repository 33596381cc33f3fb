using System.Text;
using Engine.Index.Spann;
using Engine.Storage.Wal;
using Engine.Tests.Storage;
using Engine.Tests.Support;

namespace Engine.Tests.Spann;

/// <summary>
/// Results of seeded SPANN searches (raw, SQ8, PQ, PQ×4, RaBitQ{1,4}, RaBitQfs{1,4} and BIN postings; L2, inner product
/// and cosine; deleted and re-inserted ids, so stale copies and replicas are in the postings; an id filter; a narrower
/// re-rank; in-memory postings read through the cache and durable ones read in place from the mapping) recorded with
/// the code whose postings were scanned by SPANN's own loops (Spann/Golden/spann-search-golden.txt). The search on the
/// inverted-list backing with the IVF list scanners must return the same ids and bit-identical distances.
/// </summary>
/// <remarks>
/// As <c>IvfGoldenTests</c>: bit identity is asserted when this machine's SIMD key equals the recorded one, else ids
/// must agree on ≥ 95 % and distances to 1e-3. ENGINE_GOLDEN_RECORD=spann rewrites the fixture (only with the code it
/// is meant to pin). Recorded 2027-01 on an AVX2 machine from <c>main</c> at 6583340 (before SPANN searched through
/// <c>DeviceBlockInvertedList</c>).
/// </remarks>
public class SpannSearchGoldenTests
{
    private const int N = 1500, D = 32, NQ = 20, K = 10;
    private static readonly float[] Data = SpannTestData.Clustered(N, D, seed: 61);
    private static readonly float[] Queries = SpannTestData.Clustered(NQ, D, seed: 62);

    private static string Fixture => Path.Combine(GoldenFixture.Folder("Spann"), "spann-search-golden.txt");

    /// <summary>(name, codec, metric, durable) of every recorded index.</summary>
    private static IEnumerable<(string Name, string? Codec, Metric Metric, bool Durable)> Indexes()
    {
        foreach (var codec in new[] { null, "SQ8", "PQ8", "PQ8x4", "RaBitQ", "RaBitQ4", "RaBitQfs1", "RaBitQfs4", "BIN2" })
            yield return ($"{codec ?? "raw"}-L2", codec, Metric.L2, false);
        foreach (var codec in new[] { null, "PQ8", "RaBitQ4", "RaBitQfs4" })
            yield return ($"{codec ?? "raw"}-InnerProduct", codec, Metric.InnerProduct, false);
        foreach (var codec in new[] { null, "RaBitQfs1" })
            yield return ($"{codec ?? "raw"}-Cosine", codec, Metric.Cosine, false);
        foreach (var codec in new[] { null, "RaBitQ4", "RaBitQfs4" })
            yield return ($"{codec ?? "raw"}-L2-durable", codec, Metric.L2, true);
    }

    // Trained on the data, the first 1 400 rows added, ids ≡ 0 (mod 7) removed, ids ≡ 0 (mod 11) removed and added
    // again with another row (a second version: their old copies stay in postings until these are rewritten), the
    // last 100 rows added, maintained. Durable indexes are checkpointed, closed and opened again (postings mapped).
    private static SpannIndex Build(string? codec, Metric metric, string? directory)
    {
        var options = new SpannOptions { PostingSize = 16, Codec = codec, Seed = 5 };
        var index = directory is null ? new SpannIndex(D, metric, options) : SpannIndex.Create(directory, D, metric, options, FileWriteAheadLogProvider.Instance);
        index.BackgroundMaintenance = false;
        index.Train(Data);
        index.Add(Data.AsSpan(0, 1400 * D), Ids(0, 1400));
        index.Remove(Ids(0, 1400).Where(i => i % 7 == 0).ToArray());
        var again = Ids(0, 1400).Where(i => i % 11 == 0 && i % 7 != 0).ToArray();
        index.Remove(again);
        index.Add(again.SelectMany(i => Data.AsSpan((int)((i * 13 + 5) % N) * D, D).ToArray()).ToArray(), again);
        index.Add(Data.AsSpan(1400 * D), Ids(1400, N - 1400));
        index.Maintain();
        if (directory is null) return index;
        index.Checkpoint();
        index.Dispose();
        var opened = SpannIndex.Open(directory);
        opened.BackgroundMaintenance = false;
        return opened;
    }

    private static long[] Ids(int start, int count) => Enumerable.Range(start, count).Select(i => (long)i).ToArray();

    private static string Record(SpannIndex index, SpannSearchParameters p)
    {
        var dist = new float[NQ * K];
        var lab = new long[NQ * K];
        index.Search(Queries, K, dist, lab, p);
        return new StringBuilder().AppendJoin(',', lab).Append('|').Append(GoldenFixture.Hex(dist)).ToString();
    }

    private static IEnumerable<(string Name, string Value)> Compute()
    {
        var even = new IdAllowListFilter(Ids(0, N).Where(i => i % 2 == 0));
        foreach (var (name, codec, metric, durable) in Indexes())
        {
            using var dir = durable ? new TestDirectory() : null;
            using var index = Build(codec, metric, dir is null ? null : Path.Combine(dir.Path, "idx"));
            yield return (name, Record(index, new SpannSearchParameters { Probes = 8, Threads = 1 }));
            yield return (name + "-filter", Record(index, new SpannSearchParameters { Probes = 8, Threads = 1, Filter = even }));
            yield return (name + "-narrow", Record(index, codec is null
                ? new SpannSearchParameters { Probes = 3, PruneFactor = 0.5f, Threads = 2 }
                : new SpannSearchParameters { Probes = 12, Rerank = 2, Threads = 2 }));
        }
    }

    [Fact]
    public void SearchResults_MatchTheOnesRecordedBeforeTheListBacking()
    {
        if (Environment.GetEnvironmentVariable("ENGINE_GOLDEN_RECORD") == "spann") GoldenFixture.Write(Fixture, Compute());
        var got = Compute().ToList();
        foreach (var (name, value) in got)
            Assert.True(value.Split('|')[0].Split(',').Count(l => l != "-1") >= NQ * K / 2, $"configuration {name} finds too little to pin anything");
        GoldenFixture.AssertMatches(Fixture, got);
    }
}
