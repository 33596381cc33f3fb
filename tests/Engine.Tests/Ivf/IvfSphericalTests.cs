using Engine.Clustering;
using Engine.Distance;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

/// <summary>
/// Inner-product and cosine IVFs train spherical k-means (as faiss does) and give the unit centroids one common
/// length: lists stay balanced under inner-product assignment and residuals stay short.
/// </summary>
public class IvfSphericalTests
{
    private const int D = 16, N = 4000, Lists = 40;

    // Unit vectors around unit centres, every other cluster tight (0.05) or diffuse (0.6): plain k-means gives the
    // diffuse clusters short mean centroids, which lose their members to the long centroids of tight clusters.
    private static float[] SphereClusters(int n, int seed)
    {
        var rng = new Random(seed);
        const int clusters = 20;
        var centres = new float[clusters * D];
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)Gaussian(rng);
        for (int c = 0; c < clusters; c++) Normalize(centres.AsSpan(c * D, D));
        var x = new float[n * D];
        for (int i = 0; i < n; i++)
        {
            int c = i % clusters;
            float spread = c % 2 == 0 ? 0.05f : 0.6f;
            for (int e = 0; e < D; e++) x[i * D + e] = centres[c * D + e] + spread * (float)Gaussian(rng);
            Normalize(x.AsSpan(i * D, D));
        }
        return x;
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static void Normalize(Span<float> v)
    {
        float norm = MathF.Sqrt(Distances.Dot(v, v));
        for (int e = 0; e < v.Length; e++) v[e] /= norm;
    }

    private static int LargestList(float[] x, float[] centroids) =>
        KMeans.AssignMaxInnerProduct(x, centroids, D).GroupBy(a => a).Max(g => g.Count());

    [Fact]
    public void SphericalCentroidsAreUnitAndKeepInnerProductListsBalanced()
    {
        var x = SphereClusters(N, seed: 3);
        var plain = KMeans.Train(x, D, new KMeansOptions(Lists) { Seed = 5 });
        var sph = KMeans.Train(x, D, new KMeansOptions(Lists) { Seed = 5, Spherical = true });
        for (int j = 0; j < Lists; j++)
            Assert.Equal(1.0, Math.Sqrt(Distances.Dot(sph.AsSpan(j * D, D), sph.AsSpan(j * D, D))), 4);
        int plainMax = LargestList(x, plain), sphMax = LargestList(x, sph);
        Assert.True(sphMax < plainMax, $"largest list: spherical {sphMax}, plain {plainMax}");
    }

    [Theory]
    [InlineData(Metric.InnerProduct)]
    [InlineData(Metric.Cosine)]
    public void SimilarityIvfCentroidsShareOneLengthBelowOne(Metric metric)
    {
        var x = SphereClusters(N, seed: 4);
        using var index = new IvfIndex($"IVF{Lists},PQ8x4fs,RFlat", D, metric);
        index.Train(x);
        var c = index.CoarseCentroids.ToArray();
        double first = Math.Sqrt(Distances.Dot(c.AsSpan(0, D), c.AsSpan(0, D)));
        // The mean projection of unit vectors on their unit centroid: below 1, well above 0 for clustered data.
        Assert.InRange(first, 0.5, 0.999);
        for (int j = 1; j < Lists; j++)
            Assert.Equal(first, Math.Sqrt(Distances.Dot(c.AsSpan(j * D, D), c.AsSpan(j * D, D))), 4);
    }

    [Fact]
    public void InnerProductOverVaryingNormsKeepsPlainKMeans()
    {
        var x = SphereClusters(N, seed: 6);
        for (int i = 0; i < N; i++)
            for (int e = 0; e < D; e++) x[i * D + e] *= 0.5f + (i % 7) * 0.25f;
        using var index = new IvfIndex($"IVF{Lists},Flat", D, Metric.InnerProduct);
        index.Train(x);
        var lengths = Enumerable.Range(0, Lists)
            .Select(j => Math.Sqrt(Distances.Dot(index.CoarseCentroids.Slice(j * D, D), index.CoarseCentroids.Slice(j * D, D)))).ToArray();
        Assert.True(lengths.Max() - lengths.Min() > 0.1, $"lengths {lengths.Min()}..{lengths.Max()}");
    }

    [Fact]
    public void L2IvfKeepsPlainKMeansCentroids()
    {
        var x = SphereClusters(N, seed: 5);
        using var index = new IvfIndex($"IVF{Lists},Flat", D, Metric.L2);
        index.Train(x);
        var lengths = Enumerable.Range(0, Lists)
            .Select(j => Math.Sqrt(Distances.Dot(index.CoarseCentroids.Slice(j * D, D), index.CoarseCentroids.Slice(j * D, D)))).ToArray();
        // Mean centroids: tight clusters near length 1, diffuse ones clearly shorter.
        Assert.True(lengths.Max() - lengths.Min() > 0.1, $"lengths {lengths.Min()}..{lengths.Max()}");
    }
}
