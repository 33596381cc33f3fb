using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;

namespace Engine.Data;

/// <summary>
/// Writes a vector file row block by row block, so a large data set never has to sit in memory twice.
/// </summary>
/// <remarks>
/// <para>Rows go to a temporary sibling file; <see cref="Complete"/> patches the row count into the header
/// (bin, npy, idx), compresses (<c>.gz</c> idx) and renames the file into place, so a failed or abandoned write
/// never leaves a partial file under the final name. Disposing without <c>Complete</c> deletes the temporary file.</para>
/// <para>Values are written as the file's element type; <c>WriteRows</c> overloads accept the source type that
/// converts without loss of meaning: floats for float files (float16/float64 npy included), ints for int32/int64
/// files, bytes for uint8 files. Not thread-safe.</para>
/// </remarks>
public sealed class VectorFileWriter : IDisposable
{
    private const int NpyHeaderBytes = 256; // magic..padding; large enough for any shape, a multiple of 64

    private readonly string _tempPath;
    private readonly long[] _rowShape;
    private FileStream? _stream;
    private bool _completed;

    private VectorFileWriter(string path, VectorFileFormat format, VectorElementType element, int dimension, long[] rowShape)
    {
        Path = System.IO.Path.GetFullPath(path);
        Format = format;
        ElementType = element;
        Dimension = dimension;
        _rowShape = rowShape;
        string? dir = System.IO.Path.GetDirectoryName(Path);
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"Cannot write '{Path}': directory '{dir}' does not exist.");
        _tempPath = Path + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        _stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20);
        _stream.Write(new byte[HeaderLength]); // placeholder; patched on Complete
    }

    /// <summary>The final path.</summary>
    public string Path { get; }

    /// <summary>The layout being written.</summary>
    public VectorFileFormat Format { get; }

    /// <summary>The stored element type.</summary>
    public VectorElementType ElementType { get; }

    /// <summary>Values per row.</summary>
    public int Dimension { get; }

    /// <summary>Rows written so far.</summary>
    public long RowsWritten { get; private set; }

    private int HeaderLength => Format switch
    {
        VectorFileFormat.Npy => NpyHeaderBytes,
        VectorFileFormat.Idx => 4 + 4 * (1 + _rowShape.Length),
        _ when Format.IsBin() => 8,
        _ => 0,
    };

    /// <summary>
    /// Starts writing <paramref name="path"/>.
    /// </summary>
    /// <param name="path">Target file; its directory must exist. A <c>.gz</c> name is allowed for idx.</param>
    /// <param name="dimension">Values per row (≥ 1).</param>
    /// <param name="format">Layout, or <c>null</c> to infer it from the name.</param>
    /// <param name="elementType">Stored type for npy and idx (default float32); must match the fixed type of the other formats.</param>
    /// <param name="rowShape">For npy and idx, the axes after the first (product = dimension), e.g. <c>[28, 28]</c>;
    /// an empty array writes a one-axis file (dimension must be 1). Default: <c>[dimension]</c>.</param>
    /// <exception cref="ArgumentException">Bad dimension, shape or element type for the format.</exception>
    public static VectorFileWriter Create(string path, int dimension, VectorFileFormat? format = null,
        VectorElementType? elementType = null, int[]? rowShape = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(dimension, VectorFileReader.MaxDimension);
        var fmt = format ?? VectorFileFormats.FromPath(path);
        var fixedType = fmt.FixedElementType();
        var element = elementType ?? fixedType ?? VectorElementType.Float32;
        if (fixedType is not null && element != fixedType)
            throw new ArgumentException($"{fmt} files store {fixedType} values, not {element}.", nameof(elementType));
        if (element is VectorElementType.Int16 or VectorElementType.Int8)
            throw new ArgumentException($"Writing {element} files is not supported.", nameof(elementType));
        if (fmt == VectorFileFormat.Idx && element is VectorElementType.Float16 or VectorElementType.Int64)
            throw new ArgumentException($"The idx format has no {element} type.", nameof(elementType));
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) && fmt != VectorFileFormat.Idx)
            throw new ArgumentException($"Only idx files may be written gzip-compressed, not {fmt}.", nameof(path));
        long[] shape = rowShape is null ? [dimension] : Array.ConvertAll(rowShape, x => (long)x);
        if (rowShape is not null)
        {
            if (!(fmt is VectorFileFormat.Npy or VectorFileFormat.Idx))
                throw new ArgumentException("rowShape applies to npy and idx files only.", nameof(rowShape));
            long product = 1;
            foreach (long s in shape) product *= s;
            if (product != dimension || Array.Exists(shape, s => s <= 0))
                throw new ArgumentException($"rowShape ({string.Join(", ", shape)}) does not multiply to dimension {dimension}.", nameof(rowShape));
        }
        return new VectorFileWriter(path, fmt, element, dimension, shape);
    }

    /// <summary>Appends rows of floats (a multiple of <see cref="Dimension"/> values) to a floating-point file.</summary>
    /// <exception cref="InvalidOperationException">The file stores integers.</exception>
    public void WriteRows(ReadOnlySpan<float> rows)
    {
        int n = CheckRows(rows.Length, ElementType is VectorElementType.Float32 or VectorElementType.Float16 or VectorElementType.Float64, "float");
        switch (ElementType)
        {
            case VectorElementType.Float32 when Format != VectorFileFormat.Idx:
                WriteEach(rows, n, sizeof(float), (src, dst) => MemoryMarshal.AsBytes(src).CopyTo(dst));
                break;
            case VectorElementType.Float16:
                WriteEach(rows, n, 2, (src, dst) => TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst)));
                break;
            case VectorElementType.Float64:
                bool big = Format == VectorFileFormat.Idx;
                WriteEach(rows, n, 8, (src, dst) =>
                {
                    for (int j = 0; j < src.Length; j++)
                    {
                        if (big) BinaryPrimitives.WriteDoubleBigEndian(dst[(8 * j)..], src[j]);
                        else BinaryPrimitives.WriteDoubleLittleEndian(dst[(8 * j)..], src[j]);
                    }
                });
                break;
            default: // big-endian float32 (idx)
                WriteEach(rows, n, 4, (src, dst) =>
                {
                    for (int j = 0; j < src.Length; j++) BinaryPrimitives.WriteSingleBigEndian(dst[(4 * j)..], src[j]);
                });
                break;
        }
    }

    /// <summary>Appends rows of ints to an int32 or int64 file.</summary>
    /// <exception cref="InvalidOperationException">The file does not store int32 or int64.</exception>
    public void WriteRows(ReadOnlySpan<int> rows)
    {
        int n = CheckRows(rows.Length, ElementType is VectorElementType.Int32 or VectorElementType.Int64, "int");
        bool big = Format == VectorFileFormat.Idx;
        if (ElementType == VectorElementType.Int32 && !big)
        {
            WriteEach(rows, n, 4, (src, dst) => MemoryMarshal.AsBytes(src).CopyTo(dst));
            return;
        }
        int size = ElementType.SizeOf();
        WriteEach(rows, n, size, (src, dst) =>
        {
            for (int j = 0; j < src.Length; j++)
            {
                if (size == 8) BinaryPrimitives.WriteInt64LittleEndian(dst[(8 * j)..], src[j]);
                else BinaryPrimitives.WriteInt32BigEndian(dst[(4 * j)..], src[j]);
            }
        });
    }

    /// <summary>Appends rows of bytes to a uint8 file.</summary>
    /// <exception cref="InvalidOperationException">The file does not store uint8.</exception>
    public void WriteRows(ReadOnlySpan<byte> rows)
    {
        int n = CheckRows(rows.Length, ElementType == VectorElementType.UInt8, "byte");
        WriteEach(rows, n, 1, (src, dst) => src.CopyTo(dst));
    }

    /// <summary>Writes the header, flushes and renames the file into place.</summary>
    public void Complete()
    {
        var s = _stream ?? throw new ObjectDisposedException(nameof(VectorFileWriter));
        s.Position = 0;
        s.Write(BuildHeader());
        s.Flush(flushToDisk: true);
        if (Path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            string gzTemp = _tempPath + ".gz";
            try
            {
                s.Position = 0;
                using (var outFile = new FileStream(gzTemp, FileMode.CreateNew, FileAccess.Write))
                using (var gz = new GZipStream(outFile, CompressionLevel.Optimal))
                    s.CopyTo(gz);
                s.Dispose();
                _stream = null;
                File.Delete(_tempPath);
                File.Move(gzTemp, Path, overwrite: true);
            }
            finally { File.Delete(gzTemp); }
        }
        else
        {
            s.Dispose();
            _stream = null;
            File.Move(_tempPath, Path, overwrite: true);
        }
        _completed = true;
    }

    /// <summary>Closes the writer; without <see cref="Complete"/> the temporary file is deleted and the target untouched.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
        if (!_completed)
        {
            try { File.Delete(_tempPath); } catch (IOException) { }
        }
    }

    private int CheckRows(int length, bool typeMatches, string source)
    {
        if (_stream is null) throw new ObjectDisposedException(nameof(VectorFileWriter));
        if (!typeMatches)
            throw new InvalidOperationException($"'{Path}' stores {ElementType} values; {source} rows cannot be written to it.");
        if (length % Dimension != 0)
            throw new ArgumentException($"Dimension mismatch: {length} values are not whole rows of dimension {Dimension}.", "rows");
        return length / Dimension;
    }

    private delegate void RowEncoder<T>(ReadOnlySpan<T> source, Span<byte> destination);

    // Encodes rows into a pooled buffer (with the *vecs prefix) and streams it out in ~1 MiB blocks.
    private void WriteEach<T>(ReadOnlySpan<T> rows, int n, int elementSize, RowEncoder<T> encode) where T : unmanaged
    {
        int prefix = Format.HasRowPrefix() ? 4 : 0;
        int rowBytes = prefix + Dimension * elementSize;
        int perChunk = Math.Max(1, (1 << 20) / rowBytes);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Min(n, perChunk) * rowBytes + 1);
        try
        {
            for (int done = 0; done < n; done += perChunk)
            {
                int count = Math.Min(perChunk, n - done);
                for (int r = 0; r < count; r++)
                {
                    var dst = buffer.AsSpan(r * rowBytes, rowBytes);
                    if (prefix != 0) BinaryPrimitives.WriteInt32LittleEndian(dst, Dimension);
                    encode(rows.Slice((done + r) * Dimension, Dimension), dst[prefix..]);
                }
                _stream!.Write(buffer, 0, count * rowBytes);
            }
            RowsWritten += n;
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private byte[] BuildHeader()
    {
        switch (Format)
        {
            case VectorFileFormat.Npy:
            {
                long[] shape = [RowsWritten, .. _rowShape];
                string descr = ElementType switch
                {
                    VectorElementType.Float32 => "<f4",
                    VectorElementType.Float16 => "<f2",
                    VectorElementType.Float64 => "<f8",
                    VectorElementType.Int32 => "<i4",
                    VectorElementType.Int64 => "<i8",
                    _ => "|u1",
                };
                string dict = new NpyHeader(descr, false, shape).ToString();
                int textLen = NpyHeaderBytes - 10;
                var header = new byte[NpyHeaderBytes];
                header[0] = 0x93;
                "NUMPY"u8.CopyTo(header.AsSpan(1));
                header[6] = 1;
                BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)textLen);
                string padded = dict.PadRight(textLen - 1) + "\n";
                Encoding.Latin1.GetBytes(padded, header.AsSpan(10));
                return header;
            }
            case VectorFileFormat.Idx:
            {
                var header = new byte[HeaderLength];
                header[2] = ElementType switch
                {
                    VectorElementType.UInt8 => 0x08,
                    VectorElementType.Int32 => 0x0C,
                    VectorElementType.Float32 => 0x0D,
                    _ => 0x0E,
                };
                header[3] = (byte)(1 + _rowShape.Length);
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), checked((uint)RowsWritten));
                for (int i = 0; i < _rowShape.Length; i++)
                    BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8 + 4 * i), (uint)_rowShape[i]);
                return header;
            }
            case VectorFileFormat.Fbin or VectorFileFormat.Ibin or VectorFileFormat.U8bin:
            {
                var header = new byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(header, checked((uint)RowsWritten));
                BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), (uint)Dimension);
                return header;
            }
            default:
                return [];
        }
    }
}
