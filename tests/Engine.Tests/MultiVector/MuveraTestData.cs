using Engine.MultiVector;

namespace Engine.Tests.MultiVector;

/// <summary>Seeded multi-vector sets: documents mix a few topic centres; queries are noisy subsets of a document's tokens.</summary>
internal static class MuveraTestData
{
    public static float[] Unit(Random rng, int d)
    {
        var v = new float[d];
        double s = 0;
        for (int j = 0; j < d; j++) { v[j] = Gaussian(rng); s += v[j] * v[j]; }
        float inv = (float)(1 / Math.Sqrt(s));
        for (int j = 0; j < d; j++) v[j] *= inv;
        return v;
    }

    public static float Gaussian(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    private static float[] Noisy(Random rng, float[] centre, float noise)
    {
        // noise is the expected norm of the perturbation (per coordinate noise / sqrt(d)).
        var v = new float[centre.Length];
        float scale = noise / MathF.Sqrt(centre.Length);
        double s = 0;
        for (int j = 0; j < v.Length; j++) { v[j] = centre[j] + scale * Gaussian(rng); s += v[j] * v[j]; }
        float inv = (float)(1 / Math.Sqrt(s));
        for (int j = 0; j < v.Length; j++) v[j] *= inv;
        return v;
    }

    /// <summary>
    /// Documents in families of 10: each document has 8..23 tokens, three quarters around its family's 3 topic centres
    /// and the rest around a private centre; queries have 4..8 tokens copied (with noise) from a random document. The
    /// exact top-10 of a query is then mostly its family, well separated from the other families.
    /// </summary>
    public static (MultiVectorSet Docs, MultiVectorSet Queries) Make(int docs, int queries, int d, int seed)
    {
        var rng = new Random(seed);
        int families = Math.Max(1, docs / 10);
        var centres = Enumerable.Range(0, families * 3).Select(_ => Unit(rng, d)).ToArray();
        var docItems = new List<float[][]>();
        for (int i = 0; i < docs; i++)
        {
            int f = i % families;
            var own = Unit(rng, d);
            int n = rng.Next(8, 24);
            docItems.Add(Enumerable.Range(0, n).Select(_ => Noisy(rng, rng.Next(4) == 0 ? own : centres[3 * f + rng.Next(3)], 0.6f)).ToArray());
        }
        var queryItems = new List<float[][]>();
        for (int i = 0; i < queries; i++)
        {
            var source = docItems[rng.Next(docs)];
            int n = rng.Next(4, 9);
            queryItems.Add(Enumerable.Range(0, n).Select(_ => Noisy(rng, source[rng.Next(source.Length)], 0.3f)).ToArray());
        }
        return (MultiVectorSet.FromItems(docItems), MultiVectorSet.FromItems(queryItems));
    }

    /// <summary>Chamfer in double: Σ_i max_j q_i·x_j.</summary>
    public static double Chamfer(ReadOnlySpan<float> q, ReadOnlySpan<float> x, int d)
    {
        double sum = 0;
        for (int i = 0; i < q.Length / d; i++)
        {
            double best = double.NegativeInfinity;
            for (int j = 0; j < x.Length / d; j++)
            {
                double s = 0;
                for (int c = 0; c < d; c++) s += (double)q[i * d + c] * x[j * d + c];
                best = Math.Max(best, s);
            }
            sum += best;
        }
        return sum;
    }

    /// <summary>Exact top-k ids by double-precision Chamfer (ties by smaller id).</summary>
    public static long[] ExactTopK(MultiVectorSet docs, ReadOnlySpan<float> query, int k)
    {
        var scored = new (double Score, long Id)[docs.Count];
        for (int i = 0; i < docs.Count; i++) scored[i] = (Chamfer(query, docs.Item(i), docs.Dimension), i);
        return scored.OrderByDescending(s => s.Score).ThenBy(s => s.Id).Take(k).Select(s => s.Id).ToArray();
    }
}
