using Engine.Distance;
using Engine.Index.Flat;
using Engine.Index.Spann;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

public class SpannIndexTests
{
    private const int D = 32;

    private static (SpannIndex, FlatIndex, float[]) Build(int n, Metric metric = Metric.L2, SpannOptions? o = null)
    {
        var data = SpannTestData.Clustered(n, D, seed: 11);
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        var spann = new SpannIndex(D, metric, o ?? new SpannOptions { PostingSize = 16, MaxPostingSize = 64 });
        spann.Train(data);
        spann.Add(data, ids);
        var flat = new FlatIndex(D, metric);
        flat.Add(data, ids);
        return (spann, flat, data);
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.InnerProduct)]
    public void Recall_AgainstFlat_AboveFloor(Metric metric)
    {
        var (spann, flat, _) = Build(4000, metric);
        using (spann) using (flat)
        {
            var queries = SpannTestData.Clustered(100, D, seed: 99);
            var stats = new SearchStats();
            double recall = SpannTestData.Recall(spann, flat, queries, 10, new SearchParameters { Stats = stats, Threads = 2 });
            Assert.True(recall >= (metric == Metric.InnerProduct ? 0.6 : 0.9), $"recall@10 {recall:F3} for {metric}");
            Assert.Equal(100, stats.Queries);
            Assert.True(stats.PostingsRead + stats.CacheHits <= 100L * spann.Options.Probes);
            Assert.True(spann.PostingCount > 4000 / 64);
        }
    }

    [Fact]
    public void Search_Results_AreUniqueSortedAndPadded()
    {
        var (spann, flat, data) = Build(300);
        using (spann) using (flat)
        {
            var dist = new float[400]; var lab = new long[400];
            spann.Search(data.AsSpan(0, D), 400, dist, lab);
            var real = lab.Where(l => l >= 0).ToArray();
            Assert.Equal(real.Length, real.Distinct().Count());
            Assert.Equal(0, lab[0]);
            for (int i = 1; i < real.Length; i++) Assert.True(dist[i] >= dist[i - 1]);
            Assert.Contains(-1L, lab);
        }
    }

    [Fact]
    public void Updates_InsertDeleteSplitMerge_KeepResultsRight()
    {
        var (spann, flat, _) = Build(2000);
        using (spann) using (flat)
        {
            spann.BackgroundMaintenance = false;
            int before = spann.PostingCount;
            var more = SpannTestData.Clustered(3000, D, seed: 12);
            var ids = Enumerable.Range(10_000, 3000).Select(i => (long)i).ToArray();
            spann.Add(more, ids);
            flat.Add(more, ids);
            Assert.True(spann.PendingMaintenance > 0);
            spann.WaitForMaintenance();
            Assert.True(spann.PostingCount > before, "oversize postings were split");
            var removed = Enumerable.Range(0, 2000).Where(i => i % 3 == 0).Select(i => (long)i).ToArray();
            Assert.Equal(removed.Length, spann.Remove(removed));
            Assert.Equal(0, spann.Remove(removed));
            flat.Remove(removed);
            spann.WaitForMaintenance();
            Assert.Equal(flat.Count, spann.Count);
            var queries = SpannTestData.Clustered(100, D, seed: 98);
            double recall = SpannTestData.Recall(spann, flat, queries, 10);
            Assert.True(recall >= 0.85, $"recall after updates {recall:F3}");
            var v = new float[D];
            Assert.False(spann.TryReconstruct(0, v));
            Assert.True(spann.TryReconstruct(10_005, v));
            Assert.Equal(more.AsSpan(5 * D, D).ToArray(), v);
            // Re-insert a deleted id with a new vector: the stale copies must never come back.
            spann.Add(more.AsSpan(0, D), [3]);
            Assert.True(spann.TryReconstruct(3, v));
            Assert.Equal(more.AsSpan(0, D).ToArray(), v);
            Assert.Throws<ArgumentException>(() => spann.Add(more.AsSpan(0, D), [3]));
        }
    }

    [Fact]
    public async Task SearchesContinue_WhileBackgroundMaintenanceRuns()
    {
        var (spann, flat, _) = Build(2000);
        using (spann) using (flat)
        {
            var more = SpannTestData.Clustered(2000, D, seed: 13);
            var queries = SpannTestData.Clustered(20, D, seed: 97);
            var dist = new float[200]; var lab = new long[200];
            using var cts = new CancellationTokenSource();
            var reader = Task.Run(() =>
            {
                int rounds = 0;
                while (!cts.IsCancelled() || rounds == 0)
                {
                    var dd = new float[200]; var ll = new long[200];
                    spann.Search(queries, 10, dd, ll, new SearchParameters { Threads = 1 });
                    Assert.Equal(ll.Length, ll.Count(l => l >= -1));
                    rounds++;
                }
                return rounds;
            });
            for (int b = 0; b < 4; b++)
                spann.Add(more.AsSpan(b * 500 * D, 500 * D), Enumerable.Range(20_000 + b * 500, 500).Select(i => (long)i).ToArray());
            spann.WaitForMaintenance();
            cts.Cancel();
            Assert.True(await reader > 0);
            Assert.Equal(4000, spann.Count);
        }
    }

    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public void Durable_ReplaysLog_AndCheckpoints(string kind)
    {
        using var dir = new TestDirectory();
        var log = TestLogs.Provider(kind);
        var data = SpannTestData.Clustered(1500, D, seed: 21);
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, new SpannOptions { PostingSize = 16, MaxPostingSize = 64 }, log))
        {
            idx.Train(data);
            idx.Add(data.AsSpan(0, 1000 * D), Enumerable.Range(0, 1000).Select(i => (long)i).ToArray());
            idx.Checkpoint();
            idx.Add(data.AsSpan(1000 * D), Enumerable.Range(1000, 500).Select(i => (long)i).ToArray());
            idx.Remove([1, 2, 1001]);
            // Dispose without a checkpoint: the last batch lives only in the log.
        }
        using (var idx = SpannIndex.Open(dir.Path))
        {
            Assert.Equal(kind, idx.LogKind); // the metadata names the log kind
            Assert.Equal(1497, idx.Count);
            var v = new float[D];
            Assert.True(idx.TryReconstruct(1200, v));
            Assert.Equal(data.AsSpan(1200 * D, D).ToArray(), v);
            Assert.False(idx.TryReconstruct(1001, v));
            idx.Remove(Enumerable.Range(0, 900).Select(i => (long)i).ToArray());
            idx.Save(dir.Path); // in place: checkpoint (compacts: most blocks are garbage now)
        }
        using (var idx = SpannIndex.Open(dir.Path))
        {
            Assert.Equal(599, idx.Count); // 1497 minus 0..899 (1 and 2 were already gone)
            Assert.Single(Directory.GetFiles(dir.Path, "postings-*.dat"));
            var dist = new float[10]; var lab = new long[10];
            idx.Search(data.AsSpan(1300 * D, D), 10, dist, lab);
            Assert.Equal(1300, lab[0]);
        }
    }

    [Fact]
    public void Reopening_WithoutCheckpoint_DoesNotGrowThePostingFile()
    {
        using var dir = new TestDirectory();
        var data = SpannTestData.Clustered(1200, D, seed: 23);
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, new SpannOptions { PostingSize = 16, MaxPostingSize = 64 }))
        {
            idx.Train(data);
            idx.Add(data.AsSpan(0, 1000 * D), Enumerable.Range(0, 1000).Select(i => (long)i).ToArray());
            idx.Checkpoint();
            idx.Add(data.AsSpan(1000 * D), Enumerable.Range(1000, 200).Select(i => (long)i).ToArray()); // log only
        }
        string file = Directory.GetFiles(dir.Path, "postings-*.dat").Single();
        var lengths = new List<long>();
        for (int session = 0; session < 3; session++)
        {
            using (var idx = SpannIndex.Open(dir.Path))
            {
                idx.WaitForMaintenance();
                Assert.Equal(1200, idx.Count);
                var v = new float[D];
                Assert.True(idx.TryReconstruct(1100, v));
                Assert.Equal(data.AsSpan(1100 * D, D).ToArray(), v);
            }
            lengths.Add(new FileInfo(file).Length);
        }
        // Each session replays the same log onto the same checkpoint: blocks a previous session appended are cut first.
        Assert.Equal(lengths[0], lengths[1]);
        Assert.Equal(lengths[0], lengths[2]);
    }

    [Fact]
    public void Maintain_ThenCheckpoint_LeavesNothingForOpenToRewrite()
    {
        using var dir = new TestDirectory();
        var data = SpannTestData.Clustered(20000, D, seed: 3, clusters: 100);
        long length;
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2))
        {
            idx.Train(data);
            idx.Add(data, Enumerable.Range(0, 20000).Select(i => (long)i).ToArray());
            idx.Maintain();
            Assert.Equal(0, idx.PendingMaintenance);
            idx.Checkpoint();
            length = idx.DiskBytes;
        }
        using (var idx = SpannIndex.Open(dir.Path))
        {
            idx.WaitForMaintenance();
            Assert.Equal(length, idx.DiskBytes); // a searcher that opens the index does not rewrite postings
        }
    }

    [Fact]
    public void InMemory_Save_ThenOpen_GivesSameResults()
    {
        using var dir = new TestDirectory();
        var (spann, flat, data) = Build(1500);
        using (spann) using (flat)
        {
            spann.Save(dir.Path);
            using var loaded = SpannIndex.Open(dir.Path);
            var queries = SpannTestData.Clustered(30, D, seed: 5);
            var d1 = new float[300]; var l1 = new long[300]; var d2 = new float[300]; var l2 = new long[300];
            spann.Search(queries, 10, d1, l1);
            loaded.Search(queries, 10, d2, l2);
            Assert.Equal(l1, l2);
            Assert.Equal(spann.Description, loaded.Description);
        }
    }

    [Fact]
    public void BadInput_GivesClearErrors()
    {
        using var idx = new SpannIndex(D);
        Assert.Throws<InvalidOperationException>(() => idx.Add(new float[D], [1]));
        idx.Train(SpannTestData.Clustered(200, D, 1));
        Assert.Throws<ArgumentException>(() => idx.Add(new float[D + 1], [1]));
        Assert.Throws<ArgumentException>(() => idx.Add(new float[2 * D], [1, 1]));
        var nan = new float[D]; nan[3] = float.NaN;
        Assert.Throws<ArgumentException>(() => idx.Add(nan, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => idx.Search(new float[D], 0, new float[1], new long[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpannIndex(D, Metric.L2, new SpannOptions { Replicas = 0 }));
    }

    [Fact]
    public void Spec_ParsesAndRoundTrips()
    {
        Assert.True(SpannSpec.TryParse("SPANN", out var o));
        Assert.Equal(new SpannOptions(), o);
        Assert.True(SpannSpec.TryParse("SPANN(postings=500,replicas=4,eps=0.5)", out o));
        Assert.Equal(500, o.PostingCount);
        Assert.Equal(4, o.Replicas);
        Assert.Equal("SPANN(postings=500,replicas=4,eps=0.5)", SpannSpec.Format(o));
        Assert.True(SpannSpec.TryParse(SpannSpec.Format(o), out var again));
        Assert.Equal(o, again);
        Assert.False(SpannSpec.TryParse("Flat", out _));
        Assert.Contains("unknown key 'foo'", Assert.Throws<ArgumentException>(() => SpannSpec.TryParse("SPANN(foo=1)", out _)).Message);
        Assert.Throws<ArgumentException>(() => SpannSpec.TryParse("SPANN(replicas=x)", out _));
        Assert.Throws<ArgumentException>(() => SpannSpec.TryParse("SPANN(replicas=0)", out _));
    }
    // Inner product over unit vectors (normalised embeddings) gets unit heads, ranked by angle: its recall matches the
    // cosine index's on the same data (plain means, ranked by inner product, favoured the tight clusters: recall@10
    // fell to 0.48 at 16 probes on GloVe-100), and the heads stay unit after reopening and after splits.
    [Fact]
    public void InnerProductOverUnitVectors_RecallMatchesCosine_AcrossReopenAndSplits()
    {
        const int n = 6000;
        var data = SpannTestData.Clustered(n, D, seed: 23);
        var rng = new Random(3);
        for (int i = 0; i < n; i++) // clusters of very different spreads, then onto the sphere
        {
            float spread = 0.2f + 3f * (i % 7) / 7f;
            for (int j = 0; j < D; j++) data[i * D + j] += (float)(rng.NextDouble() - 0.5) * spread;
        }
        for (int i = 0; i < n; i++)
        {
            var row = data.AsSpan(i * D, D);
            float norm = MathF.Sqrt(Distances.Dot(row, row));
            for (int j = 0; j < D; j++) row[j] /= norm;
        }
        var queries = data.AsSpan(0, 200 * D).ToArray();
        var ids = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        using var exact = new FlatIndex(D, Metric.InnerProduct);
        exact.Add(data, ids);
        var p = new SpannSearchParameters { Probes = 8, Threads = 1 };
        using var dir = new TestDirectory();
        double rIp;
        using (var ip = SpannIndex.Create(dir.Path, D, Metric.InnerProduct, new SpannOptions { PostingSize = 16, MaxPostingSize = 40 }))
        {
            ip.BackgroundMaintenance = false;
            ip.Train(data.AsSpan(0, 3000 * D));
            ip.Add(data, ids); // 6 000 rows into heads trained on 3 000: postings split
            ip.Maintain();
            rIp = SpannTestData.Recall(ip, exact, queries, 10, p);
            ip.Checkpoint();
        }
        using var cos = new SpannIndex(D, Metric.Cosine, new SpannOptions { PostingSize = 16, MaxPostingSize = 40 }) { BackgroundMaintenance = false };
        cos.Train(data.AsSpan(0, 3000 * D));
        cos.Add(data, ids);
        cos.Maintain();
        double rCos = SpannTestData.Recall(cos, exact, queries, 10, p);
        Assert.True(rIp >= rCos - 0.03, $"inner product recall {rIp:F3} vs cosine {rCos:F3}");
        Assert.True(rIp >= 0.85, $"inner product recall {rIp:F3}");
        using var reopened = SpannIndex.Open(dir.Path);
        Assert.Equal(rIp, SpannTestData.Recall(reopened, exact, queries, 10, p), 6);
        var head = new float[D];
        for (int h = 0; h < reopened.PostingCount; h++)
            if (reopened.TryHeadVector(h, head)) Assert.Equal(1f, MathF.Sqrt(Distances.Dot(head, head)), 3);
    }
}

internal static class CancellationExtensions
{
    public static bool IsCancelled(this CancellationTokenSource cts) => cts.IsCancellationRequested;

}
