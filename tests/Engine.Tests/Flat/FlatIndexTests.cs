using Engine.Index;
using Engine.Index.Flat;
using Engine.Tests.Support;

namespace Engine.Tests.Flat;

public class FlatIndexTests
{
    [Theory]
    [InlineData(Metric.L2, 1, 1)]
    [InlineData(Metric.L2, 3, 2)]
    [InlineData(Metric.L2, 100, 2)]
    [InlineData(Metric.InnerProduct, 5, 2)]
    [InlineData(Metric.InnerProduct, 70, 1)]
    [InlineData(Metric.Cosine, 2, 2)]
    [InlineData(Metric.Cosine, 64, 2)]
    public void Search_matches_double_brute_force(Metric metric, int nq, int threads)
    {
        const int n = 3000, d = 37, k = 10;
        var x = TestData.Gaussian(n, d, seed: 1);
        var ids = TestData.Sequential(n, start: 1000);
        var q = TestData.Gaussian(nq, d, seed: 2);
        using var index = new FlatIndex(d, metric);
        index.Add(x, ids);
        var dist = new float[nq * k];
        var lab = new long[nq * k];
        index.Search(q, k, dist, lab, new SearchParameters { Threads = threads });
        int agree = 0;
        for (int i = 0; i < nq; i++)
        {
            var expect = TestData.BruteForce(x, ids, d, q.AsSpan(i * d, d).ToArray(), k, metric);
            agree += expect.Intersect(lab.Skip(i * k).Take(k)).Count();
            for (int j = 1; j < k; j++)
            {
                if (metric == Metric.L2) Assert.True(dist[i * k + j] >= dist[i * k + j - 1]);
                else Assert.True(dist[i * k + j] <= dist[i * k + j - 1]);
            }
        }
        // float vs double may swap near-ties only
        Assert.True(agree >= nq * k * 0.99, $"agreement {agree}/{nq * k}");
    }

    [Fact]
    public void Distances_are_metric_values()
    {
        using var index = new FlatIndex(2, Metric.L2);
        index.Add([0, 0, 3, 4], [7, 8]);
        var dist = new float[2];
        var lab = new long[2];
        index.Search([0, 0], 2, dist, lab);
        Assert.Equal([7L, 8L], lab);
        Assert.Equal(0f, dist[0]);
        Assert.Equal(25f, dist[1], 4);

        using var ip = new FlatIndex(2, Metric.InnerProduct);
        ip.Add([1, 0, 3, 4], [1, 2]);
        ip.Search([1, 1], 2, dist, lab);
        Assert.Equal([2L, 1L], lab);
        Assert.Equal(7f, dist[0], 4);
        Assert.Equal(1f, dist[1], 4);
    }

    [Fact]
    public void Results_are_padded_when_fewer_than_k()
    {
        using var index = new FlatIndex(4, Metric.InnerProduct);
        index.Add(TestData.Gaussian(3, 4, 5), [10, 11, 12]);
        var dist = new float[2 * 5];
        var lab = new long[2 * 5];
        index.Search(TestData.Gaussian(2, 4, 6), 5, dist, lab);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(3, lab.Skip(i * 5).Take(5).Count(l => l >= 0));
            Assert.Equal(-1, lab[i * 5 + 3]);
            Assert.Equal(float.NegativeInfinity, dist[i * 5 + 4]);
        }
    }

    [Fact]
    public void Empty_index_returns_padding()
    {
        using var index = new FlatIndex(3);
        var dist = new float[4];
        var lab = new long[4];
        index.Search(new float[3], 4, dist, lab);
        Assert.All(lab, l => Assert.Equal(-1, l));
        Assert.All(dist, v => Assert.Equal(float.PositiveInfinity, v));
    }

    [Fact]
    public void Remove_and_reconstruct()
    {
        const int d = 8;
        var x = TestData.Gaussian(100, d, 3);
        using var index = new FlatIndex(d);
        index.Add(x, TestData.Sequential(100));
        Assert.Equal(2, index.Remove([5, 50, 12345]));
        Assert.Equal(98, index.Count);
        Assert.False(index.TryReconstruct(5, new float[d]));
        var v = new float[d];
        Assert.True(index.TryReconstruct(99, v));
        Assert.Equal(x.AsSpan(99 * d, d).ToArray(), v);
        var dist = new float[1];
        var lab = new long[1];
        index.Search(x.AsSpan(50 * d, d), 1, dist, lab);
        Assert.NotEqual(50, lab[0]);
        index.Search(x.AsSpan(99 * d, d), 1, dist, lab);
        Assert.Equal(99, lab[0]);
    }

    [Fact]
    public void Filter_restricts_results()
    {
        const int d = 16;
        var x = TestData.Gaussian(2000, d, 4);
        using var index = new FlatIndex(d);
        index.Add(x, TestData.Sequential(2000));
        var allowed = Enumerable.Range(0, 2000).Where(i => i % 50 == 0).Select(i => (long)i).ToArray();
        var dist = new float[3 * 10];
        var lab = new long[3 * 10];
        index.Search(TestData.Gaussian(3, d, 9), 10, dist, lab, new SearchParameters { Filter = new IdAllowListFilter(allowed), Threads = 2 });
        Assert.All(lab, l => Assert.True(l % 50 == 0));
    }

    [Fact]
    public void Bad_input_is_rejected_with_clear_messages()
    {
        using var index = new FlatIndex(4);
        var ex = Assert.Throws<ArgumentException>(() => index.Add(new float[6], [1]));
        Assert.Contains("Dimension mismatch", ex.Message);
        var nan = new float[8];
        nan[5] = float.NaN;
        ex = Assert.Throws<ArgumentException>(() => index.Add(nan, [1, 2]));
        Assert.Contains("row 1, column 1", ex.Message);
        Assert.Equal(0, index.Count); // nothing stored by a rejected call
        index.Add(new float[4], [1]);
        ex = Assert.Throws<ArgumentException>(() => index.Add(new float[8], [2, 1]));
        Assert.Contains("already present", ex.Message);
        Assert.Equal(1, index.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(new float[4], 0, new float[1], new long[1]));
        Assert.Throws<ArgumentException>(() => index.Search(new float[4], 2, new float[1], new long[2]));
        Assert.Throws<ArgumentException>(() => index.Add(new float[4], [-3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FlatIndex(0));
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.Cosine)]
    public void Save_load_round_trip(Metric metric)
    {
        using var dir = new TempDir();
        const int d = 12;
        var x = TestData.Gaussian(500, d, 7);
        using var index = new FlatIndex(d, metric);
        index.Add(x, TestData.Sequential(500, 100));
        index.Remove([150]);
        string path = dir.File("flat.idx");
        index.Save(path);
        using var loaded = (FlatIndex)IndexFactory.Load(path);
        Assert.Equal(index.Count, loaded.Count);
        Assert.Equal(metric, loaded.Metric);
        var q = TestData.Gaussian(5, d, 8);
        var (d1, l1) = (new float[50], new long[50]);
        var (d2, l2) = (new float[50], new long[50]);
        index.Search(q, 10, d1, l1);
        loaded.Search(q, 10, d2, l2);
        Assert.Equal(l1, l2);
        Assert.Equal(d1, d2);
        Assert.Single(Directory.GetFiles(dir.Path)); // no temp file left behind
    }

    [Fact]
    public void Truncated_or_flipped_file_fails_with_offset()
    {
        using var dir = new TempDir();
        using var index = new FlatIndex(8);
        index.Add(TestData.Gaussian(50, 8, 1), TestData.Sequential(50));
        string path = dir.File("flat.idx");
        index.Save(path);
        var bytes = File.ReadAllBytes(path);

        File.WriteAllBytes(dir.File("trunc.idx"), bytes[..(bytes.Length / 2)]);
        var ex = Assert.Throws<CorruptIndexException>(() => FlatIndex.Load(dir.File("trunc.idx")));
        Assert.Contains("trunc.idx", ex.Message);

        var rng = new Random(11);
        for (int trial = 0; trial < 200; trial++)
        {
            var copy = (byte[])bytes.Clone();
            int pos = rng.Next(copy.Length);
            copy[pos] ^= (byte)(1 << rng.Next(8));
            string p = dir.File($"flip{trial}.idx");
            File.WriteAllBytes(p, copy);
            var e = Assert.ThrowsAny<IOException>(() => FlatIndex.Load(p));
            Assert.True(e is CorruptIndexException or IndexFormatException, e.GetType().Name + ": " + e.Message);
        }
    }

    [Fact]
    public void Failed_save_keeps_existing_file()
    {
        using var dir = new TempDir();
        using var index = new FlatIndex(4);
        index.Add(new float[] { 1, 2, 3, 4 }, [1]);
        string path = dir.File("a.idx");
        index.Save(path);
        var before = File.ReadAllBytes(path);
        Assert.Throws<DirectoryNotFoundException>(() => index.Save(dir.File("missing/b.idx")));
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public async Task Concurrent_searches_during_adds_see_consistent_results()
    {
        const int d = 16;
        using var index = new FlatIndex(d);
        var x = TestData.Gaussian(4000, d, 21);
        index.Add(x.AsSpan(0, 1000 * d), TestData.Sequential(1000));
        using var cts = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var dist = new float[10];
            var lab = new long[10];
            int iterations = 0;
            while (!cts.IsCancellationRequested || iterations < 5)
            {
                int row = (iterations * 37 + r) % 1000;
                index.Search(x.AsSpan(row * d, d), 10, dist, lab, new SearchParameters { Threads = 1 });
                Assert.Equal(row, lab[0]);
                Assert.Equal(lab.Length, lab.Distinct().Count());
                iterations++;
            }
        })).ToArray();
        for (int b = 1; b < 4; b++) index.Add(x.AsSpan(b * 1000 * d, 1000 * d), TestData.Sequential(1000, b * 1000));
        cts.Cancel();
        await Task.WhenAll(readers);
        Assert.Equal(4000, index.Count);
    }
}
