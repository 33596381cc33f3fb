using Engine.Storage.Devices;
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;

namespace Engine.Storage.Format;

/// <summary>
/// Self-describing, checksummed container every index file uses.
/// </summary>
/// <remarks>
/// Layout (little-endian):
/// <code>
/// header  : magic "ENGNIDX\0" (8) | format version u32 | kind length u16 | kind utf8 | description length u16 |
///           description utf8 | metric u8 | dimension i32 | count i64 | header crc32c u32
/// section : tag (4 ascii) | payload length u64 | zero padding up to the next multiple of 64 | payload |
///           crc32c u32 over padding and payload                                  (repeated)
/// trailer : tag "END\0" | length 0 u64 | crc32c u32 of all section crcs
/// </code>
/// Version 2 aligns every payload to <see cref="PayloadAlignment"/> bytes from the start of the file, so a
/// memory-mapped file gives aligned typed views of its sections; version 1 (no padding) is still read.
/// Files are written to a temporary sibling and renamed over the target on <see cref="IndexFileWriter.Commit"/>,
/// so a crash never leaves a partial file under the final name.
/// </remarks>
public static class IndexFile
{
    /// <summary>File magic.</summary>
    public static ReadOnlySpan<byte> Magic => "ENGNIDX\0"u8;

    /// <summary>Current container format version (2: section payloads aligned to <see cref="PayloadAlignment"/>).</summary>
    public const uint FormatVersion = 2;

    /// <summary>Oldest container version this build still reads (1: payloads follow their section head directly).</summary>
    public const uint OldestReadableVersion = 1;

    /// <summary>Alignment of section payloads, in bytes from the start of the file, since format version 2.</summary>
    public const int PayloadAlignment = 64;

    internal const string EndTag = "END\0";

    /// <summary>Zero bytes between a section head ending at <paramref name="headEnd"/> and its payload.</summary>
    internal static int Padding(long headEnd, uint version) =>
        version < 2 ? 0 : (int)((PayloadAlignment - headEnd % PayloadAlignment) % PayloadAlignment);
}

/// <summary>Header fields of an index file.</summary>
/// <param name="Kind">Index family, e.g. <c>flat</c>, <c>ivf</c>.</param>
/// <param name="Description">Composition string, e.g. <c>IVF256,PQ16x4fs</c>.</param>
/// <param name="Metric">Metric.</param>
/// <param name="Dimension">Vector dimension.</param>
/// <param name="Count">Number of vectors.</param>
/// <param name="FormatVersion">Container format version the file was written with.</param>
public sealed record IndexFileHeader(string Kind, string Description, Metric Metric, int Dimension, long Count, uint FormatVersion);

/// <summary>Writes an index file section by section; see <see cref="IndexFile"/>.</summary>
public sealed class IndexFileWriter : IDisposable
{
    private readonly string _path;
    private readonly string? _tempPath;          // file writers: the temporary file renamed into place by Commit
    private readonly Action<byte[]>? _publish;   // stream writers: receives the committed bytes
    private Stream? _stream;
    private uint _sectionCrcs = Crc32C.Seed;
    private uint _sectionCrc;
    private long _sectionRemaining = -1;
    private string _sectionTag = "";
    private bool _committed;

    /// <summary>Opens a temporary file beside <paramref name="path"/> and writes the header.</summary>
    public IndexFileWriter(string path, IndexFileHeader header)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(_path);
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot save index: directory '{dir}' does not exist.");
        _tempPath = _path + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        _stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        WriteHeader(header);
    }

    /// <summary>
    /// Writes into memory; <see cref="Commit"/> hands the finished file's bytes to <paramref name="publish"/> (storage
    /// that is not a file system replaces its copy there, as the file writer renames), and a writer disposed without
    /// a commit publishes nothing. <paramref name="name"/> is what messages call the file.
    /// </summary>
    internal IndexFileWriter(string name, IndexFileHeader header, Action<byte[]> publish)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(publish);
        _path = name;
        _publish = publish;
        _stream = new MemoryStream();
        WriteHeader(header);
    }

    private void WriteHeader(IndexFileHeader header)
    {
        var buf = new List<byte>(256);
        buf.AddRange(IndexFile.Magic.ToArray());
        AddU32(buf, IndexFile.FormatVersion);
        AddString(buf, header.Kind);
        AddString(buf, header.Description);
        buf.Add((byte)header.Metric);
        AddU32(buf, (uint)header.Dimension);
        AddU64(buf, (ulong)header.Count);
        var bytes = buf.ToArray();
        _stream!.Write(bytes);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32C.Compute(bytes));
        _stream.Write(crc);
    }

    /// <summary>Writes a section of raw bytes under a 4-character tag.</summary>
    public void WriteSection(string tag, ReadOnlySpan<byte> payload)
    {
        BeginSection(tag, payload.Length);
        WritePayload(payload);
        EndSection();
    }

    /// <summary>
    /// Starts a section of exactly <paramref name="length"/> payload bytes, written in pieces with
    /// <see cref="WritePayload"/> and closed with <see cref="EndSection"/> (no copy of the whole payload in memory).
    /// </summary>
    /// <exception cref="InvalidOperationException">Another section is still open.</exception>
    public void BeginSection(string tag, long length)
    {
        var s = _stream ?? throw new ObjectDisposedException(nameof(IndexFileWriter));
        if (_sectionRemaining >= 0) throw new InvalidOperationException($"Section '{_sectionTag}' is still open.");
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Span<byte> head = stackalloc byte[12 + IndexFile.PayloadAlignment];
        WriteTag(head, tag);
        BinaryPrimitives.WriteUInt64LittleEndian(head[4..], (ulong)length);
        int pad = IndexFile.Padding(s.Position + 12, IndexFile.FormatVersion);
        head.Slice(12, pad).Clear();
        s.Write(head[..(12 + pad)]);
        _sectionCrc = Crc32C.Append(Crc32C.Seed, head.Slice(12, pad));
        _sectionTag = tag;
        _sectionRemaining = length;
    }

    /// <summary>Appends bytes to the open section.</summary>
    /// <exception cref="InvalidOperationException">No open section, or more bytes than it declared.</exception>
    public void WritePayload(ReadOnlySpan<byte> bytes)
    {
        var s = _stream ?? throw new ObjectDisposedException(nameof(IndexFileWriter));
        if (_sectionRemaining < 0) throw new InvalidOperationException("No section is open: call BeginSection first.");
        if (bytes.Length > _sectionRemaining)
            throw new InvalidOperationException($"Section '{_sectionTag}' declared {_sectionRemaining} more bytes but got {bytes.Length}.");
        s.Write(bytes);
        _sectionCrc = Crc32C.Append(_sectionCrc, bytes);
        _sectionRemaining -= bytes.Length;
    }

    /// <summary>Closes the open section and writes its checksum.</summary>
    /// <exception cref="InvalidOperationException">No open section, or fewer bytes written than it declared.</exception>
    public void EndSection()
    {
        var s = _stream ?? throw new ObjectDisposedException(nameof(IndexFileWriter));
        if (_sectionRemaining != 0)
            throw new InvalidOperationException(_sectionRemaining < 0 ? "No section is open." : $"Section '{_sectionTag}' is missing {_sectionRemaining} bytes.");
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(tail, Crc32C.Finish(_sectionCrc));
        s.Write(tail);
        _sectionCrcs = Crc32C.Append(_sectionCrcs, tail);
        _sectionRemaining = -1;
    }

    /// <summary>Writes a section holding an array of unmanaged values.</summary>
    public void WriteArray<T>(string tag, ReadOnlySpan<T> values) where T : unmanaged =>
        WriteSection(tag, MemoryMarshal.AsBytes(values));

    /// <summary>Writes a section holding a UTF-8 string (e.g. JSON options).</summary>
    public void WriteString(string tag, string value) => WriteSection(tag, Encoding.UTF8.GetBytes(value));

    /// <summary>Writes the trailer, flushes to disk and renames the file into place.</summary>
    public void Commit()
    {
        var s = _stream ?? throw new ObjectDisposedException(nameof(IndexFileWriter));
        if (_sectionRemaining >= 0) throw new InvalidOperationException($"Section '{_sectionTag}' is still open.");
        Span<byte> end = stackalloc byte[16];
        WriteTag(end, IndexFile.EndTag);
        BinaryPrimitives.WriteUInt64LittleEndian(end[4..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(end[12..], Crc32C.Finish(_sectionCrcs));
        s.Write(end);
        if (s is FileStream file)
        {
            file.Flush(flushToDisk: true);
            file.Dispose();
            _stream = null;
            File.Move(_tempPath!, _path, overwrite: true);
        }
        else
        {
            var bytes = ((MemoryStream)s).ToArray();
            s.Dispose();
            _stream = null;
            _publish!(bytes);
        }
        _committed = true;
    }

    /// <summary>Closes the writer; without <see cref="Commit"/> the temporary file is deleted and the target untouched.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_committed && _tempPath is not null)
        {
            try { File.Delete(_tempPath); } catch (IOException) { }
        }
    }

    private static void WriteTag(Span<byte> dst, string tag)
    {
        if (tag.Length != 4) throw new ArgumentException("Section tags are exactly 4 ASCII characters.", nameof(tag));
        for (int i = 0; i < 4; i++) dst[i] = (byte)tag[i];
    }

    private static void AddU32(List<byte> b, uint v) { for (int i = 0; i < 4; i++) b.Add((byte)(v >> (8 * i))); }
    private static void AddU64(List<byte> b, ulong v) { for (int i = 0; i < 8; i++) b.Add((byte)(v >> (8 * i))); }
    private static void AddString(List<byte> b, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length > ushort.MaxValue) throw new ArgumentException("Header string too long.");
        b.Add((byte)bytes.Length); b.Add((byte)(bytes.Length >> 8));
        b.AddRange(bytes);
    }
}

/// <summary>Reads an index file written by <see cref="IndexFileWriter"/>, verifying every checksum.</summary>
/// <remarks>
/// Opened with <c>mapped: true</c> the whole file is memory-mapped read-only: <see cref="ReadSection"/> and
/// <see cref="ReadArray{T}"/> still return copies (meant for small sections), while large sections can be viewed in
/// place (internal <c>MapSection</c>) and the mapping handed to the index that keeps pointing into it. Every
/// checksum is verified by a sequential pass over the bytes in both modes.
/// </remarks>
public sealed unsafe class IndexFileReader : IDisposable
{
    private readonly Stream? _stream;
    private IndexFileMapping? _mapping;
    private readonly long _length;

    /// <summary>Length of the file in bytes (of the target, when the path is a link).</summary>
    internal long FileLength => _length;
    private long _pos;
    private uint _sectionCrcs = Crc32C.Seed;
    private readonly Dictionary<string, long> _payloadOffsets = new();

    /// <summary>The file being read.</summary>
    public string Path { get; }

    /// <summary>The verified header.</summary>
    public IndexFileHeader Header { get; }

    /// <summary>Opens <paramref name="path"/> with buffered reads and verifies the header.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptIndexException">Bad magic, truncated header or header checksum mismatch.</exception>
    /// <exception cref="IndexFormatException">Unsupported format version or unexpected index kind.</exception>
    public IndexFileReader(string path, string? expectedKind = null) : this(path, expectedKind, mapped: false) { }

    /// <summary>Opens <paramref name="path"/>, memory-mapped when <paramref name="mapped"/>, and verifies the header.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptIndexException">Bad magic, truncated header or header checksum mismatch.</exception>
    /// <exception cref="IndexFormatException">Unsupported format version or unexpected index kind.</exception>
    public IndexFileReader(string path, string? expectedKind, bool mapped)
    {
        Path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(Path)) throw new FileNotFoundException($"Index file '{Path}' does not exist.", Path);
        if (mapped)
        {
            _mapping = IndexFileMapping.Open(Path);
            _length = _mapping.Length;
        }
        else
        {
            _stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            _length = _stream.Length;
        }
        try
        {
            Header = ReadHeader(expectedKind);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the file held in <paramref name="bytes"/> (storage that is not a file system) and verifies the header;
    /// <paramref name="name"/> is what messages call the file.
    /// </summary>
    internal IndexFileReader(string name, byte[] bytes, string? expectedKind)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Path = name;
        _stream = new MemoryStream(bytes, writable: false);
        _length = bytes.Length;
        try
        {
            Header = ReadHeader(expectedKind);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>File offset of the next section (or the trailer).</summary>
    public long Position => _pos;

    /// <summary>True when the file is memory-mapped.</summary>
    public bool IsMapped => _mapping is not null;

    /// <summary>File offset of the payload of the section <paramref name="tag"/> read last (-1 when none was read).</summary>
    public long PayloadOffset(string tag) => _payloadOffsets.TryGetValue(tag, out long at) ? at : -1;

    /// <summary>
    /// The tag of the next section (or the trailer's <c>END\0</c>) without moving past it, for sections that newer
    /// writers add and older files lack; null when the file ends first.
    /// </summary>
    public string? PeekTag()
    {
        if (_pos + 4 > _length) return null;
        Span<byte> tag = stackalloc byte[4];
        long at = _pos;
        ReadExact(tag, at, "section tag");
        _pos = at;
        return Encoding.ASCII.GetString(tag);
    }

    private IndexFileHeader ReadHeader(string? expectedKind)
    {
        Span<byte> magic = stackalloc byte[8];
        ReadExact(magic, 0, "file magic");
        if (!magic.SequenceEqual(IndexFile.Magic))
            throw new CorruptIndexException(Path, 0, "not an engine index file (bad magic)");
        var fixedPart = new byte[6];
        ReadExact(fixedPart, 8, "header");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(fixedPart);
        int kindLen = BinaryPrimitives.ReadUInt16LittleEndian(fixedPart.AsSpan(4));
        var kind = new byte[kindLen];
        ReadExact(kind, 14, "header kind");
        var descLenBytes = new byte[2];
        ReadExact(descLenBytes, 14 + kindLen, "header");
        int descLen = BinaryPrimitives.ReadUInt16LittleEndian(descLenBytes);
        var rest = new byte[descLen + 1 + 4 + 8 + 4];
        ReadExact(rest, 16 + kindLen, "header");
        var all = new List<byte>();
        all.AddRange(magic.ToArray()); all.AddRange(fixedPart); all.AddRange(kind); all.AddRange(descLenBytes);
        all.AddRange(rest.AsSpan(0, rest.Length - 4).ToArray());
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(rest.AsSpan(rest.Length - 4));
        if (Crc32C.Compute(all.ToArray()) != stored)
            throw new CorruptIndexException(Path, 0, "header checksum mismatch");
        if (version < IndexFile.OldestReadableVersion || version > IndexFile.FormatVersion)
            throw new IndexFormatException(Path, $"format version {version} is not supported (this build reads versions {IndexFile.OldestReadableVersion} to {IndexFile.FormatVersion}).");
        string kindStr = Encoding.UTF8.GetString(kind);
        if (expectedKind is not null && kindStr != expectedKind)
            throw new IndexFormatException(Path, $"the file holds a '{kindStr}' index, not a '{expectedKind}' index.");
        var r = rest.AsSpan();
        string desc = Encoding.UTF8.GetString(r[..descLen]);
        byte metric = r[descLen];
        if (metric > (byte)Metric.Cosine) throw new CorruptIndexException(Path, 16 + kindLen + descLen, $"unknown metric code {metric}");
        int dim = BinaryPrimitives.ReadInt32LittleEndian(r[(descLen + 1)..]);
        long count = BinaryPrimitives.ReadInt64LittleEndian(r[(descLen + 5)..]);
        if (dim <= 0 || count < 0) throw new CorruptIndexException(Path, 16 + kindLen + descLen, $"impossible dimension {dim} or count {count}");
        return new IndexFileHeader(kindStr, desc, (Metric)metric, dim, count, version);
    }

    // Reads the head of the next section (which must carry `tag`); returns where its padding and payload start.
    private (long Start, long Padded, int Pad, long Length) ReadHead(string tag, long maxBytes)
    {
        long start = _pos;
        Span<byte> head = stackalloc byte[12];
        ReadExact(head, start, $"section '{tag}' header");
        string got = Encoding.ASCII.GetString(head[..4]);
        if (got != tag) throw new CorruptIndexException(Path, start, $"expected section '{tag}' but found '{Printable(got)}'");
        ulong len = BinaryPrimitives.ReadUInt64LittleEndian(head[4..]);
        int pad = IndexFile.Padding(start + 12, Header.FormatVersion);
        _payloadOffsets[tag] = start + 12 + pad;
        long room = Math.Max(0, _length - (start + 12 + pad) - 4);
        if (len > (ulong)maxBytes || len > (ulong)room)
            throw new CorruptIndexException(Path, start + 4, $"section '{tag}' length {len} exceeds the file");
        return (start, start + 12, pad, (long)len);
    }

    // Compares a section's running CRC (over padding and payload) with the stored one and moves past it.
    private void CheckCrc(string tag, long start, long crcOffset, uint crcState)
    {
        Span<byte> crc = stackalloc byte[4];
        ReadExact(crc, crcOffset, $"section '{tag}' checksum");
        if (Crc32C.Finish(crcState) != BinaryPrimitives.ReadUInt32LittleEndian(crc))
            throw new CorruptIndexException(Path, start, $"section '{tag}' checksum mismatch");
        _sectionCrcs = Crc32C.Append(_sectionCrcs, crc);
    }

    /// <summary>Reads the next section, which must carry <paramref name="tag"/>, and verifies its checksum.</summary>
    public byte[] ReadSection(string tag, long maxBytes = long.MaxValue)
    {
        var (start, padded, pad, len) = ReadHead(tag, Math.Min(maxBytes, Array.MaxLength));
        Span<byte> padding = stackalloc byte[pad];
        ReadExact(padding, padded, $"section '{tag}' padding");
        var payload = GC.AllocateUninitializedArray<byte>((int)len);
        ReadExact(payload, padded + pad, $"section '{tag}'");
        CheckCrc(tag, start, padded + pad + len, Crc32C.Append(Crc32C.Append(Crc32C.Seed, padding), payload));
        return payload;
    }

    /// <summary>
    /// Verifies the next section in place (mapped readers only) and returns where its payload lies in the mapping;
    /// the view stays valid as long as the mapping (see <see cref="DetachMapping"/>).
    /// </summary>
    internal MappedSection MapSection(string tag, long expectedBytes)
    {
        var map = _mapping ?? throw new InvalidOperationException("MapSection needs a reader opened with mapped: true.");
        var (start, padded, pad, len) = ReadHead(tag, long.MaxValue);
        if (len != expectedBytes)
            throw new CorruptIndexException(Path, start, $"section '{tag}' holds {len} bytes, expected {expectedBytes}");
        long payload = padded + pad;
        CheckCrc(tag, start, payload + len, Crc32C.Append(Crc32C.Seed, map.Pointer + padded, pad + len));
        return new MappedSection(map.Pointer + payload, len, payload);
    }

    /// <summary>Reads a section as an array of unmanaged values; checks the element count when given.</summary>
    public T[] ReadArray<T>(string tag, long expectedCount = -1) where T : unmanaged
    {
        long offset = _pos;
        var bytes = ReadSection(tag);
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (bytes.Length % size != 0 || (expectedCount >= 0 && bytes.Length / size != expectedCount))
            throw new CorruptIndexException(Path, offset, $"section '{tag}' holds {bytes.Length} bytes, expected {(expectedCount >= 0 ? expectedCount * size : -1)}");
        var result = GC.AllocateUninitializedArray<T>(bytes.Length / size);
        bytes.AsSpan().CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>
    /// Reads a section of <paramref name="expectedCount"/> values into <paramref name="parts"/>, filled whole and in
    /// order (their lengths must add up to the count): arrays beyond one .NET array's 2³¹ − 1 elements, without a
    /// copy of the whole payload. Verifies the checksum like <see cref="ReadSection"/>.
    /// </summary>
    internal void ReadArrayInto<T>(string tag, long expectedCount, IReadOnlyList<T[]> parts) where T : unmanaged
    {
        long size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var (start, padded, pad, len) = ReadHead(tag, long.MaxValue);
        if (len != expectedCount * size)
            throw new CorruptIndexException(Path, start, $"section '{tag}' holds {len} bytes, expected {expectedCount * size}");
        long total = 0;
        foreach (var part in parts) total += part.Length;
        if (total != expectedCount) throw new ArgumentException($"The parts hold {total} values; the section needs {expectedCount}.", nameof(parts));
        Span<byte> padding = stackalloc byte[pad];
        ReadExact(padding, padded, $"section '{tag}' padding");
        uint crc = Crc32C.Append(Crc32C.Seed, padding);
        long at = padded + pad;
        foreach (var part in parts)
        {
            var bytes = MemoryMarshal.AsBytes(part.AsSpan());
            ReadExact(bytes, at, $"section '{tag}'");
            crc = Crc32C.Append(crc, bytes);
            at += bytes.Length;
        }
        CheckCrc(tag, start, at, crc);
    }

    /// <summary>Reads a UTF-8 string section.</summary>
    public string ReadString(string tag) => Encoding.UTF8.GetString(ReadSection(tag, 16 << 20));

    /// <summary>Reads and verifies the trailer; call after the last section. Rejects trailing bytes.</summary>
    public void VerifyEnd()
    {
        long start = _pos;
        Span<byte> end = stackalloc byte[16];
        ReadExact(end, start, "trailer");
        string tag = Encoding.ASCII.GetString(end[..4]);
        if (tag != IndexFile.EndTag) throw new CorruptIndexException(Path, start, $"expected trailer but found section '{Printable(tag)}'");
        if (BinaryPrimitives.ReadUInt64LittleEndian(end[4..]) != 0 ||
            BinaryPrimitives.ReadUInt32LittleEndian(end[12..]) != Crc32C.Finish(_sectionCrcs))
            throw new CorruptIndexException(Path, start, "trailer checksum mismatch");
        if (_pos != _length)
            throw new CorruptIndexException(Path, _pos, "unexpected bytes after the trailer");
    }

    /// <summary>Hands the mapping to the caller, who then owns (and disposes) it; null for a buffered reader.</summary>
    internal IndexFileMapping? DetachMapping()
    {
        var m = _mapping;
        _mapping = null;
        return m;
    }

    private void ReadExact(Span<byte> dst, long offset, string what)
    {
        if (_mapping is { } map)
        {
            if (offset + dst.Length > _length)
                throw new CorruptIndexException(Path, Math.Max(offset, _length), $"file is truncated while reading {what}");
            new ReadOnlySpan<byte>(map.Pointer + offset, dst.Length).CopyTo(dst);
        }
        else
        {
            var s = _stream!;
            if (s.Position != offset) s.Position = offset;
            int total = 0;
            while (total < dst.Length)
            {
                int n = s.Read(dst[total..]);
                if (n == 0) throw new CorruptIndexException(Path, offset + total, $"file is truncated while reading {what}");
                total += n;
            }
        }
        _pos = offset + dst.Length;
    }

    private static string Printable(string s) => new(s.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());

    /// <summary>Closes the file (and the mapping, unless it was detached).</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _mapping?.Dispose();
        _mapping = null;
    }
}

/// <summary>A verified section payload inside a mapping: pointer, byte length and file offset.</summary>
internal readonly unsafe struct MappedSection(byte* pointer, long length, long offset)
{
    public readonly byte* Pointer = pointer;
    public readonly long Length = length;
    public readonly long Offset = offset;

    /// <summary>True when the payload start suits values of <paramref name="alignment"/> bytes.</summary>
    public bool IsAligned(int alignment) => (long)Pointer % alignment == 0;
}

/// <summary>
/// A read-only memory mapping of a whole file (<see cref="MemoryMappedFile"/>), with its base pointer acquired
/// once. Disposing unmaps it; pointers into it must not be used afterwards. The file must not be modified while
/// mapped (replacing it by rename, as <see cref="IndexFileWriter"/> does, is safe: the mapping keeps the old file).
/// </summary>
internal sealed unsafe class IndexFileMapping : IDisposable
{
    private DeviceMapping? _mapping;

    private IndexFileMapping(string path, long length) { Path = path; Length = length; }

    public string Path { get; }
    public long Length { get; }
    public byte* Pointer => _mapping is null ? null : _mapping.Pointer;

    public static IndexFileMapping Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var m = new IndexFileMapping(path, RandomAccess.GetLength(handle));
        if (m.Length == 0) { handle.Dispose(); return m; } // nothing to map; readers report the truncation
        try { m._mapping = new DeviceMapping(handle, m.Length, ownsHandle: true); }
        catch
        {
            handle.Dispose();
            throw;
        }
        return m;
    }

    public void Dispose()
    {
        _mapping?.Dispose();
        _mapping = null;
    }
}
