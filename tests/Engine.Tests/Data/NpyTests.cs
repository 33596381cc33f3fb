using System.Buffers.Binary;
using System.Text;
using Engine.Data;

namespace Engine.Tests.Data;

public sealed class NpyTests : IDisposable
{
    private readonly DataTempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    // Builds an npy file as numpy would: magic, version, header length, padded dict, data.
    private static byte[] Npy(int major, string dict, byte[] payload)
    {
        int lenBytes = major == 1 ? 2 : 4;
        int pre = 8 + lenBytes;
        int total = (pre + dict.Length + 1 + 63) / 64 * 64;
        string text = dict.PadRight(total - pre - 1) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.Add((byte)major);
        bytes.Add(0);
        var len = new byte[lenBytes];
        if (lenBytes == 2) BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)text.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)text.Length);
        bytes.AddRange(len);
        bytes.AddRange(major == 3 ? Encoding.UTF8.GetBytes(text) : Encoding.Latin1.GetBytes(text));
        bytes.AddRange(payload);
        return bytes.ToArray();
    }

    private static byte[] Floats(params float[] v)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ReadsEveryHeaderVersion(int major)
    {
        string path = _dir.File("v.npy");
        File.WriteAllBytes(path, Npy(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Floats(1, 2, 3, 4, 5, 6)));
        using var reader = VectorFileReader.Open(path);
        Assert.Equal((2L, 3), (reader.Count, reader.Dimension));
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, reader.ReadAllFloats().Data);
    }

    [Fact]
    public void OneAxisArrayIsOneValuePerRow()
    {
        string path = _dir.File("v.npy");
        File.WriteAllBytes(path, Npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", [9, 8, 7, 6]));
        using var reader = VectorFileReader.Open(path);
        Assert.Equal((4L, 1), (reader.Count, reader.Dimension));
        Assert.Equal(new[] { 9, 8, 7, 6 }, reader.ReadAllInts().Data);
    }

    [Fact]
    public void HalfPrecisionAndKeyOrderAndDoubleQuotes()
    {
        string path = _dir.File("v.npy");
        var payload = new byte[4];
        BinaryPrimitives.WriteHalfLittleEndian(payload, (Half)1.5f);
        BinaryPrimitives.WriteHalfLittleEndian(payload.AsSpan(2), (Half)(-4f));
        File.WriteAllBytes(path, Npy(1, "{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f2\"}", payload));
        Assert.Equal(new[] { 1.5f, -4f }, VectorFiles.ReadFloats(path).Data);
    }

    [Fact]
    public void FortranOrderIsAClearError()
    {
        string path = _dir.File("v.npy");
        File.WriteAllBytes(path, Npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", Floats(1, 2, 3, 4, 5, 6)));
        var ex = Assert.Throws<DataFormatException>(() => VectorFileReader.Open(path));
        Assert.Contains("Fortran", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Theory]
    [InlineData("'>f4'", "big-endian")]
    [InlineData("'<c8'", "not supported")]
    [InlineData("'<U4'", "not supported")]
    public void UnsupportedDtypeIsAClearError(string descr, string expected)
    {
        string path = _dir.File("v.npy");
        File.WriteAllBytes(path, Npy(1, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (1, 2), }", new byte[16]));
        var ex = Assert.Throws<DataFormatException>(() => VectorFileReader.Open(path));
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void StructuredDtypeAndGarbageHeaderAreCorrupt()
    {
        string path = _dir.File("v.npy");
        File.WriteAllBytes(path, Npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new byte[4]));
        Assert.Contains("structured", Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(path)).Message);
        File.WriteAllBytes(path, Npy(1, "not a dict", []));
        Assert.Equal(10, Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(path)).Offset);
    }

    [Fact]
    public void UnknownVersionIsRejected()
    {
        string path = _dir.File("v.npy");
        var bytes = Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", []);
        bytes[6] = 4;
        File.WriteAllBytes(path, bytes);
        Assert.Contains("version 4", Assert.Throws<DataFormatException>(() => VectorFileReader.Open(path)).Message);
    }

    [Fact]
    public void ShapeAndPayloadMustAgree()
    {
        string path = _dir.File("v.npy");
        var bytes = Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", Floats(1, 2, 3, 4, 5));
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(path));
        long dataOffset = bytes.Length - 5 * 4;
        Assert.Equal(dataOffset + 2 * 8, ex.Offset); // start of the incomplete third row
    }

    [Fact]
    public void HeaderParserHandlesNumpyVariants()
    {
        var h = NpyHeader.Parse("{'descr': '<i8', 'fortran_order': False, 'shape': (), }   \n");
        Assert.Equal("<i8", h.Descr);
        Assert.Empty(h.Shape);
        h = NpyHeader.Parse("{'descr':'|u1','fortran_order':False,'shape':(10,28,28)}");
        Assert.Equal(new long[] { 10, 28, 28 }, h.Shape);
        Assert.Throws<FormatException>(() => NpyHeader.Parse("{'descr': '<f4', 'shape': (1,), }"));
        Assert.Throws<FormatException>(() => NpyHeader.Parse("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"));
        Assert.Throws<FormatException>(() => NpyHeader.Parse("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }"));
    }

    [Theory]
    [InlineData(new long[] { 7 })]
    [InlineData(new long[] { 7, 3 })]
    [InlineData(new long[] { 7, 3, 2 })]
    public void HeaderToStringRoundTrips(long[] shape)
    {
        var h = new NpyHeader("<f4", false, shape);
        var back = NpyHeader.Parse(h.ToString());
        Assert.Equal(h.Descr, back.Descr);
        Assert.Equal(h.Shape, back.Shape);
        Assert.False(back.FortranOrder);
    }
}
