using Engine.Index.Flat;

namespace Engine.Tests.Spann;

internal static class SpannTestData
{
    /// <summary>Seeded clustered Gaussian data (n × d).</summary>
    public static float[] Clustered(int n, int d, int seed, int clusters = 50)
    {
        var r = new Random(seed);
        var centers = new float[clusters * d];
        for (int i = 0; i < centers.Length; i++) centers[i] = (float)(r.NextDouble() * 20 - 10);
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int c = r.Next(clusters);
            for (int j = 0; j < d; j++) x[i * d + j] = centers[c * d + j] + (float)Gauss(r) * 2f;
        }
        return x;
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>The vector a crash test writes for an id (deterministic, so the parent can check it).</summary>
    public static float[] VectorOf(long id, int d)
    {
        var r = new Random((int)(id * 7919 % int.MaxValue));
        var v = new float[d];
        for (int j = 0; j < d; j++) v[j] = (float)(r.NextDouble() * 20 - 10);
        return v;
    }

    /// <summary>The ids and vectors left after inserting <paramref name="data"/> (ids 0..n−1) and <paramref name="extra"/>
    /// (ids n..) and removing <paramref name="deleted"/>, in id order.</summary>
    public static (long[] Ids, float[] Vectors) Live(float[] data, float[] extra, int d, IEnumerable<long> deleted)
    {
        int n = data.Length / d, total = n + extra.Length / d;
        var gone = new HashSet<long>(deleted);
        var ids = Enumerable.Range(0, total).Select(i => (long)i).Where(i => !gone.Contains(i)).ToArray();
        var vectors = new float[ids.Length * d];
        for (int i = 0; i < ids.Length; i++)
        {
            long id = ids[i];
            (id < n ? data.AsSpan((int)id * d, d) : extra.AsSpan((int)(id - n) * d, d)).CopyTo(vectors.AsSpan(i * d, d));
        }
        return (ids, vectors);
    }

    public static double Recall(IVectorIndex index, FlatIndex exact, float[] queries, int k, SearchParameters? p = null)
    {
        int nq = queries.Length / exact.Dimension;
        var d1 = new float[nq * k]; var l1 = new long[nq * k];
        var d2 = new float[nq * k]; var l2 = new long[nq * k];
        exact.Search(queries, k, d1, l1);
        index.Search(queries, k, d2, l2, p);
        long hit = 0;
        for (int q = 0; q < nq; q++)
        {
            var truth = new HashSet<long>(l1.AsSpan(q * k, k).ToArray());
            for (int i = 0; i < k; i++) if (truth.Contains(l2[q * k + i])) hit++;
        }
        return hit / (double)(nq * k);
    }
}
