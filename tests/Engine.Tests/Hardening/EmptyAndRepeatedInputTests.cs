using Engine.Index;
using Engine.Index.MultiVector;
using Engine.Mining;
using Engine.Mining.Graph;
using Engine.Mining.Hubness;
using Engine.MultiVector;
using Engine.Tests.Support;

namespace Engine.Tests.Hardening;

/// <summary>
/// C ABI / Python audit leftovers at the C# surface: a setting given twice (a JSON option key, or one search knob
/// under two of its aliases) is an <see cref="ArgumentException"/> naming it, not "last one wins"; an empty hubness
/// query bank is refused like an empty corpus; an empty graph has zero near-duplicate groups.
/// </summary>
public class EmptyAndRepeatedInputTests
{
    private const int D = 8;

    [Theory]
    [InlineData("""{"seed": 1, "seed": 2}""", "seed")]
    [InlineData("""{"num_negatives": 2, "sampling": "top", "num_negatives": 5}""", "num_negatives")]
    [InlineData("""{"search": "probes=2", "search": "probes=4"}""", "search")]
    [InlineData("""{"threads": 1, "thr\u0065ads": 2}""", "threads")] // the same key once escaped
    public void MiningOption_GivenTwice_IsRefusedNamingIt(string json, string key)
    {
        var e = Assert.Throws<ArgumentException>(() => MiningOptionsJson.Mining(json));
        Assert.Contains($"Option '{key}' is given twice", e.Message);
        Assert.Equal("options", e.ParamName);
    }

    [Fact]
    public void HubnessOption_GivenTwice_IsRefusedNamingIt()
    {
        var e = Assert.Throws<ArgumentException>(() => MiningOptionsJson.Hubness("""{"k": 3, "top_hubs": 2, "k": 5}"""));
        Assert.Contains("Option 'k' is given twice", e.Message);
        // Each key once is still fine.
        Assert.Equal(3, MiningOptionsJson.Hubness("""{"k": 3, "top_hubs": 2}""").K);
    }

    [Theory]
    [InlineData("IVF4,Flat", "probes", "nprobe", "probes")]
    [InlineData("IVF4,PQ4x4fs,RFlat", "refine", "k_factor", "refine")]
    [InlineData("IVF4,Flat", "maxcodes", "max_codes", "maxcodes")]
    [InlineData("HNSW8", "ef", "efsearch", "ef")]
    public void SearchKnob_UnderTwoAliases_IsRefused(string spec, string first, string second, string knob)
    {
        using var index = Build(spec);
        var settings = new Dictionary<string, string> { [first] = "2", [second] = "3" };
        var e = Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, settings, threads: 1));
        Assert.Contains($"'{second}' sets {knob}", e.Message);
        // Through the NAME=V string of engine_index_search_with too.
        Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, SearchSettings.Parse($"{first}=2,{second}=3"), 1));
        // One name alone still works.
        Assert.NotNull(IndexFactory.CreateParameters(index, new Dictionary<string, string> { [second] = "3" }, 1));
    }

    [Fact]
    public void MuveraKnob_UnderTwoAliases_IsRefused()
    {
        using var mv = new MultiVectorIndex(D, MuveraOptions.Parse("ksim=2,dproj=4,reps=2"), "Flat", TokenEncoding.F32);
        var e = Assert.Throws<ArgumentException>(() =>
            MuveraSearchParameters.FromSettings(mv, SearchSettings.Parse("candidates=20,n=30"), 1));
        Assert.Contains("sets candidates", e.Message);
        Assert.Throws<ArgumentException>(() => MuveraSearchParameters.FromSettings(mv, SearchSettings.Parse("reps=1,repetitions=2"), 1));
        Assert.Equal(20, MuveraSearchParameters.FromSettings(mv, SearchSettings.Parse("n=20"), 1).Candidates);
    }

    [Fact]
    public void Hubness_WithAnEmptyQueryBank_IsRefusedLikeAnEmptyCorpus()
    {
        using var index = Build("Flat");
        var ids = TestData.Sequential(64);
        var e = Assert.Throws<ArgumentException>(() => HubnessAnalyzer.Analyze(index, ids, Array.Empty<float>(), new HubnessOptions { K = 3 }));
        Assert.Equal("queries", e.ParamName);
        Assert.Contains("queries is empty", e.Message);
        // One query is a bank; the corpus bank (no queries) is unchanged.
        Assert.Equal(1, HubnessAnalyzer.Analyze(index, ids, TestData.Gaussian(1, D, seed: 9), new HubnessOptions { K = 3 }).QueryCount);
        Assert.Equal(64, HubnessAnalyzer.Analyze(index, ids, new HubnessOptions { K = 3 }).QueryCount);
    }

    [Fact]
    public void NearDuplicates_OfAnEmptyGraph_AreZeroGroups()
    {
        var graph = new KnnGraph(Metric.L2, 3, [], [], []);
        var dup = NearDuplicates.Find(graph, 0.5f);
        Assert.Empty(dup.Representative);
        Assert.Equal(0, dup.GroupCount);
        Assert.Empty(dup.Keep());
    }

    private static IVectorIndex Build(string spec)
    {
        var index = IndexFactory.Create(spec, D, Metric.L2);
        var data = TestData.Gaussian(64, D, seed: 5);
        index.Train(data);
        index.Add(data, TestData.Sequential(64));
        return index;
    }
}
