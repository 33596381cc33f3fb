using Engine.Faster;
using Engine.Storage.Wal;

namespace Engine.Collections;

/// <summary>Settings of an opened collection that are not part of its schema.</summary>
public sealed record CollectionOptions
{
    /// <summary>All defaults.</summary>
    public static CollectionOptions Default { get; } = new();

    /// <summary>The write-ahead log kind (default FASTER's log, <see cref="FasterWriteAheadLogProvider"/>). A collection
    /// must be reopened with the kind it was created with.</summary>
    public IWriteAheadLogProvider WriteAheadLog { get; init; } = FasterWriteAheadLogProvider.Instance;

    /// <summary>A checkpoint (FASTER KV checkpoint, log truncation) is taken after a write once the log holds this many
    /// bytes since the last one (default 64 MiB; at least 1 MiB). Smaller = faster reopen, more checkpoint work.</summary>
    public long CheckpointLogBytes { get; init; } = 64L << 20;

    /// <summary>Memory of FASTER KV's in-memory log (default 256 MiB; at least 16 MiB); older records page to disk.</summary>
    public long StoreMemoryBytes { get; init; } = 256L << 20;

    /// <summary>Write an index snapshot (every vector field's index, the filter columns) with each checkpoint and load the
    /// newest on open, replaying only the log after it, instead of rebuilding the indexes from every record (default
    /// true). SPANN fields are not snapshotted: a collection with one rebuilds on open.</summary>
    public bool IndexSnapshots { get; init; } = true;

    /// <summary>When the indexes come from a snapshot, still read every stored payload once on open and check its
    /// CRC-32C, so that a damaged payload file is rejected at open as it is when the indexes are rebuilt (default true;
    /// a sequential pass over the KV, far cheaper than an index rebuild). False skips the pass: a damaged payload is then
    /// reported (<see cref="CorruptIndexException"/>) when it is read, and by <c>VerifyConsistency</c>.</summary>
    public bool VerifyPayloadsOnOpen { get; init; } = true;

    /// <summary>
    /// Where reads (get, scan, search) run (null, the default: the thread pool). A read of a payload that FASTER paged
    /// to disk waits for an I/O completion that itself runs on the thread pool; a host that issues many concurrent
    /// reads from pool threads (Orleans does) can give them dedicated threads here so they cannot starve the pool.
    /// </summary>
    public TaskScheduler? ReadScheduler { get; init; }

    /// <summary>Checks the ranges.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value out of range (named).</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(WriteAheadLog, nameof(WriteAheadLog));
        if (CheckpointLogBytes < 1L << 20)
            throw new ArgumentOutOfRangeException(nameof(CheckpointLogBytes), CheckpointLogBytes, "CheckpointLogBytes must be at least 1 MiB.");
        if (StoreMemoryBytes < 16L << 20)
            throw new ArgumentOutOfRangeException(nameof(StoreMemoryBytes), StoreMemoryBytes, "StoreMemoryBytes must be at least 16 MiB.");
    }
}
