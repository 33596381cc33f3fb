using Engine.Distance;

namespace Engine.Tests.Distance;

/// <summary>Double-precision references, seeded data and the SIMD levels this process can run.</summary>
internal static class KernelReference
{
    private const double FloatEps = 1.2e-7;

    public static IEnumerable<object[]> FloatLevels() => Simd.UpTo(Simd.Best).Select(l => new object[] { l });

    public static IEnumerable<object[]> Int8Levels() => Simd.UpTo(Simd.BestInt8).Select(l => new object[] { l });

    public static float[] RandomFloats(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>Exact-in-double dot and the sum of |terms| that bounds float rounding.</summary>
    public static (double Value, double Magnitude) Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0, m = 0;
        for (int i = 0; i < x.Length; i++) { double t = (double)x[i] * y[i]; s += t; m += Math.Abs(t); }
        return (s, m);
    }

    public static (double Value, double Magnitude) SquaredL2(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) { double d = (double)x[i] - y[i]; s += d * d; }
        return (s, s);
    }

    /// <summary>
    /// Asserts |actual − expected| ≤ (n + 4)·ε·magnitude: the worst-case bound of float summation with FMA
    /// over n terms (plus one rounding of each difference), so any real bug (a dropped or doubled term) fails.
    /// </summary>
    public static void Close(double expected, double magnitude, float actual, int n, string what)
    {
        double tol = (n + 4) * FloatEps * magnitude + 1e-30;
        Assert.True(Math.Abs(actual - expected) <= tol,
            $"{what}: expected {expected:R}, got {actual:R} (|diff| {Math.Abs(actual - expected):E3} > tol {tol:E3})");
    }
}
