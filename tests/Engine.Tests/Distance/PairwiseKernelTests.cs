using Engine.Distance;

namespace Engine.Tests.Distance;

public class PairwiseKernelTests
{
    public static IEnumerable<object[]> Levels() => KernelReference.FloatLevels();

    [Theory]
    [MemberData(nameof(Levels))]
    internal void SquaredL2_and_dot_match_double_reference_for_every_length(SimdLevel level)
    {
        var rng = new Random(1234);
        for (int n = 0; n <= 256; n++)
        {
            var x = KernelReference.RandomFloats(rng, n, 3f);
            var y = KernelReference.RandomFloats(rng, n, 3f);
            var (l2, l2m) = KernelReference.SquaredL2(x, y);
            KernelReference.Close(l2, l2m, Distances.SquaredL2At(x, y, level), n, $"L2 n={n} {level}");
            var (dot, dotm) = KernelReference.Dot(x, y);
            KernelReference.Close(dot, dotm, Distances.DotAt(x, y, level), n, $"Dot n={n} {level}");
            var (nx, nxm) = KernelReference.Dot(x, x);
            KernelReference.Close(nx, nxm, Distances.SquaredNormAt(x, level), n, $"Norm n={n} {level}");
        }
    }

    [Theory]
    [MemberData(nameof(Levels))]
    internal void Cosine_matches_reference_and_is_zero_for_zero_vectors(SimdLevel level)
    {
        var rng = new Random(99);
        for (int n = 1; n <= 130; n++)
        {
            var x = KernelReference.RandomFloats(rng, n);
            var y = KernelReference.RandomFloats(rng, n);
            double dot = KernelReference.Dot(x, y).Value;
            double expected = dot / Math.Sqrt(KernelReference.Dot(x, x).Value * KernelReference.Dot(y, y).Value);
            Assert.InRange(Distances.CosineAt(x, y, level), expected - 1e-5, expected + 1e-5);
            Assert.Equal(1f, Distances.CosineAt(x, x, level), 5);
            Assert.Equal(0f, Distances.CosineAt(x, new float[n], level));
        }
    }

    [Fact]
    public void Public_entry_points_agree_with_the_best_level()
    {
        var rng = new Random(5);
        var x = KernelReference.RandomFloats(rng, 777);
        var y = KernelReference.RandomFloats(rng, 777);
        Assert.Equal(Distances.SquaredL2At(x, y, Simd.Best), Distances.SquaredL2(x, y));
        Assert.Equal(Distances.DotAt(x, y, Simd.Best), Distances.Dot(x, y));
        Assert.Equal(Distances.SquaredNormAt(x, Simd.Best), Distances.SquaredNorm(x));
        Assert.Equal(Distances.CosineAt(x, y, Simd.Best), Distances.Cosine(x, y));
    }

    [Fact]
    public void Cosine_of_huge_vectors_does_not_overflow()
    {
        var x = new float[] { 1e19f, 1e19f }; // norm² 2e38 fits, norm²·norm² would not
        Assert.Equal(1f, Distances.Cosine(x, x), 5);
    }

    [Fact]
    public void Mismatched_lengths_throw()
    {
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2(new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => Distances.Dot(new float[3], new float[2]));
        Assert.Throws<ArgumentException>(() => Distances.Cosine(new float[1], new float[2]));
    }
}
