namespace Engine.Tests.Support;

/// <summary>Seeded random data for tests.</summary>
public static class TestData
{
    public static float[] Gaussian(int n, int d, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    public static long[] Sequential(int n, long start = 0)
    {
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = start + i;
        return ids;
    }

    /// <summary>Exact top-k by a double-precision brute force; returns ids sorted best-first (ties by id).</summary>
    public static long[] BruteForce(float[] data, long[] ids, int d, float[] q, int k, Metric metric)
    {
        int n = ids.Length;
        var scored = new (double key, long id)[n];
        for (int i = 0; i < n; i++)
        {
            double dot = 0, l2 = 0, nx = 0, nq = 0;
            for (int j = 0; j < d; j++)
            {
                double a = q[j], b = data[i * d + j];
                dot += a * b; l2 += (a - b) * (a - b); nx += b * b; nq += a * a;
            }
            double key = metric switch
            {
                Metric.L2 => l2,
                Metric.InnerProduct => -dot,
                _ => -(nx == 0 || nq == 0 ? 0 : dot / Math.Sqrt(nx * nq)),
            };
            scored[i] = (key, ids[i]);
        }
        Array.Sort(scored, (a, b) => a.key != b.key ? a.key.CompareTo(b.key) : a.id.CompareTo(b.id));
        return scored.Take(k).Select(s => s.id).ToArray();
    }
}
