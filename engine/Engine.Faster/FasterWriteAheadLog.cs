using Engine.Storage.Wal;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// <see cref="IWriteAheadLog"/> over FASTER's <see cref="FasterLog"/>: records are enqueued into the log's
/// in-memory tail and made durable by a strong commit; recovery restores the log to its last commit, so a
/// crash keeps every committed record and drops the rest. Entries carry FASTER's per-entry checksum.
/// </summary>
public sealed class FasterWriteAheadLog : IWriteAheadLog
{
    private readonly string _directory;
    private readonly IDevice _device;
    private readonly FasterLog _log;

    /// <summary>Opens (recovering) or creates a log in <paramref name="directory"/>.</summary>
    /// <exception cref="CorruptIndexException">FASTER cannot recover or read the log.</exception>
    public FasterWriteAheadLog(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _directory = Path.GetFullPath(directory);
        Directory.CreateDirectory(_directory);
        _device = Devices.CreateLogDevice(Path.Combine(_directory, "wal.log"), preallocateFile: false, deleteOnClose: false);
        try
        {
            _log = new FasterLog(new FasterLogSettings
            {
                LogDevice = _device,
                LogCommitDir = _directory,
                PageSizeBits = 22,
                MemorySizeBits = 24,
                SegmentSizeBits = 28,
                LogChecksum = LogChecksumType.PerEntry,
            });
        }
        catch (Exception e) when (e is FasterException or IOException or InvalidOperationException or ArgumentException or IndexOutOfRangeException)
        {
            _device.Dispose();
            throw new CorruptIndexException(_directory, 0, $"FASTER log cannot be recovered: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public int MaxRecordSize => (1 << 22) - 64;

    /// <inheritdoc />
    public long TailAddress => _log.TailAddress;

    /// <inheritdoc />
    public long Append(ReadOnlySpan<byte> record)
    {
        if (record.Length > MaxRecordSize) throw new ArgumentException($"Log record of {record.Length} bytes exceeds the limit {MaxRecordSize}.", nameof(record));
        return _log.Enqueue(record);
    }

    /// <inheritdoc />
    public void Commit() => _log.Commit(spinWait: true);

    /// <inheritdoc />
    public void Replay(long fromAddress, WalRecordHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        // Address 0 means "from the first record" (a checkpoint taken before the log held anything).
        long from = Math.Max(fromAddress, _log.BeginAddress);
        if (fromAddress != 0 && fromAddress < _log.BeginAddress)
            throw new CorruptIndexException(Path.Combine(_directory, "wal.log"), _log.BeginAddress,
                $"log starts at address {_log.BeginAddress} but replay needs records from {fromAddress}");
        try
        {
            using var iter = _log.Scan(from, _log.CommittedUntilAddress);
            while (iter.GetNext(out byte[] entry, out int length, out long address))
                handler(address, entry.AsSpan(0, length));
        }
        catch (Exception e) when (e is FasterException or IOException and not CorruptIndexException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new CorruptIndexException(Path.Combine(_directory, "wal.log"), from, $"FASTER log is unreadable: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public void Truncate(long untilAddress)
    {
        _log.TruncateUntil(untilAddress);
        _log.Commit(spinWait: true);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _log.Dispose();
        _device.Dispose();
    }
}
