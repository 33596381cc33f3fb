using Engine.Distance;
using FsCheck.Xunit;

namespace Engine.Tests.Distance;

/// <summary>The reservoir keeps exactly the pairs a <see cref="TopKHeap"/> keeps, ties included.</summary>
public class CandidateReservoirTests
{
    // Offers keys from a small range (many ties) with distinct ids, the way a scanner does: skipped when above the
    // threshold, appended otherwise; the drained heap must equal a heap fed every offer.
    private static (float[] Keys, long[] Ids, float[] WantKeys, long[] WantIds) Run(byte[] raw, int capacity)
    {
        var reservoir = new CandidateReservoir();
        reservoir.Reset(capacity);
        var gotKeys = new float[capacity];
        var gotIds = new long[capacity];
        var wantKeys = new float[capacity];
        var wantIds = new long[capacity];
        var want = new TopKHeap(wantKeys, wantIds);
        for (int i = 0; i < raw.Length; i++)
        {
            float key = raw[i] % 23;
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

    [Property(MaxTest = 500, Replay = "(20261204,1)")]
    public bool DrainEqualsTheHeapForEveryCapacity(byte[] raw, byte cap)
    {
        if (raw is null) return true;
        var (keys, ids, wantKeys, wantIds) = Run(raw, cap % 40);
        return keys.AsSpan().SequenceEqual(wantKeys) && ids.AsSpan().SequenceEqual(wantIds);
    }

    [Theory]
    [InlineData(1, 10_000)]
    [InlineData(80, 50_000)]
    [InlineData(160, 3)]
    public void LongStreamsWithCompactionsMatchTheHeap(int capacity, int n)
    {
        var rng = new Random(capacity * 31 + n);
        var raw = new byte[n];
        rng.NextBytes(raw);
        var (keys, ids, wantKeys, wantIds) = Run(raw, capacity);
        Assert.Equal(wantKeys, keys);
        Assert.Equal(wantIds, ids);
    }

    [Fact]
    public void ThresholdTightensOnlyWhenTheBufferIsCut()
    {
        var reservoir = new CandidateReservoir();
        reservoir.Reset(4);
        for (int i = 0; i < 8; i++) Assert.False(reservoir.Add(100 - i, i));
        Assert.Equal(float.PositiveInfinity, reservoir.Threshold);
        Assert.True(reservoir.Add(50, 8));     // the ninth offer cuts the buffer to the best 4: 93..96 → worst kept 96
        Assert.Equal(96f, reservoir.Threshold);
        Assert.Equal(5, reservoir.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => reservoir.Reset(-1));
    }
}
