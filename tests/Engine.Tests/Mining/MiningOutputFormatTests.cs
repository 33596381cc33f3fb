using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Engine.Mining;
using Engine.Mining.Output;

namespace Engine.Tests.Mining;

/// <summary>Shared helpers: a readable rendering of output rows for hand-written expected tables.</summary>
internal static class TrainingRows
{
    /// <summary>Cells separated by " | "; lists as [a, b]; floats in round-trip form.</summary>
    public static string Render(TrainingRow row) => string.Join(" | ", row.Cells.Select(Cell));

    public static string Cell(object cell) => cell switch
    {
        string s => s,
        long v => v.ToString(CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        string[] a => "[" + string.Join(", ", a) + "]",
        long[] a => "[" + string.Join(", ", a.Select(v => v.ToString(CultureInfo.InvariantCulture))) + "]",
        float[] a => "[" + string.Join(", ", a.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]",
        _ => throw new InvalidOperationException($"unexpected cell {cell?.GetType().Name ?? "null"}"),
    };

    public static (List<string> Rows, long Missing) Expand(TrainingLayout layout, IEnumerable<MinedRow> mined)
    {
        var rows = new List<TrainingRow>();
        long missing = mined.Sum(m => layout.Expand(m, rows));
        return (rows.Select(Render).ToList(), missing);
    }

    /// <summary>Three anchors: full (2 positives, 2 negatives), one negative short, no negative at all (NumNegatives = 2).</summary>
    public static MinedRow[] Small() =>
    [
        new(10, [1, 2], [0.9f, 0.8f], [5, 6], [0.7f, 0.6f]),
        new(11, [3], [0.5f], [7], [0.4f]),
        new(12, [4], [0.25f], [], []),
    ];
}

/// <summary>
/// Each sentence-transformers layout against a small hand-made table: columns, row order, score columns and missing
/// rows as <c>minedex.mine_hard_negatives</c> (hard_negatives.py, <c>_layout</c>) defines them.
/// </summary>
public class MiningOutputFormatLayoutTests
{
    private static TrainingLayout Layout(TrainingFormat f, bool scores = false) => new() { Format = f, OutputScores = scores, NumNegatives = 2 };

    private static string[] Names(TrainingLayout l) => l.Columns.Select(c => c.Name).ToArray();

    [Fact]
    public void Triplet_OneRowPerPositiveAndNegative()
    {
        var layout = Layout(TrainingFormat.Triplet, scores: true);
        Assert.Equal(["anchor", "positive", "negative", "score"], Names(layout));
        Assert.Equal([TrainingColumnKind.Id, TrainingColumnKind.Id, TrainingColumnKind.Id, TrainingColumnKind.ScoreList], layout.Columns.Select(c => c.Kind));
        var (rows, missing) = TrainingRows.Expand(layout, TrainingRows.Small());
        Assert.Equal([
            "10 | 1 | 5 | [0.9, 0.7]", "10 | 1 | 6 | [0.9, 0.6]", "10 | 2 | 5 | [0.8, 0.7]", "10 | 2 | 6 | [0.8, 0.6]",
            "11 | 3 | 7 | [0.5, 0.4]",
        ], rows);
        Assert.Equal(0 + 1 * 1 + 1 * 2, missing); // per positive: the negatives short of 2
        Assert.Equal(["anchor", "positive", "negative"], Names(Layout(TrainingFormat.Triplet)));
        Assert.Equal("10 | 1 | 5", TrainingRows.Expand(Layout(TrainingFormat.Triplet), TrainingRows.Small()).Rows[0]);
    }

    [Fact]
    public void NTuple_OnlyAnchorsWithAllNegatives()
    {
        var layout = Layout(TrainingFormat.NTuple, scores: true);
        Assert.Equal(["anchor", "positive", "negative_1", "negative_2", "score"], Names(layout));
        var (rows, missing) = TrainingRows.Expand(layout, TrainingRows.Small());
        Assert.Equal(["10 | 1 | 5 | 6 | [0.9, 0.7, 0.6]", "10 | 2 | 5 | 6 | [0.8, 0.7, 0.6]"], rows);
        Assert.Equal(2, missing); // one per positive of the two short anchors
        Assert.Equal(["anchor", "positive", "negative_1", "negative_2", "negative_3", "negative_4"],
            Names(new TrainingLayout { Format = TrainingFormat.NTuple, NumNegatives = 4 }));
    }

    [Fact]
    public void LabeledPair_PositivesThenNegatives()
    {
        var layout = Layout(TrainingFormat.LabeledPair, scores: true);
        Assert.Equal(["anchor", "positive", "label", "score"], Names(layout));
        Assert.Equal([TrainingColumnKind.Label, TrainingColumnKind.Score], layout.Columns.Skip(2).Select(c => c.Kind));
        var (rows, missing) = TrainingRows.Expand(layout, TrainingRows.Small());
        Assert.Equal([
            "10 | 1 | 1 | 0.9", "10 | 2 | 1 | 0.8", "10 | 5 | 0 | 0.7", "10 | 6 | 0 | 0.6",
            "11 | 3 | 1 | 0.5", "11 | 7 | 0 | 0.4",
            "12 | 4 | 1 | 0.25",
        ], rows);
        Assert.Equal(0 + 1 + 2, missing); // per anchor: the negatives short
    }

    [Fact]
    public void LabeledList_DocumentListsWithLabels()
    {
        var layout = Layout(TrainingFormat.LabeledList, scores: true);
        Assert.Equal(["anchor", "positive", "labels", "scores"], Names(layout));
        Assert.Equal([TrainingColumnKind.IdList, TrainingColumnKind.LabelList, TrainingColumnKind.ScoreList], layout.Columns.Skip(1).Select(c => c.Kind));
        var (rows, missing) = TrainingRows.Expand(layout, TrainingRows.Small());
        Assert.Equal([
            "10 | [1, 5, 6] | [1, 0, 0] | [0.9, 0.7, 0.6]", "10 | [2, 5, 6] | [1, 0, 0] | [0.8, 0.7, 0.6]",
            "11 | [3, 7] | [1, 0] | [0.5, 0.4]",
        ], rows);
        Assert.Equal(1, missing); // anchor 12 has no negative
    }

    [Fact]
    public void Texts_ReplaceIds_AnchorsAndDocumentsIndependently()
    {
        string[] queries = Enumerable.Range(0, 13).Select(i => $"q{i}").ToArray();
        string[] corpus = Enumerable.Range(0, 8).Select(i => $"d{i}").ToArray();
        var both = Layout(TrainingFormat.LabeledList) with { QueryTexts = queries, CorpusTexts = corpus };
        Assert.Equal([TrainingColumnKind.Text, TrainingColumnKind.TextList, TrainingColumnKind.LabelList], both.Columns.Select(c => c.Kind));
        Assert.Equal(["q10 | [d1, d5, d6] | [1, 0, 0]", "q10 | [d2, d5, d6] | [1, 0, 0]", "q11 | [d3, d7] | [1, 0]"],
            TrainingRows.Expand(both, TrainingRows.Small()).Rows);
        var corpusOnly = Layout(TrainingFormat.Triplet) with { CorpusTexts = corpus, AnchorColumn = "query", PositiveColumn = "answer" };
        Assert.Equal(["query", "answer", "negative"], Names(corpusOnly));
        Assert.Equal("10 | d1 | d5", TrainingRows.Expand(corpusOnly, TrainingRows.Small()).Rows[0]);
    }

    [Fact]
    public void PaddingIds_CountAsMissing_LikePythonsFoundMask()
    {
        var padded = new MinedRow(0, [1], [0.5f], [4, -1], [0.25f, float.NaN]);
        var (rows, missing) = TrainingRows.Expand(Layout(TrainingFormat.Triplet, scores: true), [padded]);
        Assert.Equal(["0 | 1 | 4 | [0.5, 0.25]"], rows);
        Assert.Equal(1, missing);
        Assert.Empty(TrainingRows.Expand(Layout(TrainingFormat.NTuple), [padded]).Rows);
    }

    [Fact]
    public void BadLayoutsAndRows_AreClearErrors()
    {
        Assert.Contains("at least 1", Assert.Throws<ArgumentException>(() => new TrainingLayout { NumNegatives = 0 }.Validate()).Message);
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => new TrainingLayout { PositiveColumn = "negative" }.Validate()).Message);
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => new TrainingLayout { Format = TrainingFormat.NTuple, AnchorColumn = "negative_2" }.Validate()).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => new TrainingLayout { AnchorColumn = "" }.Validate()).Message);
        Assert.Contains("line 1", Assert.Throws<ArgumentException>(() => new TrainingLayout { CorpusTexts = ["a", null!] }.Validate()).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingLayout { Format = (TrainingFormat)9 }.Validate());

        var layout = Layout(TrainingFormat.Triplet);
        var rows = new List<TrainingRow>();
        Assert.Contains("more than NumNegatives", Assert.Throws<ArgumentException>(() => layout.Expand(new MinedRow(0, [1], [1f], [2, 3, 4], [1f, 1f, 1f]), rows)).Message);
        Assert.Contains("positive scores", Assert.Throws<ArgumentException>(() => layout.Expand(new MinedRow(0, [1, 2], [1f], [3], [1f]), rows)).Message);
        Assert.Contains("scores", Assert.Throws<ArgumentException>(() => layout.Expand(new MinedRow(0, [1], [1f], [3], []), rows)).Message);
        var texts = layout with { CorpusTexts = ["only one"] };
        Assert.Contains("Id 3 has no corpus text", Assert.Throws<ArgumentException>(() => texts.Expand(new MinedRow(0, [0], [1f], [3], [1f]), rows)).Message);
        Assert.Contains("Id 7 has no query text", Assert.Throws<ArgumentException>(() => (layout with { QueryTexts = ["q"] }).Expand(new MinedRow(7, [0], [1f], [], []), rows)).Message);
    }

    [Fact]
    public void FormatNames_ParseAsPythonSpellsThem()
    {
        for (int i = 0; i < 4; i++)
        {
            var f = (TrainingFormat)i;
            Assert.Equal(f, TrainingFormats.Parse(TrainingFormats.Name(f), out bool s));
            Assert.False(s);
            Assert.Equal(TrainingFormats.Names[i], TrainingFormats.Name(f));
        }
        Assert.Equal(TrainingFormat.NTuple, TrainingFormats.Parse("n-tuple-scores", out bool scores));
        Assert.True(scores);
        Assert.Contains("expected triplet, n-tuple", Assert.Throws<ArgumentException>(() => TrainingFormats.Parse("pairs", out _)).Message);
    }

    [Fact]
    public void JsonlWriter_IsAtomic_AndCountsRows()
    {
        using var tmp = new TempDir();
        string path = tmp.File("t.jsonl");
        using (var w = new TrainingJsonlWriter(path, Layout(TrainingFormat.Triplet)))
        {
            foreach (var r in TrainingRows.Small()) w.Write(r);
            Assert.False(File.Exists(path));
        }
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(tmp.Path));
        using (var w = new TrainingJsonlWriter(path, Layout(TrainingFormat.Triplet)))
        {
            foreach (var r in TrainingRows.Small()) w.Write(r);
            w.Complete();
            Assert.Equal(5, w.RowsWritten);
            Assert.Equal(3, w.MissingRows);
            Assert.Throws<InvalidOperationException>(() => w.Write(TrainingRows.Small()[0]));
        }
        Assert.Equal("{\"anchor\": 10, \"positive\": 1, \"negative\": 5}", File.ReadLines(path).First());
        Assert.Equal(5, File.ReadLines(path).Count());
        Assert.Throws<DirectoryNotFoundException>(() => new TrainingJsonlWriter(tmp.File("no/such/dir.jsonl"), Layout(TrainingFormat.Triplet)));
    }
}

/// <summary>
/// C# JSONL equals what the Python function writes, byte for byte. tests/fixtures/training-formats/expected holds the
/// files that the Python function's own layout code wrote for rows.json (generate.py; the same files are checked
/// against the installed minedex package by bindings/python/tests/test_training_formats.py in CI), and Python's
/// float formatting is checked against /usr/bin/python3 itself.
/// </summary>
public class MiningOutputFormatPythonTests
{
    internal static readonly string Fixtures = Path.Combine(FindRoot(), "tests", "fixtures", "training-formats");

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Engine.sln"))) return d.FullName;
        throw new InvalidOperationException("Engine.sln not found above " + AppContext.BaseDirectory);
    }

    private static float F(JsonElement e) => e.ValueKind == JsonValueKind.String ? float.Parse(e.GetString()!, CultureInfo.InvariantCulture) : (float)e.GetDouble();

    internal static (List<MinedRow> Rows, int NumNegatives, string[] Queries, string[] Corpus, JsonElement Variants) LoadFixture(JsonDocument doc)
    {
        var r = doc.RootElement;
        var rows = r.GetProperty("rows").EnumerateArray().Select(x => new MinedRow(x.GetProperty("anchor").GetInt64(),
            x.GetProperty("positives").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
            x.GetProperty("positive_scores").EnumerateArray().Select(F).ToArray(),
            x.GetProperty("negatives").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
            x.GetProperty("scores").EnumerateArray().Select(F).ToArray())).ToList();
        return (rows, r.GetProperty("num_negatives").GetInt32(),
            r.GetProperty("query_texts").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            r.GetProperty("corpus_texts").EnumerateArray().Select(e => e.GetString()!).ToArray(), r.GetProperty("variants"));
    }

    [Fact]
    public void Jsonl_EqualsWhatThePythonFunctionWrites_ByteForByte()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "rows.json")));
        var (rows, n, queries, corpus, variants) = LoadFixture(doc);
        using var missingDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "expected", "missing_rows.json")));
        using var tmp = new TempDir();
        int compared = 0;
        foreach (var v in variants.EnumerateArray())
            foreach (bool scores in new[] { false, true })
                foreach (bool texts in new[] { false, true })
                {
                    string name = v.GetProperty("name").GetString() + (scores ? "-scores" : "") + (texts ? "-texts" : "");
                    var layout = new TrainingLayout
                    {
                        Format = TrainingFormats.Parse(v.GetProperty("output_format").GetString()!, out _), OutputScores = scores, NumNegatives = n,
                        AnchorColumn = v.TryGetProperty("anchor_column_name", out var a) ? a.GetString()! : "anchor",
                        PositiveColumn = v.TryGetProperty("positive_column_name", out var p) ? p.GetString()! : "positive",
                        QueryTexts = texts ? queries : null, CorpusTexts = texts ? corpus : null,
                    };
                    string path = tmp.File(name + ".jsonl");
                    long missing;
                    using (var w = new TrainingJsonlWriter(path, layout))
                    {
                        foreach (var row in rows) w.Write(row);
                        w.Complete();
                        missing = w.MissingRows;
                    }
                    byte[] want = File.ReadAllBytes(Path.Combine(Fixtures, "expected", name + ".jsonl"));
                    byte[] got = File.ReadAllBytes(path);
                    Assert.True(want.AsSpan().SequenceEqual(got), $"{name}: C# wrote\n{Encoding.UTF8.GetString(got)}\nPython wrote\n{Encoding.UTF8.GetString(want)}");
                    Assert.True(want.Length > 0, name);
                    Assert.Equal(missingDoc.RootElement.GetProperty(name).GetInt64(), missing);
                    compared++;
                }
        Assert.Equal(20, compared);
    }

    [Fact]
    public void Fixture_CoversTheEdgeCases()
    {
        // The fixture must keep exercising what the byte comparison relies on: short and empty windows, -1 padding,
        // repeated positives, escapes and non-ASCII texts, and floats in both of Python's notations.
        string text = File.ReadAllText(Path.Combine(Fixtures, "expected", "labeled-pair-scores-texts.jsonl"));
        foreach (string s in new[] { "\\\"mining\\\"", "tab\\there", "multi\\nline", "\\u0001", "back\\\\slash", "naïve café 中文", "e-06", "e+20", "-0.0", "123456.78125" })
            Assert.Contains(s, text);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "rows.json")));
        var (rows, n, _, _, _) = LoadFixture(doc);
        Assert.Contains(rows, r => r.Negatives.Length == 0);
        Assert.Contains(rows, r => r.Negatives.Contains(-1));
        Assert.Contains(rows, r => r.Negatives.Length > 0 && r.Negatives.Length < n);
        Assert.Contains(rows, r => r.Positives.Distinct().Count() < r.Positives.Length);
    }

    [Fact]
    public async Task PythonFloat_EqualsPythonsRepr()
    {
        var rng = new Random(1234);
        var values = new List<float> { 0f, -0f, 1f, 0.1f, 1e-4f, 1e-5f, 9.999999e-5f, 1e16f, 1e15f, 9.9999998e15f, 3.4028235e38f, float.Epsilon, -float.Epsilon, 1.17549435e-38f, 123456.78f, 16777216f, 0.5f, -2.5f };
        for (int i = 0; i < 3000; i++)
        {
            float f = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
            if (float.IsFinite(f)) values.Add(f);
            values.Add((float)(rng.NextDouble() * Math.Pow(10, rng.Next(-8, 20))));
        }
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("import json, struct, sys\nfor line in sys.stdin:\n    print(json.dumps(struct.unpack('<f', struct.pack('<i', int(line)))[0]))");
        using var p = Process.Start(psi)!;
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        foreach (float f in values) p.StandardInput.WriteLine(BitConverter.SingleToInt32Bits(f).ToString(CultureInfo.InvariantCulture));
        p.StandardInput.Close();
        string stdout = await stdoutTask, stderr = await stderrTask;
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, "python3 failed: " + stderr);
        var want = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(values.Count, want.Length);
        for (int i = 0; i < values.Count; i++)
            Assert.True(want[i] == TrainingJsonlWriter.PythonFloat(values[i]), $"{values[i]:R}: python {want[i]}, ours {TrainingJsonlWriter.PythonFloat(values[i])}");
        Assert.Equal("NaN", TrainingJsonlWriter.PythonFloat(float.NaN));
        Assert.Equal("Infinity", TrainingJsonlWriter.PythonFloat(float.PositiveInfinity));
        Assert.Equal("-Infinity", TrainingJsonlWriter.PythonFloat(float.NegativeInfinity));
    }
}
