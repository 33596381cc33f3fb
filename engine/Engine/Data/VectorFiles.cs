namespace Engine.Data;

/// <summary>One-call helpers over <see cref="VectorFileReader"/> and <see cref="VectorFileWriter"/>.</summary>
public static class VectorFiles
{
    /// <summary>Reads a whole file as floats (any element type is converted).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptIndexException">Truncated file, bad magic, inconsistent row dimension.</exception>
    /// <exception cref="DataFormatException">Unsupported element type or layout.</exception>
    public static DenseMatrix<float> ReadFloats(string path, VectorFileFormat? format = null)
    {
        using var reader = VectorFileReader.Open(path, format);
        return reader.ReadAllFloats();
    }

    /// <summary>Reads a whole integer file (ivecs, ibin, integer npy / idx) as ints.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptIndexException">Truncated file, bad magic, inconsistent row dimension.</exception>
    /// <exception cref="DataFormatException">The file holds floats or an unsupported type.</exception>
    public static DenseMatrix<int> ReadInts(string path, VectorFileFormat? format = null)
    {
        using var reader = VectorFileReader.Open(path, format);
        return reader.ReadAllInts();
    }

    /// <summary>Reads rows [<paramref name="firstRow"/>, firstRow + rowCount) as floats without loading the rest.</summary>
    /// <exception cref="ArgumentException">The range is outside the file.</exception>
    public static DenseMatrix<float> ReadFloatRows(string path, long firstRow, int rowCount, VectorFileFormat? format = null)
    {
        using var reader = VectorFileReader.Open(path, format);
        var data = new float[checked(rowCount * reader.Dimension)];
        reader.ReadRows(firstRow, rowCount, data);
        return new DenseMatrix<float>(data, rowCount, reader.Dimension);
    }

    /// <summary>Writes row-major float rows (fvecs, fbin, npy, idx); the format comes from the name unless given.</summary>
    public static void Write(string path, ReadOnlySpan<float> rows, int dimension, VectorFileFormat? format = null,
        VectorElementType? elementType = null, int[]? rowShape = null)
    {
        using var writer = VectorFileWriter.Create(path, dimension, format, elementType, rowShape);
        writer.WriteRows(rows);
        writer.Complete();
    }

    /// <summary>Writes row-major int rows (ivecs, ibin, npy, idx).</summary>
    public static void Write(string path, ReadOnlySpan<int> rows, int dimension, VectorFileFormat? format = null,
        VectorElementType? elementType = null, int[]? rowShape = null)
    {
        using var writer = VectorFileWriter.Create(path, dimension, format, elementType ?? VectorElementType.Int32, rowShape);
        writer.WriteRows(rows);
        writer.Complete();
    }

    /// <summary>Writes row-major byte rows (bvecs, u8bin, npy, idx).</summary>
    public static void Write(string path, ReadOnlySpan<byte> rows, int dimension, VectorFileFormat? format = null,
        int[]? rowShape = null)
    {
        using var writer = VectorFileWriter.Create(path, dimension, format, VectorElementType.UInt8, rowShape);
        writer.WriteRows(rows);
        writer.Complete();
    }
}
