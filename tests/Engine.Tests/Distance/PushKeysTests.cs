using Engine.Distance;

namespace Engine.Tests.Distance;

/// <summary><see cref="Distances.PushKeys"/> (vectorised threshold test before a top-k heap) against a plain scalar
/// loop in double, at every length 0..256, both key forms, with and without a skipped id and a bound, into empty and
/// full heaps.</summary>
public class PushKeysTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Push_keys_equals_a_scalar_heap_fill(bool similarity)
    {
        var rng = new Random(11);
        for (int n = 0; n <= 256; n++)
        {
            foreach (int prefill in new[] { 0, 7 })
            foreach (float bound in new[] { float.PositiveInfinity, 0.5f })
            {
                const int k = 7;
                var dots = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
                var norms = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 3)).ToArray();
                var ids = Enumerable.Range(0, n).Select(i => 1000L + i).ToArray();
                float qNorm = (float)rng.NextDouble() * 3;
                long skip = n > 3 ? ids[n / 2] : long.MinValue;
                var seed = Enumerable.Range(0, prefill).Select(i => ((float)(rng.NextDouble() * 2 - 1), 5000L + i)).ToArray();

                var keys = new float[k];
                var got = new long[k];
                var heap = new TopKHeap(keys, got);
                foreach (var (key, id) in seed) heap.Push(key, id);
                Distances.PushKeys(ref heap, dots, qNorm, norms, ids, similarity, skip, bound);
                int count = heap.SortAndPad(float.PositiveInfinity);

                var all = seed.Select(s => ((double)s.Item1, s.Item2)).ToList();
                for (int t = 0; t < n; t++)
                {
                    if (ids[t] == skip) continue;
                    double key = similarity ? -dots[t] : Math.Max(0, qNorm + norms[t] - 2.0 * dots[t]);
                    if (key > bound) continue; // above the caller's bound: never offered
                    all.Add((key, ids[t]));
                }
                var expect = all.OrderBy(e => e.Item1).ThenBy(e => e.Item2).Take(k).ToList();
                Assert.Equal(expect.Count, count);
                for (int j = 0; j < count; j++)
                {
                    Assert.Equal(expect[j].Item2, got[j]);
                    Assert.Equal(expect[j].Item1, keys[j], 1e-5);
                }
            }
        }
        Assert.Throws<ArgumentException>(() =>
        {
            var h = new TopKHeap(new float[2], new long[2]);
            Distances.PushKeys(ref h, new float[3], 0, new float[2], new long[3], false);
        });
    }
}
