using Engine.Distance;

namespace Engine.Tests.Distance;

public class QuantizedKernelTests
{
    public static IEnumerable<object[]> FloatLevels() => KernelReference.FloatLevels();

    public static IEnumerable<object[]> Int8Levels() => KernelReference.Int8Levels();

    [Theory]
    [MemberData(nameof(FloatLevels))]
    internal void Half_kernels_equal_the_float_kernel_on_widened_values(SimdLevel level)
    {
        var rng = new Random(77);
        for (int n = 0; n <= 256; n++)
        {
            var q = KernelReference.RandomFloats(rng, n, 4f);
            var h = new Half[n];
            var widened = new float[n];
            for (int i = 0; i < n; i++) { h[i] = (Half)((rng.NextDouble() * 2 - 1) * 4); widened[i] = (float)h[i]; }
            // One conversion chunk covers n ≤ 256, so the result is bit-identical to the float kernel.
            Assert.Equal(Distances.SquaredL2At(q, widened, level), Distances.SquaredL2At(q, h, level));
            Assert.Equal(Distances.DotAt(q, widened, level), Distances.DotAt(q, h, level));
        }
    }

    [Theory]
    [MemberData(nameof(FloatLevels))]
    internal void Half_kernels_match_double_reference_across_chunks(SimdLevel level)
    {
        var rng = new Random(78);
        foreach (int n in new[] { 255, 257, 511, 512, 600, 1000 })
        {
            var q = KernelReference.RandomFloats(rng, n);
            var h = new Half[n];
            var widened = new float[n];
            for (int i = 0; i < n; i++) { h[i] = (Half)(rng.NextDouble() * 2 - 1); widened[i] = (float)h[i]; }
            var (e, m) = KernelReference.SquaredL2(q, widened);
            KernelReference.Close(e, m, Distances.SquaredL2At(q, h, level), n, $"f16 L2 n={n}");
            (e, m) = KernelReference.Dot(q, widened);
            KernelReference.Close(e, m, Distances.DotAt(q, h, level), n, $"f16 dot n={n}");
        }
        // Special values widen exactly: subnormal, max, negative zero.
        Half[] special = [Half.Epsilon, Half.MaxValue, Half.NegativeZero, (Half)(-1.5f)];
        float[] one = [1, 1, 1, 1];
        Assert.Equal((float)Half.Epsilon + 65504f + 0f - 1.5f, Distances.DotAt(one, special, level));
    }

    [Fact]
    public void Half_public_entry_points_check_lengths()
    {
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2(new float[3], new Half[2]));
        Assert.Throws<ArgumentException>(() => Distances.Dot(new float[1], new Half[2]));
        Half[] h = [(Half)1, (Half)2];
        Assert.Equal(5f, Distances.Dot([1f, 2f], h));
        Assert.Equal(1f, Distances.SquaredL2([1f, 3f], h));
    }

    [Theory]
    [MemberData(nameof(Int8Levels))]
    internal void Int8_kernels_are_exact_for_every_length(SimdLevel level)
    {
        var rng = new Random(2024);
        for (int n = 0; n <= 300; n++)
        {
            var a = new sbyte[n];
            var b = new sbyte[n];
            var u = new byte[n];
            for (int i = 0; i < n; i++)
            {
                // Mostly extremes, which stress 16-bit overflow, plus uniform values.
                a[i] = (sbyte)(i % 3 == 0 ? -128 : rng.Next(-128, 128));
                b[i] = (sbyte)(i % 5 == 0 ? 127 : i % 7 == 0 ? -128 : rng.Next(-128, 128));
                u[i] = (byte)(i % 2 == 0 ? 255 : rng.Next(256));
            }
            long dot = 0, l2 = 0, ud = 0;
            for (int i = 0; i < n; i++) { dot += a[i] * b[i]; l2 += (a[i] - b[i]) * (a[i] - b[i]); ud += u[i] * b[i]; }
            Assert.Equal(dot, Distances.DotAt(a, b, level));
            Assert.Equal(l2, Distances.SquaredL2At(a, b, level));
            Assert.Equal(ud, Distances.DotAt(u, b, level));
        }
    }

    // The early-exit kernel: below the threshold it returns the exact sum; at or above it, a value between the
    // threshold and the exact sum (a partial sum that already reached it, or the exact sum).
    [Theory]
    [MemberData(nameof(Int8Levels))]
    internal void Int8_at_least_kernel_is_exact_below_the_threshold_and_a_certified_partial_above(SimdLevel level)
    {
        var rng = new Random(2025);
        for (int n = 0; n <= 300; n++)
        {
            var a = new sbyte[n];
            var b = new sbyte[n];
            for (int i = 0; i < n; i++)
            {
                a[i] = (sbyte)(i % 3 == 0 ? -128 : rng.Next(-128, 128));
                b[i] = (sbyte)(i % 5 == 0 ? 127 : rng.Next(-128, 128));
            }
            long l2 = 0;
            for (int i = 0; i < n; i++) l2 += (a[i] - b[i]) * (a[i] - b[i]);
            foreach (long t in new[] { 0L, 1, l2 / 7, l2 / 2, l2 - 1, l2, l2 + 1, int.MaxValue })
            {
                int threshold = (int)Math.Clamp(t, 0, int.MaxValue);
                int got = Distances.SquaredL2AtLeastAt(a, b, threshold, level);
                if (l2 < threshold) Assert.Equal(l2, got);
                else Assert.InRange(got, threshold, l2);
            }
        }
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2AtLeastAt(new sbyte[2], new sbyte[3], 5, level));
    }

    [Fact]
    public void Int8_worst_case_values_are_exact_at_the_best_level()
    {
        const int n = 4096;
        var lo = Enumerable.Repeat((sbyte)-128, n).ToArray();
        var hi = Enumerable.Repeat((sbyte)127, n).ToArray();
        var max = Enumerable.Repeat((byte)255, n).ToArray();
        Assert.Equal(n * 16384, Distances.Dot(lo, lo));
        Assert.Equal(n * 255 * 255, Distances.SquaredL2(lo, hi));
        Assert.Equal(n * 255 * -128, Distances.Dot(max, lo));
        Assert.Throws<ArgumentException>(() => Distances.Dot(new sbyte[2], new sbyte[3]));
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2(new sbyte[2], new sbyte[3]));
        Assert.Throws<ArgumentException>(() => Distances.Dot(new byte[2], new sbyte[3]));
    }
}
