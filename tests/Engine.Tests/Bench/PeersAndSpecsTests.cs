using Engine.Bench;
using Engine.Tests.Support;

namespace Engine.Tests.Bench;

public class PeersAndSpecsTests
{
    [Fact]
    public void Peer_rows_in_the_peers_py_schema_are_read_and_error_rows_skipped()
    {
        const string text = """
            {"system": "faiss", "spec": "IVF64,PQ8x4fs,RFlat", "params": {"nprobe": 4, "k_factor": 2}, "recall": 0.91, "qps": 12000.5, "build_seconds": 1.5, "k": 10, "threads": 2}

            {"system": "faiss", "spec": "IVF64,RaBitQfs1,RFlat", "error": "unknown index type", "k": 10}
            {"system": "hnswlib", "spec": "HNSW M16 efC200", "params": {"ef": 40}, "recall": 0.97, "qps": 8000, "build_seconds": 3}
            """;
        var read = PeerRows.Read(new StringReader(text), "peers.jsonl");
        Assert.Equal(2, read.Rows.Count);
        var f = read.Rows[0];
        Assert.Equal(("faiss", "IVF64,PQ8x4fs,RFlat", 0.91, 12000.5, 1.5, 10), (f.System, f.Spec, f.Recall, f.Qps, f.BuildSeconds!.Value, f.K));
        Assert.Equal("nprobe=4 k_factor=2", f.ParamsText);
        Assert.Equal("hnswlib HNSW M16 efC200", read.Rows[1].Series);
        Assert.Contains("peers.jsonl:3", Assert.Single(read.Skipped));
    }

    [Theory]
    [InlineData("not json", "peers.jsonl:1: not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("{\"spec\": \"x\", \"recall\": 0.5, \"qps\": 1}", "'system'")]
    [InlineData("{\"system\": \"s\", \"spec\": \"x\", \"recall\": 0.5}", "'qps'")]
    [InlineData("{\"system\": \"s\", \"spec\": \"x\", \"recall\": \"high\", \"qps\": 1}", "'recall' must be a finite number")]
    [InlineData("{\"system\": \"s\", \"spec\": \"x\", \"recall\": 1.5, \"qps\": 1}", "outside [0, 1]")]
    [InlineData("{\"system\": \"s\", \"spec\": \"x\", \"recall\": 0.5, \"qps\": -3}", "not a positive")]
    [InlineData("{\"system\": \"s\", \"spec\": \"x\", \"params\": [1], \"recall\": 0.5, \"qps\": 3}", "'params' must be an object")]
    public void Malformed_peer_lines_name_the_line_and_the_problem(string line, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => PeerRows.Read(new StringReader(line), "peers.jsonl"));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Missing_peers_file_is_named()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<FileNotFoundException>(() => PeerRows.Read(dir.File("none.jsonl")));
        Assert.Contains("none.jsonl", ex.Message);
    }

    [Fact]
    public void Specs_file_lists_runs_with_their_sweeps()
    {
        using var dir = new TempDir();
        string path = dir.File("specs.json");
        File.WriteAllText(path, """
            { // comments and trailing commas are allowed
              "runs": [
                {"index": "Flat"},
                {"index": "IVF64,PQ8x4fs,RFlat", "sweep": {"Probes": [1, 2, 4], "refine": "1, 4"}},
              ]
            }
            """);
        var runs = BenchRun.ReadSpecsFile(path);
        Assert.Equal(2, runs.Count);
        Assert.Equal("Flat", runs[0].Index);
        Assert.Single(runs[0].Settings());
        Assert.Equal(["probes", "refine"], runs[1].Sweeps.Select(s => s.Key));
        Assert.Equal(["1", "2", "4"], runs[1].Sweeps[0].Value);
        Assert.Equal(["1", "4"], runs[1].Sweeps[1].Value);
        Assert.Equal(6, runs[1].Settings().Count());

        File.WriteAllText(path, """[{"index": "HNSW16", "sweep": {"ef": [16, 64]}}]""");
        Assert.Equal("HNSW16", Assert.Single(BenchRun.ReadSpecsFile(path)).Index);
    }

    [Theory]
    [InlineData("{\"runs\": []}", "lists no runs")]
    [InlineData("{\"runs\": [{\"sweep\": {}}]}", "'index' is missing")]
    [InlineData("{\"runs\": [{\"index\": \"Flat\", \"swep\": {}}]}", "unknown field 'swep'")]
    [InlineData("{\"run\": []}", "unknown top-level field 'run'")]
    [InlineData("{\"runs\": [{\"index\": \"Flat\", \"sweep\": {\"probes\": []}}]}", "no values")]
    [InlineData("{\"runs\": [{\"index\": \"Flat\", \"sweep\": {\"probes\": [true]}}]}", "not a number")]
    [InlineData("{\"runs\": [{\"index\": \"Flat\", \"sweep\": {\"probes\": [1], \"PROBES\": [2]}}]}", "swept twice")]
    [InlineData("{\"runs\": [", "not valid JSON")]
    public void Bad_specs_files_say_what_is_wrong(string json, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("specs.json");
        File.WriteAllText(path, json);
        var ex = Assert.Throws<FormatException>(() => BenchRun.ReadSpecsFile(path));
        Assert.Contains(expected, ex.Message);
    }
}
