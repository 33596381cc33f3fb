using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Quantization;
using Engine.Storage.Format;
using Xunit.Abstractions;

namespace Engine.Tests.Ivf;

/// <summary>
/// The OPQ rotation as the IVF index's front transform in front of every list encoding it is accepted for (Flat, PQ in
/// all its forms, BIN) and its refusal in front of RaBitQ: spec round trips, recall against the exact index, saved and
/// mapped loads, Verify, and a damaged ROT section.
/// </summary>
public class IvfOpqTests(ITestOutputHelper output)
{
    private const int N = 4000, D = 32, NQ = 100, K = 10;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 40, seed: 91);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 40, seed: 92);
    private static readonly long[] Ids = IvfTestData.Ids(N, 500);

    [Theory]
    [InlineData("OPQ8,IVF32,Flat", 8)]
    [InlineData("OPQ4,IVF32,PQ8", 8)]
    [InlineData("OPQ8,IVF32,PQ8x4", 4)]
    [InlineData("OPQ8,IVF32,PQ16x4fs", 4)]
    [InlineData("OPQ8,IVF32,PQ8x4fsnr,RFlat", 4)]
    [InlineData("OPQ8,IVF32,PQ8(aniso=0.2)", 8)]
    [InlineData("OPQ8,IVF32_HNSW16(soar),PQ8x4fs,Refine(SQ8)", 4)]
    [InlineData("OPQ8,IVF32,BIN2", 8)]
    [InlineData("OPQ16,IVF32,BIN4nr,Refine(F16)", 8)]
    public void OpqSpecsPrintBackAndTrainTheRotationWithTheirSubQuantizerBits(string spec, int opqBits)
    {
        var parsed = IvfSpec.Parse(spec);
        Assert.Equal(spec, parsed.ToString());
        Assert.Equal(parsed, IvfSpec.Parse(parsed.ToString()));
        Assert.Equal(opqBits, parsed.OpqBits);
        using var index = (IvfIndex)IndexFactory.Create(spec, D, spec.Contains("aniso", StringComparison.Ordinal) ? Metric.InnerProduct : Metric.L2);
        Assert.Equal(spec, index.Description);
        var rotation = Assert.IsType<OpqRotation>(index.Transform);
        Assert.Equal(parsed.OpqSubQuantizers, rotation.M);
        Assert.Equal(opqBits, rotation.Bits);
        Assert.Equal(0, IvfSpec.Parse(spec[(spec.IndexOf(',') + 1)..]).OpqBits);
    }

    [Theory]
    [InlineData("OPQ8,IVF32,RaBitQ")]
    [InlineData("OPQ8,IVF32,RaBitQ4")]
    [InlineData("OPQ8,IVF32,RaBitQfs1")]
    public void OpqInFrontOfRaBitQIsRefusedWithTheReason(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => IndexFactory.Create(spec, D, Metric.L2));
        Assert.Contains(spec, e.Message);
        Assert.Contains("random rotation", e.Message);
    }

    [Fact]
    public void TooFewRowsForTheRotationsSubQuantizersIsNamed()
    {
        using var index = new IvfIndex("OPQ8,IVF4,Flat", D);
        var e = Assert.Throws<ArgumentException>(() => index.Train(Data.AsSpan(0, 100 * D)));
        Assert.Contains("OPQ", e.Message);
        Assert.Contains("256", e.Message);
    }

    [Theory]
    [InlineData("OPQ8,IVF32,Flat", Metric.L2, 8, 0.97)]
    [InlineData("OPQ8,IVF32,Flat", Metric.Cosine, 8, 0.95)]
    [InlineData("OPQ8,IVF32,Flat", Metric.InnerProduct, 8, 0.95)]
    [InlineData("OPQ8,IVF32,BIN4", Metric.L2, 8, 0.6)]
    [InlineData("OPQ8,IVF32,BIN2,RFlat", Metric.L2, 8, 0.95)]
    [InlineData("OPQ8,IVF32,BIN4nr,Refine(SQ8)", Metric.L2, 8, 0.9)]
    [InlineData("OPQ8,IVF32,PQ8", Metric.L2, 8, 0.55)]
    [InlineData("OPQ8,IVF32,PQ16x4fs,RFlat", Metric.InnerProduct, 8, 0.9)]
    public void RecallAgainstTheExactIndexIsAboveTheFloor(string spec, Metric metric, int probes, double floor)
    {
        var truth = IvfTestData.GroundTruth(Data, Ids, Queries, D, K, metric);
        using var index = IvfTestData.Build(spec, D, metric, Data, Ids);
        var p = new IvfSearchParameters { Probes = probes, RefineFactor = IvfTestData.Refine(index, 8), Threads = 2 };
        double recall = IvfTestData.Recall(truth, IvfTestData.SearchLabels(index, Queries, K, p), NQ, K);
        // The same spec without the rotation, for the record (the rotation is what OPQ adds; the floor is on it).
        using var plain = IvfTestData.Build(spec[(spec.IndexOf(',') + 1)..], D, metric, Data, Ids);
        double without = IvfTestData.Recall(truth, IvfTestData.SearchLabels(plain, Queries, K, p), NQ, K);
        output.WriteLine($"{spec} {metric}: recall@{K} {recall:F3} (without OPQ {without:F3})");
        Assert.True(recall >= floor, $"{spec} {metric}: recall@{K} {recall:F3} < {floor}");
    }

    [Theory]
    [InlineData(Metric.L2)]
    [InlineData(Metric.Cosine)]
    public void FlatListsBehindTheRotationGiveExactDistancesAndVectorsBack(Metric metric)
    {
        using var index = IvfTestData.Build("OPQ8,IVF16,Flat", D, metric, Data, Ids);
        using var exact = new FlatIndex(D, metric);
        exact.Add(Data, Ids);
        // Every list probed: the exact neighbours, at their exact distances (the rotation preserves them), in one
        // query at a time and in a batch large enough for the list-major join.
        foreach (int nq in new[] { 1, NQ })
        {
            var d1 = new float[nq * K]; var l1 = new long[nq * K];
            var d2 = new float[nq * K]; var l2 = new long[nq * K];
            index.Search(Queries.AsSpan(0, nq * D), K, d1, l1, new IvfSearchParameters { Probes = 16, Threads = 1 });
            exact.Search(Queries.AsSpan(0, nq * D), K, d2, l2);
            Assert.True(IvfTestData.Recall(l2, l1, nq, K) >= 0.99, "all probes of OPQ Flat lists are not exact");
            for (int i = 0; i < d1.Length; i++)
                Assert.True(Math.Abs(d1[i] - d2[i]) <= 1e-4 * Math.Max(1, Math.Abs(d2[i])), $"distance {d1[i]} != exact {d2[i]}");
        }
        // Reconstruction rotates back: the stored vector (normalised for cosine).
        var v = new float[D];
        Assert.True(index.TryReconstruct(Ids[17], v));
        var x = Data.AsSpan(17 * D, D).ToArray();
        if (metric == Metric.Cosine) IvfIndex.Normalize(x);
        for (int i = 0; i < D; i++) Assert.Equal(x[i], v[i], 4);
    }

    [Theory]
    [InlineData("OPQ8,IVF16,Flat")]
    [InlineData("OPQ8,IVF16,BIN2,RFlat")]
    [InlineData("OPQ8,IVF16,PQ8x4fs")]
    public void VerifyIsCleanInMemoryAndAfterBothLoads(string spec)
    {
        using var dir = new IvfTestData.TempDir();
        using var index = IvfTestData.Build(spec, D, Metric.L2, Data, Ids);
        AssertClean(index.Verify());
        string path = dir.File("a.idx");
        index.Save(path);
        using var heap = IvfIndex.Load(path);
        using var mapped = IvfIndex.Load(path, mapped: true);
        AssertClean(heap.Verify());
        AssertClean(mapped.Verify());
        var rotation = Assert.IsType<OpqRotation>(heap.Transform);
        Assert.Equal(((OpqRotation)index.Transform!).Matrix.ToArray(), rotation.Matrix.ToArray());
    }

    [Fact]
    public void AnUntrainedIndexWithARotationSavesAndLoadsWithoutALearntRotation()
    {
        using var dir = new IvfTestData.TempDir();
        using (var untrained = new IvfIndex("OPQ8,IVF16,BIN2", D)) untrained.Save(dir.File("u.idx"));
        using var loaded = IvfIndex.Load(dir.File("u.idx"));
        Assert.False(loaded.IsTrained);
        Assert.False(loaded.Transform!.IsTrained);
        Assert.Throws<InvalidOperationException>(() => loaded.Search(Queries.AsSpan(0, D), K, new float[K], new long[K]));
        loaded.Train(Data);
        Assert.True(loaded.Transform.IsTrained);
        loaded.Add(Data, Ids);
        Assert.True(loaded.Verify().IsClean);
    }

    public static TheoryData<string, int, string> Damage => new()
    {
        { "OPQ8,IVF16,Flat", 0, "not finite" },
        { "OPQ8,IVF16,Flat", 1, "not orthogonal" },
        { "OPQ8,IVF16,BIN2", 1, "not orthogonal" },
        { "OPQ8,IVF16,PQ8x4fs", 1, "not orthogonal" },
        { "OPQ8,IVF16,BIN2", 2, "ROT " },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void ADamagedRotationWithValidChecksumsIsCorruption(string spec, int damage, string says)
    {
        using var dir = new IvfTestData.TempDir();
        using var index = IvfTestData.Build(spec, D, Metric.L2, Data, Ids);
        string good = dir.File("good.idx"), bad = dir.File("bad.idx");
        index.Save(good);
        long rotAt = RewriteRotation(good, bad, damage);
        foreach (bool mapped in new[] { false, true })
        {
            var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(bad, mapped: mapped));
            Assert.Contains(says, e.Message);
            Assert.Equal(bad, e.FilePath);
            if (damage < 2) Assert.Equal(rotAt, e.Offset);
        }
        Assert.Throws<CorruptIndexException>(() => IndexFactory.Load(bad));
    }

    // Copies an IVF file section by section (fresh checksums) with its ROT section damaged: 0 = a NaN entry, 1 = an
    // entry moved by 0.5 (finite, no longer orthogonal), 2 = one float short. Returns ROT's payload offset in the copy.
    private static long RewriteRotation(string from, string to, int damage)
    {
        using (var r = new IndexFileReader(from, IvfIndex.FileKind))
        using (var w = new IndexFileWriter(to, r.Header))
        {
            while (r.PeekTag() is { } tag && tag != IndexFile.EndTag)
            {
                var payload = r.ReadSection(tag);
                if (tag == "ROT ")
                {
                    var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(payload).ToArray();
                    Assert.Equal(D * D, f.Length);
                    if (damage == 0) f[3 * D + 5] = float.NaN;
                    else if (damage == 1) f[3 * D + 5] += 0.5f;
                    else f = f[..^1];
                    payload = System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan()).ToArray();
                }
                w.WriteSection(tag, payload);
            }
            w.Commit();
        }
        using var check = new IndexFileReader(to, IvfIndex.FileKind);
        while (check.PeekTag() is { } t && t != "ROT ") check.ReadSection(t);
        check.ReadSection("ROT ");
        return check.PayloadOffset("ROT ");
    }

    private static void AssertClean(VerifyReport report) =>
        Assert.True(report.IsClean, $"{report.ProblemCount} problems: " + string.Join("; ", report.Problems));
}
