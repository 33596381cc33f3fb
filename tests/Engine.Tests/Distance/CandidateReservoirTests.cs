using Engine.Distance;
using FsCheck.Xunit;

namespace Engine.Tests.Distance;

/// <summary>The reservoir keeps exactly the pairs a <see cref="TopKHeap"/> keeps, ties included.</summary>
public class CandidateReservoirTests
{
    // Offers keys from a small range (many ties) with distinct ids, the way a scanner does: skipped when above the
    // threshold, appended otherwise; the drained heap must equal a heap fed every offer.
    private static (float[] Keys, long[] Ids, float[] WantKeys, long[] WantIds) Run(byte[] raw, int capacity, bool avx512 = true, int keyRange = 23)
    {
        var reservoir = new CandidateReservoir(avx512);
        reservoir.Reset(capacity);
        var gotKeys = new float[capacity];
        var gotIds = new long[capacity];
        var wantKeys = new float[capacity];
        var wantIds = new long[capacity];
        var want = new TopKHeap(wantKeys, wantIds);
        for (int i = 0; i < raw.Length; i++)
        {
            float key = raw[i] % keyRange;
            long id = (long)(raw.Length - i) * 7919 % 100_003;
            want.Push(key, id);
            if (key > reservoir.Threshold) continue;
            reservoir.Add(key, id);
        }
        var got = new TopKHeap(gotKeys, gotIds);
        reservoir.Drain(ref got);
        got.SortAndPad(float.PositiveInfinity);
        want.SortAndPad(float.PositiveInfinity);
        return (gotKeys, gotIds, wantKeys, wantIds);
    }

    // Both partitions (AVX-512 where the machine has it, and the scalar one), with many ties (23 key values) and with
    // nearly distinct keys (256 values).
    [Property(MaxTest = 500, Replay = "(20261204,1)")]
    public bool DrainEqualsTheHeapForEveryCapacity(byte[] raw, byte cap, bool avx512, bool fewKeys)
    {
        if (raw is null) return true;
        var (keys, ids, wantKeys, wantIds) = Run(raw, cap % 40, avx512, fewKeys ? 23 : 256);
        return keys.AsSpan().SequenceEqual(wantKeys) && ids.AsSpan().SequenceEqual(wantIds);
    }

    [Theory]
    [InlineData(1, 10_000, true)]
    [InlineData(80, 50_000, true)]
    [InlineData(160, 3, true)]
    [InlineData(160, 100_000, true)]
    [InlineData(160, 100_000, false)]
    [InlineData(1000, 100_000, true)]
    [InlineData(7, 5_000, false)]
    public void LongStreamsWithCompactionsMatchTheHeap(int capacity, int n, bool avx512)
    {
        var rng = new Random(capacity * 31 + n);
        var raw = new byte[n];
        rng.NextBytes(raw);
        foreach (int range in new[] { 23, 256 })
        {
            var (keys, ids, wantKeys, wantIds) = Run(raw, capacity, avx512, range);
            Assert.Equal(wantKeys, keys);
            Assert.Equal(wantIds, ids);
        }
    }

    // Float keys as a scanner makes them (a bias plus a 16-bit sum times a step), offered in random order: the
    // drained pairs equal the heap's, and every cut keeps between capacity and 1.25 × capacity pairs.
    [Theory]
    [InlineData(10, 1)]
    [InlineData(160, 2)]
    [InlineData(640, 3)]
    public void QuantisedKeysMatchTheHeapAndCutsStayInTheirWindow(int capacity, int seed)
    {
        foreach (bool avx512 in new[] { true, false })
        {
            var rng = new Random(seed);
            var reservoir = new CandidateReservoir(avx512);
            reservoir.Reset(capacity);
            var wantKeys = new float[capacity];
            var wantIds = new long[capacity];
            var want = new TopKHeap(wantKeys, wantIds);
            for (int i = 0; i < 200_000; i++)
            {
                float key = -0.25f + rng.Next(4096) * 0.001f;
                long id = ((long)rng.Next(64) << 32) | (uint)i;
                want.Push(key, id);
                if (key > reservoir.Threshold) continue;
                if (reservoir.Add(key, id))
                    Assert.InRange(reservoir.Count, capacity, capacity + capacity / 4 + 1); // the cut, plus this offer
            }
            var gotKeys = new float[capacity];
            var gotIds = new long[capacity];
            var got = new TopKHeap(gotKeys, gotIds);
            reservoir.Drain(ref got);
            got.SortAndPad(float.PositiveInfinity);
            want.SortAndPad(float.PositiveInfinity);
            Assert.Equal(wantKeys, gotKeys);
            Assert.Equal(wantIds, gotIds);
        }
    }

    // Repeated (key, id) pairs (no scanner offers them, but the reservoir must not loop or lose any): the drained
    // pairs still equal the heap's.
    [Theory]
    [InlineData(16, true)]
    [InlineData(16, false)]
    [InlineData(100, true)]
    public void RepeatedPairsMatchTheHeap(int capacity, bool avx512)
    {
        var rng = new Random(capacity);
        var reservoir = new CandidateReservoir(avx512);
        reservoir.Reset(capacity);
        var wantKeys = new float[capacity];
        var wantIds = new long[capacity];
        var want = new TopKHeap(wantKeys, wantIds);
        for (int i = 0; i < 20_000; i++)
        {
            float key = rng.Next(3);
            long id = rng.Next(5);
            want.Push(key, id);
            if (key > reservoir.Threshold) continue;
            reservoir.Add(key, id);
        }
        var gotKeys = new float[capacity];
        var gotIds = new long[capacity];
        var got = new TopKHeap(gotKeys, gotIds);
        reservoir.Drain(ref got);
        got.SortAndPad(float.PositiveInfinity);
        want.SortAndPad(float.PositiveInfinity);
        Assert.Equal(wantKeys, gotKeys);
        Assert.Equal(wantIds, gotIds);
    }

    [Fact]
    public void ThresholdTightensOnlyWhenTheBufferIsCut()
    {
        var reservoir = new CandidateReservoir();
        reservoir.Reset(4);
        for (int i = 0; i < 8; i++) Assert.False(reservoir.Add(100 - i, i));
        Assert.Equal(float.PositiveInfinity, reservoir.Threshold);
        Assert.True(reservoir.Add(50, 8));     // the ninth offer cuts the buffer to the best 4 (plus at most one): 93..96(97)
        Assert.InRange(reservoir.Threshold, 96f, 97f);
        Assert.InRange(reservoir.Count, 5, 6);
        Assert.Throws<ArgumentOutOfRangeException>(() => reservoir.Reset(-1));
    }
}
