using Engine.Clustering;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Index.Spann;
using Engine.Mining;
using Engine.Mining.Hubness;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hardening;

/// <summary>
/// Issue 11 defects 5 and 8: every knob has a range; a value outside it is an <see cref="ArgumentOutOfRangeException"/>
/// naming the knob (never an OutOfMemoryException, a silent default or a silent empty result).
/// </summary>
public class ParameterBoundsTests
{
    private const int D = 8, N = 1500;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 12, seed: 21);

    private static void Search(IVectorIndex index, SearchParameters p, int k = 5) =>
        index.Search(Data.AsSpan(0, 4 * D), k, new float[4 * k], new long[4 * k], p);

    private static void AssertOutOfRange(string param, Action call)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(call);
        Assert.Equal(param, e.ParamName);
        Assert.Contains(param, e.Message);
    }

    private static SpannIndex Spann()
    {
        var idx = new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 16, MaxPostingSize = 64 });
        idx.Train(Data);
        idx.Add(Data, IvfTestData.Ids(N));
        return idx;
    }

    private static IvfIndex Ivf()
    {
        var idx = new IvfIndex(IvfSpec.Parse("IVF8,Flat"), D, Metric.L2);
        idx.Train(Data);
        idx.Add(Data, IvfTestData.Ids(N), Enumerable.Range(0, N).Select(i => (double)i).ToArray());
        return idx;
    }

    [Fact]
    public void Spann_Probes_MaxValue_IsClampedToThePostingCount()
    {
        using var idx = Spann();
        int k = 10;
        var dAll = new float[4 * k]; var lAll = new long[4 * k];
        var dMax = new float[4 * k]; var lMax = new long[4 * k];
        idx.Search(Data.AsSpan(0, 4 * D), k, dAll, lAll, new SpannSearchParameters { Probes = idx.PostingCount, PruneFactor = 1e30f, Threads = 1 });
        idx.Search(Data.AsSpan(0, 4 * D), k, dMax, lMax, new SpannSearchParameters { Probes = int.MaxValue, PruneFactor = 1e30f, Threads = 1 });
        Assert.Equal(lAll, lMax);
        Assert.Equal(dAll, dMax);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(int.MinValue)]
    public void Spann_Probes_BelowOne_Rejected(int probes)
    {
        using var idx = Spann();
        AssertOutOfRange("Probes", () => Search(idx, new SpannSearchParameters { Probes = probes }));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(-1f)]
    public void Spann_PruneFactor_NotFiniteOrNegative_Rejected(float eps)
    {
        using var idx = Spann();
        AssertOutOfRange("PruneFactor", () => Search(idx, new SpannSearchParameters { PruneFactor = eps }));
    }

    [Fact]
    public void NegativeThreads_Rejected_ByEveryIndex()
    {
        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(Data, IvfTestData.Ids(N));
        using var ivf = Ivf();
        using var spann = Spann();
        foreach (IVectorIndex idx in new IVectorIndex[] { flat, ivf, spann })
        {
            AssertOutOfRange("Threads", () => Search(idx, new SearchParameters { Threads = -1 }));
            AssertOutOfRange("Threads", () => Search(idx, new SearchParameters { Threads = int.MinValue }));
        }
        AssertOutOfRange("Threads", () => Search(ivf, new IvfSearchParameters { Threads = -3 }));
        AssertOutOfRange("Threads", () => Search(spann, new SpannSearchParameters { Threads = -3 }));
        AssertOutOfRange("threads", () => IndexFactory.CreateParameters(flat, new Dictionary<string, string>(), -1));
        AssertOutOfRange("TrainingThreads", () => _ = new IvfIndex(IvfSpec.Parse("IVF8,Flat"), D, Metric.L2) { TrainingThreads = -1 });
        AssertOutOfRange("KMeansOptions.Threads", () => KMeans.Train(Data, D, new KMeansOptions(4) { Threads = -2 }));
    }

    [Fact]
    public void Ivf_Knobs_OutOfRange_Rejected()
    {
        using var idx = Ivf();
        AssertOutOfRange("Probes", () => Search(idx, new IvfSearchParameters { Probes = 0 }));
        AssertOutOfRange("Probes", () => Search(idx, new IvfSearchParameters { Probes = -1 }));
        AssertOutOfRange("Probes", () => Search(idx, new IvfSearchParameters { Probes = 9 }));
        AssertOutOfRange("RefineFactor", () => Search(idx, new IvfSearchParameters { RefineFactor = 0 }));
        AssertOutOfRange("RefineFactor", () => Search(idx, new IvfSearchParameters { RefineFactor = int.MaxValue }));
        AssertOutOfRange("MaxCodes", () => Search(idx, new IvfSearchParameters { MaxCodes = -1 }));
        AssertOutOfRange("MaxCodes", () => Search(idx, new IvfSearchParameters { MaxCodes = 0 })); // null is the one "no cap"
        AssertOutOfRange("ExactFallbackSelectivity", () => Search(idx, new IvfSearchParameters { ExactFallbackSelectivity = double.NaN }));
        AssertOutOfRange("ExactFallbackSelectivity", () => Search(idx, new IvfSearchParameters { ExactFallbackSelectivity = 1.5 }));
        // A refine factor above 1 on lists that would ignore it (Flat, no refine store) is refused, naming the reason.
        var none = Assert.Throws<ArgumentException>(() => Search(idx, new IvfSearchParameters { RefineFactor = 2 }));
        Assert.Contains("refine store", none.Message);
        Search(idx, new IvfSearchParameters { RefineFactor = 1 });
        // The largest refine factor is accepted where it applies.
        using var refined = new IvfIndex(IvfSpec.Parse("IVF8,PQ4x4fs,RFlat"), D, Metric.L2);
        refined.Train(Data);
        refined.Add(Data, IvfTestData.Ids(N));
        Search(refined, new IvfSearchParameters { RefineFactor = IvfSearchParameters.MaxRefineFactor, Threads = 1 });
    }

    [Fact]
    public void Ivf_NaN_AttributeBound_Rejected_AloneOrPaired()
    {
        using var idx = Ivf();
        AssertOutOfRange("AttributeMin", () => Search(idx, new IvfSearchParameters { AttributeMin = double.NaN }));
        AssertOutOfRange("AttributeMax", () => Search(idx, new IvfSearchParameters { AttributeMax = double.NaN }));
        AssertOutOfRange("AttributeMin", () => Search(idx, new IvfSearchParameters { AttributeMin = double.NaN, AttributeMax = 5 }));
        AssertOutOfRange("AttributeMax", () => Search(idx, new IvfSearchParameters { AttributeMin = 5, AttributeMax = double.NaN }));
        // Infinite bounds are real bounds: [-inf, 10] finds the rows with attributes 0..10.
        var lab = new long[5];
        idx.Search(Data.AsSpan(0, D), 5, new float[5], lab, new IvfSearchParameters { AttributeMin = double.NegativeInfinity, AttributeMax = 10, Probes = 8 });
        Assert.All(lab, l => Assert.InRange(l, 0, 10));
    }

    [Fact]
    public void OptionRecords_OutOfRange_Rejected()
    {
        AssertOutOfRange("Threads", () => new MiningOptions { Threads = -1 }.Validate());
        AssertOutOfRange("ChunkSize", () => new MiningOptions { ChunkSize = 0 }.Validate());
        AssertOutOfRange("NumNegatives", () => new MiningOptions { NumNegatives = 0 }.Validate());
        AssertOutOfRange("Threads", () => new MiningOptions { SearchParameters = new SearchParameters { Threads = -1 } }.Validate());
        AssertOutOfRange("PruneFactor", () => new MiningOptions { SearchParameters = new SpannSearchParameters { PruneFactor = float.NaN } }.Validate());
        // 2 × PostingSize overflows int: the cap check must not pass by wrapping around.
        AssertOutOfRange("MaxPostingSize", () => new SpannOptions { PostingSize = int.MaxValue, MaxPostingSize = 200 }.Validate());
        AssertOutOfRange("Replicas", () => new SpannOptions { Replicas = 65 }.Validate());
        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(Data, IvfTestData.Ids(N));
        AssertOutOfRange("K", () => HubnessAnalyzer.Analyze(flat, IvfTestData.Ids(N), new HubnessOptions { K = 0 }));
        AssertOutOfRange("Threads", () => HubnessAnalyzer.Analyze(flat, IvfTestData.Ids(N), new HubnessOptions { Threads = -1 }));
    }

    [Theory]
    [InlineData("IVF2000000000,Flat", 4, "out of range")]      // 2e9 list objects: a hang before
    [InlineData("IVF1000000,Flat", 4096, "one array")]         // nlist × d overflowed int (OverflowException)
    [InlineData("OPQ1048576,IVF4,PQ4", 1048576, "OPQ")]        // d × d overflowed (IndexOutOfRangeException)
    [InlineData("IVF4,PQ16", 8, "PQ sub-quantizer count")]
    public void IvfSpecs_ImpossibleForTheDimension_AreArgumentErrors(string spec, int d, string needle)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => IndexFactory.Create(spec, d, Metric.L2));
        Assert.Contains(needle, e.Message);
    }

    [Fact]
    public void Mining_HugeNumNegatives_IsBoundedByTheCandidates_NotAllocated()
    {
        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(Data.AsSpan(0, 50 * D), IvfTestData.Ids(50));
        var input = MiningInput.FromVectors(Data.AsSpan(0, 2 * D).ToArray(), D, [[0L], [1L]]);
        var options = new MiningOptions { NumNegatives = int.MaxValue, RangeMax = int.MaxValue, Shortfall = ShortfallPolicy.KeepShort, Threads = 1 };
        var rows = new HardNegativeMiner(flat, options).MineAll(input, out _);
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(49, r.Negatives.Length)); // every corpus item but the positive
    }

    [Fact]
    public void Hubness_KAsDeepAsTheCorpus_IsRejectedByName_AndOneLessWorks()
    {
        // Lists as deep as the corpus hold every item: N_k would be flat (skewness 0) whatever the data, so such a K
        // is reported as the mistake it is (k = 5 000 on a 1 000-item index) rather than answered with nothing.
        using var flat = new FlatIndex(D, Metric.L2);
        flat.Add(Data.AsSpan(0, 40 * D), IvfTestData.Ids(40));
        foreach (int k in new[] { int.MaxValue, 40 })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => HubnessAnalyzer.Analyze(flat, IvfTestData.Ids(40), Data.AsSpan(0, 5 * D), new HubnessOptions { K = k, Threads = 1 }));
            Assert.Contains("vector count (40)", e.Message);
        }
        foreach (int k in new[] { int.MaxValue, 39 })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => HubnessAnalyzer.Analyze(flat, IvfTestData.Ids(40), new HubnessOptions { K = k, Threads = 1 }));
            Assert.Contains("minus one (39)", e.Message);
        }
        var external = HubnessAnalyzer.Analyze(flat, IvfTestData.Ids(40), Data.AsSpan(0, 5 * D), new HubnessOptions { K = 39, Threads = 1 });
        Assert.Equal(5 * 39, external.Occurrence.Values.Sum());
        var self = HubnessAnalyzer.Analyze(flat, IvfTestData.Ids(40), new HubnessOptions { K = 38, Threads = 1 });
        Assert.Equal(40 * 38, self.Occurrence.Values.Sum());
    }
}
