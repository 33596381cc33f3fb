namespace Engine.Data;

/// <summary>On-disk layouts of vector files the engine reads and writes.</summary>
/// <remarks>
/// <list type="bullet">
/// <item><see cref="Fvecs"/>, <see cref="Ivecs"/>, <see cref="Bvecs"/> (TEXMEX): every row is an int32 dimension
/// followed by that many float32 / int32 / uint8 values, little-endian.</item>
/// <item><see cref="Fbin"/>, <see cref="Ibin"/>, <see cref="U8bin"/> (big-ann-benchmarks): uint32 row count, uint32
/// dimension, then the rows, little-endian.</item>
/// <item><see cref="Npy"/>: NumPy array file, format versions 1 to 3, little-endian, C order.</item>
/// <item><see cref="Idx"/>: the MNIST idx format (big-endian header and values), optionally gzip-compressed.</item>
/// </list>
/// </remarks>
public enum VectorFileFormat
{
    /// <summary>int32 dimension + float32 values per row.</summary>
    Fvecs,

    /// <summary>int32 dimension + int32 values per row.</summary>
    Ivecs,

    /// <summary>int32 dimension + uint8 values per row.</summary>
    Bvecs,

    /// <summary>uint32 n, uint32 d, then n × d float32.</summary>
    Fbin,

    /// <summary>uint32 n, uint32 d, then n × d int32.</summary>
    Ibin,

    /// <summary>uint32 n, uint32 d, then n × d uint8.</summary>
    U8bin,

    /// <summary>NumPy <c>.npy</c>; the first axis is rows, the others are flattened into the dimension.</summary>
    Npy,

    /// <summary>MNIST idx (idx1-ubyte, idx3-ubyte, ...); the first axis is rows, the others are flattened.</summary>
    Idx,
}

/// <summary>Element type of the values stored in a vector file.</summary>
public enum VectorElementType
{
    /// <summary>IEEE 754 single precision.</summary>
    Float32,

    /// <summary>IEEE 754 half precision.</summary>
    Float16,

    /// <summary>IEEE 754 double precision.</summary>
    Float64,

    /// <summary>Unsigned byte.</summary>
    UInt8,

    /// <summary>Signed byte.</summary>
    Int8,

    /// <summary>Signed 16-bit integer.</summary>
    Int16,

    /// <summary>Signed 32-bit integer.</summary>
    Int32,

    /// <summary>Signed 64-bit integer.</summary>
    Int64,
}

/// <summary>Helpers for <see cref="VectorFileFormat"/> and <see cref="VectorElementType"/>.</summary>
public static class VectorFileFormats
{
    /// <summary>Size of one element in bytes.</summary>
    public static int SizeOf(this VectorElementType type) => type switch
    {
        VectorElementType.UInt8 or VectorElementType.Int8 => 1,
        VectorElementType.Float16 or VectorElementType.Int16 => 2,
        VectorElementType.Float32 or VectorElementType.Int32 => 4,
        VectorElementType.Float64 or VectorElementType.Int64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown element type."),
    };

    /// <summary>True for the integer element types.</summary>
    public static bool IsInteger(this VectorElementType type) =>
        type is not (VectorElementType.Float32 or VectorElementType.Float16 or VectorElementType.Float64);

    /// <summary>
    /// The format a file name implies: <c>.fvecs .ivecs .bvecs .fbin .ibin .u8bin .npy .idx</c>, or a MNIST name
    /// such as <c>train-images-idx3-ubyte</c>; a trailing <c>.gz</c> is ignored (only idx may be compressed).
    /// </summary>
    /// <exception cref="ArgumentException">The name matches no known format.</exception>
    public static VectorFileFormat FromPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".gz", StringComparison.Ordinal)) name = name[..^3];
        string ext = Path.GetExtension(name);
        switch (ext)
        {
            case ".fvecs": return VectorFileFormat.Fvecs;
            case ".ivecs": return VectorFileFormat.Ivecs;
            case ".bvecs": return VectorFileFormat.Bvecs;
            case ".fbin": return VectorFileFormat.Fbin;
            case ".ibin": return VectorFileFormat.Ibin;
            case ".u8bin": return VectorFileFormat.U8bin;
            case ".npy": return VectorFileFormat.Npy;
            case ".idx": return VectorFileFormat.Idx;
        }
        if (name.Contains("-idx", StringComparison.Ordinal) && name.Contains("-ubyte", StringComparison.Ordinal))
            return VectorFileFormat.Idx;
        throw new ArgumentException(
            $"Cannot tell the format of '{path}' from its name: expected .fvecs, .ivecs, .bvecs, .fbin, .ibin, .u8bin, .npy, .idx or an MNIST idx name (optionally .gz).",
            nameof(path));
    }

    /// <summary>The element type a fixed-type format stores; <c>null</c> for npy and idx, whose header says.</summary>
    public static VectorElementType? FixedElementType(this VectorFileFormat format) => format switch
    {
        VectorFileFormat.Fvecs or VectorFileFormat.Fbin => VectorElementType.Float32,
        VectorFileFormat.Ivecs or VectorFileFormat.Ibin => VectorElementType.Int32,
        VectorFileFormat.Bvecs or VectorFileFormat.U8bin => VectorElementType.UInt8,
        _ => null,
    };

    internal static bool HasRowPrefix(this VectorFileFormat format) =>
        format is VectorFileFormat.Fvecs or VectorFileFormat.Ivecs or VectorFileFormat.Bvecs;

    internal static bool IsBin(this VectorFileFormat format) =>
        format is VectorFileFormat.Fbin or VectorFileFormat.Ibin or VectorFileFormat.U8bin;
}
