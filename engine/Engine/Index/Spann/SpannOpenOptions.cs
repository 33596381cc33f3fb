using System.Text;
using Engine.Storage.Wal;

namespace Engine.Index.Spann;

/// <summary>How <see cref="SpannIndex.Open(string, SpannOpenOptions?)"/> opens a durable index.</summary>
public sealed record SpannOpenOptions
{
    /// <summary>The log provider to open the index's write-ahead log with; null picks the kind recorded in the metadata
    /// (see <see cref="WriteAheadLogs.Find"/>). When given, its kind must match the recorded one.</summary>
    public IWriteAheadLogProvider? Log { get; init; }

    /// <summary>
    /// Open even when the log cannot give back every write acknowledged after the last checkpoint (it is missing, empty,
    /// does not reach the checkpoint's replay address, starts after it, or ends before its own last commit). The
    /// index then keeps the checkpoint and whatever the log still holds in order, moves the old log aside
    /// (<c>wal.lost-N</c>), starts a new log and checkpoints at once, and <see cref="SpannIndex.Recovery"/> says what was
    /// lost. Off by default: such an index is refused with <see cref="CorruptIndexException"/>.
    /// </summary>
    public bool AcceptLogLoss { get; init; }

    /// <summary>
    /// Read uncompressed posting blocks in place from a read-only memory mapping of the posting file (default true):
    /// no system call, copy or allocation per posting, with the same checks as a copied read. False: every read copies
    /// the block, e.g. on a file system where mapping is slow, or where another host could truncate the file under the
    /// mapping. Results are the same either way.
    /// </summary>
    public bool MapPostings { get; init; } = true;
}

/// <summary>What <see cref="SpannIndex.Open(string, SpannOpenOptions?)"/> found in the write-ahead log.</summary>
public sealed record SpannRecoveryReport
{
    /// <summary>The log kind (<c>file</c>, <c>faster</c>).</summary>
    public required string LogKind { get; init; }

    /// <summary>The checkpoint's replay address (records from here on were replayed).</summary>
    public long ReplayFrom { get; init; }

    /// <summary>Log records replayed on top of the checkpoint.</summary>
    public long RecordsReplayed { get; init; }

    /// <summary>Records cut short by a crash after the last commit and dropped (never acknowledged; estimated from their headers).</summary>
    public int TornRecordsDropped { get; init; }

    /// <summary>Bytes of that torn tail.</summary>
    public long TornBytesDropped { get; init; }

    /// <summary>True when the open accepted losing logged writes (<see cref="SpannOpenOptions.AcceptLogLoss"/>).</summary>
    public bool LogLossAccepted { get; init; }

    /// <summary>What was lost when <see cref="LogLossAccepted"/>; null otherwise.</summary>
    public string? Loss { get; init; }

    /// <summary>Where the unusable log was moved (kept for inspection), when the loss was accepted and a log existed.</summary>
    public string? LostLogMovedTo { get; init; }

    /// <summary>One line for people: what was replayed, dropped or lost.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder($"log ({LogKind}): replayed {RecordsReplayed} record(s) from address {ReplayFrom}");
        if (TornBytesDropped > 0) sb.Append($"; dropped a torn tail of {TornRecordsDropped} unacknowledged record(s), {TornBytesDropped} bytes");
        if (LogLossAccepted)
        {
            sb.Append($"; LOSS ACCEPTED: {Loss}");
            if (LostLogMovedTo is not null) sb.Append($"; the old log was moved to '{LostLogMovedTo}'");
        }
        return sb.ToString();
    }
}
