using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Engine.Data;

/// <summary>
/// Reads rows of a vector file (<see cref="VectorFileFormat"/>) without loading the whole file: the header is
/// parsed and checked on <see cref="Open"/>, and <see cref="ReadRows(long, int, Span{float})"/> reads any range of
/// rows with positional I/O, converting the stored element type to <see cref="float"/> or <see cref="int"/>.
/// </summary>
/// <remarks>
/// <para>Every format here has a fixed row stride, so row <c>i</c> starts at <c>DataOffset + i × RowBytes</c>.
/// Open checks that the file length is exactly the header plus whole rows; reading checks the per-row dimension
/// prefix of the *vecs formats. Problems raise <see cref="CorruptIndexException"/> with the file and the byte
/// offset of the bad field; unsupported but well-formed files raise <see cref="DataFormatException"/>.</para>
/// <para>A <c>.gz</c> file (idx) is decompressed into memory on open, since gzip cannot seek; offsets in its
/// errors are offsets in the decompressed data.</para>
/// <para>Thread safety: reads use positional I/O and no shared cursor, so concurrent <c>ReadRows</c> calls are safe.</para>
/// </remarks>
public sealed partial class VectorFileReader : IDisposable
{
    /// <summary>Largest dimension a header may declare; larger values are treated as corruption.</summary>
    public const int MaxDimension = 1 << 24;

    private const int ChunkBytes = 1 << 20;

    private readonly SafeFileHandle? _handle;
    private readonly byte[]? _memory;
    private readonly long _length;
    private readonly bool _bigEndian;

    private VectorFileReader(string path, VectorFileFormat format, SafeFileHandle? handle, byte[]? memory, long length)
    {
        Path = path;
        Format = format;
        _handle = handle;
        _memory = memory;
        _length = length;
        var header = format switch
        {
            VectorFileFormat.Fvecs or VectorFileFormat.Ivecs or VectorFileFormat.Bvecs => ParseVecsHeader(),
            VectorFileFormat.Fbin or VectorFileFormat.Ibin or VectorFileFormat.U8bin => ParseBinHeader(),
            VectorFileFormat.Npy => ParseNpyHeader(),
            VectorFileFormat.Idx => ParseIdxHeader(),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown vector file format."),
        };
        ElementType = header.Element;
        Dimension = header.Dimension;
        Count = header.Count;
        DataOffset = header.DataOffset;
        RowPrefixBytes = format.HasRowPrefix() ? sizeof(int) : 0;
        _bigEndian = header.BigEndian;
        Shape = header.Shape;
        RowBytes = RowPrefixBytes + (long)Dimension * ElementType.SizeOf();
    }

    /// <summary>The file being read.</summary>
    public string Path { get; }

    /// <summary>The file's layout.</summary>
    public VectorFileFormat Format { get; }

    /// <summary>Type of the stored values.</summary>
    public VectorElementType ElementType { get; }

    /// <summary>Number of rows.</summary>
    public long Count { get; }

    /// <summary>Values per row (the product of all axes after the first for npy and idx); 0 for an empty *vecs file.</summary>
    public int Dimension { get; }

    /// <summary>The full shape as stored (rows first). *vecs and bin files report <c>[Count, Dimension]</c>.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Byte offset of the first row.</summary>
    public long DataOffset { get; }

    /// <summary>Bytes per row including the 4-byte dimension prefix of the *vecs formats.</summary>
    public long RowBytes { get; }

    private int RowPrefixBytes { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and validates its header and length.
    /// </summary>
    /// <param name="path">The file; <c>.gz</c> is accepted for idx.</param>
    /// <param name="format">The layout, or <c>null</c> to infer it from the name (<see cref="VectorFileFormats.FromPath"/>).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptIndexException">Truncated file, bad magic, impossible header field.</exception>
    /// <exception cref="DataFormatException">Unsupported element type or layout.</exception>
    public static VectorFileReader Open(string path, VectorFileFormat? format = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Data file '{path}' does not exist.", path);
        var fmt = format ?? VectorFileFormats.FromPath(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            if (fmt != VectorFileFormat.Idx)
                throw new DataFormatException(path, $"gzip-compressed {fmt} files are not supported; decompress it first (only idx may be .gz).");
            byte[] bytes = Decompress(path);
            return new VectorFileReader(path, fmt, null, bytes, bytes.Length);
        }
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            return new VectorFileReader(path, fmt, handle, null, RandomAccess.GetLength(handle));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads <paramref name="rowCount"/> rows starting at <paramref name="firstRow"/> into
    /// <paramref name="destination"/> (rowCount × <see cref="Dimension"/> floats), converting any element type.
    /// </summary>
    /// <exception cref="ArgumentException">Range outside the file or destination too short.</exception>
    /// <exception cref="CorruptIndexException">A row declares another dimension, or the file shrank.</exception>
    public void ReadRows(long firstRow, int rowCount, Span<float> destination)
    {
        ReadRowsCore(firstRow, rowCount, destination);
    }

    /// <summary>
    /// Reads rows of an integer file (ivecs, ibin, npy/idx integer types) into <paramref name="destination"/>
    /// (rowCount × <see cref="Dimension"/> ints).
    /// </summary>
    /// <exception cref="DataFormatException">The file holds floating-point values, or an int64 value does not fit int32.</exception>
    /// <exception cref="ArgumentException">Range outside the file or destination too short.</exception>
    /// <exception cref="CorruptIndexException">A row declares another dimension, or the file shrank.</exception>
    public void ReadRows(long firstRow, int rowCount, Span<int> destination)
    {
        if (!ElementType.IsInteger())
            throw new DataFormatException(Path, $"the file holds {ElementType} values; read it as float, not int.");
        ReadRowsCore(firstRow, rowCount, destination);
    }

    /// <summary>Reads every row as floats.</summary>
    /// <exception cref="DataFormatException">The file is too large for one array.</exception>
    public DenseMatrix<float> ReadAllFloats()
    {
        int rows = CheckedAllRows();
        var data = new float[rows * Dimension];
        ReadRows(0, rows, data);
        return new DenseMatrix<float>(data, rows, Dimension);
    }

    /// <summary>Reads every row of an integer file as ints.</summary>
    /// <exception cref="DataFormatException">The file holds floats or is too large for one array.</exception>
    public DenseMatrix<int> ReadAllInts()
    {
        int rows = CheckedAllRows();
        var data = new int[rows * Dimension];
        ReadRows(0, rows, data);
        return new DenseMatrix<int>(data, rows, Dimension);
    }

    /// <inheritdoc />
    public void Dispose() => _handle?.Dispose();

    private int CheckedAllRows()
    {
        if (Count * Math.Max(1, Dimension) > Array.MaxLength)
            throw new DataFormatException(Path, $"{Count} rows × {Dimension} values do not fit one array; read it in ranges with ReadRows.");
        return (int)Count;
    }

    private void CheckRange(long firstRow, int rowCount, int destinationLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if (firstRow + rowCount > Count)
            throw new ArgumentException($"Rows [{firstRow}, {firstRow + rowCount}) are outside '{Path}', which has {Count} rows.", nameof(firstRow));
        long need = (long)rowCount * Dimension;
        if (destinationLength < need)
            throw new ArgumentException($"destination holds {destinationLength} values but {rowCount} rows × {Dimension} need {need}.", "destination");
    }

    // Reads the range chunk by chunk and converts each chunk into its slice of destination (float or int).
    private void ReadRowsCore<T>(long firstRow, int rowCount, Span<T> destination) where T : unmanaged
    {
        CheckRange(firstRow, rowCount, destination.Length);
        if (rowCount == 0 || Dimension == 0) return;
        int rowsPerChunk = RowsPerChunk(rowCount);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(checked((int)(rowsPerChunk * RowBytes)));
        try
        {
            for (int done = 0; done < rowCount; done += rowsPerChunk)
            {
                int rows = Math.Min(rowsPerChunk, rowCount - done);
                var chunk = ReadChunk(firstRow + done, rows, buffer);
                for (int r = 0; r < rows; r++)
                {
                    var src = chunk.Slice((int)(r * RowBytes) + RowPrefixBytes, (int)(RowBytes - RowPrefixBytes));
                    var dst = destination.Slice((done + r) * Dimension, Dimension);
                    if (typeof(T) == typeof(float)) ConvertRow(src, MemoryMarshal.Cast<T, float>(dst));
                    else ConvertRow(src, MemoryMarshal.Cast<T, int>(dst), firstRow + done + r);
                }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    // Chunks of about 1 MiB: large enough for sequential bandwidth, small enough to stay in a pooled buffer.
    private int RowsPerChunk(int rowCount) => (int)Math.Clamp(ChunkBytes / RowBytes, 1, rowCount);

    // Reads rows [row, row + rows) into buffer and checks the *vecs dimension prefixes.
    private ReadOnlySpan<byte> ReadChunk(long row, int rows, byte[] buffer)
    {
        long offset = DataOffset + row * RowBytes;
        var span = buffer.AsSpan(0, (int)(rows * RowBytes));
        ReadAt(offset, span);
        if (RowPrefixBytes != 0) CheckPrefixes(span, rows, row, offset);
        return span;
    }

    private void CheckPrefixes(ReadOnlySpan<byte> span, int rows, long firstRow, long offset)
    {
        for (int r = 0; r < rows; r++)
        {
            int d = BinaryPrimitives.ReadInt32LittleEndian(span.Slice((int)(r * RowBytes), 4));
            if (d != Dimension)
                throw new CorruptIndexException(Path, offset + r * RowBytes,
                    $"row {firstRow + r} declares dimension {d} but row 0 declares {Dimension}; every row of a {Format} file must have the same dimension.");
        }
    }

    private void ConvertRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (ElementType)
        {
            case VectorElementType.Float32 when !_bigEndian:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case VectorElementType.Float16 when !_bigEndian:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst);
                break;
            case VectorElementType.UInt8:
                for (int j = 0; j < dst.Length; j++) dst[j] = src[j];
                break;
            default:
                for (int j = 0; j < dst.Length; j++) dst[j] = ReadFloat(src, j);
                break;
        }
    }

    private void ConvertRow(ReadOnlySpan<byte> src, Span<int> dst, long row)
    {
        switch (ElementType)
        {
            case VectorElementType.Int32 when !_bigEndian:
                MemoryMarshal.Cast<byte, int>(src).CopyTo(dst);
                break;
            case VectorElementType.UInt8:
                for (int j = 0; j < dst.Length; j++) dst[j] = src[j];
                break;
            default:
                for (int j = 0; j < dst.Length; j++)
                {
                    long v = ReadInteger(src, j);
                    if (v is < int.MinValue or > int.MaxValue)
                        throw new DataFormatException(Path, $"value {v} at row {row}, column {j} does not fit a 32-bit int.");
                    dst[j] = (int)v;
                }
                break;
        }
    }

    // Element j of a row in any type and byte order, as float (the slow, general path).
    private float ReadFloat(ReadOnlySpan<byte> row, int j) => ElementType switch
    {
        VectorElementType.Float32 => _bigEndian ? BinaryPrimitives.ReadSingleBigEndian(row[(j * 4)..]) : BinaryPrimitives.ReadSingleLittleEndian(row[(j * 4)..]),
        VectorElementType.Float64 => (float)(_bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(row[(j * 8)..]) : BinaryPrimitives.ReadDoubleLittleEndian(row[(j * 8)..])),
        VectorElementType.Float16 => (float)(_bigEndian ? BinaryPrimitives.ReadHalfBigEndian(row[(j * 2)..]) : BinaryPrimitives.ReadHalfLittleEndian(row[(j * 2)..])),
        _ => ReadInteger(row, j),
    };

    private long ReadInteger(ReadOnlySpan<byte> row, int j) => ElementType switch
    {
        VectorElementType.UInt8 => row[j],
        VectorElementType.Int8 => (sbyte)row[j],
        VectorElementType.Int16 => _bigEndian ? BinaryPrimitives.ReadInt16BigEndian(row[(j * 2)..]) : BinaryPrimitives.ReadInt16LittleEndian(row[(j * 2)..]),
        VectorElementType.Int32 => _bigEndian ? BinaryPrimitives.ReadInt32BigEndian(row[(j * 4)..]) : BinaryPrimitives.ReadInt32LittleEndian(row[(j * 4)..]),
        VectorElementType.Int64 => _bigEndian ? BinaryPrimitives.ReadInt64BigEndian(row[(j * 8)..]) : BinaryPrimitives.ReadInt64LittleEndian(row[(j * 8)..]),
        _ => throw new DataFormatException(Path, $"{ElementType} values are not integers."),
    };

    /// <summary>Fills <paramref name="destination"/> from <paramref name="offset"/>; a short read means the file is truncated.</summary>
    private void ReadAt(long offset, Span<byte> destination)
    {
        if (_memory is not null)
        {
            long available = Math.Max(0, _memory.Length - offset);
            if (available < destination.Length)
                throw Truncated(offset + available, offset, destination.Length);
            _memory.AsSpan((int)offset, destination.Length).CopyTo(destination);
            return;
        }
        int read = 0;
        while (read < destination.Length)
        {
            int n = RandomAccess.Read(_handle!, destination[read..], offset + read);
            if (n == 0) throw Truncated(offset + read, offset, destination.Length);
            read += n;
        }
    }

    private CorruptIndexException Truncated(long at, long wantedOffset, int wanted) =>
        new(Path, at, $"unexpected end of file: needed {wanted} bytes at offset {wantedOffset} but the file ends at {at}{GzNote}.");

    private string GzNote => _memory is not null ? " (offsets are in the decompressed data)" : "";

    private static byte[] Decompress(string path)
    {
        using var file = File.OpenRead(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var ms = new MemoryStream();
        try
        {
            gz.CopyTo(ms);
        }
        catch (InvalidDataException ex)
        {
            throw new CorruptIndexException(path, file.CanSeek ? Math.Min(file.Position, file.Length) : 0, $"not a valid gzip stream: {ex.Message}", ex);
        }
        return ms.ToArray();
    }
}
