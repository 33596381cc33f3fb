using System.Buffers;
using System.Buffers.Binary;
using Engine.Storage.Format;

namespace Engine.Storage.Wal;

/// <summary>
/// A write-ahead log in one file: a small header naming the address of the first record, then records.
/// </summary>
/// <remarks>
/// <code>
/// header : magic "EWAL" u32 | version u32 | base address u64 | crc32c u32 of the 16 bytes before
/// record : length u32 | crc32c u32 (of address u64, length, payload) | payload
/// </code>
/// The address of a record is the base address plus its byte offset after the header, so addresses keep
/// growing across truncations. On open a record that runs past the end of the file, or fails its checksum
/// while nothing follows it, is a torn write from a crash: it is cut off. A bad record followed by more
/// data is corruption and raises <see cref="CorruptIndexException"/>.
/// </remarks>
public sealed class FileWriteAheadLog : IWriteAheadLog
{
    private const uint Magic = 0x4C415745; // "EWAL"
    private const int HeaderSize = 20;
    private const int RecordHeader = 8;
    private readonly string _path;
    private FileStream _stream;
    private long _base;

    /// <summary>Opens or creates the log file at <paramref name="path"/>, discarding a torn tail.</summary>
    /// <exception cref="CorruptIndexException">Bad header or a damaged record before the tail.</exception>
    public FileWriteAheadLog(string path)
    {
        _path = Path.GetFullPath(path);
        bool exists = File.Exists(_path) && new FileInfo(_path).Length > 0;
        _stream = new FileStream(_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        if (!exists) { WriteHeader(_stream, 0); _stream.Flush(flushToDisk: true); }
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

    private static void WriteHeader(Stream s, long baseAddress)
    {
        Span<byte> h = stackalloc byte[HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], 1);
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
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != Magic || BinaryPrimitives.ReadUInt32LittleEndian(h[4..]) != 1
            || BinaryPrimitives.ReadUInt32LittleEndian(h[16..]) != Crc32C.Compute(h[..16]))
            throw new CorruptIndexException(_path, 0, "log header is damaged (magic, version or checksum)");
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
        byte[] buf = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            Span<byte> rh = stackalloc byte[RecordHeader];
            while (pos < length)
            {
                if (length - pos < RecordHeader) return pos; // torn header at the tail
                _stream.Position = pos;
                _stream.ReadExactly(rh);
                long len = BinaryPrimitives.ReadUInt32LittleEndian(rh);
                uint crc = BinaryPrimitives.ReadUInt32LittleEndian(rh[4..]);
                long end = pos + RecordHeader + len;
                if (len > MaxRecordSize)
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
                    if (end == length) return pos; // last record torn
                    throw new CorruptIndexException(_path, pos, "log record checksum mismatch");
                }
                if (handler is not null && address >= fromAddress) handler(address, payload);
                pos = end;
            }
            return pos;
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
    }

    /// <inheritdoc />
    public long Append(ReadOnlySpan<byte> record)
    {
        if (record.Length > MaxRecordSize) throw new ArgumentException($"Log record of {record.Length} bytes exceeds the limit {MaxRecordSize}.", nameof(record));
        long address = TailAddress;
        Span<byte> rh = stackalloc byte[RecordHeader];
        BinaryPrimitives.WriteUInt32LittleEndian(rh, (uint)record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(rh[4..], RecordCrc(address, record));
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
            WriteHeader(dst, untilAddress);
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
