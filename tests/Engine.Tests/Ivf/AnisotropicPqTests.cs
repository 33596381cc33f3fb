using Engine.Index.Ivf;
using Engine.Quantization;

namespace Engine.Tests.Ivf;

/// <summary>
/// Score-aware (anisotropic) PQ codes: the loss ‖e‖² + (η − 1) ⟨e, x̂⟩² they minimise, measured in double against the
/// plain nearest-sub-centroid codes; the spec option <c>(aniso=T)</c>; its default by metric; recall on inner products.
/// </summary>
public class AnisotropicPqTests
{
    private static float[] Gaussian(int n, int d, int seed, bool unit)
    {
        var rng = new Random(seed);
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            double norm = 0;
            for (int e = 0; e < d; e++) { x[i * d + e] = IvfTestData.Gaussian(rng) + (e % 3 == 0 ? 0.5f : 0f); norm += (double)x[i * d + e] * x[i * d + e]; }
            double scale = unit ? 1 / Math.Sqrt(norm) : 0.25 + rng.NextDouble() * 2 / Math.Sqrt(norm);
            for (int e = 0; e < d; e++) x[i * d + e] = (float)(x[i * d + e] * scale);
        }
        return x;
    }

    // The anisotropic loss of one row's code, in double: e = r − decode(code), x = r + center, t = T / ‖x‖,
    // η = η(d, t) (checked against closed forms below), loss = ‖e‖² + (η − 1) ⟨e, x̂⟩². Also returns |⟨e, x̂⟩|.
    private static (double Loss, double Parallel) Loss(ProductQuantizer pq, double threshold, ReadOnlySpan<float> r,
        ReadOnlySpan<float> center, ReadOnlySpan<byte> code)
    {
        int d = pq.Dimension;
        var rec = new float[d];
        pq.Decode(code, rec);
        double norm2 = 0;
        for (int e = 0; e < d; e++) { double x = r[e] + (center.IsEmpty ? 0 : center[e]); norm2 += x * x; }
        double eta = AnisotropicWeight.For(d, threshold / Math.Sqrt(norm2));
        double sq = 0, par = 0;
        for (int e = 0; e < d; e++)
        {
            double err = (double)r[e] - rec[e], x = r[e] + (center.IsEmpty ? 0 : center[e]);
            sq += err * err;
            par += err * x / Math.Sqrt(norm2);
        }
        return (sq + (eta - 1) * par * par, Math.Abs(par));
    }

    [Theory]
    [InlineData(32, 8, 4, 0.2, true, 1)]
    [InlineData(32, 16, 4, 0.2, true, 2)]
    [InlineData(64, 8, 8, 0.2, true, 3)]
    [InlineData(24, 6, 4, 0.5, false, 4)]
    [InlineData(48, 48, 4, 0.1, false, 5)]
    public void AnisotropicCodesNeverRaiseTheLossAndCutTheParallelError(int d, int m, int bits, double threshold, bool unit, int seed)
    {
        const int n = 600;
        var train = Gaussian(2000, d, seed, unit);
        var pq = new ProductQuantizer(d, m, bits);
        pq.Train(train, seed, threads: 1);
        var x = Gaussian(n, d, seed + 100, unit);
        // Half the rows as residuals of a random center (the IVF case), half as raw vectors (center 0).
        var centers = Gaussian(n, d, seed + 200, unit: true);
        var residuals = new float[n * d];
        for (int i = 0; i < n * d; i++) residuals[i] = x[i] - centers[i];
        var plainRaw = new byte[n * m];
        var plainResidual = new byte[n * m];
        pq.Encode(x, plainRaw);
        pq.Encode(residuals, plainResidual);
        pq.AnisotropicThreshold = threshold;
        var anisoRaw = new byte[n * m];
        var anisoResidual = new byte[n * m];
        pq.Encode(x, anisoRaw);
        pq.EncodeResiduals(residuals, centers, anisoResidual);
        double plainPar = 0, anisoPar = 0, plainLoss = 0, anisoLoss = 0;
        foreach (bool raw in new[] { true, false })
            for (int i = 0; i < n; i++)
            {
                var r = raw ? x.AsSpan(i * d, d) : residuals.AsSpan(i * d, d);
                var c = raw ? ReadOnlySpan<float>.Empty : centers.AsSpan(i * d, d);
                var p = Loss(pq, threshold, r, c, (raw ? plainRaw : plainResidual).AsSpan(i * m, m));
                var a = Loss(pq, threshold, r, c, (raw ? anisoRaw : anisoResidual).AsSpan(i * m, m));
                Assert.True(a.Loss <= p.Loss * (1 + 1e-5) + 1e-9, $"row {i} ({(raw ? "raw" : "residual")}): anisotropic loss {a.Loss} > plain {p.Loss}");
                plainLoss += p.Loss; anisoLoss += a.Loss; plainPar += p.Parallel; anisoPar += a.Parallel;
            }
        Assert.True(anisoLoss < plainLoss, $"total loss {anisoLoss} vs plain {plainLoss}");
        Assert.True(anisoPar < 0.9 * plainPar, $"mean parallel error {anisoPar / (2 * n)} vs plain {plainPar / (2 * n)}");
    }

    // η(d, t) = (d − 1) E[cos²θ] / E[sin²θ] over θ ∈ [0, arccos t] with density ∝ sin^(d−2) θ. Closed forms: d = 2
    // (θ uniform) and d = 3 (t = cos θ uniform, Archimedes); η(d, 0) = 1; the large-d limit (d − 1) t² / (1 − t²).
    [Fact]
    public void TheWeightMatchesClosedForms()
    {
        foreach (double t in new[] { 0.0, 0.05, 0.2, 0.5, 0.8, 0.95 })
        {
            double a = Math.Acos(t);
            double cos2 = (a + Math.Sin(a) * Math.Cos(a)) / (2 * a);
            Assert.Equal(cos2 / (1 - cos2), AnisotropicWeight.Exact(2, t), 6);
            double t2 = (1 + t + t * t) / 3; // E[t²] for t uniform on [t, 1]
            Assert.Equal(2 * t2 / (1 - t2), AnisotropicWeight.Exact(3, t), 6);
            double exact = AnisotropicWeight.Exact(100, t), table = AnisotropicWeight.For(100, t);
            Assert.True(Math.Abs(table - exact) <= 2e-3 * exact, $"η(100, {t}): table {table}, exact {exact}");
        }
        foreach (int d in new[] { 2, 8, 100, 784, 4096 })
            Assert.Equal(1.0, AnisotropicWeight.Exact(d, 0), 6);
        double limit = 99999 * 0.04 / 0.96;
        Assert.InRange(AnisotropicWeight.Exact(100000, 0.2) / limit, 0.99, 1.01);
        double previous = 0;
        for (double t = 0; t < 0.99; t += 0.01)
        {
            double eta = AnisotropicWeight.For(64, t);
            Assert.True(eta >= previous, $"η(64, {t}) = {eta} < η at the previous t ({previous})");
            previous = eta;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => AnisotropicWeight.Exact(1, 0.2));
        Assert.Throws<ArgumentOutOfRangeException>(() => AnisotropicWeight.Exact(10, 1.0));
    }

    [Fact]
    public void ThresholdZeroIsThePlainEncodingAndBadThresholdsAreRefused()
    {
        const int d = 16, m = 4;
        var pq = new ProductQuantizer(d, m, 4);
        pq.Train(Gaussian(500, d, 7, unit: true), 7, threads: 1);
        var x = Gaussian(50, d, 8, unit: true);
        var centers = Gaussian(50, d, 9, unit: true);
        var a = new byte[50 * m];
        var b = new byte[50 * m];
        pq.Encode(x, a);
        pq.EncodeResiduals(x, centers, b);
        Assert.Equal(a, b);
        foreach (double bad in new[] { -0.1, 1.0, 2.0, double.NaN, double.PositiveInfinity })
            Assert.Throws<ArgumentOutOfRangeException>(() => pq.AnisotropicThreshold = bad);
        pq.AnisotropicThreshold = 0.3;
        Assert.Throws<ArgumentException>(() => pq.EncodeResiduals(x, centers.AsSpan(0, d), b));
    }

    [Theory]
    [InlineData("IVF8,PQ8x4fs(aniso=0.2),RFlat", 0.2)]
    [InlineData("IVF8,PQ8x4fsnr(aniso=0),Refine(SQ8)", 0.0)]
    [InlineData("IVF8,PQ8(aniso=0.35)", 0.35)]
    [InlineData("OPQ8,IVF8,PQ8x4(aniso=0.05)", 0.05)]
    public void SpecRoundTrips(string text, double threshold)
    {
        var spec = IvfSpec.Parse(text);
        Assert.Equal(threshold, spec.AnisotropicThreshold);
        Assert.Equal(text, spec.ToString());
        Assert.Equal(spec, IvfSpec.Parse(spec.ToString()));
        Assert.Null(IvfSpec.Parse("IVF8,PQ8x4fs,RFlat").AnisotropicThreshold);
        Assert.Equal("IVF8,PQ8x4fs(aniso=0.2),RFlat", IvfSpec.Parse("IVF8,PQ8x4fsr(aniso=0.2),RFlat").ToString());
    }

    [Theory]
    [InlineData("IVF8,PQ8x4fs(aniso=1),RFlat", "[0, 1)")]
    [InlineData("IVF8,PQ8x4fs(aniso=-0.1)", "[0, 1)")]
    [InlineData("IVF8,PQ8x4fs(aniso=abc)", "anisotropic threshold 'abc'")]
    [InlineData("IVF8,PQ8x4fs(aniso=)", "anisotropic threshold ''")]
    [InlineData("IVF8,PQ8x4fs(aniso=1e-1)", "anisotropic threshold '1e-1'")]
    [InlineData("IVF8,RaBitQ(aniso=0.2)", "unknown list encoding")]
    [InlineData("IVF8,Flat(aniso=0.2)", "unknown list encoding")]
    [InlineData("IVF8,PQ8x4fs(anisotropic=0.2)", "unknown list encoding")]
    public void BadSpecsAreRefusedByName(string text, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => IvfSpec.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TheDefaultDependsOnTheMetricAndL2RefusesAThreshold()
    {
        var spec = IvfSpec.Parse("IVF8,PQ8x4fs,RFlat");
        Assert.Null(spec.AnisotropicThresholdFor(Metric.InnerProduct)); // chosen when trained
        Assert.Null(spec.AnisotropicThresholdFor(Metric.Cosine));
        Assert.Equal(0, spec.AnisotropicThresholdFor(Metric.L2));
        Assert.Equal(0, IvfSpec.Parse("IVF8,Flat").AnisotropicThresholdFor(Metric.InnerProduct));
        Assert.Equal(0, IvfSpec.Parse("IVF8,PQ8x4fs(aniso=0)").AnisotropicThresholdFor(Metric.InnerProduct));
        Assert.Equal(0.3, IvfSpec.Parse("IVF8,PQ8x4fs(aniso=0.3)").AnisotropicThresholdFor(Metric.Cosine));
        Assert.Equal(0, IvfSpec.Parse("IVF8,PQ8x4fs(aniso=0)").AnisotropicThresholdFor(Metric.L2));
        var e = Assert.Throws<ArgumentException>(() => new IvfIndex("IVF8,PQ8x4fs(aniso=0.2)", 16, Metric.L2));
        Assert.Contains("not L2", e.Message);
        using var ok = new IvfIndex("IVF8,PQ8x4fs(aniso=0)", 16, Metric.L2);
        Assert.Equal("IVF8,PQ8x4fs(aniso=0)", ok.Description);
    }

    // An inner-product spec without a threshold picks one on its training rows: the candidate with the best sampled
    // shortlist recall (the smallest on ties), which is never worse than plain codes (T = 0) there; L2 keeps plain codes.
    [Fact]
    public void ASpecWithoutAThresholdChoosesOneOnItsTrainingData()
    {
        const int n = 6000, d = 32;
        var data = IvfTestData.Clustered(n, d, 40, seed: 61);
        Normalize(data, d);
        using var ip = new IvfIndex("IVF32,PQ16x4fs,RFlat", d, Metric.InnerProduct) { TrainingThreads = 1 };
        ip.Train(data);
        var recalls = ip.AnisotropicRecalls!;
        Assert.Equal(7, recalls.Length);
        int best = Array.IndexOf(recalls, recalls.Max());
        Assert.Equal(new[] { 0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3 }[best], ip.AnisotropicThreshold);
        Assert.True(recalls[best] >= recalls[0]);
        Assert.All(recalls, r => Assert.InRange(r, 0.05, 1.0));
        using var l2 = new IvfIndex("IVF32,PQ16x4fs,RFlat", d, Metric.L2) { TrainingThreads = 1 };
        l2.Train(data);
        Assert.Equal(0, l2.AnisotropicThreshold);
        Assert.Null(l2.AnisotropicRecalls);
        using var set = new IvfIndex("IVF32,PQ16x4fs(aniso=0.15),RFlat", d, Metric.InnerProduct) { TrainingThreads = 1 };
        set.Train(data);
        Assert.Equal(0.15, set.AnisotropicThreshold);
        Assert.Null(set.AnisotropicRecalls);
    }

    // Unit vectors, inner product, no refine: the keys are the codes' inner products, so the ranking is the codes'.
    // Score-aware codes rank better than plain ones (and stay above a floor against the exact index).
    [Theory]
    [InlineData("PQ16x4fs", Metric.InnerProduct)]
    [InlineData("PQ16x4fsnr", Metric.Cosine)]
    [InlineData("PQ8", Metric.InnerProduct)]
    public void AnisotropicCodesRankInnerProductsBetter(string codes, Metric metric)
    {
        const int n = 6000, d = 32, nq = 200, k = 10;
        var data = IvfTestData.Clustered(n, d, 40, seed: 41);
        var queries = IvfTestData.Clustered(nq, d, 40, seed: 42);
        if (metric == Metric.InnerProduct) { Normalize(data, d); Normalize(queries, d); }
        var ids = IvfTestData.Ids(n);
        var truth = IvfTestData.GroundTruth(data, ids, queries, d, k, metric);
        var p = new IvfSearchParameters { Probes = 8, Threads = 1 };
        double Recall(string spec)
        {
            using var index = IvfTestData.Build(spec, d, metric, data, ids);
            return IvfTestData.Recall(truth, IvfTestData.SearchLabels(index, queries, k, p), nq, k);
        }
        double aniso = Recall($"IVF32,{codes}(aniso=0.2)"), plain = Recall($"IVF32,{codes}(aniso=0)"), chosen = Recall($"IVF32,{codes}");
        Assert.True(chosen >= plain - 0.01, $"{codes} {metric}: recall@{k} with the chosen threshold {chosen:F4} vs plain {plain:F4}");
        Assert.True(aniso >= plain + 0.01, $"{codes} {metric}: recall@{k} anisotropic {aniso:F4} vs plain {plain:F4}");
        Assert.True(aniso >= 0.4, $"{codes} {metric}: recall@{k} {aniso:F4} below the floor");
        using var refined = IvfTestData.Build($"IVF32,{codes}(aniso=0.2),RFlat", d, metric, data, ids);
        double r = IvfTestData.Recall(truth, IvfTestData.SearchLabels(refined, queries, k, new IvfSearchParameters { Probes = 8, Threads = 1, RefineFactor = 8 }), nq, k);
        Assert.True(r >= 0.9, $"{codes},RFlat {metric}: recall@{k} {r:F4} below 0.9");
    }

    private static void Normalize(float[] x, int d)
    {
        for (int i = 0; i < x.Length / d; i++)
        {
            double s = 0;
            for (int e = 0; e < d; e++) s += (double)x[i * d + e] * x[i * d + e];
            for (int e = 0; e < d; e++) x[i * d + e] = (float)(x[i * d + e] / Math.Sqrt(s));
        }
    }

    [Fact]
    public void AThresholdSurvivesSaveAndLoadAndEncodesLaterAdditionsTheSameWay()
    {
        const int n = 2000, d = 32;
        var data = IvfTestData.Clustered(n, d, 20, seed: 51);
        Normalize(data, d);
        var ids = IvfTestData.Ids(n);
        string dir = Path.Combine(Path.GetTempPath(), "aniso-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using var index = new IvfIndex("IVF16,PQ8x4fs(aniso=0.3),RFlat", d, Metric.InnerProduct);
            index.Train(data);
            index.Add(data.AsSpan(0, 1000 * d), ids.AsSpan(0, 1000));
            string path = Path.Combine(dir, "a.ivf");
            index.Save(path);
            using var loaded = IvfIndex.Load(path);
            Assert.Equal("IVF16,PQ8x4fs(aniso=0.3),RFlat", loaded.Description);
            Assert.Equal(0.3, loaded.AnisotropicThreshold);
            index.Add(data.AsSpan(1000 * d), ids.AsSpan(1000));
            loaded.Add(data.AsSpan(1000 * d), ids.AsSpan(1000));
            var a = new float[d];
            var b = new float[d];
            for (long id = 1000; id < n; id++)
            {
                Assert.True(index.TryReconstruct(id, a));
                Assert.True(loaded.TryReconstruct(id, b));
                Assert.Equal(a, b);
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AChosenThresholdIsSavedAndABadOneIsCorruption(bool mapped)
    {
        const int n = 3000, d = 32;
        var data = IvfTestData.Clustered(n, d, 20, seed: 53);
        Normalize(data, d);
        string dir = Path.Combine(Path.GetTempPath(), "aniso-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using var index = IvfTestData.Build("IVF16,PQ16x4fs,RFlat", d, Metric.InnerProduct, data, IvfTestData.Ids(n));
            string path = Path.Combine(dir, "a.ivf");
            index.Save(path);
            using (var loaded = IvfIndex.Load(path, mapped: mapped))
            {
                Assert.Equal(index.AnisotropicThreshold, loaded.AnisotropicThreshold);
                Assert.Equal("IVF16,PQ16x4fs,RFlat", loaded.Description);
            }
            using var forced = IvfTestData.Build("IVF16,PQ16x4fs(aniso=0.2),RFlat", d, Metric.InnerProduct, data, IvfTestData.Ids(n));
            forced.Save(path);
            // The section's payload: the double 0.2 after the tag "ANIS" (the checksum is not updated: either check may fire).
            var bytes = File.ReadAllBytes(path);
            int tag = bytes.AsSpan().IndexOf("ANIS"u8), at = tag + bytes.AsSpan(tag).IndexOf(BitConverter.GetBytes(0.2));
            Assert.True(tag > 0 && at > tag);
            BitConverter.GetBytes(1.5).CopyTo(bytes, at);
            File.WriteAllBytes(path, bytes);
            Assert.ThrowsAny<IOException>(() => IvfIndex.Load(path, mapped: mapped));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
