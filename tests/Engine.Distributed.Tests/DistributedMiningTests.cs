using Engine.Distributed;
using Engine.Index.Hnsw;
using Engine.Mining;

namespace Engine.Distributed.Tests;

/// <summary>The hard-negative miner, unchanged, against the router: the same rows as against one local index.</summary>
public class DistributedMiningTests
{
    private const int D = 16;

    [Theory]
    [InlineData(false)]   // anchors given as vectors
    [InlineData(true)]    // anchors are corpus ids (reconstructed through the router)
    public async Task MinerOverTheRouter_GivesTheRowsOfASingleIndex(bool corpusAnchors)
    {
        await using var c = await DistributedTestCluster.StartAsync(2, nameof(MinerOverTheRouter_GivesTheRowsOfASingleIndex) + corpusAnchors);
        var corpus = TestData.Gaussian(1500, D, seed: 51);
        var ids = TestData.Ids(1500, offset: 10);
        var layout = new ShardLayout { Name = "mine", Dimension = D, Metric = Metric.Cosine, Spec = "Flat", Shards = 3, Replicas = 2 };
        var coll = await DistributedCollection.OpenAsync(c.Client, layout);
        await coll.UpsertAsync(corpus, ids);

        // 40 anchors: noisy copies of corpus rows, each with that row as its positive; a near
        // duplicate of the positive is planted under another id so the guard has something to remove.
        var rng = new Random(52);
        int anchors = 40;
        var anchorVectors = new float[anchors * D];
        var positives = new long[anchors][];
        var anchorIds = new long[anchors];
        for (int a = 0; a < anchors; a++)
        {
            int row = rng.Next(1400);
            for (int j = 0; j < D; j++) anchorVectors[a * D + j] = corpus[row * D + j] + 0.3f * (float)(rng.NextDouble() - 0.5);
            positives[a] = [ids[row]];
            anchorIds[a] = ids[row + 50];
        }
        var dup = new float[D];
        corpus.AsSpan(0, D).CopyTo(dup);
        dup[0] += 1e-4f;
        await coll.UpsertAsync(dup, [5_000_000]);
        var all = corpus.Concat(dup).ToArray();
        var allIds = ids.Append(5_000_000).ToArray();
        using var single = TestData.Reference(all, allIds, D, Metric.Cosine);
        using var remote = new DistributedIndex(coll);
        Assert.Equal(single.Count, remote.Count);

        if (corpusAnchors)
        {
            // A corpus anchor's positive is its nearest other corpus item.
            var rows = anchorIds.SelectMany(id => corpus.AsSpan((int)(id - 10) * D, D).ToArray()).ToArray();
            var (_, nn) = TestData.Search(single, rows, 2);
            for (int a = 0; a < anchors; a++) positives[a] = [nn[2 * a] == anchorIds[a] ? nn[2 * a + 1] : nn[2 * a]];
        }
        var input = corpusAnchors ? MiningInput.FromCorpusIds(anchorIds, positives) : MiningInput.FromVectors(anchorVectors, D, positives);
        var options = new MiningOptions
        {
            NumNegatives = 5, RangeMin = 1, RangeMax = 40, DuplicateThreshold = 0.999f, RelativeMargin = 0.05f,
            Shortfall = ShortfallPolicy.KeepShort,
        };
        var expected = new HardNegativeMiner(single, options).MineAll(input, out var expectedReport);
        var got = new HardNegativeMiner(remote, options).MineAll(input, out var gotReport);
        Assert.Equal(expected.Count, got.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Anchor, got[i].Anchor);
            Assert.Equal(expected[i].Negatives, got[i].Negatives);
            Assert.Equal(expected[i].PositiveScores, got[i].PositiveScores);
            for (int j = 0; j < expected[i].Scores.Length; j++) Assert.Equal(expected[i].Scores[j], got[i].Scores[j], 1e-5f);
        }
        Assert.Equal(expectedReport.SkippedPositives, gotReport.SkippedPositives);
        Assert.Equal(expectedReport.SkippedMargin, gotReport.SkippedMargin);
        Assert.Equal(expectedReport.SkippedNearDuplicates, gotReport.SkippedNearDuplicates);
        Assert.True(expected.Sum(r => r.Negatives.Length) > anchors, "the miner found too few negatives for the comparison to mean anything");

        Assert.Throws<NotSupportedException>(() => remote.Add(corpus[..D], [1]));
        Assert.Throws<ArgumentException>(() => remote.Search(corpus[..D], 3, new float[3], new long[3], new HnswSearchParameters { Ef = 10 }));
    }
}
