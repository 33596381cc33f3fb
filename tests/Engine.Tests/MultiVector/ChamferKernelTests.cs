using Engine.Distance;
using Engine.Tests.Distance;

namespace Engine.Tests.MultiVector;

public class ChamferKernelTests
{
    public static IEnumerable<object[]> Levels() => KernelReference.FloatLevels();

    /// <summary>Σ_i max_j q_i·x_j in double, with the rounding bound of the chosen dots.</summary>
    private static (double Value, double Tolerance) Reference(float[] q, float[] x, int d)
    {
        int nq = d == 0 ? 0 : q.Length / d, nx = d == 0 ? 0 : x.Length / d;
        if (nq == 0) return (0, 0);
        if (nx == 0) return (double.NegativeInfinity, 0);
        double sum = 0, tol = 0;
        for (int i = 0; i < nq; i++)
        {
            double best = double.NegativeInfinity, mag = 0;
            for (int j = 0; j < nx; j++)
            {
                var (v, m) = KernelReference.Dot(q.AsSpan(i * d, d), x.AsSpan(j * d, d));
                best = Math.Max(best, v);
                mag = Math.Max(mag, m);
            }
            sum += best;
            tol += (d + 4) * 1.2e-7 * mag + Math.Abs(best) * 1.2e-7 * (nq + 1);
        }
        return (sum, tol + 1e-30);
    }

    [Theory]
    [MemberData(nameof(Levels))]
    internal void Chamfer_matches_double_reference_for_every_length(SimdLevel level)
    {
        var rng = new Random(4242);
        for (int d = 1; d <= 256; d++)
        {
            int nq = rng.Next(0, 6), nx = rng.Next(0, 6);
            var q = KernelReference.RandomFloats(rng, nq * d, 2f);
            var x = KernelReference.RandomFloats(rng, nx * d, 2f);
            var (expected, tol) = Reference(q, x, d);
            float got = Distances.ChamferAt(q, x, d, level);
            if (double.IsNegativeInfinity(expected)) Assert.Equal(float.NegativeInfinity, got);
            else Assert.True(Math.Abs(got - expected) <= tol, $"d={d} nq={nq} nx={nx} {level}: expected {expected:R}, got {got:R}, tol {tol:E3}");

            // Half-precision documents: the reference sees the same rounded tokens.
            var xh = x.Select(v => (Half)v).ToArray();
            var xr = xh.Select(v => (float)v).ToArray();
            var (expectedHalf, tolHalf) = Reference(q, xr, d);
            float gotHalf = Distances.ChamferAt(q, xh, d, level);
            if (double.IsNegativeInfinity(expectedHalf)) Assert.Equal(float.NegativeInfinity, gotHalf);
            else Assert.True(Math.Abs(gotHalf - expectedHalf) <= tolHalf, $"half d={d} nq={nq} nx={nx} {level}: expected {expectedHalf:R}, got {gotHalf:R}");
        }
        // Length 0: only empty sets exist; the empty query scores 0.
        Assert.Equal(0f, Distances.ChamferAt(ReadOnlySpan<float>.Empty, ReadOnlySpan<float>.Empty, 0, level));
    }

    [Theory]
    [MemberData(nameof(Levels))]
    internal void Chamfer_of_many_half_tokens_crosses_the_widening_chunks(SimdLevel level)
    {
        var rng = new Random(7);
        const int d = 48, nq = 300, nx = 97; // more query tokens than one stack row, more document rows than one chunk
        var q = KernelReference.RandomFloats(rng, nq * d);
        var x = KernelReference.RandomFloats(rng, nx * d);
        var xh = x.Select(v => (Half)v).ToArray();
        var (expected, tol) = Reference(q, xh.Select(v => (float)v).ToArray(), d);
        float got = Distances.ChamferAt(q, xh, d, level);
        Assert.True(Math.Abs(got - expected) <= tol, $"expected {expected}, got {got}");
    }

    [Fact]
    public void Public_entry_points_agree_with_the_best_level_and_reject_ragged_spans()
    {
        var rng = new Random(3);
        var q = KernelReference.RandomFloats(rng, 5 * 33);
        var x = KernelReference.RandomFloats(rng, 7 * 33);
        Assert.Equal(Distances.ChamferAt(q, x, 33, Simd.Best), Distances.Chamfer(q, x, 33));
        Assert.Throws<ArgumentException>(() => Distances.Chamfer(new float[10], new float[9], 3));
        Assert.Throws<ArgumentException>(() => Distances.Chamfer(new float[10], new float[9], 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => Distances.Chamfer(new float[10], new float[10], -1));
    }
}
