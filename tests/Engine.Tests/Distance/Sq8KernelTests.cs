using Engine.Distance;

namespace Engine.Tests.Distance;

/// <summary>The fused float-query × SQ8-code kernels against a double reference at every length 0..256 and level.</summary>
public class Sq8KernelTests
{
    public static IEnumerable<object[]> FloatLevels() => KernelReference.FloatLevels();

    private const double Eps = 1.0 / (1 << 23);

    [Theory]
    [MemberData(nameof(FloatLevels))]
    internal void Sq8_kernels_match_a_double_reference_at_every_length(SimdLevel level)
    {
        var rng = new Random(808);
        for (int n = 0; n <= 256; n++)
        {
            var q = KernelReference.RandomFloats(rng, n, 5f);
            var min = KernelReference.RandomFloats(rng, n, 2f);
            var step = new float[n];
            var code = new byte[n];
            for (int i = 0; i < n; i++)
            {
                step[i] = i % 7 == 3 ? 0f : (float)(rng.NextDouble() * 0.05); // constant dimensions have step 0
                code[i] = i % 11 == 0 ? (byte)255 : i % 13 == 0 ? (byte)0 : (byte)rng.Next(256);
            }
            double l2 = 0, dot = 0, l2Tol = 0, dotMag = 0;
            for (int i = 0; i < n; i++)
            {
                double x = (double)min[i] + (double)step[i] * code[i];
                double d = q[i] - x;
                l2 += d * d;
                dot += q[i] * x;
                // Rounding of the element (x in float: two roundings of |min| + |step·code|) and of the difference,
                // carried through the square; then the float sum of n terms.
                double delta = 3 * Eps * (Math.Abs(min[i]) + Math.Abs(step[i] * code[i]) + Math.Abs(q[i]));
                l2Tol += 2 * Math.Abs(d) * delta + delta * delta;
                dotMag += Math.Abs(q[i]) * (Math.Abs(x) + delta) + Math.Abs(q[i]) * delta;
            }
            l2Tol += (n + 4) * Eps * l2 + 1e-30;
            double dotTol = (n + 6) * Eps * dotMag + 1e-30;
            float gotL2 = Distances.Sq8At(q, min, step, code, dot: false, level);
            float gotDot = Distances.Sq8At(q, min, step, code, dot: true, level);
            Assert.True(Math.Abs(gotL2 - l2) <= l2Tol, $"{level} n={n}: L2 {gotL2:R} vs {l2:R} (tol {l2Tol:E3})");
            Assert.True(Math.Abs(gotDot - dot) <= dotTol, $"{level} n={n}: dot {gotDot:R} vs {dot:R} (tol {dotTol:E3})");
        }
    }

    [Theory]
    [MemberData(nameof(FloatLevels))]
    internal void Prepared_sq8_kernels_match_a_double_reference_at_every_length(SimdLevel level)
    {
        var rng = new Random(809);
        for (int n = 0; n <= 256; n++)
        {
            var a = KernelReference.RandomFloats(rng, n, 5f);
            var step = new float[n];
            var code = new byte[n];
            for (int i = 0; i < n; i++)
            {
                step[i] = i % 7 == 3 ? 0f : (float)(rng.NextDouble() * 0.05);
                code[i] = i % 11 == 0 ? (byte)255 : i % 13 == 0 ? (byte)0 : (byte)rng.Next(256);
            }
            double l2 = 0, dot = 0, l2Tol = 0, dotMag = 0;
            for (int i = 0; i < n; i++)
            {
                double t = a[i] - (double)step[i] * code[i];
                l2 += t * t;
                dot += (double)a[i] * code[i];
                double delta = 2 * Eps * (Math.Abs(a[i]) + Math.Abs(step[i] * code[i]));
                l2Tol += 2 * Math.Abs(t) * delta + delta * delta;
                dotMag += Math.Abs(a[i]) * code[i];
            }
            l2Tol += (n + 4) * Eps * l2 + 1e-30;
            double dotTol = (n + 4) * Eps * dotMag + 1e-30;
            float gotL2 = Distances.Sq8PreparedAt(a, step, code, dot: false, level);
            float gotDot = Distances.Sq8PreparedAt(a, default, code, dot: true, level);
            Assert.True(Math.Abs(gotL2 - l2) <= l2Tol, $"{level} n={n}: shifted L2 {gotL2:R} vs {l2:R} (tol {l2Tol:E3})");
            Assert.True(Math.Abs(gotDot - dot) <= dotTol, $"{level} n={n}: byte dot {gotDot:R} vs {dot:R} (tol {dotTol:E3})");
        }
    }

    [Fact]
    public void Prepared_sq8_kernels_reject_mismatched_lengths()
    {
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2Sq8Shifted(new float[8], new float[7], new byte[8]));
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2Sq8Shifted(new float[8], new float[8], new byte[9]));
        Assert.Throws<ArgumentException>(() => Distances.DotBytes(new float[8], new byte[7]));
    }

    [Fact]
    public void Sq8_kernels_reject_mismatched_lengths()
    {
        var q = new float[8];
        Assert.Throws<ArgumentException>(() => Distances.SquaredL2Sq8(q, new float[8], new float[7], new byte[8]));
        Assert.Throws<ArgumentException>(() => Distances.DotSq8(q, new float[8], new float[8], new byte[9]));
        Assert.Throws<ArgumentException>(() => Distances.DotSq8(q, new float[6], new float[8], new byte[8]));
    }
}
