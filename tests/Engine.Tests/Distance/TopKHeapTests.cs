using Engine.Distance;

namespace Engine.Tests.Distance;

public class TopKHeapTests
{
    [Fact]
    public void Heap_keeps_the_k_smallest_like_a_full_sort()
    {
        var rng = new Random(11);
        for (int trial = 0; trial < 300; trial++)
        {
            int n = rng.Next(0, 200), k = rng.Next(1, 40);
            // Few distinct keys so ties (broken by id) are common.
            var keys = Enumerable.Range(0, n).Select(_ => (float)rng.Next(0, trial % 2 == 0 ? 10 : 1000)).ToArray();
            var ids = Enumerable.Range(0, n).Select(i => (long)((i * 7919L) % 100_003)).ToArray();
            var hk = new float[k];
            var hi = new long[k];
            var heap = new TopKHeap(hk, hi);
            for (int i = 0; i < n; i++) heap.Push(keys[i], ids[i]);
            Assert.Equal(Math.Min(n, k), heap.Count);
            int count = heap.SortAndPad(float.PositiveInfinity);
            var expected = keys.Zip(ids).OrderBy(p => p.First).ThenBy(p => p.Second).Take(k).ToArray();
            Assert.Equal(expected.Length, count);
            for (int j = 0; j < count; j++)
            {
                Assert.Equal(expected[j].First, hk[j]);
                Assert.Equal(expected[j].Second, hi[j]);
            }
            for (int j = count; j < k; j++)
            {
                Assert.Equal(float.PositiveInfinity, hk[j]);
                Assert.Equal(-1, hi[j]);
            }
        }
    }

    [Fact]
    public void Threshold_is_infinite_until_full_then_the_worst_key()
    {
        var keys = new float[3];
        var ids = new long[3];
        var heap = new TopKHeap(keys, ids);
        heap.Push(5, 1);
        heap.Push(1, 2);
        Assert.Equal(float.PositiveInfinity, heap.Threshold);
        heap.Push(3, 3);
        Assert.Equal(5, heap.Threshold);
        heap.Push(4, 4);
        Assert.Equal(4, heap.Threshold);
        heap.Push(9, 5);
        Assert.Equal(4, heap.Threshold);
    }

    [Fact]
    public void Resumed_heap_continues_where_it_stopped()
    {
        var rng = new Random(8);
        var keys = new float[10];
        var ids = new long[10];
        var all = Enumerable.Range(0, 100).Select(i => ((float)rng.NextDouble(), (long)i)).ToArray();
        var first = new TopKHeap(keys, ids);
        foreach (var (key, id) in all.Take(50)) first.Push(key, id);
        var second = new TopKHeap(keys, ids, first.Count);
        foreach (var (key, id) in all.Skip(50)) second.Push(key, id);
        second.SortAndPad(float.PositiveInfinity);
        Assert.Equal(all.OrderBy(p => p.Item1).Take(10).Select(p => p.Item2), ids);
    }

    [Fact]
    public void Bad_arguments_throw()
    {
        Assert.Throws<ArgumentException>(() => new TopKHeap(new float[2], new long[3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TopKHeap(new float[2], new long[2], 3));
    }
}
