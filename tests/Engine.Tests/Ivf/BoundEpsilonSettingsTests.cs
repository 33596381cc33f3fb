using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

/// <summary>
/// The <c>eps</c> search setting (RaBitQ error-bound ε₀) as the C ABI's <c>engine_index_search_with</c> and the Python
/// binding's <c>search(eps=…)</c> pass it: one wording for every out-of-range value, in every layer.
/// </summary>
public class BoundEpsilonSettingsTests
{
    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("16.5")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("two")]
    public void Out_of_range_eps_is_rejected_with_the_shared_wording(string value)
    {
        using var index = new IvfIndex("IVF4,RaBitQ,RFlat", 8, Metric.L2);
        var e = Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["eps"] = value }, 1));
        Assert.Contains($"Search parameter 'eps={value}': must be a number greater than 0 and at most 16", e.Message);
    }

    [Theory]
    [InlineData("16", 16f)]
    [InlineData("0.05", 0.05f)]
    [InlineData("1.9", 1.9f)]
    public void In_range_eps_reaches_the_parameters(string value, float expected)
    {
        using var index = new IvfIndex("IVF4,RaBitQ,RFlat", 8, Metric.L2);
        var p = Assert.IsType<IvfSearchParameters>(IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["eps"] = value }, 1));
        Assert.Equal(expected, p.BoundEpsilon);
        p.Validate();
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(16.5f)]
    [InlineData(float.NaN)]
    public void Direct_parameters_reject_the_same_values(float value)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new IvfSearchParameters { BoundEpsilon = value }.Validate());
        Assert.Contains("greater than 0 and at most 16", e.Message);
    }
}
