using System.Text.Json;
using Engine.Cli;
using Engine.Data;
using Engine.Index.Spann;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

public class BuildSearchTests
{
    private static string MakeData(TempDir dir, string name, int n, int d, int seed)
    {
        string path = dir.File(name);
        SyntheticData.ClusteredDataSet(name, n, 50, d, 20, seed, Metric.L2, groundTruthK: 20).Save(path);
        return path;
    }

    private static JsonElement SearchJson(SearchOptions o)
    {
        var sw = new StringWriter();
        Assert.Equal(0, SearchCommand.Run(o with { Json = true }, sw));
        return JsonDocument.Parse(sw.ToString().Trim()).RootElement.Clone();
    }

    // --refine reaches the index (k × R candidates re-ranked, so recall can only rise at equal probes; the JSON row
    // names it), a refine factor on an index with nothing to re-rank is refused before any query runs, and a
    // non-finite query is named by its row in the data set, not by its row within a one-query call.
    [Fact]
    public void Search_takes_refine_and_names_a_bad_query_row()
    {
        using var tmp = new TempDir();
        string data = MakeData(tmp, "set", 3000, 16, seed: 5);
        string pqDir = tmp.File("pq"), flatDir = tmp.File("flat");
        Assert.Equal(0, BuildCommand.Run(data, "IVF16,PQ4x4fs,RFlat", pqDir, TextWriter.Null));
        Assert.Equal(0, BuildCommand.Run(data, "IVF16,Flat", flatDir, TextWriter.Null));
        var one = SearchJson(new SearchOptions(pqDir, data, K: 10, Threads: 1, Probes: 8));
        var eight = SearchJson(new SearchOptions(pqDir, data, K: 10, Threads: 1, Probes: 8, Refine: 8));
        Assert.Equal(8, eight.GetProperty("params").GetProperty("refine").GetInt32());
        Assert.True(eight.GetProperty("recall").GetDouble() > one.GetProperty("recall").GetDouble(), $"{eight} vs {one}");
        var none = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(flatDir, data, Refine: 4), TextWriter.Null));
        Assert.Contains("refine store", none.Message);

        var set = DataSet.Load(data);
        var queries = (float[])set.Queries.Clone();
        queries[7 * set.Dimension + 3] = float.NaN;
        string bad = tmp.File("nanq");
        new DataSet("nanq", set.Metric, set.Dimension, set.Base, queries, set.GroundTruth, set.GroundTruthK).Save(bad);
        var nan = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(pqDir, bad), TextWriter.Null));
        Assert.Contains("row 7", nan.Message);
        Assert.Contains("column 3", nan.Message);
    }

    [Fact]
    public void Spann_build_then_search_reports_recall_latency_and_io()
    {
        using var tmp = new TempDir();
        string data = MakeData(tmp, "set", 4000, 24, seed: 3);
        string indexDir = tmp.File("idx");
        var log = new StringWriter();
        Assert.Equal(0, BuildCommand.Run(data, "SPANN(size=16,max=64)", indexDir, log));
        Assert.Contains("postings", log.ToString());
        Assert.True(File.Exists(Path.Combine(indexDir, SpannIndex.MetaFileName)), "a durable SPANN directory");

        var row = SearchJson(new SearchOptions(indexDir, data, K: 10, Threads: 2, Probes: 32));
        Assert.Equal("SPANN(size=16,max=64)", row.GetProperty("spec").GetString());
        Assert.Equal(50, row.GetProperty("nq").GetInt32());
        Assert.Equal(32, row.GetProperty("params").GetProperty("probes").GetInt32());
        Assert.True(row.GetProperty("recall").GetDouble() >= 0.9, row.ToString());
        Assert.True(row.GetProperty("qps").GetDouble() > 0);
        double p50 = row.GetProperty("p50_ms").GetDouble(), p99 = row.GetProperty("p99_ms").GetDouble();
        Assert.True(p50 > 0 && p99 >= p50, $"p50 {p50} p99 {p99}");
        double reads = row.GetProperty("reads_per_query").GetDouble();
        Assert.True(reads is > 0 and <= 32, $"reads/query {reads}");
        Assert.Equal(reads, row.GetProperty("postings_read_per_query").GetDouble() + row.GetProperty("cache_hits_per_query").GetDouble(), 1);
        // The 1 MiB cache holds this small index after the warm-up, so reads may all be hits; bytes count disk reads only.
        double disk = row.GetProperty("postings_read_per_query").GetDouble() * 50;
        Assert.True(row.GetProperty("bytes_read").GetInt64() >= (long)Math.Round(disk) * 4096, row.ToString());
        Assert.True(Math.Abs(row.GetProperty("cache_hits").GetInt64() / 50.0 - row.GetProperty("cache_hits_per_query").GetDouble()) <= 0.01, row.ToString());

        // Fewer probes read fewer postings and cannot do better.
        var narrow = SearchJson(new SearchOptions(indexDir, data, K: 10, Threads: 1, Probes: 2));
        Assert.True(narrow.GetProperty("reads_per_query").GetDouble() <= 2);
        Assert.True(narrow.GetProperty("recall").GetDouble() <= row.GetProperty("recall").GetDouble());

        var text = new StringWriter();
        Assert.Equal(0, SearchCommand.Run(new SearchOptions(indexDir, data, Threads: 2), text));
        Assert.Contains("recall@10=", text.ToString());
        Assert.Contains("p99=", text.ToString());
        Assert.Contains("cache hits", text.ToString());
    }

    [Fact]
    public void Flat_build_saves_an_index_file_and_search_is_exact()
    {
        using var tmp = new TempDir();
        string data = MakeData(tmp, "set", 2000, 16, seed: 4);
        string indexDir = tmp.File("flat");
        Assert.Equal(0, BuildCommand.Run(data, "Flat", indexDir, TextWriter.Null));
        Assert.True(File.Exists(Path.Combine(indexDir, IndexDirectory.IndexFileName)));
        var row = SearchJson(new SearchOptions(indexDir, data, K: 10, Threads: 2));
        Assert.Equal(1.0, row.GetProperty("recall").GetDouble(), 6);
        Assert.False(row.TryGetProperty("reads_per_query", out _));
        // Flat has no probes: a clear error, not a silent ignore.
        var ex = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(indexDir, data, Probes: 4), TextWriter.Null));
        Assert.Contains("probes", ex.Message);
    }

    [Fact]
    public void Bad_input_gives_clear_errors_and_keeps_the_index()
    {
        using var tmp = new TempDir();
        string data = MakeData(tmp, "set", 1500, 16, seed: 5);
        string other = MakeData(tmp, "other", 500, 8, seed: 6);
        string indexDir = tmp.File("idx");

        var ex = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(tmp.File("missing"), data), TextWriter.Null));
        Assert.Contains("does not exist", ex.Message);
        Directory.CreateDirectory(tmp.File("empty"));
        ex = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(tmp.File("empty"), data), TextWriter.Null));
        Assert.Contains("holds no index", ex.Message);
        Assert.ThrowsAny<ArgumentException>(() => BuildCommand.Run(data, "SPANN(bogus=1)", indexDir, TextWriter.Null));
        Assert.ThrowsAny<ArgumentException>(() => BuildCommand.Run(data, "NoSuchIndex", indexDir, TextWriter.Null));
        Assert.False(Directory.Exists(indexDir), "a rejected spec creates nothing");

        Assert.Equal(0, BuildCommand.Run(data, "SPANN(size=16,max=64)", indexDir, TextWriter.Null));
        var files = Directory.GetFiles(indexDir, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);

        ex = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(indexDir, other), TextWriter.Null));
        Assert.Contains("dimension 8", ex.Message);
        Assert.Contains("dimension 16", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(indexDir, data, K: 50), TextWriter.Null));
        Assert.Contains("fewer than k=50", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => BuildCommand.Run(data, "Flat", indexDir, TextWriter.Null));
        Assert.Contains("already holds an index", ex.Message);
        Assert.Throws<ArgumentException>(() => SearchCommand.Run(new SearchOptions(indexDir, data, Threads: -1), TextWriter.Null));

        // The refused calls changed nothing: the same files, byte for byte, and the index still answers.
        foreach (var (file, bytes) in files) Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.True(SearchJson(new SearchOptions(indexDir, data, Threads: 1)).GetProperty("recall").GetDouble() > 0.5);
    }

    [Fact]
    public void Cli_build_and_search_errors_exit_with_code_2()
    {
        using var tmp = new TempDir();
        var err = new StringWriter();
        var saved = Console.Error;
        Console.SetError(err);
        try
        {
            Assert.Equal(2, Program.Main(["search", "--dir", tmp.File("nope"), "--data", tmp.Path]));
        }
        finally { Console.SetError(saved); }
        Assert.StartsWith("error: ", err.ToString());
        Assert.Contains("nope", err.ToString());
    }

    [Fact]
    public void Bench_spann_sweep_rows_carry_resident_and_disk_bytes_and_reads()
    {
        using var tmp = new TempDir();
        string data = MakeData(tmp, "set", 3000, 16, seed: 7);
        var sw = new StringWriter();
        var options = new BenchOptions(data, "SPANN(size=16,max=64)", 10, 2, BenchOptions.ParseSweeps(["probes=2,16"]), Json: true, Repeats: 1, QueryLimit: 0);
        Assert.Equal(0, BenchRunner.Run(options, sw));
        var rows = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToArray();
        Assert.Equal(2, rows.Length);
        foreach (var (row, probes) in rows.Zip(new[] { 2, 16 }))
        {
            Assert.Equal(probes, row.GetProperty("params").GetProperty("probes").GetInt32());
            double reads = row.GetProperty("reads_per_query").GetDouble();
            Assert.True(reads > 0 && reads <= probes, $"reads/query {reads} with probes={probes}");
            Assert.True(row.GetProperty("disk_bytes").GetInt64() > 3000L * 16 * 4, "replicated postings on disk");
            Assert.True(row.GetProperty("index_bytes").GetInt64() < row.GetProperty("disk_bytes").GetInt64());
        }
        Assert.True(rows[1].GetProperty("recall").GetDouble() > rows[0].GetProperty("recall").GetDouble());
        Assert.True(rows[1].GetProperty("recall").GetDouble() >= 0.9);
    }
}

public class MineIndexDirTests
{
    [Fact]
    public void Mine_over_a_prebuilt_index_matches_mining_over_a_fresh_one_and_rejects_another_corpus()
    {
        using var tmp = new TempDir();
        string data = tmp.File("set");
        Engine.Data.SyntheticData.ClusteredDataSet("set", 3000, 40, 16, 12, 21, Metric.L2, groundTruthK: 20).Save(data);
        string indexDir = tmp.File("idx");
        Assert.Equal(0, BuildCommand.Run(data, "IVF16,PQ8x4fs,RFlat", indexDir, TextWriter.Null));
        string[] common = ["mine", "--corpus", Path.Combine(data, "base.fvecs"), "--anchors", Path.Combine(data, "query.fvecs"),
            "--positives", Path.Combine(data, "gt.ivecs"), "--positives-take", "1", "--negatives", "5", "--range", "2:40",
            "--relative-margin", "0.05", "--probes", "16", "--refine", "8", "--threads", "2"];
        Assert.Equal(0, Program.Main([.. common, "--index", "IVF16,PQ8x4fs,RFlat", "--out", tmp.File("fresh.jsonl")]));
        Assert.Equal(0, Program.Main([.. common, "--index-dir", indexDir, "--out", tmp.File("prebuilt.jsonl")]));
        var fresh = Engine.Mining.Output.JsonlMiningWriter.Read(tmp.File("fresh.jsonl")).ToList();
        var prebuilt = Engine.Mining.Output.JsonlMiningWriter.Read(tmp.File("prebuilt.jsonl")).ToList();
        Assert.Equal(40, fresh.Count);
        Assert.Equal(fresh.Select(r => r.Negatives), prebuilt.Select(r => r.Negatives));

        // Another corpus (different size) or both --index and --index-dir: an error, no output file.
        string other = tmp.File("other");
        Engine.Data.SyntheticData.ClusteredDataSet("other", 2000, 40, 16, 12, 22, Metric.L2, groundTruthK: 20).Save(other);
        Assert.Equal(2, Program.Main(["mine", "--corpus", Path.Combine(other, "base.fvecs"), "--anchors", Path.Combine(other, "query.fvecs"),
            "--positives", Path.Combine(other, "gt.ivecs"), "--positives-take", "1", "--index-dir", indexDir, "--out", tmp.File("bad.jsonl")]));
        Assert.Equal(2, Program.Main([.. common, "--index", "Flat", "--index-dir", indexDir, "--out", tmp.File("both.jsonl")]));
        Assert.False(File.Exists(tmp.File("bad.jsonl")));
        Assert.False(File.Exists(tmp.File("both.jsonl")));
    }
}
