using System.Buffers;
using System.Buffers.Binary;
using Engine.Storage;
using Engine.Storage.Format;
using Engine.Storage.Wal;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// <see cref="IWriteAheadLog"/> over FASTER's <see cref="FasterLog"/>: records are enqueued into the log's
/// in-memory tail and made durable by a strong commit; recovery restores the log to its last commit, so a
/// crash keeps every committed record and drops the rest. Entries carry FASTER's per-entry checksum.
/// </summary>
/// <remarks>
/// <para>Each entry is <c>crc32c u32 of the record | record</c>: FASTER's scan does not verify its own (XOR) per-entry
/// checksum, so without ours a flipped byte would be replayed as data.</para>
/// <para>Files in the log directory: segments <c>wal.log.N</c> (2^24 bytes of address space each; 2^28 in logs made
/// before 2026-12-06, which keep theirs: the commit cookie's magic says which) and FASTER's commit records in
/// <c>log-commits/</c>. Truncation frees whole segments only, so the segment size bounds what a log that a checkpoint
/// fully covers still holds on disk: up to 256 MiB with the old size (a SPANN build of MNIST left a 243 MB
/// <c>wal.log.0</c> behind), up to 16 MiB now. FASTER's own recovery trusts the commit record and reads a segment that was cut
/// short as zeros, which its scan skips as page padding, so on its own it would drop acknowledged records silently.
/// This adapter checks what FASTER does not: a log without a commit record is missing; every segment must reach the
/// committed tail; and a replay must find the records contiguous (a gap is only legal as the end of a page too short
/// for the next record) and end exactly at the committed tail.</para>
/// </remarks>
public sealed class FasterWriteAheadLog : IWriteAheadLog
{
    private const int PageSizeBits = 22;
    // Segment size of logs this code creates, and of those created before the cookie named it (LegacyCookieMagic).
    private const int NewSegmentBits = 24, LegacySegmentBits = 28;
    private readonly int _segmentBits;
    private const int EntryHeader = 12; // FASTER's: per-entry checksum u64 + length i32
    private const int CrcSize = 4;      // ours, at the start of each entry's payload
    private readonly string _directory;
    private readonly IDevice _device;
    private readonly FasterLog _log;
    private readonly long _salvageEnd = long.MaxValue;
    private volatile string? _writeError; // where the first failed device write was, for the exception's message
    private readonly DeviceLogCommitCheckpointManager _commits;
    private bool _commitRecordFailed; // a commit record's write failed: later commits are refused

    /// <summary>Opens (recovering) or creates a log in <paramref name="directory"/> without the checks of
    /// <see cref="Open"/>; prefer <see cref="FasterWriteAheadLogProvider"/>.</summary>
    /// <exception cref="CorruptIndexException">FASTER cannot recover or read the log.</exception>
    public FasterWriteAheadLog(string directory) : this(directory, SegmentBitsOf(Path.GetFullPath(directory)))
    {
    }

    private FasterWriteAheadLog(string directory, int segmentBits)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _segmentBits = segmentBits;
        _directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(_directory);
        _device = new ObservedDevice(Devices.CreateLogDevice(SegmentPrefix(_directory), preallocateFile: false, deleteOnClose: false), OnWriteError);
        // The commit records (log-commits/commit.N.0) as FASTER makes them for LogCommitDir = the directory, but on
        // watched devices: FASTER's commit manager only logs a failed write of a commit record and lets the commit
        // return, which would acknowledge records a reopen then does not find (it recovers the previous commit).
        _commits = new DeviceLogCommitCheckpointManager(new ObservedDeviceFactory(OnCommitWriteError, completeFailedWrites: false),
            new DefaultCheckpointNamingScheme(_directory), removeOutdated: true);
        try
        {
            _log = new FasterLog(new FasterLogSettings
            {
                LogDevice = _device,
                LogCommitManager = _commits,
                PageSizeBits = PageSizeBits,
                MemorySizeBits = 24,
                SegmentSizeBits = _segmentBits,
                LogChecksum = LogChecksumType.PerEntry,
            });
        }
        catch (Exception e) when (e is FasterException or IOException or InvalidOperationException or ArgumentException or IndexOutOfRangeException)
        {
            _device.Dispose();
            _commits.Dispose();
            throw new CorruptIndexException(_directory, 0, $"FASTER log cannot be recovered: {e.Message}", e);
        }
        Recovery = WalRecoveryInfo.Fresh(_log.CommittedUntilAddress);
    }

    private FasterWriteAheadLog(string directory, bool acceptLoss, int segmentBits) : this(directory, segmentBits)
    {
        try
        {
            CheckCommitRecord();
            long committed = _log.CommittedUntilAddress;
            long held = HeldUntil(committed);
            long lost = 0;
            if (held < committed)
            {
                if (!acceptLoss)
                    throw new CorruptIndexException(SegmentFile(SegmentOf(held)), held & SegmentMask,
                        $"the FASTER log's segments end at address {held} but its last commit covers records up to address {committed}: " +
                        $"{committed - held} bytes of acknowledged records are missing (a segment file was cut short or deleted)");
                lost = committed - held;
                _salvageEnd = held;
            }
            var (tornRecords, tornBytes) = TornTail(committed);
            Recovery = new WalRecoveryInfo(committed, held, tornRecords, tornBytes, lost);
            DeleteSegmentsBelow(_log.BeginAddress); // what an earlier process truncated but left on disk
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens the existing log in <paramref name="directory"/>, refusing one that is missing or shorter than its
    /// last commit (unless <paramref name="acceptLoss"/>: then it replays the records it still holds).</summary>
    /// <exception cref="CorruptIndexException">No commit record, a segment that does not reach the committed tail, or
    /// FASTER cannot recover the log.</exception>
    public static FasterWriteAheadLog Open(string directory, bool acceptLoss = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string dir = Path.GetFullPath(directory);
        string commits = Path.Combine(dir, "log-commits");
        if (!System.IO.Directory.Exists(commits) || System.IO.Directory.GetFiles(commits, "commit.*").Length == 0)
            throw new CorruptIndexException(SegmentPrefix(dir) + ".0", 0,
                System.IO.Directory.Exists(dir) ? "the FASTER log has no commit record (log-commits/ is missing or empty): the log is missing"
                    : "the FASTER log directory is missing");
        int segmentBits = ValidateCommitFiles(commits);
        return new FasterWriteAheadLog(dir, acceptLoss, segmentBits);
    }

    // The segment size of the log in a directory, from the magic of its newest readable commit cookie (the size of new
    // logs when there is none): for the constructor that opens without Open's checks.
    // A log whose commit records all lack a readable cookie is refused rather than guessed: the wrong size maps every
    // address to the wrong segment file.
    private static int SegmentBitsOf(string directory)
    {
        string commits = Path.Combine(directory, "log-commits");
        var files = CommitFiles(commits);
        if (files.Length == 0) return NewSegmentBits;
        foreach (var (file, _) in files)
        {
            try
            {
                var b = File.ReadAllBytes(file);
                if (b.Length >= 48 + CookieSize && SegmentBitsOfMagic(BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(48))) is int bits) return bits;
            }
            catch (IOException) { }
        }
        throw new CorruptIndexException(files[0].File, 48, "no FASTER commit record holds a readable engine cookie, which names the log's segment size");
    }

    // The commit records (log-commits/commit.N…), newest (highest N) first; none when the directory is missing.
    private static (string File, long Number)[] CommitFiles(string commits) => !System.IO.Directory.Exists(commits) ? []
        : System.IO.Directory.GetFiles(commits, "commit.*")
            .Select(f => (File: f, Number: long.TryParse(Path.GetFileName(f).Split('.')[1], out long n) ? n : -1))
            .Where(f => f.Number >= 0).OrderByDescending(f => f.Number).ToArray();

    // The commit records, newest first. FASTER writes each commit to a new file and deletes the older ones after it, so
    // the newest file may be torn by a crash during that write (its commit never returned, nothing it covers was
    // acknowledged): FASTER then recovers from the one before. Every other file must be complete and valid, and at least
    // one must remain.
    // Returns the log's segment size (log2), which its commit cookies name.
    private static int ValidateCommitFiles(string commits)
    {
        var files = CommitFiles(commits);
        int valid = 0, bits = 0;
        for (int i = 0; i < files.Length; i++)
        {
            var bytes = ReadCommitFile(files[i].File);
            if (i == 0 && files.Length > 1 && IsTornCommitRecord(bytes)) continue;
            int recordBits = ValidateCommitFile(files[i].File, bytes);
            if (bits != 0 && recordBits != bits)
                throw new CorruptIndexException(files[i].File, 48, $"the FASTER commit records disagree on the log's segment size (2^{recordBits} and 2^{bits} bytes)");
            bits = recordBits;
            valid++;
        }
        if (valid == 0)
            throw new CorruptIndexException(files.Length > 0 ? files[0].File : commits, 0, "the FASTER log has no complete commit record");
        return bits;
    }

    // A commit file cut short by a crash while it was written: shorter than a record, or nothing but zeros.
    private static bool IsTornCommitRecord(byte[] b) =>
        b.Length < 4 + CommitRecordFixedPart + CookieSize || !b.AsSpan().ContainsAnyExcept((byte)0);

    private static byte[] ReadCommitFile(string file)
    {
        try { return File.ReadAllBytes(file); }
        catch (IOException e) { throw new CorruptIndexException(file, 0, $"the FASTER commit record cannot be read: {e.Message}", e); }
    }

    private const int CommitRecordFixedPart = 4 + 8 + 8 + 8 + 8 + 4 + 4;

    /// <summary>
    /// Checks a commit record before FASTER parses it: FASTER 2.6 reads it with unchecked lengths (a flipped iterator
    /// count or cookie length crashed the process with an access violation) and does not verify its checksum.
    /// </summary>
    /// <remarks>Layout, as FASTER 2.6 writes it for this adapter (no persisted iterators), padded with zeros to a sector:
    /// <c>size i32 | version i32 = 1 | checksum i64 | begin i64 | committed i64 | commit number i64 | iterators i32 = 0 |
    /// cookie length i32 = 24 | cookie</c>, where size counts the bytes after itself.</remarks>
    private static int ValidateCommitFile(string file, byte[] b)
    {
        const int fixedPart = CommitRecordFixedPart;
        ReadOnlySpan<byte> span = b;
        if (span.Length < 4 + fixedPart + CookieSize)
            throw new CorruptIndexException(file, span.Length, $"the FASTER commit record is truncated ({span.Length} bytes)");
        int size = BinaryPrimitives.ReadInt32LittleEndian(span);
        if (size != fixedPart + CookieSize)
            throw new CorruptIndexException(file, 0, $"the FASTER commit record's size is {size}, expected {fixedPart + CookieSize}");
        if (BinaryPrimitives.ReadInt32LittleEndian(span[4..]) != 1)
            throw new CorruptIndexException(file, 4, "the FASTER commit record's version is not 1");
        long begin = BinaryPrimitives.ReadInt64LittleEndian(span[16..]);
        long committed = BinaryPrimitives.ReadInt64LittleEndian(span[24..]);
        if (BinaryPrimitives.ReadInt32LittleEndian(span[40..]) != 0)
            throw new CorruptIndexException(file, 40, "the FASTER commit record lists persisted iterators; this log never has any");
        if (BinaryPrimitives.ReadInt32LittleEndian(span[44..]) != CookieSize)
            throw new CorruptIndexException(file, 44, $"the FASTER commit record's cookie length is not {CookieSize}");
        var cookie = span.Slice(48, CookieSize);
        if (SegmentBitsOfMagic(BinaryPrimitives.ReadUInt32LittleEndian(cookie)) is not int bits
            || BinaryPrimitives.ReadUInt32LittleEndian(cookie[20..]) != Crc32C.Compute(cookie[..20]))
            throw new CorruptIndexException(file, 48, "the FASTER commit record's engine cookie is damaged (magic or checksum)");
        if (BinaryPrimitives.ReadInt64LittleEndian(cookie[4..]) != begin || BinaryPrimitives.ReadInt64LittleEndian(cookie[12..]) != committed
            || begin < 0 || committed < begin)
            throw new CorruptIndexException(file, 16,
                $"the FASTER commit record's addresses {begin}..{committed} do not match the commit that was written " +
                $"({BinaryPrimitives.ReadInt64LittleEndian(cookie[4..])}..{BinaryPrimitives.ReadInt64LittleEndian(cookie[12..])})");
        return bits;
    }

    /// <summary>Creates an empty log in <paramref name="directory"/>, deleting any FASTER log there.</summary>
    public static FasterWriteAheadLog Create(string directory) => Create(directory, NewSegmentBits);

    /// <summary>
    /// <see cref="Create(string)"/> with a segment size of 2^<paramref name="segmentBits"/> bytes: 24 (what new logs
    /// get) or 28 (the legacy size, to test that such logs still open).
    /// </summary>
    internal static FasterWriteAheadLog Create(string directory, int segmentBits)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (segmentBits is not (NewSegmentBits or LegacySegmentBits))
            throw new ArgumentOutOfRangeException(nameof(segmentBits), segmentBits, $"Segment size must be 2^{NewSegmentBits} or 2^{LegacySegmentBits} bytes.");
        string dir = Path.GetFullPath(directory);
        if (System.IO.Directory.Exists(dir))
        {
            foreach (var f in System.IO.Directory.GetFiles(dir, "wal.log.*")) File.Delete(f);
            string commits = Path.Combine(dir, "log-commits");
            if (System.IO.Directory.Exists(commits)) System.IO.Directory.Delete(commits, recursive: true);
        }
        var log = new FasterWriteAheadLog(dir, segmentBits);
        log.CommitWithCookie(log._log.BeginAddress); // a commit record from the start: an existing log always has one
        return log;
    }

    private static string SegmentPrefix(string directory) => Path.Combine(directory, "wal.log");

    private long SegmentMask => (1L << _segmentBits) - 1;

    private long SegmentOf(long address) => address >> _segmentBits;

    private string SegmentFile(long segment) => $"{SegmentPrefix(_directory)}.{segment}";

    private static long FileLength(string path) => File.Exists(path) ? FileLengths.Of(path) : 0; // the target's length when the segment is a link

    // Where the segment files stop holding the address space [BeginAddress, committed).
    private long HeldUntil(long committed)
    {
        long begin = _log.BeginAddress;
        if (committed <= begin) return committed;
        for (long seg = SegmentOf(begin); seg <= SegmentOf(committed - 1); seg++)
        {
            long segStart = seg << _segmentBits;
            long need = Math.Min(committed, segStart + (1L << _segmentBits)) - segStart;
            long have = FileLength(SegmentFile(seg));
            if (have < need) return Math.Max(begin, segStart + have);
        }
        return committed;
    }

    // Entries written after the last commit (flushed but never committed): FASTER's recovery drops them.
    private (int Records, long Bytes) TornTail(long committed)
    {
        string file = SegmentFile(SegmentOf(committed));
        long offset = committed & SegmentMask;
        long length = FileLength(file);
        if (length <= offset) return (0, 0);
        int records = 0;
        long bytes = 0;
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> header = stackalloc byte[EntryHeader];
        while (offset + EntryHeader <= length)
        {
            fs.Position = offset;
            fs.ReadExactly(header);
            int len = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
            if (len <= 0 || len > MaxRecordSize + CrcSize) break;
            long size = (EntryHeader + len + 3) & ~3L;
            records++;
            bytes += Math.Min(size, length - offset);
            offset += size;
        }
        return (records, bytes);
    }

    /// <inheritdoc />
    public int MaxRecordSize => (1 << PageSizeBits) - 64 - CrcSize;

    /// <inheritdoc />
    public long TailAddress => _log.TailAddress;

    /// <inheritdoc />
    public long BeginAddress => _log.BeginAddress;

    // FASTER's first valid log address (Constants.kFirstValidAddress): where a new log begins.
    internal const long FirstAddress = 64;

    /// <inheritdoc />
    public bool WasTruncated => _log.BeginAddress > FirstAddress;

    /// <inheritdoc />
    public WalRecoveryInfo Recovery { get; }

    /// <inheritdoc />
    public long Append(ReadOnlySpan<byte> record)
    {
        if (record.Length > MaxRecordSize) throw new ArgumentException($"Log record of {record.Length} bytes exceeds the limit {MaxRecordSize}.", nameof(record));
        byte[] entry = ArrayPool<byte>.Shared.Rent(CrcSize + record.Length);
        try
        {
            BinaryPrimitives.WriteUInt32LittleEndian(entry, Crc32C.Compute(record));
            record.CopyTo(entry.AsSpan(CrcSize));
            return _log.Enqueue(entry.AsSpan(0, CrcSize + record.Length));
        }
        catch (FasterException e)
        {
            throw WriteFailed("append to", e);
        }
        finally { ArrayPool<byte>.Shared.Return(entry); }
    }

    /// <inheritdoc />
    public void Commit() => CommitWithCookie(_log.BeginAddress);

    // FASTER's commit record (log-commits/commit.N.0) holds the begin and committed addresses with a checksum that its
    // recovery does not check: a flipped bit in the committed address recovers a log that silently ends elsewhere. Each
    // commit therefore carries a cookie of ours, "ECMT" u32 | begin i64 | committed i64 | crc32c u32 of the 20 bytes
    // before, which Open compares with what FASTER recovered. The magic also names the log's segment size: "ECMT" for
    // the 2^28-byte segments of the first logs, "ECM" + 24 for 2^24.
    private const uint LegacyCookieMagic = 0x544D4345; // "ECMT"
    private const uint CookieMagicBase = 0x004D4345;   // "ECM" and the segment size's log2 in the last byte
    private const int CookieSize = 24;

    private uint CookieMagic => _segmentBits == LegacySegmentBits ? LegacyCookieMagic : CookieMagicBase | ((uint)_segmentBits << 24);

    private static int? SegmentBitsOfMagic(uint magic) => magic switch
    {
        LegacyCookieMagic => LegacySegmentBits,
        CookieMagicBase | (NewSegmentBits << 24) => NewSegmentBits,
        _ => null,
    };

    private void CommitWithCookie(long begin)
    {
        var cookie = new byte[CookieSize];
        BinaryPrimitives.WriteUInt32LittleEndian(cookie, CookieMagic);
        BinaryPrimitives.WriteInt64LittleEndian(cookie.AsSpan(4), begin);
        BinaryPrimitives.WriteInt64LittleEndian(cookie.AsSpan(12), _log.TailAddress); // one writer: the commit covers this tail
        BinaryPrimitives.WriteUInt32LittleEndian(cookie.AsSpan(20), Crc32C.Compute(cookie.AsSpan(0, 20)));
        ThrowIfCommitRecordFailed();
        bool committed;
        try { committed = _log.CommitStrongly(out _, out _, spinWait: true, cookie); }
        catch (FasterException e) { throw WriteFailed("commit", e); }
        ThrowIfCommitRecordFailed(); // FASTER returned although the record of this commit may not be on disk
        if (!committed) throw new IOException($"FASTER refused a commit of the log in '{_directory}'.");
    }

    private void OnWriteError(uint errorCode, string where) => _writeError ??= $"error code {errorCode} writing {where}";

    private void OnCommitWriteError(uint errorCode, string where)
    {
        OnWriteError(errorCode, where);
        Volatile.Write(ref _commitRecordFailed, true);
    }

    // Once a commit record failed to write the log refuses every later commit: what it appended since the last good
    // record is not durable, and a reopen recovers that record (the log is intact up to it).
    private void ThrowIfCommitRecordFailed()
    {
        if (Volatile.Read(ref _commitRecordFailed))
            throw new IOException($"Cannot commit the FASTER write-ahead log in '{_directory}': the disk is full or a write failed" +
                $"{FasterKeyValueStore.FreeSpace(_directory)} ({_writeError}). Records not yet committed are not durable and the log " +
                "refuses further commits; every record committed before is intact when it is reopened.");
    }

    // FASTER's log fails a commit whose flush failed (CommitFailureException) and, from then on, every append and
    // commit with the same exception: the log is unusable until it is reopened, which recovers its last commit.
    private IOException WriteFailed(string operation, FasterException e) =>
        new($"Cannot {operation} the FASTER write-ahead log in '{_directory}': the disk is full or a write failed" +
            $"{FasterKeyValueStore.FreeSpace(_directory)}{(_writeError is { } w ? $" ({w})" : "")}. Records not yet committed are not " +
            "durable and the log refuses further writes; every committed record is intact when it is reopened.", e);

    // Compares the recovered commit with the cookie written beside it.
    private void CheckCommitRecord()
    {
        string commitDir = Path.Combine(_directory, "log-commits");
        var cookie = _log.RecoveredCookie;
        if (cookie is null || cookie.Length != CookieSize || BinaryPrimitives.ReadUInt32LittleEndian(cookie) != CookieMagic
            || BinaryPrimitives.ReadUInt32LittleEndian(cookie.AsSpan(20)) != Crc32C.Compute(cookie.AsSpan(0, 20)))
            throw new CorruptIndexException(commitDir, 0,
                "the FASTER log's commit record is damaged (its engine commit cookie is missing or fails its checksum)");
        long begin = BinaryPrimitives.ReadInt64LittleEndian(cookie.AsSpan(4));
        long committed = BinaryPrimitives.ReadInt64LittleEndian(cookie.AsSpan(12));
        if (begin != _log.BeginAddress || committed != _log.CommittedUntilAddress)
            throw new CorruptIndexException(commitDir, 0,
                $"the FASTER log's commit record is damaged: FASTER recovered addresses {_log.BeginAddress}..{_log.CommittedUntilAddress} " +
                $"but the commit was written for {begin}..{committed}");
    }

    /// <inheritdoc />
    /// <exception cref="CorruptIndexException">A damaged entry, or records that are not contiguous or do not reach the
    /// committed tail (zeroed or missing data).</exception>
    public void Replay(long fromAddress, WalRecordHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        // Address 0 means "from the first record" (a checkpoint taken before the log held anything).
        long from = Math.Max(fromAddress, _log.BeginAddress);
        if (fromAddress != 0 && fromAddress < _log.BeginAddress)
            throw new CorruptIndexException(SegmentFile(SegmentOf(_log.BeginAddress)), _log.BeginAddress & SegmentMask,
                $"log starts at address {_log.BeginAddress} but replay needs records from {fromAddress}");
        bool salvage = _salvageEnd != long.MaxValue;
        long end = Math.Min(_log.CommittedUntilAddress, _salvageEnd);
        if (from >= end) return;
        long expected = from;
        try
        {
            using var iter = _log.Scan(from, end);
            while (iter.GetNext(out byte[] entry, out int length, out long address, out long next))
            {
                if (salvage && next > _salvageEnd) return; // the record the cut runs through
                if (address != expected && !IsPagePadding(expected, address, next - address))
                {
                    if (salvage) return;
                    throw Gap(expected, address, end);
                }
                var record = entry.AsSpan(0, length);
                if (length < CrcSize || BinaryPrimitives.ReadUInt32LittleEndian(record) != Crc32C.Compute(record[CrcSize..]))
                {
                    if (salvage) return;
                    throw new CorruptIndexException(SegmentFile(SegmentOf(address)), address & SegmentMask, "log entry checksum mismatch");
                }
                handler(address, record[CrcSize..]);
                expected = next;
            }
        }
        catch (Exception e) when (e is FasterException or IOException and not CorruptIndexException or InvalidOperationException or IndexOutOfRangeException)
        {
            if (salvage) return;
            throw new CorruptIndexException(SegmentFile(SegmentOf(expected)), expected & SegmentMask, $"FASTER log is unreadable: {e.Message}", e);
        }
        if (expected < end && !salvage) throw Gap(expected, end, end);
    }

    // A record that did not fit in the rest of its page starts the next page.
    private static bool IsPagePadding(long expected, long address, long size)
    {
        long page = 1L << PageSizeBits;
        return address > expected && address % page == 0 && address - expected < size && (expected / page + 1) * page == address;
    }

    private CorruptIndexException Gap(long expected, long found, long committed) =>
        new(SegmentFile(SegmentOf(expected)), expected & SegmentMask,
            $"the FASTER log has no record at address {expected} (the next one is at {found}; the last commit covers records up to address {committed}): " +
            "acknowledged records are missing (zeroed or damaged data)");

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="untilAddress"/> lies beyond <see cref="TailAddress"/>
    /// (as the file log refuses it): FASTER would commit a begin address past the committed tail, which no open accepts,
    /// and the segments below it would be deleted with the records they hold.</exception>
    public void Truncate(long untilAddress)
    {
        long tail = _log.TailAddress;
        if (untilAddress > tail)
            throw new ArgumentOutOfRangeException(nameof(untilAddress), untilAddress,
                $"Cannot truncate the FASTER log in '{_directory}' up to address {untilAddress}: it is beyond the log's tail {tail}.");
        _log.TruncateUntil(untilAddress);
        CommitWithCookie(Math.Max(untilAddress, _log.BeginAddress));
        DeleteSegmentsBelow(_log.BeginAddress);
    }

    // FASTER deletes the segments a truncation freed in the background and does not finish when the log is closed
    // right after (a SPANN build checkpoints, then exits: 13 freed segments stayed on disk), nor on the next open. The
    // commit that moved the begin address is durable by now (a strong commit returned; a later torn commit falls back
    // to it or to a newer one, never to an older begin), so every segment wholly below it is garbage: delete it here.
    private void DeleteSegmentsBelow(long begin)
    {
        long first = SegmentOf(begin);
        foreach (var file in System.IO.Directory.GetFiles(_directory, "wal.log.*"))
        {
            if (!long.TryParse(Path.GetExtension(file).AsSpan(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long segment)
                || segment >= first)
                continue;
            try { File.Delete(file); }
            catch (IOException) { } // FASTER's own clean-up may be deleting it at the same moment
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _log.Dispose();
        _device.Dispose();
        _commits.Dispose();
        RemoveOutdatedCommitFiles(Path.Combine(_directory, "log-commits"));
    }

    // After a clean close the newest commit record is complete (its commit returned), so the older ones FASTER keeps
    // until it gets round to deleting them are dropped here: a closed log holds exactly one commit record. Otherwise a
    // copy of the directory taken while an older record still lay beside the newest would, if the newest were later
    // damaged, silently recover the older commit (the torn-newest rule of ValidateCommitFiles) instead of failing.
    private static void RemoveOutdatedCommitFiles(string commits)
    {
        var files = CommitFiles(commits);
        if (files.Length < 2) return;
        try
        {
            var newest = ReadCommitFile(files[0].File);
            if (IsTornCommitRecord(newest)) return;
            ValidateCommitFile(files[0].File, newest);
        }
        catch (CorruptIndexException)
        {
            return; // keep everything: the next open decides
        }
        foreach (var (file, _) in files.Skip(1))
        {
            try { File.Delete(file); }
            catch (IOException) { } // FASTER's own clean-up may be deleting it at the same moment
        }
    }
}

/// <summary>Makes and opens <see cref="FasterWriteAheadLog"/>s; the core finds it by name when <c>Engine.Faster</c> is
/// deployed (see <c>Engine.Storage.Wal.WriteAheadLogs</c>).</summary>
public sealed class FasterWriteAheadLogProvider : IWriteAheadLogProvider
{
    /// <summary>The shared instance.</summary>
    public static FasterWriteAheadLogProvider Instance { get; } = new();

    /// <inheritdoc />
    public string Kind => WriteAheadLogs.FasterKind;

    /// <inheritdoc />
    public string LogFile(string directory) => Path.Combine(Path.GetFullPath(directory), "wal.log.0");

    /// <inheritdoc />
    public IWriteAheadLog Create(string directory) => FasterWriteAheadLog.Create(directory);

    /// <inheritdoc />
    public IWriteAheadLog Open(string directory, bool acceptLoss = false) => FasterWriteAheadLog.Open(directory, acceptLoss);
}
