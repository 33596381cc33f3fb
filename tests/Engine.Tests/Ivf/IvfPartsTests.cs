using Engine.Index.Flat;
using Engine.Index.Hnsw;
using Engine.Index.Ivf;
using Engine.Index.Lists;
using Engine.Index.Spann;
using Engine.Quantization;

namespace Engine.Tests.Ivf;

/// <summary>
/// The parts the IVF index is assembled from, each on its own: codecs and their per-query estimators against a
/// double-precision reference, the transform in front of a codec, code layouts, the inverted lists' backings, a coarse
/// quantizer served by another index, and the rejection of another index family's search parameters.
/// </summary>
public class IvfPartsTests
{
    private const int D = 32, N = 2000;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 20, seed: 81);
    private static readonly float[] Queries = IvfTestData.Clustered(20, D, 20, seed: 82);

    public static TheoryData<string> CodecNames() => new() { "Flat", "F16", "SQ8", "PQ8", "PQ8x4", "PQ8x4fs", "OPQ8+PQ8" };

    private static IVectorCodec MakeCodec(string name)
    {
        IVectorCodec codec = name switch
        {
            "Flat" => new VectorCodec(D, VectorEncoding.Flat),
            "F16" => new VectorCodec(D, VectorEncoding.F16),
            "SQ8" => new VectorCodec(D, VectorEncoding.SQ8),
            "PQ8" => new ProductQuantizer(D, 8, 8),
            "PQ8x4" => new ProductQuantizer(D, 8, 4),
            "PQ8x4fs" => new PQ4FastScanCodec(D, 8),
            _ => MakeOpq(),
        };
        codec.Train(Data, seed: 3, threads: 1);
        Assert.True(codec.IsTrained);
        return codec;
    }

    private static TransformedCodec MakeOpq()
    {
        var opq = new OpqRotation(D, 8);
        opq.Train(Data, bits: 8, seed: 3, threads: 1, iterations: 2);
        return new TransformedCodec(opq, new ProductQuantizer(D, 8, 8));
    }

    [Theory]
    [InlineData(VectorEncoding.Flat)]
    [InlineData(VectorEncoding.F16)]
    [InlineData(VectorEncoding.SQ8)]
    public void PreparedRefineKeyMatchesTheKeyAndADoubleReference(VectorEncoding encoding)
    {
        // Re-ranking prepares the query once per query (SQ8: q − min, or q × step and ⟨q, min⟩) and scores every
        // candidate from that form: it must give the key Key gives, i.e. the distance to the decoded vector.
        var codec = new VectorCodec(D, encoding);
        codec.Train(Data);
        var codes = new byte[N * codec.CodeSize];
        codec.Encode(Data, codes);
        var decoded = new float[N * D];
        codec.Decode(codes, decoded);
        var prepared = new float[D];
        var scratch = new float[D];
        foreach (bool ip in new[] { false, true })
            for (int qi = 0; qi < 5; qi++)
            {
                var q = Queries.AsSpan(qi * D, D);
                float constant = codec.Prepare(q, ip, prepared);
                for (int i = 0; i < N; i += 17)
                {
                    var code = codes.AsSpan(i * codec.CodeSize, codec.CodeSize);
                    double reference = 0;
                    for (int j = 0; j < D; j++)
                    {
                        double x = decoded[i * D + j], y = q[j];
                        reference += ip ? -x * y : (x - y) * (x - y);
                    }
                    float got = codec.PreparedKey(q, prepared, constant, code, ip, scratch);
                    float key = codec.Key(q, code, ip, scratch);
                    double tol = 1e-4 * Math.Max(1, Math.Abs(reference));
                    Assert.True(Math.Abs(got - reference) <= tol, $"{encoding} ip={ip}: prepared key {got} vs reference {reference} (row {i})");
                    Assert.True(Math.Abs(got - key) <= tol, $"{encoding} ip={ip}: prepared key {got} vs key {key} (row {i})");
                }
            }
    }

    [Theory]
    [MemberData(nameof(CodecNames))]
    public void EstimatorMatchesADoubleReferenceOnTheDecodedVector(string name)
    {
        var codec = MakeCodec(name);
        var codes = new byte[N * codec.CodeSize];
        codec.Encode(Data, codes);
        var decoded = new float[N * D];
        codec.Decode(codes, decoded);
        foreach (var metric in new[] { Metric.L2, Metric.InnerProduct })
        {
            var est = codec.CreateEstimator(metric);
            for (int qi = 0; qi < 5; qi++)
            {
                var q = Queries.AsSpan(qi * D, D);
                est.SetQuery(q);
                for (int i = 0; i < N; i += 37)
                {
                    double reference = 0;
                    for (int j = 0; j < D; j++)
                    {
                        double x = decoded[i * D + j], y = q[j];
                        reference += metric == Metric.L2 ? (x - y) * (x - y) : -x * y;
                    }
                    float got = est.Distance(codes.AsSpan(i * codec.CodeSize, codec.CodeSize));
                    Assert.True(Math.Abs(got - reference) <= 1e-4 * Math.Max(1, Math.Abs(reference)),
                        $"{name} {metric}: estimate {got} vs reference {reference} (row {i})");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(CodecNames))]
    public void DecodingStaysCloseToTheInput(string name)
    {
        var codec = MakeCodec(name);
        var codes = new byte[N * codec.CodeSize];
        codec.Encode(Data, codes);
        var decoded = new float[N * D];
        codec.Decode(codes, decoded);
        double err = 0, energy = 0;
        for (int i = 0; i < Data.Length; i++)
        {
            err += (Data[i] - decoded[i]) * (double)(Data[i] - decoded[i]);
            energy += Data[i] * (double)Data[i];
        }
        double bound = name switch { "Flat" => 0, "F16" => 1e-6, "SQ8" => 5e-4, "PQ8x4" or "PQ8x4fs" => 0.2, _ => 0.1 };
        Assert.True(err <= bound * energy, $"{name}: relative squared error {err / energy} above {bound}");
        // One row at a time gives the same codes as the batch.
        var one = new byte[codec.CodeSize];
        codec.Encode(Data.AsSpan(5 * D, D), one);
        Assert.Equal(codes.AsSpan(5 * codec.CodeSize, codec.CodeSize).ToArray(), one);
    }

    [Fact]
    public void TransformedCodecNeedsATransformOfTheSameDimensionAndTrainsAnUntrainedOne()
    {
        Assert.Throws<ArgumentException>(() => new TransformedCodec(new OpqRotation(16, 4), new ProductQuantizer(D, 8, 8)));
        var untrained = new TransformedCodec(new OpqRotation(D, 8), new ProductQuantizer(D, 8, 8));
        Assert.False(untrained.IsTrained);
        // Nothing can be encoded before training: the rotation is not learnt yet.
        Assert.Throws<InvalidOperationException>(() => untrained.Encode(Data.AsSpan(0, D), new byte[untrained.CodeSize]));
        // Training learns the rotation first (a learnt transform), then the codec in the rotated space: the same
        // codes as training the rotation by hand with its own settings, then the codec behind it.
        untrained.Train(Data, 3, 1);
        Assert.True(untrained.IsTrained);
        var byHand = new OpqRotation(D, 8);
        byHand.Train(Data, 3, 1);
        var manual = new TransformedCodec(byHand, new ProductQuantizer(D, 8, 8));
        manual.Train(Data, 3, 1);
        var a = new byte[N * untrained.CodeSize];
        var b = new byte[N * manual.CodeSize];
        untrained.Encode(Data, a);
        manual.Encode(Data, b);
        Assert.Equal(b, a);
        // A transform that is not learnt and not trained cannot be trained through the codec.
        Assert.Throws<InvalidOperationException>(() => new TransformedCodec(new UntrainedTransform(D), new ProductQuantizer(D, 8, 8)).Train(Data, 1, 1));
    }

    private sealed class UntrainedTransform(int d) : IVectorTransform
    {
        public int Dimension => d;
        public bool IsTrained => false;
        public void Apply(ReadOnlySpan<float> x, Span<float> y) => x.CopyTo(y);
        public void Revert(ReadOnlySpan<float> y, Span<float> x) => y.CopyTo(x);
    }

    [Fact]
    public void CodeLayoutsWriteReadMoveAndClearRows()
    {
        var rng = new Random(4);
        foreach (CodeLayout layout in new CodeLayout[] { CodeLayout.Rows(6), new FastScanBlockLayout(6) })
        {
            const int Rows = 70;
            var storage = new byte[layout.Bytes(96)];
            var codes = new byte[Rows][];
            for (int r = 0; r < Rows; r++)
            {
                codes[r] = Enumerable.Range(0, 6).Select(_ => (byte)rng.Next(16)).ToArray();
                layout.Write(storage, r, codes[r]);
            }
            var got = new byte[Math.Max(6, layout.ScratchBytes)];
            for (int r = 0; r < Rows; r++)
            {
                layout.Read(storage, r, got);
                Assert.Equal(codes[r], got.AsSpan(0, 6).ToArray());
            }
            var scratch = new byte[layout.ScratchBytes];
            layout.Move(storage, Rows - 1, 3, scratch);
            layout.Clear(storage, Rows - 1);
            layout.Read(storage, 3, got);
            Assert.Equal(codes[Rows - 1], got.AsSpan(0, 6).ToArray());
            layout.Read(storage, 2, got);
            Assert.Equal(codes[2], got.AsSpan(0, 6).ToArray());
        }
        Assert.Equal(2 * PQ4FastScan.BlockBytes(6), new FastScanBlockLayout(6).Bytes(33));
        Assert.Equal(33 * 6, CodeLayout.Rows(6).Bytes(33));
    }

    [Fact]
    public unsafe void MappedListsAreCopiedBeforeAnyWrite()
    {
        var lists = new InvertedLists(2, CodeLayout.Rows(4), refineSize: 2);
        long[] ids = [7, 8, 9];
        double[] attrs = [1, 2, 3];
        byte[] codes = Enumerable.Range(0, 12).Select(i => (byte)i).ToArray();
        byte[] refine = [1, 2, 3, 4, 5, 6];
        fixed (long* pi = ids)
        fixed (double* pa = attrs)
        fixed (byte* pc = codes)
        fixed (byte* pr = refine)
        {
            lists.Map(1, 3, pi, pa, pc, codes.Length, pr, refine.Length);
            Assert.IsType<MappedInvertedList>(lists[1]);
            Assert.Equal(ids, lists[1].Ids.ToArray());
            Assert.Equal(12 + 6 + 3 * 16, lists[1].MappedBytes);
            Assert.Throws<InvalidOperationException>(() => lists.Owned(1));
            var heap = lists.Writable(1, 5);
            Assert.Same(heap, lists[1]);
            heap.OwnedIds[0] = 70;
            heap.OwnedCodes[0] = 99;
            Assert.Equal(7, ids[0]); // the mapping is never written
            Assert.Equal(0, codes[0]);
            Assert.Equal([70L, 8, 9], lists[1].Ids.ToArray());
            Assert.Equal(refine, lists[1].Refine[..6].ToArray());
            Assert.Equal(0, lists[1].MappedBytes);
            Assert.True(heap.OwnedIds.Length >= 5 && heap.OwnedIds.Length % 32 == 0);
        }
        lists.Release();
        Assert.All(lists, l => Assert.Equal(0, l.Count));
    }

    [Theory]
    [InlineData("IVF32,Flat", Metric.L2)]
    [InlineData("IVF32,PQ8x4fs,RFlat", Metric.L2)]
    [InlineData("IVF32,PQ8", Metric.InnerProduct)]
    public void AnotherIndexCanServeAsTheCoarseQuantizer(string spec, Metric metric)
    {
        var ids = IvfTestData.Ids(N);
        using var reference = new IvfIndex(spec, D, metric) { TrainingSeed = 2, TrainingThreads = 1 };
        reference.Train(Data);
        reference.Add(Data, ids);
        using var viaIndex = new IvfIndex(spec, D, metric) { TrainingSeed = 2, TrainingThreads = 1 };
        viaIndex.Train(Data);
        // The same centroids, answered by an exact FlatIndex (ids 0..nlist-1) instead of the built-in scan.
        var centroids = new float[32 * D];
        using var quantizerIndex = new FlatIndex(D, metric);
        var flat = (FlatCoarseQuantizer)typeof(IvfIndex).GetField("_flatQuantizer", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(viaIndex)!;
        flat.Centroids.CopyTo(centroids, 0);
        quantizerIndex.Add(centroids, IvfTestData.Ids(32));
        viaIndex.UseCoarseQuantizer(new IndexCoarseQuantizer(quantizerIndex));
        viaIndex.Add(Data, ids);
        Assert.Equal(reference.ListSizes().Sum(), viaIndex.ListSizes().Sum());
        // The probes: same lists, keys equal up to rounding (the FlatIndex computes direct distances, the built-in scan
        // the norm decomposition).
        var adapter = new IndexCoarseQuantizer(quantizerIndex);
        var scratch = new IvfScratch(D, 0, device => device ? null : new FlatListScanner(D, metric));
        scratch.Ensure(20, 32, 4, 10);
        var (k1, l1, k2, l2) = (new float[80], new long[80], new float[80], new long[80]);
        flat.Search(Queries, 20, 4, k1, l1, scratch);
        adapter.Search(Queries, 20, 4, k2, l2, scratch);
        Assert.True(l1.Zip(l2).Count(p => p.First == p.Second) >= 76, "probe lists differ");
        for (int i = 0; i < 80; i++) Assert.True(Math.Abs(k1[i] - k2[i]) <= 1e-3 * Math.Max(1, Math.Abs(k1[i])), $"probe key {k2[i]} vs {k1[i]}");
        var p = new IvfSearchParameters { Probes = 4, RefineFactor = IvfTestData.Refine(viaIndex, 2), Threads = 1 };
        var want = IvfTestData.SearchLabels(reference, Queries, 10, p);
        var got = IvfTestData.SearchLabels(viaIndex, Queries, 10, p);
        var truth = IvfTestData.GroundTruth(Data, ids, Queries, D, 10, metric);
        double r1 = IvfTestData.Recall(truth, want, 20, 10), r2 = IvfTestData.Recall(truth, got, 20, 10);
        Assert.True(r2 >= r1 - 0.02, $"recall {r2} through the index quantizer vs {r1} built in");
        Assert.True(IvfTestData.Recall(want, got, 20, 10) >= 0.9, $"agreement with the built-in quantizer {IvfTestData.Recall(want, got, 20, 10)}");
    }

    [Fact]
    public void AQuantizerIndexMustHoldTheCentroidsUnderIds0ToN()
    {
        using var wrongIds = new FlatIndex(D);
        wrongIds.Add(Data.AsSpan(0, 4 * D), [10, 11, 12, 13]);
        Assert.Throws<ArgumentException>(() => new IndexCoarseQuantizer(wrongIds));
        using var empty = new FlatIndex(D);
        Assert.Throws<ArgumentException>(() => new IndexCoarseQuantizer(empty));
        using var ivf = new IvfIndex("IVF8,Flat", D);
        ivf.Train(Data);
        using var five = new FlatIndex(D);
        five.Add(Data.AsSpan(0, 5 * D), IvfTestData.Ids(5));
        Assert.Throws<ArgumentException>(() => ivf.UseCoarseQuantizer(new IndexCoarseQuantizer(five)));
    }

    [Fact]
    public void SearchParametersOfAnotherIndexFamilyAreRejected()
    {
        var ids = IvfTestData.Ids(N);
        using var flat = new FlatIndex(D);
        flat.Add(Data, ids);
        using var ivf = new IvfIndex("IVF16,Flat", D);
        ivf.Train(Data);
        ivf.Add(Data, ids);
        using var hnsw = new HnswIndex("HNSW16", D, Metric.L2);
        hnsw.Add(Data.AsSpan(0, 200 * D), ids.AsSpan(0, 200));
        var dist = new float[10];
        var lab = new long[10];
        var q = Queries.AsSpan(0, D).ToArray();
        var e = Assert.Throws<ArgumentException>(() => flat.Search(q, 10, dist, lab, new IvfSearchParameters { Probes = 4 }));
        Assert.Contains("IvfSearchParameters", e.Message);
        Assert.Equal("parameters", e.ParamName);
        Assert.Throws<ArgumentException>(() => flat.Search(q, 10, dist, lab, new HnswSearchParameters { Ef = 20 }));
        Assert.Throws<ArgumentException>(() => ivf.Search(q, 10, dist, lab, new HnswSearchParameters { Ef = 20 }));
        Assert.Throws<ArgumentException>(() => ivf.Search(q, 10, dist, lab, new SpannSearchParameters { Probes = 4 }));
        Assert.Throws<ArgumentException>(() => hnsw.Search(q, 10, dist, lab, new IvfSearchParameters { Probes = 4 }));
        Assert.Throws<ArgumentException>(() => SearchParameters.CheckFamily(new IvfSearchParameters(), "SPANN", flat));
        SearchParameters.CheckFamily(new SpannSearchParameters(), "SPANN", flat);
        // Plain parameters and the index's own family are accepted.
        flat.Search(q, 10, dist, lab, new SearchParameters { Threads = 1 });
        ivf.Search(q, 10, dist, lab, new IvfSearchParameters { Probes = 4 });
        ivf.Search(q, 10, dist, lab, new SearchParameters { Threads = 1 });
        hnsw.Search(q, 10, dist, lab, new HnswSearchParameters { Ef = 20 });
        hnsw.Search(q, 10, dist, lab, new SearchParameters());
    }
}
