using System.Buffers.Binary;
using System.Text;

namespace Engine.Data;

public sealed partial class VectorFileReader
{
    private readonly record struct HeaderInfo(VectorElementType Element, int Dimension, long Count, long DataOffset, bool BigEndian, long[] Shape);

    // *vecs: the first row's prefix fixes the dimension; the length must be whole rows.
    private HeaderInfo ParseVecsHeader()
    {
        var element = Format.FixedElementType()!.Value;
        if (_length == 0) return new HeaderInfo(element, 0, 0, 0, false, [0, 0]);
        Span<byte> head = stackalloc byte[4];
        ReadAt(0, head);
        int d = BinaryPrimitives.ReadInt32LittleEndian(head);
        CheckDimension(d, 0, "row 0 declares");
        long rowBytes = 4 + (long)d * element.SizeOf();
        if (_length % rowBytes != 0)
            throw new CorruptIndexException(Path, _length / rowBytes * rowBytes,
                $"file length {_length} is not a whole number of {rowBytes}-byte rows (dimension {d}): the last row is truncated or a row has another dimension.");
        long count = _length / rowBytes;
        return new HeaderInfo(element, d, count, 0, false, [count, d]);
    }

    // big-ann bin: u32 n, u32 d, then exactly n × d values.
    private HeaderInfo ParseBinHeader()
    {
        var element = Format.FixedElementType()!.Value;
        Span<byte> head = stackalloc byte[8];
        ReadAt(0, head);
        long n = BinaryPrimitives.ReadUInt32LittleEndian(head);
        long d = BinaryPrimitives.ReadUInt32LittleEndian(head[4..]);
        if (n > 0 || d > 0) CheckDimension(d, 4, "the header declares");
        CheckPayloadLength(8, n, d * element.SizeOf(), $"{n} rows × {d} {element} values");
        return new HeaderInfo(element, (int)d, n, 8, false, [n, d]);
    }

    // idx: two zero bytes, a type code, the axis count, then big-endian u32 sizes and big-endian values.
    private HeaderInfo ParseIdxHeader()
    {
        Span<byte> magic = stackalloc byte[4];
        ReadAt(0, magic);
        if (magic[0] != 0 || magic[1] != 0)
            throw new CorruptIndexException(Path, 0, $"bad idx magic 0x{magic[0]:X2}{magic[1]:X2}{magic[2]:X2}{magic[3]:X2}: the first two bytes must be zero{GzNote}.");
        VectorElementType element = magic[2] switch
        {
            0x08 => VectorElementType.UInt8,
            0x09 => VectorElementType.Int8,
            0x0B => VectorElementType.Int16,
            0x0C => VectorElementType.Int32,
            0x0D => VectorElementType.Float32,
            0x0E => VectorElementType.Float64,
            _ => throw new CorruptIndexException(Path, 2, $"bad idx type code 0x{magic[2]:X2}: expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E{GzNote}."),
        };
        int axes = magic[3];
        if (axes == 0) throw new CorruptIndexException(Path, 3, "idx header declares zero axes.");
        Span<byte> sizes = stackalloc byte[4 * axes];
        ReadAt(4, sizes);
        var shape = new long[axes];
        for (int i = 0; i < axes; i++) shape[i] = BinaryPrimitives.ReadUInt32BigEndian(sizes[(4 * i)..]);
        long d = RowSize(shape, 8);
        long dataOffset = 4 + 4L * axes;
        CheckPayloadLength(dataOffset, shape[0], d * element.SizeOf(), $"shape ({string.Join(", ", shape)}) of {element}");
        return new HeaderInfo(element, (int)d, shape[0], dataOffset, true, shape);
    }

    // npy: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/v3), a Python dict literal.
    private HeaderInfo ParseNpyHeader()
    {
        Span<byte> pre = stackalloc byte[12];
        int preLen = (int)Math.Min(12, _length);
        ReadAt(0, pre[..Math.Max(preLen, 8)]);
        if (!pre[..6].SequenceEqual(NpyMagic))
            throw new CorruptIndexException(Path, 0, "bad npy magic: the file does not start with \\x93NUMPY.");
        byte major = pre[6];
        int lenBytes = major switch
        {
            1 => 2,
            2 or 3 => 4,
            _ => throw new DataFormatException(Path, $"npy format version {major}.{pre[7]} is not supported (expected 1.0, 2.0 or 3.0)."),
        };
        if (preLen < 8 + lenBytes) ReadAt(0, pre[..(8 + lenBytes)]); // raises the truncation error
        long headerLen = lenBytes == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
        long dataOffset = 8 + lenBytes + headerLen;
        if (headerLen > 1 << 20) throw new CorruptIndexException(Path, 8, $"npy header length {headerLen} is implausibly large.");
        var headerBytes = new byte[headerLen];
        ReadAt(8 + lenBytes, headerBytes);
        string text = major == 3 ? Encoding.UTF8.GetString(headerBytes) : Encoding.Latin1.GetString(headerBytes);
        NpyHeader header;
        try
        {
            header = NpyHeader.Parse(text);
        }
        catch (FormatException ex)
        {
            throw new CorruptIndexException(Path, 8 + lenBytes, $"bad npy header '{text.Trim()}': {ex.Message}", ex);
        }
        if (header.FortranOrder)
            throw new DataFormatException(Path, "the array is stored in Fortran (column-major) order; save it in C order (numpy.ascontiguousarray) first.");
        var element = NpyElementType(header.Descr);
        var shape = header.Shape;
        long n, d;
        if (shape.Length == 0) { n = 1; d = 1; shape = [1]; }
        else { n = shape[0]; d = RowSize(shape, 8 + lenBytes); }
        CheckPayloadLength(dataOffset, n, d * element.SizeOf(), $"shape ({string.Join(", ", shape)}) of {header.Descr}");
        return new HeaderInfo(element, (int)d, n, dataOffset, false, shape);
    }

    private static ReadOnlySpan<byte> NpyMagic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private VectorElementType NpyElementType(string descr)
    {
        if (descr.Length < 2)
            throw new DataFormatException(Path, $"npy dtype '{descr}' is not supported.");
        char order = descr[0];
        string code = descr[1..];
        bool oneByte = code is "u1" or "i1" or "b1";
        bool little = order == '<' || (order == '=' && BitConverter.IsLittleEndian) || (order == '|' && oneByte) || (oneByte && order == '>');
        if (!little)
            throw new DataFormatException(Path, $"npy dtype '{descr}' is big-endian or has no byte order; only little-endian arrays are supported (use array.astype('<{code}')).");
        return code switch
        {
            "f4" => VectorElementType.Float32,
            "f2" => VectorElementType.Float16,
            "f8" => VectorElementType.Float64,
            "u1" or "b1" => VectorElementType.UInt8,
            "i1" => VectorElementType.Int8,
            "i2" => VectorElementType.Int16,
            "i4" => VectorElementType.Int32,
            "i8" => VectorElementType.Int64,
            _ => throw new DataFormatException(Path, $"npy dtype '{descr}' is not supported: expected one of f4, f2, f8, u1, i1, i2, i4, i8 (little-endian)."),
        };
    }

    // Product of every axis after the first: the values per row.
    private long RowSize(long[] shape, long offset)
    {
        long d = 1;
        for (int i = 1; i < shape.Length; i++)
        {
            if (shape[i] <= 0 && shape[0] > 0)
                throw new CorruptIndexException(Path, offset, $"axis {i} has size {shape[i]}; every axis after the first must be positive.");
            d = shape[i] == 0 ? 0 : d * shape[i];
            if (d > MaxDimension)
                throw new CorruptIndexException(Path, offset, $"rows of {d} values exceed the maximum dimension {MaxDimension}.");
        }
        return d;
    }

    private void CheckDimension(long d, long offset, string what)
    {
        if (d <= 0 || d > MaxDimension)
            throw new CorruptIndexException(Path, offset, $"{what} dimension {d}; expected 1..{MaxDimension}.");
    }

    // The payload must be exactly rows × rowBytes after the header: shorter is truncation, longer is corruption.
    private void CheckPayloadLength(long dataOffset, long rows, long rowBytes, string what)
    {
        long expected;
        try { expected = checked(dataOffset + rows * rowBytes); }
        catch (OverflowException) { throw new CorruptIndexException(Path, 0, $"header declares {what}, an impossible size."); }
        if (_length < expected)
        {
            long wholeRows = rowBytes == 0 ? 0 : Math.Max(0, _length - dataOffset) / rowBytes;
            throw new CorruptIndexException(Path, Math.Min(_length, dataOffset + wholeRows * rowBytes),
                $"truncated: the header declares {what} ({expected} bytes in all) but the file has {_length} bytes{GzNote}.");
        }
        if (_length > expected)
            throw new CorruptIndexException(Path, expected,
                $"{_length - expected} unexpected bytes after the {what} the header declares{GzNote}.");
    }
}
