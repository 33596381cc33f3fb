using System.Numerics;
using Engine.Distance;

namespace Engine.Tests.Binary;

public class BinaryKernelTests
{
    public static IEnumerable<object[]> Levels() => Simd.UpTo(Simd.BestPopCount).Select(l => new object[] { l });

    private static ulong[] RandomWords(Random rng, int n)
    {
        var a = new ulong[n];
        for (int i = 0; i < n; i++) a[i] = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 33);
        return a;
    }

    [Theory]
    [MemberData(nameof(Levels))]
    internal void Popcounts_match_the_scalar_reference_for_every_length(SimdLevel level)
    {
        var rng = new Random(31);
        for (int n = 0; n <= 256; n++)
        {
            var a = RandomWords(rng, n);
            var b = RandomWords(rng, n);
            long pa = 0, px = 0, pand = 0;
            for (int i = 0; i < n; i++)
            {
                pa += BitOperations.PopCount(a[i]);
                px += BitOperations.PopCount(a[i] ^ b[i]);
                pand += BitOperations.PopCount(a[i] & b[i]);
            }
            Assert.Equal(pa, Distances.PopCountAt<FirstOp>(a, a, level));
            Assert.Equal(px, Distances.PopCountAt<XorOp>(a, b, level));
            Assert.Equal(pand, Distances.PopCountAt<AndOp>(a, b, level));
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    internal void Popcounts_of_all_ones_and_unaligned_slices_are_exact(SimdLevel level)
    {
        var ones = Enumerable.Repeat(ulong.MaxValue, 300).ToArray();
        Assert.Equal(300L * 64, Distances.PopCountAt<FirstOp>(ones, ones, level)); // every byte 8: the lane sums must not wrap
        var rng = new Random(2);
        var a = RandomWords(rng, 300);
        var b = RandomWords(rng, 300);
        for (int start = 1; start < 9; start++)
        {
            long expected = 0;
            for (int i = start; i < 300; i++) expected += BitOperations.PopCount(a[i] ^ b[i]);
            Assert.Equal(expected, Distances.PopCountAt<XorOp>(a.AsSpan(start), b.AsSpan(start), level));
        }
    }

    [Fact]
    public void Public_entry_points_use_the_best_level_and_reject_ragged_spans()
    {
        var rng = new Random(5);
        var a = RandomWords(rng, 77);
        var b = RandomWords(rng, 77);
        Assert.Equal(Distances.PopCountAt<XorOp>(a, b, SimdLevel.Scalar), Distances.PopCountXor(a, b));
        Assert.Equal(Distances.PopCountAt<AndOp>(a, b, SimdLevel.Scalar), Distances.PopCountAnd(a, b));
        Assert.Equal(Distances.PopCountAt<FirstOp>(a, a, SimdLevel.Scalar), Distances.PopCount(a));
        Assert.Throws<ArgumentException>(() => Distances.PopCountXor(new ulong[3], new ulong[4]));
        Assert.False(string.IsNullOrEmpty(Distances.PopCountKernel));
    }
}
