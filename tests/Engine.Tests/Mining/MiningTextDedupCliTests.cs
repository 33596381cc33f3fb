using System.CommandLine;
using Engine.Cli;
using Engine.Data;
using Engine.Mining.Output;
using Engine.Tests.Support;

namespace Engine.Tests.Mining;

/// <summary>
/// <c>engine mine --query-texts / --corpus-texts</c> with repeated texts follows sentence-transformers: the corpus is
/// indexed once per text (positives map to the first row with their text) and anchors with the same text are merged
/// with their positives pooled. The rows must equal those of the same run on inputs de-duplicated by hand.
/// </summary>
public class MiningTextDedupCliTests
{
    private static Exception? Mine(params string[] args) =>
        Record.Exception(() => Program.BuildRoot().Parse(["mine", .. args]).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }));

    // ivecs with one row per list (rows of different lengths).
    private static void WriteRows(string path, IEnumerable<int[]> rows)
    {
        using var w = new BinaryWriter(File.Create(path));
        foreach (var r in rows)
        {
            w.Write(r.Length);
            foreach (int v in r) w.Write(v);
        }
    }

    [Fact]
    public void Repeated_texts_give_the_rows_of_the_deduplicated_inputs()
    {
        using var tmp = new TempDir();
        const int d = 16, unique = 150, copies = 20, anchors = 8, repeats = 4;
        var corpus = TestData.Gaussian(unique, d, seed: 71);
        var queries = TestData.Gaussian(anchors, d, seed: 72);
        // With repeats: corpus rows 150..169 copy rows 0..19 (same text, same vector); anchors 8..11 repeat the texts
        // of anchors 0..3 with other positives (some of them copies).
        var corpusDup = new float[(unique + copies) * d];
        corpus.CopyTo(corpusDup, 0);
        Array.Copy(corpus, 0, corpusDup, unique * d, copies * d);
        var corpusTexts = Enumerable.Range(0, unique).Select(i => $"passage {i}").Concat(Enumerable.Range(0, copies).Select(i => $"passage {i}")).ToArray();
        var queriesDup = new float[(anchors + repeats) * d];
        queries.CopyTo(queriesDup, 0);
        var noise = TestData.Gaussian(repeats, d, seed: 73);
        for (int i = 0; i < repeats * d; i++) queriesDup[anchors * d + i] = queries[i] + noise[i]; // the first row's vector wins
        var queryTexts = Enumerable.Range(0, anchors).Select(i => $"query {i}").Concat(Enumerable.Range(0, repeats).Select(i => $"query {i}")).ToArray();
        // Positives: anchor i -> row 10 + i, written as its copy 160 + i for i < 4 (copy of 10..13); repeats -> 40 + i.
        var posDup = Enumerable.Range(0, anchors).Select(i => new[] { i < 4 ? 150 + 10 + i : 10 + i })
            .Concat(Enumerable.Range(0, repeats).Select(i => new[] { 40 + i })).ToArray();
        VectorFiles.Write(tmp.File("cd.fvecs"), corpusDup, d);
        VectorFiles.Write(tmp.File("qd.fvecs"), queriesDup, d);
        WriteRows(tmp.File("pd.ivecs"), posDup);
        File.WriteAllLines(tmp.File("cd.txt"), corpusTexts);
        File.WriteAllLines(tmp.File("qd.txt"), queryTexts);

        // By hand: unique corpus rows, merged anchors, positives on the first rows, pooled.
        VectorFiles.Write(tmp.File("c.fvecs"), corpus, d);
        VectorFiles.Write(tmp.File("q.fvecs"), queries, d);
        WriteRows(tmp.File("p.ivecs"), Enumerable.Range(0, anchors).Select(i => i < repeats ? new[] { 10 + i, 40 + i } : new[] { 10 + i }));
        File.WriteAllLines(tmp.File("c.txt"), corpusTexts.Take(unique));
        File.WriteAllLines(tmp.File("q.txt"), queryTexts.Take(anchors));

        string[] Args(string c, string q, string p, string ct, string qt, string output) =>
            ["--corpus", tmp.File(c), "--anchors", tmp.File(q), "--positives", tmp.File(p), "--metric", "cosine",
             "--range", "0:12", "--negatives", "4", "--seed", "3", "--output-format", "n-tuple", "--output-scores",
             "--query-texts", tmp.File(qt), "--corpus-texts", tmp.File(ct), "--out", tmp.File(output)];
        Assert.Null(Mine(Args("cd.fvecs", "qd.fvecs", "pd.ivecs", "cd.txt", "qd.txt", "dup.jsonl")));
        Assert.Null(Mine(Args("c.fvecs", "q.fvecs", "p.ivecs", "c.txt", "q.txt", "hand.jsonl")));
        var dup = File.ReadAllLines(tmp.File("dup.jsonl"));
        Assert.Equal(anchors + repeats, dup.Length); // one row per (anchor, positive) pair: 4 merged anchors hold 2
        Assert.Equal(File.ReadAllLines(tmp.File("hand.jsonl")), dup);
        // No negative repeats a text within a row (the copies were never indexed).
        foreach (var line in dup)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            var texts = doc.RootElement.EnumerateObject().Where(p => p.Value.ValueKind == System.Text.Json.JsonValueKind.String).Select(p => p.Value.GetString()).ToList();
            Assert.Equal(texts.Count, texts.Distinct().Count());
        }
    }

    [Fact]
    public void Merge_by_text_pools_lists_in_row_order()
    {
        var (rows, pooled) = TextDeduplication.MergeByText(["a", "b", "a", "c", "b"], [[1], [2], [3, 1], [4], [5]], null);
        Assert.Equal([0, 1, 3], rows);
        Assert.Equal([1L, 3], pooled[0][0]);
        Assert.Equal([2L, 5], pooled[0][1]);
        Assert.Equal([4L], pooled[0][2]);
        Assert.All(pooled[1], l => Assert.Empty(l));
        Assert.Equal([0, 1, 0, 3, 1], TextDeduplication.CanonicalRows(["a", "b", "a", "c", "b"]));
        Assert.Throws<ArgumentException>(() => TextDeduplication.MergeByText(["a"], [[1], [2]]));
    }
}
