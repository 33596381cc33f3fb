using System.Collections;
using System.Globalization;
using System.Text.Json;
using Engine.Mining;
using Engine.Mining.Output;
using Engine.Parquet;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace Engine.Tests.Mining;

/// <summary>
/// Parquet round trips (written by <see cref="TrainingParquetWriter"/>, read back with Parquet.Net's own readers):
/// every layout, with ids and texts, with and without scores, over several row groups; column types; empty output;
/// atomic writes. (pandas here has no pyarrow, so the reader is Parquet.Net.)
/// </summary>
public class MiningOutputFormatParquetTests
{
    private static string Render(object? value) => value switch
    {
        null => "null",
        string s => s,
        ReadOnlyMemory<char> m => m.ToString(),
        long v => v.ToString(CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IEnumerable items => "[" + string.Join(", ", items.Cast<object?>().Select(Render)) + "]",
        _ => throw new InvalidOperationException($"unexpected Parquet value {value.GetType().Name}"),
    };

    private static async Task<(ParquetSchema Schema, int RowGroups, List<string> Rows)> ReadBack(string path, IReadOnlyList<TrainingColumn> columns)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        await using var stream = File.OpenRead(path);
        var result = await ParquetSerializer.DeserializeUntypedAsync(stream);
        var rows = result.Data.Select(d => string.Join(" | ", columns.Select(c => Render(d[c.Name])))).ToList();
        return (reader.Schema, reader.RowGroupCount, rows);
    }

    private static List<MinedRow> Fixture(out int n, out string[] queries, out string[] corpus)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(MiningOutputFormatPythonTests.Fixtures, "rows.json")));
        var (rows, numNegatives, q, c, _) = MiningOutputFormatPythonTests.LoadFixture(doc);
        (n, queries, corpus) = (numNegatives, q, c);
        return rows;
    }

    [Theory]
    [InlineData(TrainingFormat.Triplet)]
    [InlineData(TrainingFormat.NTuple)]
    [InlineData(TrainingFormat.LabeledPair)]
    [InlineData(TrainingFormat.LabeledList)]
    public async Task EveryLayout_RoundTrips_WithTypedColumns(TrainingFormat format)
    {
        var mined = Fixture(out int n, out var queries, out var corpus);
        using var tmp = new TempDir();
        foreach (bool scores in new[] { false, true })
            foreach (bool texts in new[] { false, true })
            {
                var layout = new TrainingLayout { Format = format, OutputScores = scores, NumNegatives = n, QueryTexts = texts ? queries : null, CorpusTexts = texts ? corpus : null };
                var (expected, missing) = TrainingRows.Expand(layout, mined);
                Assert.NotEmpty(expected);
                string path = tmp.File($"{format}-{scores}-{texts}.parquet");
                using (var w = new TrainingParquetWriter(path, layout, rowGroupRows: 2))
                {
                    foreach (var r in mined) w.Write(r);
                    w.Complete();
                    Assert.Equal(expected.Count, w.RowsWritten);
                    Assert.Equal(missing, w.MissingRows);
                }
                var (schema, groups, rows) = await ReadBack(path, layout.Columns);
                Assert.Equal(expected, rows);
                Assert.Equal((expected.Count + 1) / 2, groups);
                Assert.Equal(layout.Columns.Select(c => c.Name), schema.Fields.Select(f => f.Name));
                for (int c = 0; c < layout.Columns.Count; c++)
                {
                    var column = layout.Columns[c];
                    var field = schema.Fields[c];
                    Assert.Equal(column.IsList ? SchemaType.List : SchemaType.Data, field.SchemaType);
                    var data = field is ListField list ? (DataField)list.Item : (DataField)field;
                    Type want = column.Kind switch
                    {
                        TrainingColumnKind.Text or TrainingColumnKind.TextList => typeof(ReadOnlyMemory<char>), // Parquet.Net 6's CLR type of a UTF-8 string column
                        TrainingColumnKind.Score or TrainingColumnKind.ScoreList => typeof(float),
                        _ => typeof(long),
                    };
                    Assert.Equal(want, data.ClrType);
                }
            }
    }

    [Fact]
    public async Task HandMadeTable_ReadsBackCellByCell()
    {
        var layout = new TrainingLayout { Format = TrainingFormat.LabeledList, OutputScores = true, NumNegatives = 2, QueryTexts = ["unused"], CorpusTexts = ["zero", "one", "two", "three"] };
        using var tmp = new TempDir();
        string path = tmp.File("hand.parquet");
        using (var w = new TrainingParquetWriter(path, layout))
        {
            w.Write(new MinedRow(0, [1], [0.75f], [3, 2], [0.5f, 0.25f]));
            w.Write(new MinedRow(0, [2, 3], [1f, -1f], [0], [0.125f]));
            w.Complete();
        }
        var (_, groups, rows) = await ReadBack(path, layout.Columns);
        Assert.Equal(1, groups);
        Assert.Equal([
            "unused | [one, three, two] | [1, 0, 0] | [0.75, 0.5, 0.25]",
            "unused | [two, zero] | [1, 0] | [1, 0.125]",
            "unused | [three, zero] | [1, 0] | [-1, 0.125]",
        ], rows);
    }

    [Fact]
    public async Task NoRows_StillCarryTheSchema()
    {
        var layout = new TrainingLayout { Format = TrainingFormat.NTuple, OutputScores = true, NumNegatives = 2 };
        using var tmp = new TempDir();
        string path = tmp.File("empty.parquet");
        using (var w = new TrainingParquetWriter(path, layout))
        {
            w.Write(new MinedRow(0, [1], [0.5f], [2], [0.25f])); // short: n-tuple writes no row
            w.Complete();
            Assert.Equal(0, w.RowsWritten);
            Assert.Equal(1, w.MissingRows);
        }
        await using var reader = await ParquetReader.CreateAsync(path);
        Assert.Equal(0, reader.RowGroupCount);
        Assert.Equal(["anchor", "positive", "negative_1", "negative_2", "score"], reader.Schema.Fields.Select(f => f.Name));
    }

    [Fact]
    public void UncompletedWriter_LeavesNoFile_AndBadArgumentsAreErrors()
    {
        using var tmp = new TempDir();
        var layout = new TrainingLayout { NumNegatives = 1 };
        using (var w = new TrainingParquetWriter(tmp.File("x.parquet"), layout, rowGroupRows: 1))
            w.Write(new MinedRow(0, [1], [0.5f], [2], [0.25f]));
        Assert.Empty(Directory.GetFiles(tmp.Path));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingParquetWriter(tmp.File("y.parquet"), layout, rowGroupRows: 0));
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => new TrainingParquetWriter(tmp.File("z.parquet"), layout with { AnchorColumn = "positive" })).Message);
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }
}
