using Engine.Index;
using Engine.Mining;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hardening;

/// <summary>
/// Issue 11 defect 7: finite vectors whose squared norm overflows float32 (all components 1e20) are rejected at
/// Train, Add, Search and mining with an ArgumentException naming the row; vectors just inside the limit give finite
/// distances, so a real id never comes back with the padding distance.
/// </summary>
public class NormOverflowTests
{
    private const int D = 8, N = 600;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 8, seed: 41);

    public static TheoryData<string> Specs => new() { "Flat", "IVF4,Flat", "IVF4,PQ4", "IVF4,PQ4x4fs,RFlat", "OPQ4,IVF4,PQ4", "SPANN" };

    private static float[] WithHugeRow(float[] rows, int row, float value = 1e20f)
    {
        var x = (float[])rows.Clone();
        x.AsSpan(row * D, D).Fill(value);
        return x;
    }

    private static IVectorIndex Trained(string spec)
    {
        var index = IndexFactory.Create(spec, D, Metric.L2);
        index.Train(Data);
        index.Add(Data, IvfTestData.Ids(N));
        return index;
    }

    [Theory]
    [MemberData(nameof(Specs))]
    public void HugeRow_RejectedAtAddSearchAndTrain_NamingTheRow(string spec)
    {
        using var index = Trained(spec);
        var add = Assert.Throws<ArgumentException>(() => index.Add(WithHugeRow(Data.AsSpan(0, 10 * D).ToArray(), 3), IvfTestData.Ids(10, 10_000)));
        Assert.Contains("row 3", add.Message);
        Assert.Equal(N, index.Count); // nothing of the rejected batch was added
        var queries = WithHugeRow(Data.AsSpan(0, 5 * D).ToArray(), 4);
        var search = Assert.Throws<ArgumentException>(() => index.Search(queries, 3, new float[15], new long[15]));
        Assert.Contains("row 4", search.Message);
        using var fresh = IndexFactory.Create(spec, D, Metric.L2);
        var train = Assert.Throws<ArgumentException>(() => fresh.Train(WithHugeRow(Data, 77)));
        Assert.Contains("row 77", train.Message);
    }

    [Theory]
    [InlineData(1e20f)]
    [InlineData(-1e20f)]
    [InlineData(2e19f)]
    public void Guard_RejectsOverflowingNorms_InAnyBlock(float value)
    {
        // Rows in the second block of whole rows (block = 4096 floats) and a dimension that does not divide it.
        const int d = 96;
        var x = new float[200 * d];
        x.AsSpan(150 * d, d).Fill(value);
        var e = Assert.Throws<ArgumentException>(() => Guard.Finite(x, d, "x"));
        Assert.Contains("row 150", e.Message);
        Assert.Contains("squared norm", e.Message);
    }

    [Fact]
    public void Flat_LargeButAcceptedVectors_GiveFiniteDistances_NeverPaddingWithRealIds()
    {
        // ‖x‖² = 8 × (3e18)² = 7.2e37 is just below the limit; opposite vectors are 4‖x‖² = 2.9e38 apart (finite).
        var x = new float[2 * D];
        x.AsSpan(0, D).Fill(3e18f);
        x.AsSpan(D, D).Fill(-3e18f);
        Guard.Finite(x, D, "x");
        using var flat = IndexFactory.Create("Flat", D, Metric.L2);
        flat.Add(x, [10, 11]);
        var dist = new float[3]; var lab = new long[3];
        flat.Search(x.AsSpan(0, D), 3, dist, lab);
        Assert.Equal([10L, 11L, -1L], lab);
        Assert.True(float.IsFinite(dist[0]) && float.IsFinite(dist[1]), $"distances {dist[0]}, {dist[1]}");
        Assert.Equal(float.PositiveInfinity, dist[2]);
    }

    [Fact]
    public void Mining_HugeAnchor_Rejected()
    {
        using var index = Trained("Flat");
        var anchors = WithHugeRow(Data.AsSpan(0, 4 * D).ToArray(), 2);
        var input = MiningInput.FromVectors(anchors, D, Enumerable.Range(0, 4).Select(i => new long[] { i }).ToArray());
        var miner = new HardNegativeMiner(index, new MiningOptions { Threads = 1 });
        var e = Assert.Throws<ArgumentException>(() => miner.MineAll(input, out _));
        Assert.Contains("row 2", e.Message);
    }
}
