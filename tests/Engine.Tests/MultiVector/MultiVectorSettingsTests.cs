using Engine.Index.Ivf;
using Engine.Index.MultiVector;
using Engine.MultiVector;

namespace Engine.Tests.MultiVector;

public class MultiVectorSettingsTests
{
    [Fact]
    public void Muvera_options_parse_from_text_and_round_trip_their_canonical_form()
    {
        var o = MuveraOptions.Parse("ksim=3, dproj=8,reps=12,final=256,fill=0,seed=9");
        Assert.Equal(new MuveraOptions { SimHashBits = 3, ProjectionDimension = 8, Repetitions = 12, FinalDimension = 256, FillEmptyBuckets = false, Seed = 9 }, o);
        Assert.Equal(o, MuveraOptions.Parse(o.ToString()));
        Assert.Equal(new MuveraOptions(), MuveraOptions.Parse(null));
        Assert.Equal(new MuveraOptions() with { Repetitions = 5 }, MuveraOptions.Parse("reps=5"));
        Assert.Contains("Unknown MUVERA option 'kism'", Assert.Throws<ArgumentException>(() => MuveraOptions.Parse("kism=3")).Message);
        Assert.Contains("integer", Assert.Throws<ArgumentException>(() => MuveraOptions.Parse("reps=2.5")).Message);
        Assert.Contains("0 or 1", Assert.Throws<ArgumentException>(() => MuveraOptions.Parse("fill=2")).Message);
        Assert.Throws<ArgumentException>(() => MuveraOptions.Parse("reps=1,reps=2"));
        Assert.Throws<ArgumentException>(() => MuveraOptions.Parse("reps"));
    }

    [Fact]
    public void Muvera_search_settings_split_into_muvera_and_fde_index_knobs()
    {
        using var index = new MultiVectorIndex(8, new MuveraOptions { SimHashBits = 2, ProjectionDimension = 4, Repetitions = 4 }, "IVF4,Flat");
        var p = MuveraSearchParameters.FromSettings(index, new Dictionary<string, string> { ["candidates"] = "50", ["reps"] = "3", ["probes"] = "2" }, threads: 2);
        Assert.Equal(50, p.Candidates);
        Assert.Equal(3, p.Repetitions);
        Assert.Equal(2, Assert.IsType<IvfSearchParameters>(p.FdeParameters).Probes);
        Assert.Equal(2, p.Threads);
        Assert.Null(MuveraSearchParameters.FromSettings(index, new Dictionary<string, string>()).FdeParameters);
        Assert.Throws<ArgumentOutOfRangeException>(() => MuveraSearchParameters.FromSettings(index, new Dictionary<string, string> { ["reps"] = "5" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => MuveraSearchParameters.FromSettings(index, new Dictionary<string, string> { ["candidates"] = "x" }));
        Assert.ThrowsAny<ArgumentException>(() => MuveraSearchParameters.FromSettings(index, new Dictionary<string, string> { ["ef"] = "10" }));
    }
}
