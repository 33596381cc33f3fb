using Engine.Index.Flat;

namespace Engine.Tests.Ivf;

/// <summary>Seeded clustered data and recall helpers shared by the IVF tests.</summary>
internal static class IvfTestData
{
    /// <summary>
    /// <paramref name="factor"/> where a refine factor changes what <paramref name="index"/> returns (a refine store,
    /// or fast-scan PQ codes), else null: there the index rejects a factor above 1 as a knob that does nothing.
    /// </summary>
    public static int? Refine(Engine.Index.Ivf.IvfIndex index, int factor) =>
        Engine.Index.Ivf.IvfIndex.UsesRefineFactor(index.Spec) ? factor : null;

    /// <summary>An IVF index of <paramref name="spec"/> (which must print back unchanged) trained on and holding <paramref name="data"/>.</summary>
    public static Engine.Index.Ivf.IvfIndex Build(string spec, int d, Metric metric, float[] data, long[] ids)
    {
        var index = (Engine.Index.Ivf.IvfIndex)Engine.Index.IndexFactory.Create(spec, d, metric);
        Assert.Equal(spec, index.Description);
        index.Train(data);
        index.Add(data, ids);
        return index;
    }

    /// <summary>n × d points around `clusters` Gaussian centres (seeded).</summary>
    public static float[] Clustered(int n, int d, int clusters, int seed, float spread = 0.3f)
    {
        var rng = new Random(seed);
        var centres = new float[clusters * d];
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)(rng.NextDouble() * 2 - 1);
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(clusters);
            for (int j = 0; j < d; j++) x[i * d + j] = centres[c * d + j] + spread * Gaussian(rng);
        }
        return x;
    }

    public static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    public static long[] Ids(int n, long offset = 0) => Enumerable.Range(0, n).Select(i => i + offset).ToArray();

    /// <summary>Exact top-k labels from a FlatIndex over the same data.</summary>
    public static long[] GroundTruth(float[] data, long[] ids, float[] queries, int d, int k, Metric metric, SearchParameters? p = null)
    {
        using var flat = new FlatIndex(d, metric);
        flat.Add(data, ids);
        int nq = queries.Length / d;
        var dist = new float[nq * k];
        var lab = new long[nq * k];
        flat.Search(queries, k, dist, lab, p);
        return lab;
    }

    public static double Recall(long[] truth, long[] got, int nq, int k)
    {
        int hit = 0, total = 0;
        for (int i = 0; i < nq; i++)
        {
            var t = new HashSet<long>();
            for (int j = 0; j < k; j++) if (truth[i * k + j] >= 0) t.Add(truth[i * k + j]);
            total += t.Count;
            for (int j = 0; j < k; j++) if (t.Contains(got[i * k + j])) hit++;
        }
        return total == 0 ? 1 : hit / (double)total;
    }

    public static long[] SearchLabels(IVectorIndex index, float[] queries, int k, SearchParameters? p = null)
    {
        int nq = queries.Length / index.Dimension;
        var dist = new float[nq * k];
        var lab = new long[nq * k];
        index.Search(queries, k, dist, lab, p);
        return lab;
    }

    public sealed class TempDir : IDisposable
    {
        public TempDir() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ivf-test-" + Guid.NewGuid().ToString("N"));

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
