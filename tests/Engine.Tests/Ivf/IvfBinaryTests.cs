using System.Runtime.InteropServices;
using Engine.Index;
using Engine.Index.Ivf;
using Engine.Quantization;
using Engine.Storage.Format;
using Engine.Tests.Support;

namespace Engine.Tests.Ivf;

/// <summary>IVF with multi-bit binary lists (<c>BIN{b}</c>, <c>BIN{b}nr</c>): specs, recall floors, residual vs raw,
/// persistence (heap and mapped), the BINP section's corruption.</summary>
public class IvfBinaryTests
{
    private const int N = 4000, D = 48, NQ = 150, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 40, seed: 71);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 40, seed: 72);
    private static readonly long[] Ids = IvfTestData.Ids(N, 900);

    private static IvfIndex Build(string spec, Metric metric) => IvfTestData.Build(spec, D, metric, Data, Ids);

    private static double Recall(IvfIndex index, Metric metric, int probes, int refine)
    {
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, metric);
        var got = IvfTestData.SearchLabels(index, Queries, K, new IvfSearchParameters { Probes = probes, RefineFactor = refine, Threads = 2 });
        return IvfTestData.Recall(truth, got, NQ, K);
    }

    [Theory]
    [InlineData("IVF64,BIN1", 1, true)]
    [InlineData("IVF64,BIN4", 4, true)]
    [InlineData("IVF64,BIN2nr", 2, false)]
    [InlineData("IVF64,BIN1,RFlat", 1, true)]
    [InlineData("IVF64,BIN3nr,Refine(SQ8)", 3, false)]
    [InlineData("IVF64_HNSW16,BIN2,Refine(F16)", 2, true)]
    public void SpecsRoundTrip(string spec, int bits, bool residual)
    {
        var parsed = IvfSpec.Parse(spec);
        Assert.Equal(spec, parsed.ToString());
        Assert.Equal(IvfListEncoding.Binary, parsed.Encoding);
        Assert.Equal(bits, parsed.Bits);
        Assert.Equal(residual, parsed.ByResidual);
        Assert.Equal(IvfSpec.Parse(parsed.ToString()), parsed);
        using var created = IndexFactory.Create(spec, D, Metric.L2);
        Assert.Equal(spec, created.Description);
        Assert.Equal(bits * 8 + 8, ((IvfIndex)created).Codec.CodeSize); // d = 48: one 64-bit word per plane + 2 floats
    }

    [Theory]
    [InlineData("IVF64,BIN0", "1..4")]
    [InlineData("IVF64,BIN5", "1..4")]
    [InlineData("IVF64,BIN", "unknown list encoding")]
    [InlineData("IVF64,BIN2r", "unknown list encoding")]
    [InlineData("IVF64,BIN2x4", "unknown list encoding")]
    [InlineData("IVF64,BIN2,Refine(PQ)", "refine")]
    public void BadSpecsGiveClearErrors(string spec, string says)
    {
        var e = Assert.Throws<ArgumentException>(() => IvfSpec.Parse(spec));
        Assert.Contains(says, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(spec, e.Message);
        Assert.Throws<ArgumentException>(() => IndexFactory.Create(spec, D, Metric.L2));
    }

    [Theory]
    [InlineData("IVF64,BIN1", Metric.L2, 16, 1, 0.30)]
    [InlineData("IVF64,BIN4", Metric.L2, 16, 1, 0.70)]
    [InlineData("IVF64,BIN2nr", Metric.L2, 16, 1, 0.35)]
    [InlineData("IVF64,BIN1,RFlat", Metric.L2, 16, 16, 0.95)]
    [InlineData("IVF64,BIN2,Refine(Flat)", Metric.L2, 16, 8, 0.95)]
    [InlineData("IVF64,BIN2nr,RFlat", Metric.L2, 16, 8, 0.93)]
    [InlineData("IVF64,BIN4,Refine(SQ8)", Metric.L2, 16, 4, 0.93)]
    [InlineData("IVF64,BIN2", Metric.InnerProduct, 16, 1, 0.40)]
    [InlineData("IVF64,BIN1,RFlat", Metric.InnerProduct, 16, 16, 0.93)]
    [InlineData("IVF64,BIN3nr,RFlat", Metric.InnerProduct, 16, 8, 0.93)]
    [InlineData("IVF64,BIN2", Metric.Cosine, 16, 1, 0.40)]
    [InlineData("IVF64,BIN1,RFlat", Metric.Cosine, 16, 16, 0.95)]
    [InlineData("IVF64_HNSW16,BIN2,RFlat", Metric.L2, 16, 8, 0.95)]
    public void RecallAgainstTheExactIndexIsAboveTheFloor(string spec, Metric metric, int probes, int refine, double floor)
    {
        using var index = Build(spec, metric);
        double recall = Recall(index, metric, probes, refine);
        Assert.True(recall >= floor, $"{spec} {metric}: recall@{K} {recall:F3} < {floor}");
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.InnerProduct)]
    public void MoreBitsNeverLoseRecallAndRefineRecoversTheExactTopK(Metric metric)
    {
        double previous = 0;
        foreach (int b in new[] { 1, 2, 3, 4 })
        {
            using var index = Build($"IVF32,BIN{b}", metric);
            double r = Recall(index, metric, 32, 1);
            Assert.True(r >= previous - 0.02, $"BIN{b} {metric}: recall {r:F3} below BIN{b - 1}'s {previous:F3}");
            previous = r;
        }
        // Every list probed, a deep refine: the exact top k.
        using var refined = Build("IVF32,BIN2,RFlat", metric);
        Assert.True(Recall(refined, metric, 32, 32) >= 0.99);
    }

    [Fact]
    public void ResidualAndRawKeysAreTheEstimatorsOnTheReconstructions()
    {
        // Without refine the reported distance of a hit is its key; for L2 it must be close to the exact distance to
        // the code's reconstruction (centroid + decoded residual), which TryReconstruct returns.
        foreach (string spec in new[] { "IVF16,BIN4", "IVF16,BIN4nr" })
        {
            using var index = Build(spec, Metric.L2);
            var dist = new float[K];
            var lab = new long[K];
            var rec = new float[D];
            double worst = 0;
            for (int q = 0; q < 20; q++)
            {
                index.Search(Queries.AsSpan(q * D, D), K, dist, lab, new IvfSearchParameters { Probes = 16 });
                for (int i = 0; i < K; i++)
                {
                    Assert.True(index.TryReconstruct(lab[i], rec));
                    double exact = 0;
                    for (int j = 0; j < D; j++) exact += (Queries[q * D + j] - rec[j]) * (double)(Queries[q * D + j] - rec[j]);
                    worst = Math.Max(worst, Math.Abs(dist[i] - exact) / Math.Max(exact, 1e-3));
                }
            }
            Assert.True(worst < 0.25, $"{spec}: key vs exact distance to the reconstruction, worst relative gap {worst:F3}");
        }
    }

    [Theory]
    [InlineData("IVF32,BIN2,RFlat", Metric.L2)]
    [InlineData("IVF32,BIN3nr", Metric.Cosine)]
    [InlineData("IVF32,BIN1,Refine(SQ8)", Metric.InnerProduct)]
    public void MappedLoadEqualsHeapLoadEqualsTheSavedIndex(string spec, Metric metric)
    {
        using var dir = new IvfTestData.TempDir();
        using var index = Build(spec, metric);
        Assert.Equal(2, index.Remove([901, 1777]));
        string path = dir.File("b.idx");
        index.Save(path);
        var p = new IvfSearchParameters { Probes = 8, RefineFactor = IvfTestData.Refine(index, 4), Threads = 1 };
        var (d0, l0) = Search(index, p);
        using var heap = IvfIndex.Load(path, expectedSpec: spec);
        using var mapped = IvfIndex.Load(path, mapped: true);
        Assert.True(mapped.IsMapped);
        Assert.Equal(index.Count, heap.Count);
        var (d1, l1) = Search(heap, p);
        var (d2, l2) = Search(mapped, p);
        Assert.Equal(l0, l1);
        Assert.Equal(l0, l2);
        Assert.Equal(d0, d1);
        Assert.Equal(d0, d2);
        Assert.DoesNotContain(901L, l1);
        Assert.True(mapped.Verify().IsClean);
        mapped.Add(Data.AsSpan(0, D), [1]);
        Assert.True(mapped.Contains(1));
    }

    [Fact]
    public void AnUntrainedIndexSavesAndLoadsWithAnEmptySection()
    {
        using var dir = new IvfTestData.TempDir();
        using var index = (IvfIndex)IndexFactory.Create("IVF8,BIN2", D, Metric.L2);
        string path = dir.File("u.idx");
        index.Save(path);
        Assert.Empty(IndexFileEditor.Read(path, "BINP"));
        using var loaded = IvfIndex.Load(path);
        Assert.False(loaded.IsTrained);
        loaded.Train(Data);
        loaded.Add(Data, Ids);
        Assert.True(Recall(loaded, Metric.L2, 8, 1) > 0.3);
    }

    /// <summary>An index saved untrained and loaded trains its coarse centroids by k-means, as it would have before the
    /// save: the loader took the file's (zero) centroids for supplied ones, Train kept them, and every vector went to
    /// list 0. Centroids supplied with UseCentroids before the save are still kept.</summary>
    [Fact]
    public void AnIndexSavedUntrained_TrainsItsCentroidsAfterTheLoad_AndKeepsSuppliedOnes()
    {
        using var dir = new IvfTestData.TempDir();
        using var direct = (IvfIndex)IndexFactory.Create("IVF8,Flat", D, Metric.L2);
        direct.Train(Data);
        direct.Add(Data, Ids);
        using (var untrained = (IvfIndex)IndexFactory.Create("IVF8,Flat", D, Metric.L2)) untrained.Save(dir.File("u.idx"));
        using var loaded = IvfIndex.Load(dir.File("u.idx"));
        loaded.Train(Data);
        loaded.Add(Data, Ids);
        Assert.Equal(Recall(direct, Metric.L2, 2, 1), Recall(loaded, Metric.L2, 2, 1));
        Assert.True(Recall(loaded, Metric.L2, 2, 1) > 0.5);

        var supplied = new float[8 * D];
        for (int i = 0; i < supplied.Length; i++) supplied[i] = Data[i % Data.Length];
        using (var withCentroids = (IvfIndex)IndexFactory.Create("IVF8,Flat", D, Metric.L2))
        {
            withCentroids.UseCentroids(supplied);
            withCentroids.Save(dir.File("s.idx"));
        }
        using var kept = IvfIndex.Load(dir.File("s.idx"));
        kept.Train(Data);
        Assert.Equal(supplied, kept.CentroidArray());
    }

    [Fact]
    public void TheBinarySectionIsCheckedOnLoad()
    {
        using var dir = new IvfTestData.TempDir();
        using var index = Build("IVF16,BIN3,RFlat", Metric.L2);
        string good = dir.File("good.idx");
        index.Save(good);
        Assert.Equal((D + 3 * D) * sizeof(float), IndexFileEditor.Read(good, "BINP").Length); // d means, b × d scales

        // A file written before per-dimension scales (d means, b stage scales) still loads, each stage scale for
        // every dimension; a section of any other length is refused by name.
        var binp = MemoryMarshal.Cast<byte, float>(IndexFileEditor.Read(good, "BINP")).ToArray();
        string legacy = dir.File("legacy.idx");
        File.Copy(good, legacy);
        IndexFileEditor.Replace(legacy, "BINP", MemoryMarshal.AsBytes<float>([.. binp.AsSpan(0, D), 2f, 1f, 0.5f]).ToArray());
        using (var old = IvfIndex.Load(legacy))
        {
            var q = IvfTestData.Clustered(3, D, 4, 77);
            var (dist, lab) = (new float[30], new long[30]);
            old.Search(q, 10, dist, lab); // searches with the uniform scales
            Assert.All(lab, id => Assert.True(id >= 0));
        }
        string shortFile = dir.File("short.idx");
        File.Copy(good, shortFile);
        IndexFileEditor.Replace(shortFile, "BINP", MemoryMarshal.AsBytes<float>([.. binp.AsSpan(0, D + 2)]).ToArray());
        var bad = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(shortFile));
        Assert.Contains("BINP", bad.Message);

        // A flipped byte: the section's checksum.
        string flipped = dir.File("flip.idx");
        var bytes = File.ReadAllBytes(good);
        var section = IndexFileEditor.Sections(bytes).Single(s => s.Tag == "BINP");
        bytes[section.Payload + 8] ^= 0x10;
        File.WriteAllBytes(flipped, bytes);
        var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(flipped));
        Assert.Contains("checksum", e.Message);

        // Re-sealed damage the checksum cannot see: a negative stage scale, a non-finite mean.
        string scale = dir.File("scale.idx");
        File.Copy(good, scale);
        IndexFileEditor.Set(scale, "BINP", D + 1, -1f);
        e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(scale, mapped: true));
        Assert.Contains("binary codec", e.Message);
        string mean = dir.File("mean.idx");
        File.Copy(good, mean);
        IndexFileEditor.Set(mean, "BINP", 3, float.NaN);
        e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(mean));
        Assert.Contains("not finite", e.Message);

        // The layout version must fit the encoding (binary lists are version 4; a 2 or a 3 is refused).
        foreach (int v in new[] { 2, 3 })
        {
            string version = dir.File($"version{v}.idx");
            File.Copy(good, version);
            IndexFileEditor.Set(version, "IVER", 0, v);
            Assert.Throws<IndexFormatException>(() => IvfIndex.Load(version));
        }
        // And a PQ file claiming version 4 is refused too.
        using var pq = Build("IVF16,PQ8", Metric.L2);
        string pqPath = dir.File("pq.idx");
        pq.Save(pqPath);
        IndexFileEditor.Set(pqPath, "IVER", 0, IvfIndex.BinaryLayoutVersion);
        Assert.Throws<IndexFormatException>(() => IvfIndex.Load(pqPath));
    }

    [Fact]
    public void TheCodecIsACompleteVectorCodecForOtherListIndexes()
    {
        // What SPANN (or any other list index) needs of the codec seam: train, encode, decode, estimators by metric.
        IVectorCodec codec = new BinaryCodec(D, 2);
        Assert.False(codec.IsTrained);
        Assert.Throws<InvalidOperationException>(() => codec.CreateEstimator(Metric.L2));
        codec.Train(Data, seed: 5, threads: 1);
        var codes = new byte[4 * codec.CodeSize];
        codec.Encode(Data.AsSpan(0, 4 * D), codes);
        var back = new float[4 * D];
        codec.Decode(codes, back);
        var est = codec.CreateEstimator(Metric.L2);
        est.SetQuery(back.AsSpan(0, D));
        float self = est.Distance(codes.AsSpan(0, codec.CodeSize));
        float other = est.Distance(codes.AsSpan(3 * codec.CodeSize, codec.CodeSize));
        Assert.True(self < other, $"a code's own reconstruction {self} should be nearer than another code {other}");
    }

    private static (float[], long[]) Search(IvfIndex index, SearchParameters p)
    {
        var dist = new float[NQ * K];
        var lab = new long[NQ * K];
        index.Search(Queries, K, dist, lab, p);
        return (dist, lab);
    }
}
