using Engine.Mining;

namespace Engine.Tests.Mining;

public class MiningBadInputTests
{
    private static readonly MiningTestData Data = MiningTestData.Create(seed: 11, anchors: 5, background: 50);

    private static ArgumentException MineThrows(MiningInput input, MiningOptions? options = null)
    {
        using var index = Data.BuildIndex();
        var miner = new HardNegativeMiner(index, options ?? new MiningOptions());
        // Throws from the call itself: nothing is enumerated, no work starts.
        return Assert.ThrowsAny<ArgumentException>(() => miner.Mine(input, new MiningReport()));
    }

    [Fact]
    public void PositiveOutOfRange()
    {
        var pos = Data.Positives.Select(p => p.ToArray()).ToArray();
        pos[3] = [999_999];
        var ex = MineThrows(MiningInput.FromVectors(Data.Anchors, MiningTestData.D, pos));
        Assert.Contains("999999", ex.Message);
        Assert.Contains("anchor 3", ex.Message);
    }

    [Fact]
    public void EmptyPositiveList()
    {
        var pos = Data.Positives.Select(p => p.ToArray()).ToArray();
        pos[1] = [];
        Assert.Contains("no positives", MineThrows(MiningInput.FromVectors(Data.Anchors, MiningTestData.D, pos)).Message);
    }

    [Theory]
    [InlineData(10, 10, 3, "window is empty")]
    [InlineData(20, 10, 3, "window is empty")]
    [InlineData(0, 5, 6, "larger than the rank window")]
    [InlineData(0, 5, 0, "NumNegatives")]
    public void BadWindow(int min, int max, int negatives, string message)
    {
        using var index = Data.BuildIndex();
        var ex = Assert.ThrowsAny<ArgumentException>(() =>
            new HardNegativeMiner(index, new MiningOptions { RangeMin = min, RangeMax = max, NumNegatives = negatives }));
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void NaNAnchor()
    {
        var anchors = Data.Anchors.ToArray();
        anchors[2 * MiningTestData.D + 4] = float.NaN;
        var ex = MineThrows(MiningInput.FromVectors(anchors, MiningTestData.D, Data.Positives));
        Assert.Contains("row 2", ex.Message);
    }

    [Fact]
    public void WrongDimension()
    {
        var anchors = new float[5 * 8];
        var ex = MineThrows(MiningInput.FromVectors(anchors, 8, Data.Positives));
        Assert.Contains("dimension 8", ex.Message);
        Assert.Throws<ArgumentException>(() => MiningInput.FromVectors(new float[17], MiningTestData.D, Data.Positives));
    }

    [Fact]
    public void MismatchedCountsAndOptions()
    {
        Assert.Throws<ArgumentException>(() => MiningInput.FromVectors(Data.Anchors, MiningTestData.D, Data.Positives.Take(2).ToArray()));
        Assert.Contains("not in the index", MineThrows(MiningInput.FromCorpusIds([1, 2, 123_456, 3, 4], Data.Positives)).Message);
        Assert.Contains("KOccurrence", Assert.Throws<ArgumentException>(() =>
            new MiningOptions { HubnessGamma = 1, Sampling = SamplingStrategy.Uniform }.Validate()).Message);
        Assert.Contains("top", Assert.Throws<ArgumentException>(() =>
            new MiningOptions { HubnessGamma = 1, KOccurrence = new Dictionary<long, int>() }.Validate()).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MiningOptions { RelativeMargin = float.NaN }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new MiningOptions { Temperature = 0, Sampling = SamplingStrategy.Softmax }.Validate());
    }
}
