using Engine.Bench;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

/// <summary><c>engine bench --specs FILE.yaml</c>: YAML specs read to the same runs as JSON, with clear errors.</summary>
public class BenchYamlSpecsTests
{
    private static string Describe(IReadOnlyList<BenchRun> runs) => string.Join(" | ", runs.Select(r =>
        r.Index + ": " + string.Join("; ", r.Sweeps.Select(s => s.Key + "=" + string.Join(",", s.Value)))));

    [Fact]
    public void Yaml_specs_equal_the_same_runs_in_json()
    {
        using var dir = new TempDir();
        string json = dir.File("specs.json"), yaml = dir.File("specs.yaml");
        File.WriteAllText(json, """
            {"runs": [
              {"index": "Flat"},
              {"index": "IVF64,PQ8x4fs,RFlat", "sweep": {"Probes": [1, 2, 4], "refine": "1, 4"}},
              {"index": "HNSW16", "sweep": {"ef": [16, 64.5, "1e2"]}}
            ]}
            """);
        File.WriteAllText(yaml, """
            # comments are allowed
            runs:
              - index: Flat
              - index: IVF64,PQ8x4fs,RFlat
                sweep:
                  Probes: [1, 2, 4]
                  refine: "1, 4"
              - index: HNSW16
                sweep: {ef: [16, 64.5, "1e2"]}
            """);
        var fromJson = BenchRun.ReadSpecsFile(json);
        var fromYaml = BenchRun.ReadSpecsFile(yaml);
        Assert.Equal(3, fromYaml.Count);
        Assert.Equal(Describe(fromJson), Describe(fromYaml));
        Assert.Equal("Flat:  | IVF64,PQ8x4fs,RFlat: probes=1,2,4; refine=1,4 | HNSW16: ef=16,64.5,1e2", Describe(fromYaml));
        Assert.Equal(6, fromYaml[1].Settings().Count());

        // A bare list of runs and the .yml extension work too.
        string yml = dir.File("bare.yml");
        File.WriteAllText(yml, "- {index: HNSW16, sweep: {ef: [16, 64]}}\n");
        Assert.Equal("HNSW16: ef=16,64", Describe(BenchRun.ReadSpecsFile(yml)));
    }

    [Fact]
    public void The_shipped_specs_read_and_mnist_yaml_equals_mnist_json()
    {
        string root = AppContext.BaseDirectory;
        for (var d = new DirectoryInfo(root); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) { root = d.FullName; break; }
        var json = BenchRun.ReadSpecsFile(Path.Combine(root, "bench", "specs", "mnist.json"));
        var yaml = BenchRun.ReadSpecsFile(Path.Combine(root, "bench", "specs", "mnist.yaml"));
        Assert.Equal(Describe(json), Describe(yaml));
        Assert.Equal(4, yaml.Count);
        // bench/recall-qps.sh glove reads this one; it must stay a valid specs file.
        var glove = BenchRun.ReadSpecsFile(Path.Combine(root, "bench", "specs", "glove.yaml"));
        Assert.Equal(["IVF1024,PQ50x4fs,RFlat", "IVF1024,RaBitQfs4,RFlat", "SPANN", "HNSW16"], glove.Select(r => r.Index));
        Assert.All(glove, r => Assert.NotEmpty(r.Settings()));
    }

    [Theory]
    [InlineData("runs:\n  - index: Flat\n    sweep: {probes: [1, 2\n", "not valid YAML at line")]
    [InlineData("runs:\n  - index: Flat\n  index: x\n", "not valid YAML at line 3")]
    [InlineData("runs:\n  - index: Flat\n    index: IVF64\n", "line 3, column 5: Duplicate key index")]
    [InlineData("runs: []\n", "lists no runs")]
    [InlineData("runs:\n  - sweep: {}\n", "'index' is missing")]
    [InlineData("runs:\n  - index: Flat\n    swep: {}\n", "unknown field 'swep'")]
    [InlineData("runs:\n  - index: Flat\n    sweep: {probes: [true]}\n", "not a number")]
    [InlineData("runs:\n  - index: Flat\n    sweep: {probes: [1], PROBES: [2]}\n", "swept twice")]
    [InlineData("runs:\n  - index: !!int 3\n", "tag 'tag:yaml.org,2002:int' is not supported")]
    [InlineData("runs:\n  - index: Flat\n---\nruns: []\n", "exactly one YAML document (found 2)")]
    [InlineData("", "exactly one YAML document (found 0)")]
    public void Bad_yaml_specs_name_the_file_and_the_problem(string text, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("specs.yaml");
        File.WriteAllText(path, text);
        var ex = Assert.Throws<FormatException>(() => BenchRun.ReadSpecsFile(path));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal) && ex.Message.Contains(path, StringComparison.Ordinal), ex.Message);
    }
}
