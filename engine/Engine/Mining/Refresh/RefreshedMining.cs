namespace Engine.Mining.Refresh;

/// <summary>A snapshot of a <see cref="MiningRefresher"/>: one immutable generation of the corpus vectors.</summary>
/// <param name="Number">Snapshot number: 1 for the initial corpus, +1 at every swap.</param>
/// <param name="Step">The latest training step the refresher had seen when the snapshot's vectors were taken.</param>
/// <param name="OldestStep">Embedding step of the oldest vector in the snapshot.</param>
public sealed record RefresherSnapshot(long Number, long Step, long OldestStep);

/// <summary>Work done by the background refreshes of a <see cref="MiningRefresher"/>.</summary>
/// <param name="Refreshes">Snapshots swapped in by refreshes.</param>
/// <param name="VectorsWritten">Vectors upserted into (or, after a failure, rebuilt in) the index copies.</param>
/// <param name="Failures">Refreshes that failed (each surfaced as an exception).</param>
/// <param name="RefreshTime">Wall time the background thread spent updating copies (excluding waits for chunks).</param>
public sealed record RefresherStatistics(long Refreshes, long VectorsWritten, long Failures, TimeSpan RefreshTime);

/// <summary>A mined row with its provenance.</summary>
/// <param name="Row">The row, as <see cref="HardNegativeMiner"/> produces it (vector anchors are numbered from
/// <see cref="MiningOptions.AnchorIdOffset"/> across the whole call).</param>
/// <param name="Snapshot">Number of the snapshot every vector of the row came from (rows never mix snapshots).</param>
/// <param name="Staleness">The call's step minus the embedding step of the oldest vector the row used (its
/// positives, its negatives and, for a corpus anchor, the anchor).</param>
public sealed record RefreshedRow(MinedRow Row, long Snapshot, long Staleness);

/// <summary>What <see cref="MiningRefresher.MineAsync"/> returns.</summary>
public sealed class RefreshedMining
{
    internal RefreshedMining(long step, IReadOnlyList<RefreshedRow> rows, MiningReport report, IReadOnlyList<long> snapshots)
    {
        Step = step;
        Rows = rows;
        Report = report;
        Snapshots = snapshots;
    }

    /// <summary>The training step the call mined at (staleness is measured from it).</summary>
    public long Step { get; }

    /// <summary>Rows in anchor order.</summary>
    public IReadOnlyList<RefreshedRow> Rows { get; }

    /// <summary>The miner's report over all chunks (counters, score statistics, hand-outs).</summary>
    public MiningReport Report { get; }

    /// <summary>Numbers of the snapshots the chunks used, in chunk order (one entry per chunk).</summary>
    public IReadOnlyList<long> Snapshots { get; }

    /// <summary>Largest row staleness (0 when there are no rows).</summary>
    public long MaxStaleness => Rows.Count == 0 ? 0 : Rows.Max(r => r.Staleness);
}

/// <summary>
/// Mining would use vectors older than <see cref="MiningRefresherOptions.MaxStaleness"/>: re-embed
/// <see cref="MiningRefresher.Due"/> items, push them and refresh before mining.
/// </summary>
public sealed class StaleSnapshotException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public StaleSnapshotException(string message, long snapshot, long overdue) : base(message)
    {
        Snapshot = snapshot;
        Overdue = overdue;
    }

    /// <summary>The snapshot that breaks the bound.</summary>
    public long Snapshot { get; }

    /// <summary>How many of its vectors are older than the bound.</summary>
    public long Overdue { get; }
}
