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
/// records that includes every committed one; a torn record at the tail is discarded, damage anywhere else
/// is reported as <see cref="CorruptIndexException"/>.
/// Thread safety: callers serialise <see cref="Append"/>/<see cref="Commit"/>/<see cref="Truncate"/>.
/// </remarks>
public interface IWriteAheadLog : IDisposable
{
    /// <summary>Largest record <see cref="Append"/> accepts, in bytes.</summary>
    int MaxRecordSize { get; }

    /// <summary>Address the next appended record will get; everything before it has been appended.</summary>
    long TailAddress { get; }

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
