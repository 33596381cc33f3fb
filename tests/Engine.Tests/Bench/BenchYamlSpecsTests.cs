using Engine.Bench;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

/// <summary>YAML specs files read the same as their JSON twins, with errors that name the file and the place.</summary>
public class BenchYamlSpecsTests
{
    private const string Json = """
        {"runs": [
          {"index": "Flat"},
          {"index": "IVF64,PQ8x4fs,RFlat", "sweep": {"probes": [1, 2, 4], "refine": "1, 4"}},
          {"index": "HNSW16", "sweep": {"ef": [16, 64]}}
        ]}
        """;

    private const string Yaml = """
        # the same three runs as the JSON twin
        runs:
          - index: Flat
          - index: IVF64,PQ8x4fs,RFlat
            sweep:
              probes: [1, 2, 4]
              refine: "1, 4"
          - index: HNSW16
            sweep: {ef: [16, 64]}
        """;

    [Theory]
    [InlineData("specs.yaml")]
    [InlineData("specs.yml")]
    public void YamlEqualsItsJsonTwin(string name)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("specs.json"), Json);
        File.WriteAllText(dir.File(name), Yaml);
        var fromJson = BenchRun.ReadSpecsFile(dir.File("specs.json"));
        var fromYaml = BenchRun.ReadSpecsFile(dir.File(name));
        Assert.Equal(fromJson.Count, fromYaml.Count);
        for (int i = 0; i < fromJson.Count; i++)
        {
            Assert.Equal(fromJson[i].Index, fromYaml[i].Index);
            Assert.Equal(fromJson[i].Sweeps.Select(s => s.Key), fromYaml[i].Sweeps.Select(s => s.Key));
            Assert.Equal(fromJson[i].Sweeps.Select(s => string.Join('|', s.Value)), fromYaml[i].Sweeps.Select(s => string.Join('|', s.Value)));
        }
        Assert.Equal(6, fromYaml[1].Settings().Count());
    }

    [Fact]
    public void ShippedMnistYamlEqualsTheShippedJson()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Engine.sln"))) root = Path.GetDirectoryName(root)!;
        var json = BenchRun.ReadSpecsFile(Path.Combine(root, "bench", "specs", "mnist.json"));
        var yaml = BenchRun.ReadSpecsFile(Path.Combine(root, "bench", "specs", "mnist.yaml"));
        Assert.Equal(json.Select(r => r.Index + ":" + string.Join(";", r.Sweeps.Select(s => s.Key + "=" + string.Join(",", s.Value)))),
            yaml.Select(r => r.Index + ":" + string.Join(";", r.Sweeps.Select(s => s.Key + "=" + string.Join(",", s.Value)))));
    }

    [Fact]
    public void TopLevelListOfRunsWorksToo()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("s.yaml"), "- index: HNSW16\n  sweep: {ef: 32}\n");
        var run = Assert.Single(BenchRun.ReadSpecsFile(dir.File("s.yaml")));
        Assert.Equal("HNSW16", run.Index);
        Assert.Equal(["32"], run.Sweeps[0].Value);
    }

    [Theory]
    [InlineData("runs:\n  - index: Flat\n    sweep: {probes: [1\n", "not valid YAML (line")]
    [InlineData("runs:\n  - index: Flat\n    sweep: {probes: [true]}\n", "not a number")]
    [InlineData("runs:\n  - index: Flat\n    swep: {}\n", "unknown field 'swep'")]
    [InlineData("runs:\n  - sweep: {probes: [1]}\n", "'index' is missing")]
    [InlineData("runs:\n  - index: Flat\n    index: HNSW16\n", "not valid YAML (line 3")]
    [InlineData("runs: []\n", "lists no runs")]
    [InlineData("runs:\n  - index: Flat\n---\nruns:\n  - index: Flat\n", "exactly one YAML document")]
    public void BadYamlSaysWhatIsWrong(string yaml, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("specs.yaml");
        File.WriteAllText(path, yaml);
        var ex = Assert.Throws<FormatException>(() => BenchRun.ReadSpecsFile(path));
        Assert.Contains(expected, ex.Message);
        Assert.Contains(path, ex.Message);
    }
}
