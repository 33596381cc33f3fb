using Engine.Distance;
using Engine.Index;
using Engine.Index.Ivf;
using Engine.Index.Spann;

namespace Engine.Tests.Spann;

/// <summary>
/// The shared search runtime's rules as SPANN keeps them: a knob the index cannot use is rejected, not ignored
/// (per-call <c>Rerank</c> and the <c>rerank</c> spec key on raw postings); "not set" is spelt null only
/// (<c>MaxCodes</c>); cosine vectors are normalised by the shared <see cref="Distances.NormalizeInPlace"/>.
/// </summary>
public class SpannParameterRulesTests
{
    private const int D = 16;

    private static SpannIndex Built(string? codec, Metric metric = Metric.L2)
    {
        var data = SpannTestData.Clustered(600, D, seed: 81);
        var index = new SpannIndex(D, metric, new SpannOptions { PostingSize = 16, Codec = codec }) { BackgroundMaintenance = false };
        index.Train(data);
        index.Add(data, Enumerable.Range(0, 600).Select(i => (long)i).ToArray());
        return index;
    }

    [Fact]
    public void Rerank_OnRawPostings_IsRejectedNamingRerankAndTheCodec()
    {
        using var raw = Built(null);
        var q = SpannTestData.Clustered(1, D, seed: 82);
        var dist = new float[5]; var labels = new long[5];
        var e = Assert.Throws<ArgumentException>(() => raw.Search(q, 5, dist, labels, new SpannSearchParameters { Rerank = 4 }));
        Assert.Equal("parameters", e.ParamName);
        Assert.Contains("Rerank is 4", e.Message);
        Assert.Contains("codec=none", e.Message);
        raw.Search(q, 5, dist, labels, new SpannSearchParameters { Probes = 4 }); // Rerank null: accepted
        using var coded = Built("SQ8");
        coded.Search(q, 5, dist, labels, new SpannSearchParameters { Rerank = 4 });
        Assert.True(labels[0] >= 0);
    }

    [Fact]
    public void Rerank_WithoutACodec_IsRejectedInOptionsAndSpec()
    {
        var e = Assert.Throws<ArgumentException>(() => new SpannOptions { Rerank = 4 }.Validate());
        Assert.Equal("Rerank", e.ParamName);
        Assert.Contains("Codec is not set", e.Message);
        Assert.Throws<ArgumentException>(() => new SpannIndex(D, Metric.L2, new SpannOptions { Rerank = 2, Codec = "none" }));
        new SpannOptions { Rerank = 4, Codec = "SQ8" }.Validate();
        var spec = Assert.Throws<ArgumentException>(() => SpannSpec.TryParse("SPANN(probes=4,rerank=8)", out _));
        Assert.Contains("SPANN(probes=4,rerank=8)", spec.Message);
        Assert.Contains("codec=", spec.Message);
        Assert.Throws<ArgumentException>(() => IndexFactory.Create("SPANN(rerank=4)", D, Metric.L2));
        Assert.True(SpannSpec.TryParse("SPANN(rerank=4,codec=SQ8)", out var o));
        Assert.Equal(4, o.Rerank);
    }

    [Fact]
    public void MaxCodes_NotSetIsNull_ZeroIsRejected()
    {
        using var ivf = IndexFactory.Create("IVF4,Flat", D, Metric.L2);
        var data = SpannTestData.Clustered(200, D, seed: 83);
        ivf.Train(data);
        ivf.Add(data, Enumerable.Range(0, 200).Select(i => (long)i).ToArray());
        var dist = new float[3]; var labels = new long[3];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ivf.Search(data.AsSpan(0, D), 3, dist, labels, new IvfSearchParameters { MaxCodes = 0 }));
        Assert.Equal("MaxCodes", e.ParamName);
        Assert.Contains("null = no limit", e.Message);
        ivf.Search(data.AsSpan(0, D), 3, dist, labels, new IvfSearchParameters { MaxCodes = null });
        Assert.Equal(0, labels[0]);
        ivf.Search(data.AsSpan(0, D), 3, dist, labels, new IvfSearchParameters { MaxCodes = 1 });
        Assert.Contains("maxcodes=0", Assert.ThrowsAny<ArgumentException>(() => IndexFactory.CreateParameters(ivf, new Dictionary<string, string> { ["maxcodes"] = "0" }, 1)).Message);
        var p = (IvfSearchParameters)IndexFactory.CreateParameters(ivf, new Dictionary<string, string> { ["maxcodes"] = "7" }, 1);
        Assert.Equal(7, p.MaxCodes);
    }

    [Fact]
    public void Cosine_StoresVectorsNormalisedByTheSharedKernel()
    {
        var data = SpannTestData.Clustered(300, D, seed: 84);
        using var index = new SpannIndex(D, Metric.Cosine, new SpannOptions { PostingSize = 16 }) { BackgroundMaintenance = false };
        index.Train(data);
        index.Add(data, Enumerable.Range(0, 300).Select(i => (long)i).ToArray());
        var got = new float[D];
        foreach (int id in new[] { 0, 17, 299 })
        {
            var expected = data.AsSpan(id * D, D).ToArray();
            Distances.NormalizeInPlace(expected);
            Assert.True(index.TryReconstruct(id, got));
            Assert.Equal(expected, got); // bit for bit: the same kernel
        }
        var dist = new float[1]; var labels = new long[1];
        index.Search(data.AsSpan(17 * D, D), 1, dist, labels);
        Assert.Equal(17, labels[0]);
        Assert.InRange(dist[0], 1 - 1e-5f, 1 + 1e-5f); // cosine similarity of a vector with itself
    }
}
