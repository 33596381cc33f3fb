namespace Engine.Mining;

/// <summary>One mined training row: an anchor, its positives with exact scores, and its negatives with scores.</summary>
/// <param name="Anchor">Anchor id (row number for external anchors, corpus id for corpus anchors).</param>
/// <param name="Positives">Positive corpus ids.</param>
/// <param name="PositiveScores">Exact anchor–positive scores (larger is closer), one per positive.</param>
/// <param name="Negatives">Negative corpus ids in rank order (best score first).</param>
/// <param name="Scores">Anchor–negative scores, one per negative.</param>
public sealed record MinedRow(long Anchor, long[] Positives, float[] PositiveScores, long[] Negatives, float[] Scores);

/// <summary>Receives mined rows in anchor order (JSONL, binary or in-memory sinks).</summary>
public interface IMiningSink : IDisposable
{
    /// <summary>Writes one row.</summary>
    void Write(MinedRow row);

    /// <summary>Finishes the output (flush, trailer, atomic rename). Rows written after this are an error.</summary>
    void Complete(MiningReport report);
}
