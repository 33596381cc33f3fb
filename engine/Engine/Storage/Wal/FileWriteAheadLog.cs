using System.Buffers;
using System.Buffers.Binary;
using Engine.Storage.Format;

namespace Engine.Storage.Wal;

/// <summary>
/// A write-ahead log in one file: a small header naming the address of the first record, then records.
/// </summary>
/// <remarks>
/// <code>
/// header    : magic "EWAL" u32 | version u32 | base address u64 | crc32c u32 of the 16 bytes before
/// record v2 : length u32 | ~length u32 | crc32c u32 (of address u64, length, payload) | payload
/// record v1 : length u32 | crc32c u32 | payload            (read only; new logs are version 2)
/// </code>
/// The address of a record is the base address plus its byte offset after the header, so addresses keep
/// growing across truncations. On open, a record cut short by the end of the file (header or payload incomplete),
/// or a tail that is all zero bytes (file extended but never written), is a torn write from a crash: it is cut off.
/// Any other damage, in the last record too, raises <see cref="CorruptIndexException"/>: the checked length tells a
/// flipped length apart from a short write, so a committed record is never silently dropped. (Version 1 has no
/// length check and treats a bad last record as torn.)
/// </remarks>
public sealed class FileWriteAheadLog : IWriteAheadLog
{
    private const uint Magic = 0x4C415745; // "EWAL"
    private const int HeaderSize = 20;
    private const int CurrentVersion = 2;
    private readonly string _path;
    private FileStream _stream;
    private long _base;
    private int _version = CurrentVersion;

    private int RecordHeader => _version == 1 ? 8 : 12;

    /// <summary>Opens or creates the log file at <paramref name="path"/>, discarding a torn tail.</summary>
    /// <exception cref="CorruptIndexException">Bad header or a damaged record before the tail.</exception>
    public FileWriteAheadLog(string path)
    {
        _path = Path.GetFullPath(path);
        _stream = new FileStream(_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        bool exists = _stream.Length > 0; // the target's length (FileInfo.Length of a symlinked log is the link's own)
        if (!exists) { WriteHeader(_stream, 0, _version); _stream.Flush(flushToDisk: true); }
        else
        {
            ReadHeader();
            long end = Scan(null, 0);
            if (end < _stream.Length) { _stream.SetLength(end); _stream.Flush(flushToDisk: true); }
        }
        _stream.Seek(0, SeekOrigin.End);
    }

    /// <inheritdoc />
    public int MaxRecordSize => 64 << 20;

    /// <inheritdoc />
    public long TailAddress => _base + _stream.Length - HeaderSize;

    private static void WriteHeader(Stream s, long baseAddress, int version)
    {
        Span<byte> h = stackalloc byte[HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)version);
        BinaryPrimitives.WriteInt64LittleEndian(h[8..], baseAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], Crc32C.Compute(h[..16]));
        s.Position = 0;
        s.Write(h);
    }

    private void ReadHeader()
    {
        Span<byte> h = stackalloc byte[HeaderSize];
        _stream.Position = 0;
        if (_stream.ReadAtLeast(h, HeaderSize, throwOnEndOfStream: false) < HeaderSize)
            throw new CorruptIndexException(_path, 0, "log header is truncated");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Magic || version is not (1 or 2)
            || BinaryPrimitives.ReadUInt32LittleEndian(h[16..]) != Crc32C.Compute(h[..16]))
            throw new CorruptIndexException(_path, 0, "log header is damaged (magic, version or checksum)");
        _version = (int)version;
        _base = BinaryPrimitives.ReadInt64LittleEndian(h[8..]);
        if (_base < 0) throw new CorruptIndexException(_path, 8, $"impossible base address {_base}");
    }

    private static uint RecordCrc(long address, ReadOnlySpan<byte> payload)
    {
        Span<byte> prefix = stackalloc byte[12];
        BinaryPrimitives.WriteInt64LittleEndian(prefix, address);
        BinaryPrimitives.WriteInt32LittleEndian(prefix[8..], payload.Length);
        return Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, prefix), payload));
    }

    // Walks records from the start; returns the file offset where valid records end.
    private long Scan(WalRecordHandler? handler, long fromAddress)
    {
        long length = _stream.Length;
        long pos = HeaderSize;
        int rhSize = RecordHeader;
        byte[] buf = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            Span<byte> rh = stackalloc byte[12];
            rh = rh[..rhSize];
            while (pos < length)
            {
                if (length - pos < rhSize) return pos; // torn header at the tail
                _stream.Position = pos;
                _stream.ReadExactly(rh);
                long len = BinaryPrimitives.ReadUInt32LittleEndian(rh);
                uint crc = BinaryPrimitives.ReadUInt32LittleEndian(rh[(rhSize - 4)..]);
                long end = pos + rhSize + len;
                if (_version >= 2)
                {
                    if (BinaryPrimitives.ReadUInt32LittleEndian(rh[4..]) != ~(uint)len)
                    {
                        if (IsZeroFrom(pos)) return pos; // extended with zeros, never written
                        throw new CorruptIndexException(_path, pos, "log record length is damaged (length check mismatch)");
                    }
                    if (len > MaxRecordSize) throw new CorruptIndexException(_path, pos, $"log record length {len} is impossible");
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
                long address = _base + pos - HeaderSize;
                if (RecordCrc(address, payload) != crc)
                {
                    // A torn last record: version 1 cannot tell it from damage; version 2 only when it was never written.
                    if (end == length && (_version == 1 || !payload.ContainsAnyExcept((byte)0))) return pos;
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
    public void Commit() => _stream.Flush(flushToDisk: true);

    /// <inheritdoc />
    public void Replay(long fromAddress, WalRecordHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _stream.Flush();
        if (fromAddress < _base)
            throw new CorruptIndexException(_path, 8, $"log starts at address {_base} but replay needs records from {fromAddress}");
        Scan(handler, fromAddress);
        _stream.Seek(0, SeekOrigin.End);
    }

    /// <inheritdoc />
    public void Truncate(long untilAddress)
    {
        if (untilAddress <= _base) return;
        long tail = TailAddress;
        if (untilAddress > tail) throw new ArgumentOutOfRangeException(nameof(untilAddress), untilAddress, $"Beyond the log tail {tail}.");
        _stream.Flush(flushToDisk: true);
        // Copy the records that stay into a new file and rename it over the log, so a crash leaves either
        // the old or the new log, both valid.
        string temp = _path + ".tmp";
        using (var dst = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            WriteHeader(dst, untilAddress, _version); // the kept records keep their format
            _stream.Position = HeaderSize + (untilAddress - _base);
            _stream.CopyTo(dst);
            dst.Flush(flushToDisk: true);
        }
        _stream.Dispose();
        File.Move(temp, _path, overwrite: true);
        _stream = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        _base = untilAddress;
        _stream.Seek(0, SeekOrigin.End);
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}
