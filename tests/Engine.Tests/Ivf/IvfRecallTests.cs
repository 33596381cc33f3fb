using Engine.Index;
using Engine.Index.Ivf;
using Engine.Quantization;

namespace Engine.Tests.Ivf;

public class IvfRecallTests
{
    private const int N = 5000, D = 32, NQ = 200, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 50, seed: 11);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 50, seed: 12);
    private static readonly long[] Ids = IvfTestData.Ids(N, 1000);
    private static readonly long[] Truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, Metric.L2);

    [Theory]
    [InlineData("IVF32,Flat", 8, 1, 0.97)]
    [InlineData("IVF32,PQ8", 8, 1, 0.55)]
    [InlineData("IVF32,PQ16x4", 8, 1, 0.45)]
    [InlineData("IVF32,PQ16x4fs", 8, 4, 0.5)]
    [InlineData("IVF32,PQ16x4fs,RFlat", 8, 8, 0.95)]
    [InlineData("IVF32,PQ8x4fs,Refine(Flat)", 8, 16, 0.9)]
    [InlineData("IVF32,PQ16x4fs,Refine(SQ8)", 8, 8, 0.9)]
    [InlineData("IVF32,PQ16x4fs,Refine(F16)", 8, 8, 0.95)]
    [InlineData("OPQ8,IVF32,PQ8x4fs,Refine(Flat)", 8, 16, 0.93)]
    [InlineData("IVF32,PQ8nr", 8, 1, 0.3)]
    [InlineData("IVF32,PQ16x4fsnr", 8, 4, 0.3)]
    [InlineData("IVF32,PQ16x4fsnr,RFlat", 8, 16, 0.9)]
    [InlineData("OPQ8,IVF32,PQ8x4fsnr,Refine(Flat)", 8, 16, 0.8)]
    public void RecallAgainstFlatIsAboveFloor(string spec, int probes, int refine, double floor)
    {
        using var index = (IvfIndex)IndexFactory.Create(spec, D, Metric.L2);
        Assert.Equal(spec, index.Description);
        index.Train(Data);
        index.Add(Data, Ids);
        var got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = probes, RefineFactor = refine, Threads = 2 });
        double recall = IvfTestData.Recall(Truth, got, NQ, K);
        Assert.True(recall >= floor, $"{spec}: recall@{K} {recall:F3} < {floor}");
    }

    [Fact]
    public void MoreProbesNeverHurtAndAllProbesOfFlatListsIsExact()
    {
        using var index = new IvfIndex("IVF32,Flat", D);
        index.Train(Data);
        index.Add(Data, Ids);
        double r1 = IvfTestData.Recall(Truth, IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 1 }), NQ, K);
        double r32 = IvfTestData.Recall(Truth, IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 32 }), NQ, K);
        Assert.True(r32 >= r1);
        Assert.Equal(1.0, r32, 6);
    }

    [Theory]
    [InlineData(Metric.InnerProduct, "IVF32,PQ16x4fs,RFlat")]
    [InlineData(Metric.Cosine, "IVF32,PQ16x4fs,RFlat")]
    [InlineData(Metric.InnerProduct, "IVF32,PQ8x4")]
    [InlineData(Metric.InnerProduct, "IVF32,PQ16x4fsnr,RFlat")]
    [InlineData(Metric.Cosine, "IVF32,PQ16x4fsnr,RFlat")]
    [InlineData(Metric.InnerProduct, "IVF32,PQ16nr")]
    public void SimilarityMetricsReachTheFloor(Metric metric, string spec)
    {
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, metric);
        using var index = new IvfIndex(spec, D, metric);
        index.Train(Data);
        index.Add(Data, Ids);
        var p = new IvfSearchParameters { Probes = 12, RefineFactor = IvfTestData.Refine(index, 8) };
        var dist = new float[NQ * K];
        var lab = new long[NQ * K];
        index.Search(Queries, K, dist, lab, p);
        double recall = IvfTestData.Recall(truth, lab, NQ, K);
        Assert.True(recall >= (spec.Contains("RFlat") ? 0.9 : 0.3), $"{metric} {spec}: recall {recall:F3}");
        // Similarities come back largest first.
        for (int i = 0; i < NQ; i++)
            for (int j = 1; j < K; j++) Assert.True(dist[i * K + j - 1] >= dist[i * K + j]);
    }

    [Fact]
    public void RefinedDistancesAreExact()
    {
        using var index = new IvfIndex("IVF16,PQ8x4fs,RFlat", D);
        index.Train(Data);
        index.Add(Data, Ids);
        var dist = new float[K];
        var lab = new long[K];
        index.Search(Queries.AsSpan(0, D), K, dist, lab, new IvfSearchParameters { Probes = 4, RefineFactor = 4 });
        for (int j = 0; j < K; j++)
        {
            int row = (int)(lab[j] - 1000);
            float exact = Engine.Distance.Distances.SquaredL2(Queries.AsSpan(0, D), Data.AsSpan(row * D, D));
            Assert.Equal(exact, dist[j], 3);
        }
    }

    [Fact]
    public void ExternallySuppliedCentroidsAndCodebooksAreUsed()
    {
        var centroids = Engine.Clustering.KMeans.Train(Data, D, new Engine.Clustering.KMeansOptions(16) { Seed = 5 });
        // Codebooks trained outside the index on residuals of the same centroids.
        var residuals = Data.AsSpan(0, 2000 * D).ToArray();
        var assign = Engine.Clustering.KMeans.Assign(residuals, centroids, D);
        for (int i = 0; i < 2000; i++)
            for (int j = 0; j < D; j++) residuals[i * D + j] -= centroids[assign[i] * D + j];
        var pq = new ProductQuantizer(D, 16, 4);
        pq.Train(residuals, seed: 3, threads: 2);
        using var index = new IvfIndex("IVF16,PQ16x4fs,RFlat", D);
        index.UseCentroids(centroids);
        Assert.False(index.IsTrained);
        index.UseCodebooks(pq.Codebooks);
        Assert.True(index.IsTrained);
        index.Add(Data, Ids);
        var got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = 8, RefineFactor = 8 });
        double recall = IvfTestData.Recall(Truth, got, NQ, K);
        Assert.True(recall >= 0.9, $"recall {recall:F3}");
    }

    [Fact]
    public void PairKernelEqualsTwoSingleScansAtEverySimdLevel()
    {
        var rng = new Random(5);
        foreach (int m in Enumerable.Range(1, 40).Append(98))
        {
            var block = new byte[PQ4FastScan.BlockBytes(m)];
            var code = new byte[m];
            for (int v = 0; v < 32; v++)
            {
                for (int s = 0; s < m; s++) code[s] = (byte)rng.Next(16);
                PQ4FastScan.SetCode(block, m, v, code);
            }
            var lutA = new byte[PQ4FastScan.LutBytes(m)];
            var lutB = new byte[PQ4FastScan.LutBytes(m)];
            PQ4FastScan.QuantizeLut(Engine.Tests.Distance.KernelReference.RandomFloats(rng, m * 16, 5f), m, lutA, out _);
            PQ4FastScan.QuantizeLut(Engine.Tests.Distance.KernelReference.RandomFloats(rng, m * 16, 5f), m, lutB, out _);
            ushort thrA = (ushort)(m * 60), thrB = (ushort)(m * 70);
            int groups = PQ4FastScan.PaddedM(m) / 4;
            unsafe
            {
                fixed (byte* pb = block, la = lutA, lb = lutB)
                {
                    var wantA = new ushort[32];
                    var wantB = new ushort[32];
                    uint maskA, maskB;
                    fixed (ushort* wa = wantA, wb = wantB)
                    {
                        maskA = PQ4FastScan.ScanScalar(pb, la, groups, thrA, wa);
                        maskB = PQ4FastScan.ScanScalar(pb, lb, groups, thrB, wb);
                    }
                    // the dispatching entry point (this machine's best level), then every level this machine has
                    foreach (string level in new[] { "dispatch", "avx2", "avx512" })
                    {
                        if (level == "avx2" && !System.Runtime.Intrinsics.X86.Avx2.IsSupported) continue;
                        if (level == "avx512" && !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported) continue;
                        var gotA = new ushort[32];
                        var gotB = new ushort[32];
                        uint ma, mb;
                        fixed (ushort* ga = gotA, gb = gotB)
                            ma = level switch
                            {
                                "avx2" => PQ4FastScan.ScanPairAvx2(pb, la, lb, groups, thrA, thrB, ga, gb, out mb),
                                "avx512" => PQ4FastScan.ScanPairAvx512(pb, la, lb, groups, thrA, thrB, ga, gb, out mb),
                                _ => PQ4FastScan.ScanBlockPair(pb, la, lb, m, thrA, thrB, ga, gb, out mb),
                            };
                        Assert.True(ma == maskA && mb == maskB, $"m={m} {level}: masks {ma:X}/{mb:X}, want {maskA:X}/{maskB:X}");
                        Assert.Equal(wantA, gotA);
                        Assert.Equal(wantB, gotB);
                    }
                }
            }
        }
    }

    [Fact]
    public void FastScanKernelMatchesScalarReference()
    {
        var rng = new Random(4);
        // every sub-quantizer count to 40 (odd and even group counts: the AVX-512 loop takes two groups a step) and MNIST's 98
        foreach (int m in Enumerable.Range(1, 40).Append(98))
        {
            int bb = PQ4FastScan.BlockBytes(m);
            var block = new byte[bb];
            var codes = new byte[32 * m];
            for (int i = 0; i < codes.Length; i++) codes[i] = (byte)rng.Next(16);
            var lut = new float[m * 16];
            for (int i = 0; i < lut.Length; i++) lut[i] = (float)rng.NextDouble() * 10;
            // vector 0 looks up every table's largest entry: the pairs the kernels add as bytes are at their maximum
            for (int s = 0; s < m; s++) codes[s] = (byte)lut.AsSpan(s * 16, 16).IndexOf(lut.AsSpan(s * 16, 16).ToArray().Max());
            for (int v = 0; v < 32; v++) PQ4FastScan.SetCode(block, m, v, codes.AsSpan(v * m, m));
            var qlut = new byte[PQ4FastScan.LutBytes(m)];
            float scale = PQ4FastScan.QuantizeLut(lut, m, qlut, out float bias);
            var a = new ushort[32];
            var b = new ushort[32];
            uint ma, mb;
            unsafe
            {
                fixed (byte* pb = block, pl = qlut)
                fixed (ushort* pa = a, pbo = b)
                {
                    int groups = PQ4FastScan.PaddedM(m) / 4;
                    ma = PQ4FastScan.ScanBlock(pb, pl, m, 1500, pa);
                    mb = PQ4FastScan.ScanScalar(pb, pl, groups, 1500, pbo);
                    // Every SIMD level this machine has agrees with the scalar reference.
                    var c = new ushort[32];
                    fixed (ushort* pc = c)
                    {
                        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
                        {
                            Assert.Equal(mb, PQ4FastScan.ScanAvx2(pb, pl, groups, 1500, pc));
                            Assert.Equal(b, c);
                        }
                        if (System.Runtime.Intrinsics.X86.Avx512BW.IsSupported)
                        {
                            Assert.Equal(mb, PQ4FastScan.ScanAvx512(pb, pl, groups, 1500, pc));
                            Assert.Equal(b, c);
                        }
                    }
                }
            }
            Assert.Equal(b, a);
            Assert.Equal(mb, ma);
            var back = new byte[m];
            for (int v = 0; v < 32; v++)
            {
                PQ4FastScan.GetCode(block, m, v, back);
                Assert.Equal(codes.AsSpan(v * m, m).ToArray(), back);
                // The quantised sum approximates the float sum within the rounding bound.
                float exact = 0;
                for (int s = 0; s < m; s++) exact += lut[s * 16 + codes[v * m + s]];
                Assert.InRange(bias + a[v] / scale, exact - m * 0.5f / scale - 1e-3f, exact + m * 0.5f / scale + 1e-3f);
            }
        }
    }
}
