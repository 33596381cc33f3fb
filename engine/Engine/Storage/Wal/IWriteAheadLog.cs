namespace Engine.Storage.Wal;

/// <summary>Receives one record during <see cref="IWriteAheadLog.Replay"/>.</summary>
/// <param name="address">The record's address (what <see cref="IWriteAheadLog.Append"/> returned).</param>
/// <param name="record">The record bytes; valid only during the call.</param>
public delegate void WalRecordHandler(long address, ReadOnlySpan<byte> record);

/// <summary>
/// A write-ahead log: an ordered sequence of opaque records, each durable once <see cref="Commit"/> returns.
/// Indexes log every mutation here before acknowledging it, record <see cref="TailAddress"/> in each
/// checkpoint, replay from that address on open, and truncate what a checkpoint covers.
/// </summary>
/// <remarks>
/// Implementations: <see cref="FileWriteAheadLog"/> (one file, in the core engine) and a FASTER
/// <c>FasterLog</c> adapter in <c>Engine.Faster</c>. After a crash a log holds a prefix of the appended
/// records that includes every committed one; a torn record after the last commit is discarded (and counted in
/// <see cref="Recovery"/>), damage anywhere else, and a log that ends before its last commit, is reported as
/// <see cref="CorruptIndexException"/>. Logs are made and opened through an <see cref="IWriteAheadLogProvider"/>.
/// Thread safety: callers serialise <see cref="Append"/>/<see cref="Commit"/>/<see cref="Truncate"/>.
/// </remarks>
public interface IWriteAheadLog : IDisposable
{
    /// <summary>Largest record <see cref="Append"/> accepts, in bytes.</summary>
    int MaxRecordSize { get; }

    /// <summary>Address the next appended record will get; everything before it has been appended.</summary>
    long TailAddress { get; }

    /// <summary>Address of the first record the log still holds (everything before it was truncated).</summary>
    long BeginAddress { get; }

    /// <summary>Whether records were ever truncated away: false while the log still holds every record appended since
    /// it was created (its <see cref="BeginAddress"/> is still that of an empty log, 0 unless the kind says otherwise).</summary>
    bool WasTruncated => BeginAddress > 0;

    /// <summary>What opening the log found: its committed tail, the torn tail it dropped, committed bytes it lacks.</summary>
    WalRecoveryInfo Recovery { get; }

    /// <summary>Appends a record (not yet durable) and returns its address.</summary>
    long Append(ReadOnlySpan<byte> record);

    /// <summary>Makes every appended record durable.</summary>
    void Commit();

    /// <summary>Calls <paramref name="handler"/> for every durable record at or after <paramref name="fromAddress"/>, in order.</summary>
    /// <exception cref="CorruptIndexException">A damaged record that is not a torn tail.</exception>
    void Replay(long fromAddress, WalRecordHandler handler);

    /// <summary>Discards records before <paramref name="untilAddress"/> (they are covered by a checkpoint).</summary>
    void Truncate(long untilAddress);
}

/// <summary>What a write-ahead log found when it was opened.</summary>
/// <param name="CommittedAddress">The durable tail recorded by the last commit; -1 when the format records none
/// (file logs of versions 1 and 2).</param>
/// <param name="ValidEndAddress">Where the intact records end.</param>
/// <param name="TornRecords">Records after the last commit, never acknowledged, that were dropped (an estimate read from
/// their headers; at least 1 when <paramref name="TornBytes"/> is not 0; for FASTER, entries found after the committed
/// tail, which can include ones an earlier crash left there).</param>
/// <param name="TornBytes">Bytes of that torn tail.</param>
/// <param name="LostBytes">Bytes of committed records the log no longer holds (only when it was opened accepting the
/// loss; otherwise such a log is refused).</param>
public sealed record WalRecoveryInfo(long CommittedAddress, long ValidEndAddress, int TornRecords, long TornBytes, long LostBytes)
{
    /// <summary>The report of a log that was just created (nothing to recover).</summary>
    public static WalRecoveryInfo Fresh(long tail) => new(tail, tail, 0, 0, 0);
}
