namespace Engine.Mining.Output;

/// <summary>
/// The row layouts sentence-transformers trainers read (<c>mine_hard_negatives(output_format=…)</c>), with the
/// names of the Python function <c>minedex.mine_hard_negatives</c>.
/// </summary>
public enum TrainingFormat
{
    /// <summary><c>triplet</c>: one row per (positive, negative) pair: anchor, positive, negative.</summary>
    Triplet = 0,
    /// <summary><c>n-tuple</c>: one row per positive: anchor, positive, negative_1 … negative_n; anchors short of n negatives give no row.</summary>
    NTuple = 1,
    /// <summary><c>labeled-pair</c>: one row per document: anchor, document, label (1 for positives, then 0 for negatives).</summary>
    LabeledPair = 2,
    /// <summary><c>labeled-list</c>: one row per positive: anchor, [positive, negatives…], labels [1, 0…]; anchors without negatives give no row.</summary>
    LabeledList = 3,
}

/// <summary>Names of <see cref="TrainingFormat"/> as the Python function and the CLI spell them.</summary>
public static class TrainingFormats
{
    /// <summary>The four names, in <see cref="TrainingFormat"/> order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["triplet", "n-tuple", "labeled-pair", "labeled-list"];

    /// <summary>The name of <paramref name="format"/> (<c>triplet</c>, <c>n-tuple</c>, <c>labeled-pair</c>, <c>labeled-list</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined format.</exception>
    public static string Name(TrainingFormat format) => format switch
    {
        TrainingFormat.Triplet => "triplet",
        TrainingFormat.NTuple => "n-tuple",
        TrainingFormat.LabeledPair => "labeled-pair",
        TrainingFormat.LabeledList => "labeled-list",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Not a training output format."),
    };

    /// <summary>
    /// Parses a name. sentence-transformers' <c>n-tuple-scores</c> is <c>n-tuple</c> with scores, as in the Python
    /// function: <paramref name="impliesScores"/> says so.
    /// </summary>
    /// <exception cref="ArgumentException">Not one of the names.</exception>
    public static TrainingFormat Parse(string name, out bool impliesScores)
    {
        ArgumentNullException.ThrowIfNull(name);
        impliesScores = false;
        switch (name.Trim().ToLowerInvariant())
        {
            case "triplet": return TrainingFormat.Triplet;
            case "n-tuple": return TrainingFormat.NTuple;
            case "n-tuple-scores": impliesScores = true; return TrainingFormat.NTuple;
            case "labeled-pair": return TrainingFormat.LabeledPair;
            case "labeled-list": return TrainingFormat.LabeledList;
            default:
                throw new ArgumentException($"Unknown output format '{name}': expected triplet, n-tuple, labeled-pair or labeled-list (or n-tuple-scores).", nameof(name));
        }
    }
}

/// <summary>What a column of a <see cref="TrainingLayout"/> holds, and so the type of its cells in a <see cref="TrainingRow"/>.</summary>
public enum TrainingColumnKind
{
    /// <summary>A text (<see cref="string"/>): an anchor or document when texts were given.</summary>
    Text = 0,
    /// <summary>An id (<see cref="long"/>): an anchor or document when no texts were given.</summary>
    Id = 1,
    /// <summary>A list of texts (<see cref="string"/>[]): labeled-list documents with texts.</summary>
    TextList = 2,
    /// <summary>A list of ids (<see cref="long"/>[]): labeled-list documents without texts.</summary>
    IdList = 3,
    /// <summary>A label, 1 or 0 (<see cref="long"/>).</summary>
    Label = 4,
    /// <summary>A list of labels (<see cref="long"/>[]).</summary>
    LabelList = 5,
    /// <summary>A score (<see cref="float"/>, larger is closer).</summary>
    Score = 6,
    /// <summary>A list of scores (<see cref="float"/>[]).</summary>
    ScoreList = 7,
}

/// <summary>One column of a training layout.</summary>
/// <param name="Name">Column name (e.g. <c>anchor</c>, <c>negative_2</c>, <c>score</c>).</param>
/// <param name="Kind">What its cells hold.</param>
public sealed record TrainingColumn(string Name, TrainingColumnKind Kind)
{
    /// <summary>Whether the cells are lists.</summary>
    public bool IsList => Kind is TrainingColumnKind.TextList or TrainingColumnKind.IdList or TrainingColumnKind.LabelList or TrainingColumnKind.ScoreList;
}

/// <summary>
/// One output row: a cell per column of <see cref="TrainingLayout.Columns"/>, typed by the column's
/// <see cref="TrainingColumnKind"/> (<see cref="string"/>, <see cref="long"/>, <see cref="float"/>, or arrays of them).
/// </summary>
/// <param name="Cells">The cells, in column order.</param>
public readonly record struct TrainingRow(object[] Cells);

/// <summary>
/// Turns mined rows (<see cref="MinedRow"/>: one anchor, its positives and negatives) into the rows of a
/// sentence-transformers layout, exactly as <c>minedex.mine_hard_negatives</c> (bindings/python/minedex/hard_negatives.py,
/// <c>_layout</c>) does: the same columns in the same order, the same row order, the same score columns, and the same
/// count of missing rows.
/// </summary>
/// <remarks>
/// <para>Columns: anchor and positive column (names configurable), then <c>negative</c> (triplet),
/// <c>negative_1</c>…<c>negative_n</c> (n-tuple), <c>label</c> (labeled-pair) or <c>labels</c> (labeled-list; the
/// positive column then holds the document list), then with <see cref="OutputScores"/> <c>score</c>
/// ([positive, negative] for triplet, [positive, negatives…] for n-tuple, the pair's score for labeled-pair) or
/// <c>scores</c> (labeled-list, aligned with the documents).</para>
/// <para>Cells hold texts when <see cref="QueryTexts"/> (anchors) / <see cref="CorpusTexts"/> (documents) are
/// given, ids otherwise; the two are independent, as in Python. Negative ids below zero (padding) count as
/// missing, like Python's <c>-1</c> padding.</para>
/// <para>Missing rows (Python's <c>missing_rows</c>): triplet: per positive, the negatives short of
/// <see cref="NumNegatives"/>; n-tuple: one per positive of an anchor short of <see cref="NumNegatives"/>;
/// labeled-pair: per anchor, the negatives short; labeled-list: one per positive of an anchor with no negative.</para>
/// </remarks>
public sealed record TrainingLayout
{
    /// <summary>The row layout.</summary>
    public TrainingFormat Format { get; init; } = TrainingFormat.Triplet;

    /// <summary>Adds the score column (<c>score</c>, or <c>scores</c> for labeled-list); Python's <c>output_scores</c>.</summary>
    public bool OutputScores { get; init; }

    /// <summary>Negatives mined per anchor (<see cref="MiningOptions.NumNegatives"/>): the n-tuple width and the measure of missing rows.</summary>
    public int NumNegatives { get; init; } = 3;

    /// <summary>Name of the anchor column (Python's <c>anchor_column_name</c>).</summary>
    public string AnchorColumn { get; init; } = "anchor";

    /// <summary>Name of the positive column (Python's <c>positive_column_name</c>).</summary>
    public string PositiveColumn { get; init; } = "positive";

    /// <summary>Anchor texts indexed by <see cref="MinedRow.Anchor"/>; null writes anchor ids.</summary>
    public IReadOnlyList<string>? QueryTexts { get; init; }

    /// <summary>Corpus texts indexed by corpus id; null writes document ids.</summary>
    public IReadOnlyList<string>? CorpusTexts { get; init; }

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">An undefined format, <see cref="NumNegatives"/> below 1, an empty or clashing column name, or a null text.</exception>
    public void Validate()
    {
        _ = TrainingFormats.Name(Format);
        if (NumNegatives < 1)
            throw new ArgumentException($"NumNegatives must be at least 1, got {NumNegatives}.", nameof(NumNegatives));
        if (string.IsNullOrEmpty(AnchorColumn))
            throw new ArgumentException("The anchor column name is empty.", nameof(AnchorColumn));
        if (string.IsNullOrEmpty(PositiveColumn))
            throw new ArgumentException("The positive column name is empty.", nameof(PositiveColumn));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in BuildColumns())
            if (!names.Add(c.Name))
                throw new ArgumentException($"Column name '{c.Name}' appears twice in the {TrainingFormats.Name(Format)} layout: rename the anchor or positive column.", nameof(AnchorColumn));
        CheckTexts(QueryTexts, "query texts");
        CheckTexts(CorpusTexts, "corpus texts");
    }

    private static void CheckTexts(IReadOnlyList<string>? texts, string what)
    {
        if (texts is null) return;
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentException($"The {what} hold null at line {i}: every id needs a text.");
    }

    /// <summary>The columns, in order (see the remarks of <see cref="TrainingLayout"/>).</summary>
    public IReadOnlyList<TrainingColumn> Columns => BuildColumns();

    private List<TrainingColumn> BuildColumns()
    {
        var anchor = QueryTexts is null ? TrainingColumnKind.Id : TrainingColumnKind.Text;
        var doc = CorpusTexts is null ? TrainingColumnKind.Id : TrainingColumnKind.Text;
        var docs = CorpusTexts is null ? TrainingColumnKind.IdList : TrainingColumnKind.TextList;
        var cols = new List<TrainingColumn> { new(AnchorColumn, anchor) };
        switch (Format)
        {
            case TrainingFormat.Triplet:
                cols.Add(new(PositiveColumn, doc));
                cols.Add(new("negative", doc));
                if (OutputScores) cols.Add(new("score", TrainingColumnKind.ScoreList));
                break;
            case TrainingFormat.NTuple:
                cols.Add(new(PositiveColumn, doc));
                for (int k = 1; k <= NumNegatives; k++) cols.Add(new($"negative_{k}", doc));
                if (OutputScores) cols.Add(new("score", TrainingColumnKind.ScoreList));
                break;
            case TrainingFormat.LabeledPair:
                cols.Add(new(PositiveColumn, doc));
                cols.Add(new("label", TrainingColumnKind.Label));
                if (OutputScores) cols.Add(new("score", TrainingColumnKind.Score));
                break;
            default:
                cols.Add(new(PositiveColumn, docs));
                cols.Add(new("labels", TrainingColumnKind.LabelList));
                if (OutputScores) cols.Add(new("scores", TrainingColumnKind.ScoreList));
                break;
        }
        return cols;
    }

    /// <summary>
    /// Appends the output rows of one mined row to <paramref name="rows"/>, in Python's order, and returns how many
    /// rows are missing for it (see the remarks of <see cref="TrainingLayout"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The row is inconsistent (positive scores not one per positive, scores not one per negative, more negatives than <see cref="NumNegatives"/>) or names an id without a text.</exception>
    public long Expand(MinedRow row, List<TrainingRow> rows)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(rows);
        if (row.PositiveScores.Length != row.Positives.Length)
            throw new ArgumentException($"Anchor {row.Anchor}: {row.Positives.Length} positives but {row.PositiveScores.Length} positive scores; a training layout needs one score per positive.", nameof(row));
        if (row.Scores.Length != row.Negatives.Length)
            throw new ArgumentException($"Anchor {row.Anchor}: {row.Negatives.Length} negatives but {row.Scores.Length} scores.", nameof(row));
        if (row.Negatives.Length > NumNegatives)
            throw new ArgumentException($"Anchor {row.Anchor} has {row.Negatives.Length} negatives, more than NumNegatives = {NumNegatives}: the layout's NumNegatives must be the miner's.", nameof(row));

        // Python's found mask: ids below zero are padding.
        int found = 0;
        foreach (long j in row.Negatives) if (j >= 0) found++;
        var negs = new long[found];
        var negScores = new float[found];
        for (int i = 0, k = 0; i < row.Negatives.Length; i++)
            if (row.Negatives[i] >= 0) { negs[k] = row.Negatives[i]; negScores[k++] = row.Scores[i]; }
        object anchor = AnchorCell(row.Anchor);
        int p = row.Positives.Length, n = NumNegatives;

        switch (Format)
        {
            case TrainingFormat.Triplet:
                for (int a = 0; a < p; a++)
                {
                    object pos = Doc(row.Positives[a]);
                    for (int j = 0; j < found; j++)
                        rows.Add(Row(anchor, pos, Doc(negs[j]), OutputScores ? new[] { row.PositiveScores[a], negScores[j] } : null));
                }
                return (long)p * (n - found);
            case TrainingFormat.NTuple:
                if (found < n) return p;
                for (int a = 0; a < p; a++)
                {
                    var cells = new object[2 + n + (OutputScores ? 1 : 0)];
                    cells[0] = anchor;
                    cells[1] = Doc(row.Positives[a]);
                    for (int j = 0; j < n; j++) cells[2 + j] = Doc(negs[j]);
                    if (OutputScores) cells[2 + n] = Prepend(row.PositiveScores[a], negScores);
                    rows.Add(new TrainingRow(cells));
                }
                return 0;
            case TrainingFormat.LabeledPair:
                for (int a = 0; a < p; a++)
                    rows.Add(Row(anchor, Doc(row.Positives[a]), 1L, OutputScores ? row.PositiveScores[a] : null));
                for (int j = 0; j < found; j++)
                    rows.Add(Row(anchor, Doc(negs[j]), 0L, OutputScores ? negScores[j] : null));
                return n - found;
            default:
                if (found == 0) return p;
                for (int a = 0; a < p; a++)
                {
                    var labels = new long[1 + found];
                    labels[0] = 1;
                    rows.Add(Row(anchor, DocList(row.Positives[a], negs), labels,
                        OutputScores ? Prepend(row.PositiveScores[a], negScores) : null));
                }
                return 0;
        }
    }

    /// <summary>
    /// Per anchor, the corpus ids whose text equals the text of one of its positives (other than the positive
    /// itself): copies of a positive are the positive, so they must not come back as negatives. Pass the result as
    /// <see cref="MiningInput"/> exclusions; this is what <c>mine_hard_negatives</c> does over a built index whose corpus
    /// repeats texts. Anchors whose positives have unique texts get an empty list.
    /// </summary>
    /// <exception cref="ArgumentException">A positive id has no text.</exception>
    public static long[][] SameTextExclusions(IReadOnlyList<string> corpusTexts, IReadOnlyList<long[]> positives)
    {
        ArgumentNullException.ThrowIfNull(corpusTexts);
        ArgumentNullException.ThrowIfNull(positives);
        var byText = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        for (int i = 0; i < corpusTexts.Count; i++)
        {
            if (!byText.TryGetValue(corpusTexts[i], out var rows)) byText[corpusTexts[i]] = rows = new List<long>(1);
            rows.Add(i);
        }
        var result = new long[positives.Count][];
        for (int a = 0; a < positives.Count; a++)
        {
            var own = new HashSet<long>(positives[a]);
            var extra = new List<long>();
            foreach (long p in own)
                foreach (long r in byText[Text(corpusTexts, p, "corpus")])
                    if (!own.Contains(r)) extra.Add(r);
            result[a] = extra.Distinct().ToArray();
        }
        return result;
    }

    private static TrainingRow Row(object anchor, object doc, object third, object? score) =>
        new(score is null ? [anchor, doc, third] : [anchor, doc, third, score]);

    private static float[] Prepend(float first, float[] rest)
    {
        var all = new float[1 + rest.Length];
        all[0] = first;
        rest.CopyTo(all, 1);
        return all;
    }

    private object AnchorCell(long id) => QueryTexts is null ? id : Text(QueryTexts, id, "query");

    private object Doc(long id) => CorpusTexts is null ? id : Text(CorpusTexts, id, "corpus");

    private object DocList(long positive, long[] negatives)
    {
        if (CorpusTexts is null)
        {
            var ids = new long[1 + negatives.Length];
            ids[0] = positive;
            negatives.CopyTo(ids, 1);
            return ids;
        }
        var texts = new string[1 + negatives.Length];
        texts[0] = Text(CorpusTexts, positive, "corpus");
        for (int j = 0; j < negatives.Length; j++) texts[1 + j] = Text(CorpusTexts, negatives[j], "corpus");
        return texts;
    }

    private static string Text(IReadOnlyList<string> texts, long id, string what)
    {
        if ((ulong)id >= (ulong)texts.Count)
            throw new ArgumentException($"Id {id} has no {what} text: the {what} texts hold {texts.Count} lines (ids 0..{texts.Count - 1}).");
        return texts[(int)id];
    }
}
