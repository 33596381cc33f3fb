using Engine.Distance;
using FsCheck.Xunit;

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

    // PushAll (16 keys compared with the threshold at a time) keeps exactly what pushing one by one keeps: the same
    // entries in the same heap slots, for any keys (ties, NaN-free), first id and capacity, pre-filled or not.
    [Property(MaxTest = 500, Replay = "(20261205,1)")]
    public bool PushAll_equals_pushing_one_by_one(byte[] raw, byte cap, short firstId, bool fewKeys, bool prefill)
    {
        if (raw is null) return true;
        int k = cap % 48;
        var keys = raw.Select((b, i) => fewKeys ? (float)(b % 7) : b + (raw.Length - i) * 0.25f).ToArray();
        var ak = new float[k]; var ai = new long[k];
        var bk = new float[k]; var bi = new long[k];
        var a = new TopKHeap(ak, ai);
        var b = new TopKHeap(bk, bi);
        if (prefill)
            for (int i = 0; i < k / 2; i++) { a.Push(100f - i, -i - 1); b.Push(100f - i, -i - 1); }
        a.PushAll(keys, firstId);
        for (int j = 0; j < keys.Length; j++) b.Push(keys[j], firstId + j);
        return a.Count == b.Count && ak.AsSpan().SequenceEqual(bk) && ai.AsSpan().SequenceEqual(bi);
    }

    // PushAllSampled (a cut estimated from a strided sample, then only the keys under it pushed) keeps the same
    // entries as pushing every key: after sorting, the same keys and ids, for any keys (ties, sorted runs that put the
    // smallest keys between the sample's rows, a cut that lets fewer than k through), sizes and capacities.
    [Property(MaxTest = 300, Replay = "(20261205,3)")]
    public bool PushAllSampled_keeps_what_pushing_every_key_keeps(int seed, ushort size, byte cap, byte shape, short firstId)
    {
        var rng = new Random(seed);
        int n = size % 3000, k = 1 + cap % 64;
        var keys = new float[n];
        int stride = Math.Max(1, n / 128); // the rows the cut is estimated from
        for (int j = 0; j < n; j++)
            keys[j] = (shape % 5) switch
            {
                0 => (float)rng.NextDouble(),
                1 => rng.Next(5),                        // heavy ties
                2 => j % stride == 0 ? -j : j,           // the sampled rows are the best: too few pass the cut, fall back
                3 => j % stride == 0 ? 1e6f : j,         // the sampled rows are the worst: every key passes
                _ => (n - j) * 0.5f,                     // descending: the smallest keys come last
            };
        var ak = new float[k]; var ai = new long[k];
        var bk = new float[k]; var bi = new long[k];
        var a = new TopKHeap(ak, ai);
        var b = new TopKHeap(bk, bi);
        a.PushAllSampled(keys, firstId, new float[n], new long[n]);
        for (int j = 0; j < n; j++) b.Push(keys[j], firstId + j);
        int ca = a.SortAndPad(float.PositiveInfinity), cb = b.SortAndPad(float.PositiveInfinity);
        return ca == cb && ak.AsSpan().SequenceEqual(bk) && ai.AsSpan().SequenceEqual(bi);
    }

    // Below 512 keys (an IVF's coarse probes over a few hundred lists) PushAllSampled cuts at the k-th smallest of
    // each lane's ⌈k / 16⌉ smallest keys: the same entries as pushing every key, also when the best keys crowd into
    // one lane (the lane's minima then hold few of them), with ties, a tail past the last 16 keys, and descending keys.
    [Property(MaxTest = 400, Replay = "(20261206,7)")]
    public bool PushAllSampled_below_512_keys_keeps_what_pushing_every_key_keeps(int seed, ushort size, byte cap, byte shape)
    {
        var rng = new Random(seed);
        int n = 16 + size % 496, k = 1 + cap % 64;
        var keys = new float[n];
        for (int j = 0; j < n; j++)
            keys[j] = (shape % 5) switch
            {
                0 => (float)rng.NextDouble(),
                1 => rng.Next(4),                                          // heavy ties
                2 => j % 16 == 5 ? j * 1e-3f : 1 + (float)rng.NextDouble(), // the best keys all in lane 5
                3 => j >= (n & ~15) ? -1 - j : j,                          // the best keys in the tail past the last full 16
                _ => (n - j) * 0.25f,                                      // descending
            };
        var ak = new float[k]; var ai = new long[k];
        var bk = new float[k]; var bi = new long[k];
        var a = new TopKHeap(ak, ai);
        var b = new TopKHeap(bk, bi);
        a.PushAllSampled(keys, 7, new float[n], new long[n]);
        for (int j = 0; j < n; j++) b.Push(keys[j], 7 + j);
        int ca = a.SortAndPad(float.PositiveInfinity), cb = b.SortAndPad(float.PositiveInfinity);
        return ca == cb && ak.AsSpan().SequenceEqual(bk) && ai.AsSpan().SequenceEqual(bi);
    }

    // SmallestSorted (the k smallest chosen by sorting the packed (key, index) pairs under a sampled cut, or by the heap
    // where that does not pay) writes what a heap over the same spans holds after pushing every key and SortAndPad: the
    // same keys, ids and padding, in the same order, for any keys (ties, −0 against +0, negative keys, a cut that lets
    // fewer than k through, every key passing), sizes and k (0, small, above half the keys, above the key count).
    [Property(MaxTest = 400, Replay = "(20261206,11)")]
    public bool SmallestSorted_writes_what_the_heap_writes(int seed, ushort size, ushort cap, byte shape, short firstId)
    {
        var rng = new Random(seed);
        int n = size % 3000;
        int k = (cap % 4) switch { 0 => cap % 40, 1 => cap % 300, 2 => n / 2 + cap % 8, _ => n + cap % 6 };
        var keys = new float[n];
        int stride = Math.Max(1, n / 128);
        for (int j = 0; j < n; j++)
            keys[j] = (shape % 6) switch
            {
                0 => (float)(rng.NextDouble() * 2 - 1),
                1 => rng.Next(5) - 2,                                // heavy ties, negatives
                2 => j % stride == 0 ? -j : j,                       // the sampled rows are the best: too few pass the cut
                3 => j % stride == 0 ? 1e6f : j,                     // the sampled rows are the worst: every key passes
                4 => rng.Next(3) switch { 0 => -0f, 1 => 0f, _ => 1 }, // −0 and +0 tie as floats, by id
                _ => (n - j) * 0.5f,                                 // descending
            };
        var ak = new float[k]; var ai = new long[k];
        var bk = new float[k]; var bi = new long[k];
        TopKHeap.SmallestSorted(keys, firstId, ak, ai, float.PositiveInfinity, new float[n], new long[n]);
        var b = new TopKHeap(bk, bi);
        for (int j = 0; j < n; j++) b.Push(keys[j], firstId + j);
        b.SortAndPad(float.PositiveInfinity);
        return ak.Select(BitConverter.SingleToInt32Bits).SequenceEqual(bk.Select(BitConverter.SingleToInt32Bits)) && ai.AsSpan().SequenceEqual(bi);
    }

    [Fact]
    public void SquaredL2FromDots_is_the_scalar_formula_bit_for_bit_at_every_length()
    {
        var rng = new Random(5);
        for (int n = 0; n <= 256; n++)
        {
            var dots = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 20 - 10)).ToArray();
            var norms = Enumerable.Range(0, n + 3).Select(_ => (float)(rng.NextDouble() * 10)).ToArray();
            float qn = (float)(rng.NextDouble() * 10);
            var want = dots.Select((d, j) => MathF.Max(0, qn + norms[j] - 2 * d)).ToArray();
            var got = (float[])dots.Clone();
            Distances.SquaredL2FromDots(got, qn, norms);
            Assert.Equal(want.Select(BitConverter.SingleToInt32Bits), got.Select(BitConverter.SingleToInt32Bits));
            // and against a double reference, to the float rounding of its two additions
            for (int j = 0; j < n; j++)
            {
                double r = Math.Max(0, (double)qn + norms[j] - 2.0 * dots[j]);
                Assert.True(Math.Abs(got[j] - r) <= 4e-6 * (Math.Abs(qn) + norms[j] + 2 * Math.Abs(dots[j])), $"n {n} j {j}: {got[j]} vs {r}");
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
