using Engine.Mining;
using Engine.Mining.Output;
using Engine.Parquet;

namespace Engine.Cli;

/// <summary>
/// <c>engine mine --output-format …</c>: the rows in a sentence-transformers layout (triplet, n-tuple, labeled-pair,
/// labeled-list; <see cref="TrainingLayout"/>), as JSONL (byte for byte what <c>minedex.mine_hard_negatives</c>
/// writes) or Parquet, with ids or, given <c>--query-texts</c> / <c>--corpus-texts</c>, texts.
/// </summary>
internal sealed record MineTrainingOutput(TrainingFormat Format, bool Scores, string Container, string? QueryTextsPath, string? CorpusTextsPath,
    string AnchorColumn, string PositiveColumn)
{
    /// <summary>
    /// Checks the output options before any file is read. Returns null for the engine's own rows (no
    /// <c>--output-format</c>: <c>--format jsonl|binary</c> as before).
    /// </summary>
    /// <exception cref="ArgumentException">A bad format or combination, named.</exception>
    public static MineTrainingOutput? Parse(string container, string? outputFormat, bool outputScores, string? queryTexts, string? corpusTexts,
        bool includePositives, bool corpusAnchors, string anchorColumn, string positiveColumn)
    {
        container = container.Trim().ToLowerInvariant() switch
        {
            "jsonl" => "jsonl",
            "parquet" => "parquet",
            "binary" or "bin" => "binary",
            var f => throw new ArgumentException($"Unknown --format '{f}': expected jsonl, parquet or binary."),
        };
        if (outputFormat is null)
        {
            string? needs = outputScores ? "--output-scores" : queryTexts is not null ? "--query-texts" : corpusTexts is not null ? "--corpus-texts"
                : container == "parquet" ? "--format parquet" : null;
            if (needs is not null)
                throw new ArgumentException($"{needs} needs --output-format triplet|n-tuple|labeled-pair|labeled-list: without it 'engine mine' writes its own rows (--format jsonl or binary).");
            return null;
        }
        var format = TrainingFormats.Parse(outputFormat, out bool impliesScores);
        if (container == "binary")
            throw new ArgumentException($"--output-format {outputFormat} is written as jsonl or parquet, not binary: use --format jsonl or --format parquet.");
        if (includePositives && format != TrainingFormat.NTuple)
            throw new ArgumentException($"--include-positives keeps positives among the ranked negatives, which only the n-tuple layout shows in rank order (sentence-transformers switches to n-tuple): use --output-format n-tuple, not {outputFormat}.");
        if (corpusAnchors && queryTexts is not null)
            throw new ArgumentException("--anchors corpus mines for the corpus items: their texts come from --corpus-texts, so --query-texts does not apply.");
        return new MineTrainingOutput(format, outputScores || impliesScores, container, queryTexts, corpusTexts, anchorColumn, positiveColumn);
    }

    /// <summary>The layout, with the texts loaded and checked against the number of anchors and corpus rows.</summary>
    /// <exception cref="ArgumentException">A text file with a different number of lines than there are ids.</exception>
    public TrainingLayout Layout(int numNegatives, int anchorCount, int corpusCount, bool corpusAnchors)
    {
        var corpus = CorpusTextsPath is null ? null : ReadTexts(CorpusTextsPath, "--corpus-texts", corpusCount, "corpus vectors");
        var queries = corpusAnchors ? corpus
            : QueryTextsPath is null ? null : ReadTexts(QueryTextsPath, "--query-texts", anchorCount, "anchor vectors");
        var layout = new TrainingLayout
        {
            Format = Format, OutputScores = Scores, NumNegatives = numNegatives,
            AnchorColumn = AnchorColumn, PositiveColumn = PositiveColumn, QueryTexts = queries, CorpusTexts = corpus,
        };
        layout.Validate();
        return layout;
    }

    /// <summary>How the manifest names the output (<c>triplet+scores/parquet</c>).</summary>
    public string Name => TrainingFormats.Name(Format) + (Scores ? "+scores" : "") + "/" + Container;

    /// <summary>Opens the writer for <paramref name="path"/>.</summary>
    public TrainingRowWriter Open(string path, TrainingLayout layout) =>
        Container == "parquet" ? new TrainingParquetWriter(path, layout) : new TrainingJsonlWriter(path, layout);

    // One text per line (UTF-8), line i = id i: exactly one line per id.
    private static string[] ReadTexts(string path, string option, int expected, string what)
    {
        if (!File.Exists(path)) throw new ArgumentException($"{option} file '{path}' does not exist.");
        var lines = File.ReadAllLines(path);
        if (lines.Length != expected)
            throw new ArgumentException($"{option} file '{path}' has {lines.Length} lines but there are {expected} {what}: give one text per line, line i for id i.");
        return lines;
    }
}
