using System.Buffers.Binary;
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
/// section : tag (4 ascii) | payload length u64 | payload | payload crc32c u32      (repeated)
/// trailer : tag "END\0" | length 0 u64 | crc32c u32 of all section crcs
/// </code>
/// Files are written to a temporary sibling and renamed over the target on <see cref="IndexFileWriter.Commit"/>,
/// so a crash never leaves a partial file under the final name.
/// </remarks>
public static class IndexFile
{
    /// <summary>File magic.</summary>
    public static ReadOnlySpan<byte> Magic => "ENGNIDX\0"u8;

    /// <summary>Current container format version.</summary>
    public const uint FormatVersion = 1;

    internal const string EndTag = "END\0";
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
    private readonly string _tempPath;
    private FileStream? _stream;
    private uint _sectionCrcs = Crc32C.Seed;
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

        var buf = new List<byte>(256);
        buf.AddRange(IndexFile.Magic.ToArray());
        AddU32(buf, IndexFile.FormatVersion);
        AddString(buf, header.Kind);
        AddString(buf, header.Description);
        buf.Add((byte)header.Metric);
        AddU32(buf, (uint)header.Dimension);
        AddU64(buf, (ulong)header.Count);
        var bytes = buf.ToArray();
        _stream.Write(bytes);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32C.Compute(bytes));
        _stream.Write(crc);
    }

    /// <summary>Writes a section of raw bytes under a 4-character tag.</summary>
    public void WriteSection(string tag, ReadOnlySpan<byte> payload)
    {
        var s = _stream ?? throw new ObjectDisposedException(nameof(IndexFileWriter));
        Span<byte> head = stackalloc byte[12];
        WriteTag(head, tag);
        BinaryPrimitives.WriteUInt64LittleEndian(head[4..], (ulong)payload.Length);
        s.Write(head);
        s.Write(payload);
        uint crc = Crc32C.Compute(payload);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(tail, crc);
        s.Write(tail);
        _sectionCrcs = Crc32C.Append(_sectionCrcs, tail);
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
        Span<byte> end = stackalloc byte[16];
        WriteTag(end, IndexFile.EndTag);
        BinaryPrimitives.WriteUInt64LittleEndian(end[4..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(end[12..], Crc32C.Finish(_sectionCrcs));
        s.Write(end);
        s.Flush(flushToDisk: true);
        s.Dispose();
        _stream = null;
        File.Move(_tempPath, _path, overwrite: true);
        _committed = true;
    }

    /// <summary>Closes the writer; without <see cref="Commit"/> the temporary file is deleted and the target untouched.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_committed)
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
public sealed class IndexFileReader : IDisposable
{
    private readonly FileStream _stream;
    private uint _sectionCrcs = Crc32C.Seed;

    /// <summary>The file being read.</summary>
    public string Path { get; }

    /// <summary>The verified header.</summary>
    public IndexFileHeader Header { get; }

    /// <summary>Opens <paramref name="path"/> and verifies the header.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptIndexException">Bad magic, truncated header or header checksum mismatch.</exception>
    /// <exception cref="IndexFormatException">Unsupported format version or unexpected index kind.</exception>
    public IndexFileReader(string path, string? expectedKind = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(Path)) throw new FileNotFoundException($"Index file '{Path}' does not exist.", Path);
        _stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        try
        {
            Header = ReadHeader(expectedKind);
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
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
        if (version != IndexFile.FormatVersion)
            throw new IndexFormatException(Path, $"format version {version} is not supported (this build reads version {IndexFile.FormatVersion}).");
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

    /// <summary>Reads the next section, which must carry <paramref name="tag"/>, and verifies its checksum.</summary>
    public byte[] ReadSection(string tag, long maxBytes = long.MaxValue)
    {
        long start = _stream.Position;
        Span<byte> head = stackalloc byte[12];
        ReadExact(head, start, $"section '{tag}' header");
        string got = Encoding.ASCII.GetString(head[..4]);
        if (got != tag) throw new CorruptIndexException(Path, start, $"expected section '{tag}' but found '{Printable(got)}'");
        ulong len = BinaryPrimitives.ReadUInt64LittleEndian(head[4..]);
        if (len > (ulong)Math.Min(maxBytes, Array.MaxLength) || (long)len > _stream.Length - _stream.Position - 4)
            throw new CorruptIndexException(Path, start + 4, $"section '{tag}' length {len} exceeds the file");
        var payload = GC.AllocateUninitializedArray<byte>((int)len);
        ReadExact(payload, start + 12, $"section '{tag}'");
        Span<byte> crc = stackalloc byte[4];
        ReadExact(crc, start + 12 + (long)len, $"section '{tag}' checksum");
        if (Crc32C.Compute(payload) != BinaryPrimitives.ReadUInt32LittleEndian(crc))
            throw new CorruptIndexException(Path, start, $"section '{tag}' checksum mismatch");
        _sectionCrcs = Crc32C.Append(_sectionCrcs, crc);
        return payload;
    }

    /// <summary>Reads a section as an array of unmanaged values; checks the element count when given.</summary>
    public T[] ReadArray<T>(string tag, long expectedCount = -1) where T : unmanaged
    {
        long offset = _stream.Position;
        var bytes = ReadSection(tag);
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (bytes.Length % size != 0 || (expectedCount >= 0 && bytes.Length / size != expectedCount))
            throw new CorruptIndexException(Path, offset, $"section '{tag}' holds {bytes.Length} bytes, expected {(expectedCount >= 0 ? expectedCount * size : -1)}");
        var result = GC.AllocateUninitializedArray<T>(bytes.Length / size);
        bytes.AsSpan().CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>Reads a UTF-8 string section.</summary>
    public string ReadString(string tag) => Encoding.UTF8.GetString(ReadSection(tag, 16 << 20));

    /// <summary>Reads and verifies the trailer; call after the last section. Rejects trailing bytes.</summary>
    public void VerifyEnd()
    {
        long start = _stream.Position;
        Span<byte> end = stackalloc byte[16];
        ReadExact(end, start, "trailer");
        string tag = Encoding.ASCII.GetString(end[..4]);
        if (tag != IndexFile.EndTag) throw new CorruptIndexException(Path, start, $"expected trailer but found section '{Printable(tag)}'");
        if (BinaryPrimitives.ReadUInt64LittleEndian(end[4..]) != 0 ||
            BinaryPrimitives.ReadUInt32LittleEndian(end[12..]) != Crc32C.Finish(_sectionCrcs))
            throw new CorruptIndexException(Path, start, "trailer checksum mismatch");
        if (_stream.Position != _stream.Length)
            throw new CorruptIndexException(Path, _stream.Position, "unexpected bytes after the trailer");
    }

    private void ReadExact(Span<byte> dst, long offset, string what)
    {
        int total = 0;
        while (total < dst.Length)
        {
            int n = _stream.Read(dst[total..]);
            if (n == 0) throw new CorruptIndexException(Path, offset + total, $"file is truncated while reading {what}");
            total += n;
        }
    }

    private static string Printable(string s) => new(s.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());

    /// <summary>Closes the file.</summary>
    public void Dispose() => _stream.Dispose();
}
