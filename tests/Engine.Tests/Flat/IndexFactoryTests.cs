using Engine.Index;

namespace Engine.Tests.Flat;

public class IndexFactoryTests
{
    [Fact]
    public void Flat_round_trips()
    {
        using var index = IndexFactory.Create("Flat", 8, Metric.L2);
        Assert.Equal("Flat", index.Description);
    }

    [Fact]
    public void Unknown_spec_names_the_spec()
    {
        var ex = Assert.Throws<ArgumentException>(() => IndexFactory.Create("HNSW32,Bogus", 8, Metric.L2));
        Assert.Contains("HNSW32,Bogus", ex.Message);
    }

    [Fact]
    public void Unknown_sweep_parameter_is_rejected()
    {
        using var index = IndexFactory.Create("Flat", 8, Metric.L2);
        var ex = Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["probes"] = "4" }, 1));
        Assert.Contains("probes", ex.Message);
    }
}
