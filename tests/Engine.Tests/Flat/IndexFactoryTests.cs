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

    // A refine factor above 1 where nothing re-ranks (IVF lists without a refine store, other than fast-scan PQ) is
    // refused by name instead of being swept as a setting that changes nothing; 1 (the default) stays accepted.
    [Theory]
    [InlineData("IVF4,Flat", false)]
    [InlineData("IVF4,PQ4", false)]
    [InlineData("IVF4,RaBitQ", false)]
    [InlineData("IVF4,PQ4x4fs", true)]
    [InlineData("IVF4,PQ4,RFlat", true)]
    public void Ivf_refine_above_one_needs_something_to_refine(string spec, bool accepted)
    {
        using var index = IndexFactory.Create(spec, 8, Metric.L2);
        var refine = new Dictionary<string, string> { ["refine"] = "4" };
        if (accepted)
            Assert.Equal(4, Assert.IsType<Engine.Index.Ivf.IvfSearchParameters>(IndexFactory.CreateParameters(index, refine, 1)).RefineFactor);
        else
            Assert.Contains("no refine store", Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, refine, 1)).Message);
        IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["refine"] = "1" }, 1);
    }
}

public class IndexFactorySpannTests
{
    [Fact]
    public void Spann_specs_create_and_tune()
    {
        using var index = IndexFactory.Create("SPANN", 8, Metric.L2);
        Assert.IsType<Engine.Index.Spann.SpannIndex>(index);
        Assert.StartsWith("SPANN", index.Description);
        var p = IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["probes"] = "12", ["eps"] = "0.5" }, 2);
        var sp = Assert.IsType<Engine.Index.Spann.SpannSearchParameters>(p);
        Assert.Equal(12, sp.Probes);
        Assert.Equal(0.5f, sp.PruneFactor);
        Assert.Throws<ArgumentException>(() => IndexFactory.CreateParameters(index, new Dictionary<string, string> { ["refine"] = "2" }, 1));
        Assert.Throws<ArgumentException>(() => IndexFactory.Create("SPANN(bogus=1)", 8, Metric.L2));
    }

    [Fact]
    public void Saved_spann_directory_loads_through_the_factory()
    {
        using var dir = new Engine.Tests.Support.TempDir();
        var x = Engine.Tests.Support.TestData.Gaussian(600, 8, 3);
        using (var index = Engine.Index.Spann.SpannIndex.Create(dir.Path, 8, Metric.L2))
        {
            index.Train(x);
            index.Add(x, Engine.Tests.Support.TestData.Sequential(600));
            index.Checkpoint();
        }
        using var loaded = IndexFactory.Load(dir.Path);
        Assert.Equal(600, loaded.Count);
        var dist = new float[1];
        var lab = new long[1];
        loaded.Search(x.AsSpan(8 * 17, 8), 1, dist, lab);
        Assert.Equal(17, lab[0]);
    }
}
