using System.Buffers;
using System.Buffers.Binary;
using Engine.Storage.Format;

namespace Engine.Storage.Wal;

/// <summary>
/// A write-ahead log in one file: a header naming the address of the first record and the durable tail of the last
/// commit, then records.
/// </summary>
/// <remarks>
/// <code>
/// header v3 : magic "EWAL" u32 | version u32 | base address u64 | crc32c u32 of the 16 bytes before
///             | commit slot 0 | commit slot 1 | 4 zero bytes                               (64 bytes)
/// slot      : sequence u64 | committed address u64 | crc32c u32 of the 16 bytes before      (20 bytes)
/// record    : length u32 | ~length u32 | crc32c u32 (of address u64, length, payload) | payload   (versions 2, 3)
/// header v1, v2 : the first 20 bytes of v3 (no commit slots); record v1: length u32 | crc32c u32 | payload
/// </code>
/// <para>The address of a record is the base address plus its byte offset after the header, so addresses keep
/// growing across truncations. <see cref="Commit"/> fsyncs the records, then writes the new durable tail into the
/// older of the two commit slots (sequence + 1) and fsyncs again: a torn slot write damages only that slot, and the
/// other still names the previous commit.</para>
/// <para>On open the slot with the highest valid sequence gives the committed tail. Records up to it are checked:
/// damage there is <see cref="CorruptIndexException"/>, and so is a file whose intact records end before it (cut
/// short). Whatever follows the committed tail was never acknowledged (a crash during the commit): it is cut off and
/// its size reported in <see cref="Recovery"/>, so a batch of several records is all or nothing. Versions 1 and 2 (read; a checkpoint's
/// truncation rewrites a version-2 log as version 3) have no commit record: there a record cut short by the end of
/// the file, or an all-zero tail, counts as torn, and any other damage is corrupt.</para>
/// </remarks>
public sealed class FileWriteAheadLog : IWriteAheadLog
{
    private const uint Magic = 0x4C415745; // "EWAL"
    private const int FixedHeader = 20;
    private const int SlotSize = 20;
    private const int SlotsHeader = 64;
    private const int CurrentVersion = 3;
    private readonly string _path;
    private FileStream _stream;
    private long _base;
    private int _version;
    private long _commitSequence;
    private long _committed;

    private FileWriteAheadLog(string path, FileStream stream, int version)
    {
        _path = path;
        _stream = stream;
        _version = version;
        Recovery = WalRecoveryInfo.Fresh(0);
    }

    private int HeaderSize => _version >= 3 ? SlotsHeader : FixedHeader;

    private int RecordHeader => _version == 1 ? 8 : 12;

    /// <summary>The log file.</summary>
    public string FilePath => _path;

    /// <summary>Format version of the file (3 for new logs).</summary>
    public int Version => _version;

    /// <summary>Creates an empty log at <paramref name="path"/>, replacing any file there.</summary>
    public static FileWriteAheadLog Create(string path)
    {
        string full = Path.GetFullPath(path);
        var stream = new FileStream(full, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        var log = new FileWriteAheadLog(full, stream, CurrentVersion) { _commitSequence = 1 };
        WriteHeader(stream, 0, CurrentVersion, 1, 0);
        stream.Flush(flushToDisk: true);
        return log;
    }

    /// <summary>Opens the existing log at <paramref name="path"/>, cutting off a torn tail after its last commit.</summary>
    /// <param name="path">The log file.</param>
    /// <param name="acceptLoss">Open a log whose records end before its last commit with what it still holds (the gap is
    /// reported in <see cref="Recovery"/> and the commit record lowered to match) instead of refusing it.</param>
    /// <exception cref="CorruptIndexException">The file is missing or empty, its header is damaged, a record before the
    /// committed tail is damaged, or (unless <paramref name="acceptLoss"/>) the records end before the committed tail.</exception>
    public static FileWriteAheadLog Open(string path, bool acceptLoss = false)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new CorruptIndexException(full, 0, "the log file is missing");
        var stream = new FileStream(full, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        var log = new FileWriteAheadLog(full, stream, CurrentVersion);
        try
        {
            if (stream.Length == 0) throw new CorruptIndexException(full, 0, "the log file is empty (0 bytes): its header and records are gone");
            log.ReadHeader();
            log.Recover(acceptLoss);
            return log;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public int MaxRecordSize => 64 << 20;

    /// <inheritdoc />
    public long TailAddress => _base + _stream.Length - HeaderSize;

    /// <inheritdoc />
    public long BeginAddress => _base;

    /// <inheritdoc />
    public WalRecoveryInfo Recovery { get; private set; }

    private long AddressAt(long offset) => _base + offset - HeaderSize;

    private static void WriteHeader(Stream s, long baseAddress, int version, long sequence, long committed)
    {
        Span<byte> h = stackalloc byte[SlotsHeader];
        h.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)version);
        BinaryPrimitives.WriteInt64LittleEndian(h[8..], baseAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], Crc32C.Compute(h[..16]));
        if (version >= 3) FormatSlot(h.Slice(FixedHeader + (int)(sequence & 1) * SlotSize, SlotSize), sequence, committed);
        s.Position = 0;
        s.Write(h[..(version >= 3 ? SlotsHeader : FixedHeader)]);
    }

    private static void FormatSlot(Span<byte> slot, long sequence, long committed)
    {
        BinaryPrimitives.WriteInt64LittleEndian(slot, sequence);
        BinaryPrimitives.WriteInt64LittleEndian(slot[8..], committed);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[16..], Crc32C.Compute(slot[..16]));
    }

    private void ReadHeader()
    {
        Span<byte> h = stackalloc byte[SlotsHeader];
        _stream.Position = 0;
        int got = _stream.ReadAtLeast(h, SlotsHeader, throwOnEndOfStream: false);
        if (got < FixedHeader) throw new CorruptIndexException(_path, 0, "log header is truncated");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Magic || version is not (1 or 2 or 3)
            || BinaryPrimitives.ReadUInt32LittleEndian(h[16..]) != Crc32C.Compute(h[..16]))
            throw new CorruptIndexException(_path, 0, "log header is damaged (magic, version or checksum)");
        _version = (int)version;
        _base = BinaryPrimitives.ReadInt64LittleEndian(h[8..]);
        if (_base < 0) throw new CorruptIndexException(_path, 8, $"impossible base address {_base}");
        if (_version < 3) return;
        if (got < SlotsHeader) throw new CorruptIndexException(_path, got, "log header is truncated (commit slots incomplete)");
        _commitSequence = 0;
        for (int i = 0; i < 2; i++)
        {
            var slot = h.Slice(FixedHeader + i * SlotSize, SlotSize);
            long seq = BinaryPrimitives.ReadInt64LittleEndian(slot);
            if (seq <= 0 || BinaryPrimitives.ReadUInt32LittleEndian(slot[16..]) != Crc32C.Compute(slot[..16]) || seq <= _commitSequence) continue;
            _commitSequence = seq;
            _committed = BinaryPrimitives.ReadInt64LittleEndian(slot[8..]);
        }
        if (_commitSequence == 0) throw new CorruptIndexException(_path, FixedHeader, "both commit slots of the log header are damaged");
        if (_committed < _base) throw new CorruptIndexException(_path, FixedHeader, $"commit record names address {_committed}, before the log's first address {_base}");
    }

    // Finds where intact records end, refuses damage to committed records, cuts off what follows the last commit.
    private void Recover(bool acceptLoss)
    {
        long length = _stream.Length;
        long end = Scan(null, 0, _version >= 3 ? _committed : long.MaxValue, stopAtDamage: acceptLoss);
        long validEnd = AddressAt(end);
        long lost = 0;
        if (_version >= 3 && validEnd > _committed)
            throw new CorruptIndexException(_path, FixedHeader, $"the commit record names address {_committed}, inside the record at file offset {end}");
        if (_version >= 3 && validEnd < _committed)
        {
            if (!acceptLoss)
                throw new CorruptIndexException(_path, end,
                    $"the log's intact records end at address {validEnd} (file offset {end}) but its last commit covers records up to address " +
                    $"{_committed}: {_committed - validEnd} bytes of acknowledged records are missing (the file was cut short or damaged)");
            lost = _committed - validEnd;
        }
        int tornRecords = CountRecords(end, length);
        long tornBytes = length - end;
        long committed = _version >= 3 ? _committed : -1;
        if (end < length) { _stream.SetLength(end); _stream.Flush(flushToDisk: true); }
        if (lost > 0) WriteCommit(validEnd); // consistent again: the commit names what the log holds
        _committed = validEnd;
        Recovery = new WalRecoveryInfo(committed, validEnd, tornRecords, tornBytes, lost);
        _stream.Seek(0, SeekOrigin.End);
    }

    // Counts the record headers in a torn tail (at least 1 when it is not empty): an estimate of the records dropped.
    private int CountRecords(long pos, long length)
    {
        int count = 0;
        Span<byte> rh = stackalloc byte[12];
        rh = rh[..RecordHeader];
        while (pos < length)
        {
            count++;
            if (length - pos < rh.Length) break;
            _stream.Position = pos;
            _stream.ReadExactly(rh);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(rh);
            if ((_version >= 2 && BinaryPrimitives.ReadUInt32LittleEndian(rh[4..]) != ~len) || len > MaxRecordSize) break;
            pos += rh.Length + len;
        }
        return count;
    }

    private static uint RecordCrc(long address, ReadOnlySpan<byte> payload)
    {
        Span<byte> prefix = stackalloc byte[12];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, address);
        BinaryPrimitives.WriteInt32LittleEndian(prefix[8..], payload.Length);
        return Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, prefix), payload));
    }

    // Walks records from the start up to address stopAt; returns the file offset where intact records end. A record cut
    // short by the end of the file ends the walk; other damage throws, unless stopAtDamage (or the v1/v2 torn-tail rules).
    private long Scan(WalRecordHandler? handler, long fromAddress, long stopAt, bool stopAtDamage)
    {
        long length = _stream.Length;
        long pos = HeaderSize;
        int rhSize = RecordHeader;
        byte[] buf = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            Span<byte> rh = stackalloc byte[12];
            rh = rh[..rhSize];
            while (pos < length && AddressAt(pos) < stopAt)
            {
                if (length - pos < rhSize) return pos; // torn header at the tail
                long address = AddressAt(pos);
                bool torn = stopAtDamage;
                _stream.Position = pos;
                _stream.ReadExactly(rh);
                long len = BinaryPrimitives.ReadUInt32LittleEndian(rh);
                uint crc = BinaryPrimitives.ReadUInt32LittleEndian(rh[(rhSize - 4)..]);
                long end = pos + rhSize + len;
                if (_version >= 2)
                {
                    if (BinaryPrimitives.ReadUInt32LittleEndian(rh[4..]) != ~(uint)len)
                    {
                        if (torn || (_version == 2 && IsZeroFrom(pos))) return pos; // (v2: extended with zeros, never written)
                        throw new CorruptIndexException(_path, pos, "log record length is damaged (length check mismatch)");
                    }
                    if (len > MaxRecordSize)
                    {
                        if (torn) return pos;
                        throw new CorruptIndexException(_path, pos, $"log record length {len} is impossible");
                    }
                }
                else if (len > MaxRecordSize)
                {
                    if (end >= length || len > length) return pos;
                    throw new CorruptIndexException(_path, pos, $"log record length {len} is impossible");
                }
                if (end > length) return pos; // torn payload at the tail
                if (buf.Length < len) { ArrayPool<byte>.Shared.Return(buf); buf = ArrayPool<byte>.Shared.Rent((int)len); }
                var payload = buf.AsSpan(0, (int)len);
                _stream.ReadExactly(payload);
                if (RecordCrc(address, payload) != crc)
                {
                    // v1: any last record counts as torn; v2: a last record never written.
                    if (torn || (end == length && (_version == 1 || (_version == 2 && !payload.ContainsAnyExcept((byte)0))))) return pos;
                    throw new CorruptIndexException(_path, pos, "log record checksum mismatch");
                }
                if (handler is not null && address >= fromAddress) handler(address, payload);
                pos = end;
            }
            return pos;
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
    }

    private bool IsZeroFrom(long pos)
    {
        var chunk = new byte[1 << 16];
        _stream.Position = pos;
        int read;
        while ((read = _stream.Read(chunk)) > 0)
            if (chunk.AsSpan(0, read).ContainsAnyExcept((byte)0)) return false;
        return true;
    }

    /// <inheritdoc />
    public long Append(ReadOnlySpan<byte> record)
    {
        if (record.Length > MaxRecordSize) throw new ArgumentException($"Log record of {record.Length} bytes exceeds the limit {MaxRecordSize}.", nameof(record));
        long address = TailAddress;
        Span<byte> rh = stackalloc byte[12];
        rh = rh[..RecordHeader];
        BinaryPrimitives.WriteUInt32LittleEndian(rh, (uint)record.Length);
        if (_version >= 2) BinaryPrimitives.WriteUInt32LittleEndian(rh[4..], ~(uint)record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(rh[(rh.Length - 4)..], RecordCrc(address, record));
        _stream.Position = _stream.Length;
        _stream.Write(rh);
        _stream.Write(record);
        return address;
    }

    /// <inheritdoc />
    /// <remarks>fsync of the records, then (version 3) the new tail in a commit slot and a second fsync.</remarks>
    public void Commit()
    {
        long tail = TailAddress;
        if (tail == _committed) return;
        _stream.Flush(flushToDisk: true);
        if (_version >= 3) WriteCommit(tail);
        _committed = tail;
    }

    private void WriteCommit(long committed)
    {
        long seq = _commitSequence + 1;
        Span<byte> slot = stackalloc byte[SlotSize];
        FormatSlot(slot, seq, committed);
        RandomAccess.Write(_stream.SafeFileHandle, slot, FixedHeader + (seq & 1) * SlotSize);
        _stream.Flush(flushToDisk: true);
        _commitSequence = seq;
    }

    /// <inheritdoc />
    public void Replay(long fromAddress, WalRecordHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _stream.Flush();
        if (fromAddress < _base)
            throw new CorruptIndexException(_path, 8, $"log starts at address {_base} but replay needs records from {fromAddress}");
        Scan(handler, fromAddress, long.MaxValue, stopAtDamage: false);
        _stream.Seek(0, SeekOrigin.End);
    }

    /// <inheritdoc />
    /// <remarks>Commits, copies the records that stay into a new file (version 3 unless the log is version 1, whose
    /// records keep their format) and renames it over the log, so a crash leaves either the old or the new log.</remarks>
    public void Truncate(long untilAddress)
    {
        if (untilAddress <= _base) return;
        long tail = TailAddress;
        if (untilAddress > tail) throw new ArgumentOutOfRangeException(nameof(untilAddress), untilAddress, $"Beyond the log tail {tail}.");
        Commit();
        int version = _version == 1 ? 1 : CurrentVersion;
        long sequence = _commitSequence + 1;
        string temp = _path + ".tmp";
        using (var dst = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            WriteHeader(dst, untilAddress, version, sequence, tail);
            _stream.Position = HeaderSize + (untilAddress - _base);
            _stream.CopyTo(dst);
            dst.Flush(flushToDisk: true);
        }
        _stream.Dispose();
        File.Move(temp, _path, overwrite: true);
        _stream = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        _base = untilAddress;
        _version = version;
        _commitSequence = sequence;
        _committed = tail;
        _stream.Seek(0, SeekOrigin.End);
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
