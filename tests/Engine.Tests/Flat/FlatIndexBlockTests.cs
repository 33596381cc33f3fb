using Engine.Index.Flat;
using Engine.Tests.Support;

namespace Engine.Tests.Flat;

/// <summary>
/// A Flat index keeps its rows in blocks (so it can hold more than one .NET array's 2³¹ − 1 floats). With blocks of a
/// few rows every scan tile, add, removal, reconstruction and save crosses block boundaries; the results must be the
/// single-block index's for the same operations.
/// </summary>
public class FlatIndexBlockTests
{
    private const int D = 13;

    // 7·d floats per block: 4 rows per block (the largest power of two that fits).
    private static FlatIndex Small(Metric metric) => new(D, metric, 7L * D);

    // The same operations on both: adds in chunks that straddle block ends, removals of the first, last and middle
    // rows (the last row moves into the hole, across blocks), then more adds.
    private static void Apply(FlatIndex index)
    {
        var x = TestData.Gaussian(140, D, seed: 11);
        int at = 0;
        foreach (int chunk in (int[])[5, 3, 11, 1, 40, 20])
        {
            index.Add(x.AsSpan(at * D, chunk * D), TestData.Sequential(chunk, start: 500 + at));
            at += chunk;
        }
        Assert.Equal(6, index.Remove([500, 579, 530, 531, 12345, 545, 560]));
        index.Add(x.AsSpan(at * D, 60 * D), TestData.Sequential(60, start: 500 + at));
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void Blocked_index_answers_like_one_block(Metric metric)
    {
        using var small = Small(metric);
        using var one = new FlatIndex(D, metric);
        Apply(small);
        Apply(one);
        Assert.Equal(one.Count, small.Count);
        var q = TestData.Gaussian(70, D, seed: 12);
        const int k = 9;
        foreach (int nq in (int[])[1, 3, 70])
            foreach (int threads in (int[])[1, 2])
            {
                var (d1, l1) = (new float[nq * k], new long[nq * k]);
                var (d2, l2) = (new float[nq * k], new long[nq * k]);
                var p = new SearchParameters { Threads = threads };
                one.Search(q.AsSpan(0, nq * D), k, d1, l1, p);
                small.Search(q.AsSpan(0, nq * D), k, d2, l2, p);
                Assert.Equal(l1, l2);
                for (int i = 0; i < d1.Length; i++) Assert.Equal(d1[i], d2[i], 1e-4f * MathF.Max(1f, MathF.Abs(d1[i])));
            }
        float radius = metric == Metric.L2 ? 18f : 0.3f;
        var r1 = one.RangeSearch(q, radius);
        var r2 = small.RangeSearch(q, radius);
        Assert.True(r1.TotalCount > 0);
        Assert.Equal(r1.Offsets, r2.Offsets);
        Assert.Equal(r1.Ids.Order(), r2.Ids.Order());
        var a = new float[D];
        var b = new float[D];
        for (long id = 495; id < 710; id++)
        {
            Assert.Equal(one.TryReconstruct(id, a), small.TryReconstruct(id, b));
            Assert.Equal(a, b);
        }
        Assert.Equal(one.ContiguousVectors().ToArray(), small.ContiguousVectors().ToArray());
        Assert.True(small.Verify().IsClean, string.Join("; ", small.Verify().Problems));
    }

    [Fact]
    public void Blocked_index_saves_the_single_block_file_and_loads_it_back()
    {
        using var dir = new TempDir();
        using var small = Small(Metric.L2);
        using var one = new FlatIndex(D, Metric.L2);
        Apply(small);
        Apply(one);
        small.Save(dir.File("small.idx"));
        one.Save(dir.File("one.idx"));
        Assert.Equal(File.ReadAllBytes(dir.File("one.idx")), File.ReadAllBytes(dir.File("small.idx")));
        using var back = FlatIndex.Load(dir.File("small.idx"));
        var q = TestData.Gaussian(5, D, seed: 13);
        var (d1, l1) = (new float[50], new long[50]);
        var (d2, l2) = (new float[50], new long[50]);
        one.Search(q, 10, d1, l1);
        back.Search(q, 10, d2, l2);
        Assert.Equal(l1, l2);
        Assert.Equal(d1, d2);
    }

    [Fact]
    public void Contiguous_view_is_refused_only_when_rows_span_blocks()
    {
        using var small = Small(Metric.L2);
        small.Add(TestData.Gaussian(4, D, seed: 14), TestData.Sequential(4, start: 0));
        Assert.Equal(4 * D, small.Vectors.Length);
        small.Add(TestData.Gaussian(1, D, seed: 15), [99]);
        var e = Assert.Throws<NotSupportedException>(() => small.Vectors.Length);
        Assert.Contains("blocks", e.Message);
        Assert.Equal(5 * D, small.ContiguousVectors().Length);
    }
}
