using System.CommandLine;
using System.Text.Json;
using Engine.Cli;
using Engine.Mining;
using Engine.Mining.Output;
using Parquet.Serialization;

namespace Engine.Tests.Mining;

/// <summary>
/// <c>engine mine --output-format … [--output-scores] --format jsonl|parquet [--query-texts F --corpus-texts F]</c>:
/// the same rows as the engine's own output laid out by <see cref="TrainingLayout"/>, and clear errors for bad
/// combinations (no file written).
/// </summary>
public class MiningOutputFormatCliTests
{
    private static Exception? Mine(params string[] args) =>
        Record.Exception(() => Program.BuildRoot().Parse(["mine", .. args]).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }));

    private static string[] Base(TempDir tmp, string output) =>
        ["--corpus", tmp.File("base.fvecs"), "--anchors", tmp.File("query.fvecs"), "--positives", tmp.File("pos.ivecs"),
         "--metric", "cosine", "--range", "0:6", "--negatives", "3", "--seed", "5", "--out", tmp.File(output)];

    private static MiningTestData Inputs(TempDir tmp)
    {
        var data = MiningTestData.Create(seed: 41, anchors: 8, background: 60, dupsPerPositive: 1);
        MineCliTests.WriteInputs(tmp, data);
        return data;
    }

    [Fact]
    public async Task OutputFormat_LaysOutTheEnginesRows_InJsonlAndParquet()
    {
        using var tmp = new TempDir();
        var data = Inputs(tmp);
        int corpusCount = data.CorpusIds.Length;
        File.WriteAllLines(tmp.File("q.txt"), Enumerable.Range(0, 8).Select(i => $"query {i}"));
        File.WriteAllLines(tmp.File("c.txt"), Enumerable.Range(0, corpusCount).Select(i => $"passage {i}"));

        // The engine's own rows, short anchors kept (what --output-format uses by default).
        Assert.Null(Mine([.. Base(tmp, "raw.jsonl"), "--shortfall", "keep"]));
        var raw = JsonlMiningWriter.Read(tmp.File("raw.jsonl")).ToList();
        Assert.Equal(8, raw.Count);

        foreach (var (format, name) in new[] { (TrainingFormat.Triplet, "triplet"), (TrainingFormat.NTuple, "n-tuple"), (TrainingFormat.LabeledPair, "labeled-pair"), (TrainingFormat.LabeledList, "labeled-list") })
        {
            string file = $"{name}.jsonl";
            Assert.Null(Mine([.. Base(tmp, file), "--output-format", name, "--output-scores", "--query-texts", tmp.File("q.txt"), "--corpus-texts", tmp.File("c.txt")]));
            var layout = new TrainingLayout
            {
                Format = format, OutputScores = true, NumNegatives = 3,
                QueryTexts = File.ReadAllLines(tmp.File("q.txt")), CorpusTexts = File.ReadAllLines(tmp.File("c.txt")),
            };
            using (var w = new TrainingJsonlWriter(tmp.File("lib-" + file), layout))
            {
                foreach (var r in raw) w.Write(r);
                w.Complete();
            }
            Assert.Equal(File.ReadAllBytes(tmp.File("lib-" + file)), File.ReadAllBytes(tmp.File(file)));
            Assert.NotEmpty(File.ReadAllLines(tmp.File(file)));
            using var manifest = MiningManifest.Read(tmp.File(file));
            Assert.Equal(name + "+scores/jsonl", manifest.RootElement.GetProperty("output").GetProperty("format").GetString());
            Assert.StartsWith("sha256:", manifest.RootElement.GetProperty("inputs").GetProperty("corpus_texts").GetString());
            Assert.Equal("keepshort", manifest.RootElement.GetProperty("options").GetProperty("shortfall").GetString());
            Assert.True(File.Exists(tmp.File(file) + ".report.json"));
        }

        // Parquet holds the same rows as the JSONL (ids this time; sentence-transformers' n-tuple-scores alias).
        Assert.Null(Mine([.. Base(tmp, "nt.jsonl"), "--output-format", "n-tuple-scores"]));
        Assert.Null(Mine([.. Base(tmp, "nt.parquet"), "--output-format", "n-tuple", "--output-scores", "--format", "parquet"]));
        var jsonl = File.ReadAllLines(tmp.File("nt.jsonl")).Select(l => JsonDocument.Parse(l)).ToList();
        await using var stream = File.OpenRead(tmp.File("nt.parquet"));
        var parquet = (await ParquetSerializer.DeserializeUntypedAsync(stream)).Data;
        Assert.Equal(jsonl.Count, parquet.Count);
        Assert.NotEmpty(parquet);
        for (int i = 0; i < parquet.Count; i++)
        {
            var j = jsonl[i].RootElement;
            Assert.Equal(j.GetProperty("anchor").GetInt64(), (long)parquet[i]["anchor"]);
            Assert.Equal(j.GetProperty("negative_3").GetInt64(), (long)parquet[i]["negative_3"]);
            Assert.Equal(j.GetProperty("score").EnumerateArray().Select(e => (float)e.GetDouble()), ((System.Collections.IEnumerable)parquet[i]["score"]).Cast<float>());
        }
        jsonl.ForEach(d => d.Dispose());
    }

    [Fact]
    public void CopiesOfAPositivesText_AreNeverNegatives()
    {
        using var tmp = new TempDir();
        var data = Inputs(tmp);
        int n = data.CorpusIds.Length;
        // Each planted near-duplicate of a positive carries the positive's text: sentence-transformers treats it as the positive.
        var texts = Enumerable.Range(0, n).Select(i => $"passage {i}").ToArray();
        for (int a = 0; a < data.Positives.Length; a++)
            foreach (long dup in data.Duplicates[a]) texts[dup] = texts[data.Positives[a][0]];
        File.WriteAllLines(tmp.File("c.txt"), texts);
        Assert.Null(Mine([.. Base(tmp, "ids.jsonl"), "--output-format", "triplet"]));
        var dups = data.Duplicates.SelectMany(d => d).ToHashSet();
        Assert.Contains(File.ReadLines(tmp.File("ids.jsonl")), l => dups.Contains(JsonDocument.Parse(l).RootElement.GetProperty("negative").GetInt64()));
        Assert.Null(Mine([.. Base(tmp, "texts.jsonl"), "--output-format", "triplet", "--corpus-texts", tmp.File("c.txt")]));
        var rows = File.ReadLines(tmp.File("texts.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.NotEmpty(rows);
        Assert.All(rows, r => Assert.NotEqual(r.GetProperty("positive").GetString(), r.GetProperty("negative").GetString()));
        Assert.Equal([new long[] { 4 }, []], TrainingLayout.SameTextExclusions(["a", "b", "c", "d", "a"], [[0], [1, 2]]));
    }

    [Fact]
    public void CorpusAnchors_TakeTheirTextsFromTheCorpus()
    {
        using var tmp = new TempDir();
        var data = Inputs(tmp);
        int n = data.CorpusIds.Length;
        MineCliTests.WriteIvecs(tmp.File("cpos.ivecs"), Enumerable.Range(0, n).Select(i => new long[] { (i + 1) % n }).ToArray());
        File.WriteAllLines(tmp.File("c.txt"), Enumerable.Range(0, n).Select(i => $"item {i}"));
        Assert.Null(Mine("--corpus", tmp.File("base.fvecs"), "--anchors", "corpus", "--positives", tmp.File("cpos.ivecs"), "--negatives", "2",
            "--output-format", "triplet", "--corpus-texts", tmp.File("c.txt"), "--out", tmp.File("c.jsonl")));
        var first = JsonDocument.Parse(File.ReadLines(tmp.File("c.jsonl")).First()).RootElement;
        Assert.Equal("item 0", first.GetProperty("anchor").GetString());
        Assert.Equal("item 1", first.GetProperty("positive").GetString());
    }

    [Fact]
    public void BadCombinations_AreClearArgumentErrors_AndWriteNothing()
    {
        using var tmp = new TempDir();
        var data = Inputs(tmp);
        File.WriteAllLines(tmp.File("short.txt"), ["only", "three", "lines"]);
        string Error(string output, params string[] extra)
        {
            var e = Assert.IsType<ArgumentException>(Mine([.. Base(tmp, output), .. extra]));
            Assert.False(File.Exists(tmp.File(output)));
            return e.Message;
        }
        Assert.Contains("Unknown output format 'pairs'", Error("a.jsonl", "--output-format", "pairs"));
        Assert.Contains("--output-scores needs --output-format", Error("b.jsonl", "--output-scores"));
        Assert.Contains("--format parquet needs --output-format", Error("c.parquet", "--format", "parquet"));
        Assert.Contains("--query-texts needs --output-format", Error("d.jsonl", "--query-texts", tmp.File("short.txt")));
        Assert.Contains("not binary", Error("e.bin", "--output-format", "triplet", "--format", "binary"));
        Assert.Contains("Unknown --format 'xml'", Error("f.xml", "--format", "xml"));
        Assert.Contains("--output-format n-tuple", Error("g.jsonl", "--output-format", "triplet", "--include-positives"));
        Assert.Contains("has 3 lines but there are 8 anchor vectors", Error("h.jsonl", "--output-format", "triplet", "--query-texts", tmp.File("short.txt")));
        Assert.Contains($"has 3 lines but there are {data.CorpusIds.Length} corpus vectors", Error("i.jsonl", "--output-format", "labeled-list", "--corpus-texts", tmp.File("short.txt")));
        Assert.Contains("does not exist", Error("j.jsonl", "--output-format", "triplet", "--corpus-texts", tmp.File("missing.txt")));
        Assert.Contains("appears twice", Error("k.jsonl", "--output-format", "triplet", "--positive-column-name", "negative"));
        var corpus = Assert.IsType<ArgumentException>(Mine("--corpus", tmp.File("base.fvecs"), "--anchors", "corpus", "--positives", tmp.File("pos.ivecs"),
            "--output-format", "triplet", "--query-texts", tmp.File("short.txt"), "--out", tmp.File("l.jsonl")));
        Assert.Contains("--query-texts does not apply", corpus.Message);
        Assert.Equal(2, Program.Main(["mine", .. Base(tmp, "m.jsonl"), "--output-format", "quads"]));
        Assert.False(File.Exists(tmp.File("m.jsonl")));
    }
}
