using System.Buffers.Binary;
using Engine.Storage.Format;

namespace Engine.Mining.Output;

/// <summary>
/// Compact binary form of mined rows in the engine's checksummed container (<see cref="IndexFile"/>), kind
/// <c>mined-negatives</c>. Rows are written in <c>ROWS</c> sections of up to <see cref="RowsPerSection"/> rows;
/// an empty <c>ROWS</c> section ends the rows, followed by a <c>REPT</c> section with the report JSON.
/// </summary>
/// <remarks>
/// Section payload (little-endian): row count i32, then per row: anchor i64 | positives i32 | negatives i32 |
/// positive ids i64[] | positive scores f32[] | negative ids i64[] | negative scores f32[].
/// </remarks>
public sealed class BinaryMiningWriter : IMiningSink
{
    /// <summary>The container kind.</summary>
    public const string FileKind = "mined-negatives";

    /// <summary>Rows buffered per section (bounds memory).</summary>
    public const int RowsPerSection = 4096;

    private readonly IndexFileWriter _writer;
    private readonly MemoryStream _buffer = new();
    private int _rows;
    private bool _completed;

    /// <summary>Opens a temporary file beside <paramref name="path"/>; the header records the index it came from.</summary>
    public BinaryMiningWriter(string path, IVectorIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        _writer = new IndexFileWriter(path, new IndexFileHeader(FileKind, index.Description, index.Metric, index.Dimension, 0, IndexFile.FormatVersion));
        _buffer.Write(new byte[4]);
    }

    /// <inheritdoc />
    public void Write(MinedRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        if (_completed) throw new InvalidOperationException("The writer is completed.");
        Span<byte> b = stackalloc byte[16];
        BinaryPrimitives.WriteInt64LittleEndian(b, row.Anchor);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], row.Positives.Length);
        BinaryPrimitives.WriteInt32LittleEndian(b[12..], row.Negatives.Length);
        _buffer.Write(b);
        foreach (long v in row.Positives) { BinaryPrimitives.WriteInt64LittleEndian(b, v); _buffer.Write(b[..8]); }
        foreach (float v in row.PositiveScores) { BinaryPrimitives.WriteSingleLittleEndian(b, v); _buffer.Write(b[..4]); }
        foreach (long v in row.Negatives) { BinaryPrimitives.WriteInt64LittleEndian(b, v); _buffer.Write(b[..8]); }
        foreach (float v in row.Scores) { BinaryPrimitives.WriteSingleLittleEndian(b, v); _buffer.Write(b[..4]); }
        if (++_rows == RowsPerSection) FlushSection();
    }

    private void FlushSection()
    {
        var bytes = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes, _rows);
        _writer.WriteSection("ROWS", bytes);
        _buffer.SetLength(0);
        _buffer.Write(new byte[4]);
        _rows = 0;
    }

    /// <inheritdoc />
    public void Complete(MiningReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (_completed) throw new InvalidOperationException("The writer is already completed.");
        if (_rows > 0) FlushSection();
        FlushSection(); // the empty terminating section
        _writer.WriteString("REPT", report.ToJson(indented: false));
        _writer.Commit();
        _completed = true;
    }

    /// <inheritdoc />
    public void Dispose() => _writer.Dispose();

    /// <summary>Reads every row of a binary mining file, verifying checksums; the report JSON comes out last.</summary>
    /// <exception cref="CorruptIndexException">Bad checksum, truncation or impossible counts.</exception>
    /// <exception cref="IndexFormatException">The file is not a mined-negatives file.</exception>
    public static IEnumerable<MinedRow> Read(string path, Action<string>? reportJson = null)
    {
        using var r = new IndexFileReader(path, FileKind);
        while (true)
        {
            byte[] p = r.ReadSection("ROWS");
            if (p.Length < 4) throw new CorruptIndexException(r.Path, 0, "ROWS section shorter than its row count");
            int rows = BinaryPrimitives.ReadInt32LittleEndian(p);
            if (rows == 0) break;
            int off = 4;
            for (int i = 0; i < rows; i++)
            {
                Need(r.Path, p, off, 16);
                long anchor = BinaryPrimitives.ReadInt64LittleEndian(p.AsSpan(off));
                int np = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(off + 8));
                int nn = BinaryPrimitives.ReadInt32LittleEndian(p.AsSpan(off + 12));
                off += 16;
                if (np < 0 || nn < 0) throw new CorruptIndexException(r.Path, 0, $"row {i} has negative counts");
                Need(r.Path, p, off, 12L * np + 12L * nn);
                var pos = new long[np]; var ps = new float[np]; var neg = new long[nn]; var ns = new float[nn];
                for (int j = 0; j < np; j++, off += 8) pos[j] = BinaryPrimitives.ReadInt64LittleEndian(p.AsSpan(off));
                for (int j = 0; j < np; j++, off += 4) ps[j] = BinaryPrimitives.ReadSingleLittleEndian(p.AsSpan(off));
                for (int j = 0; j < nn; j++, off += 8) neg[j] = BinaryPrimitives.ReadInt64LittleEndian(p.AsSpan(off));
                for (int j = 0; j < nn; j++, off += 4) ns[j] = BinaryPrimitives.ReadSingleLittleEndian(p.AsSpan(off));
                yield return new MinedRow(anchor, pos, ps, neg, ns);
            }
            if (off != p.Length) throw new CorruptIndexException(r.Path, 0, "ROWS section has trailing bytes");
        }
        string report = r.ReadString("REPT");
        r.VerifyEnd();
        reportJson?.Invoke(report);
    }

    private static void Need(string path, byte[] p, int off, long bytes)
    {
        if (off + bytes > p.Length) throw new CorruptIndexException(path, 0, "ROWS section is shorter than its rows");
    }
}
