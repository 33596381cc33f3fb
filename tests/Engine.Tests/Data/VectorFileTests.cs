using System.Buffers.Binary;
using System.IO.Compression;
using Engine.Data;

namespace Engine.Tests.Data;

public sealed class VectorFileTests : IDisposable
{
    private readonly DataTempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("x.fvecs")]
    [InlineData("x.fbin")]
    [InlineData("x.npy")]
    [InlineData("x.idx")]
    [InlineData("x-idx2-ubyte.gz")]
    public void FloatFilesRoundTrip(string name)
    {
        const int n = 37, d = 13;
        var data = DataTempDir.RandomFloats(n * d, 1);
        string path = _dir.File(name);
        VectorFiles.Write(path, data, d);
        var back = VectorFiles.ReadFloats(path);
        Assert.Equal(n, back.Rows);
        Assert.Equal(d, back.Columns);
        Assert.Equal(data, back.Data);
    }

    [Theory]
    [InlineData("x.ivecs")]
    [InlineData("x.ibin")]
    [InlineData("x.npy")]
    [InlineData("x.idx")]
    public void IntFilesRoundTrip(string name)
    {
        const int n = 21, d = 7;
        var data = new int[n * d];
        for (int i = 0; i < data.Length; i++) data[i] = i * 7919 - 50_000;
        string path = _dir.File(name);
        VectorFiles.Write(path, data, d);
        var back = VectorFiles.ReadInts(path);
        Assert.Equal((n, d), (back.Rows, back.Columns));
        Assert.Equal(data, back.Data);
        // Integer files also read as floats.
        Assert.Equal(data.Select(v => (float)v), VectorFiles.ReadFloats(path).Data);
    }

    [Theory]
    [InlineData("x.bvecs")]
    [InlineData("x.u8bin")]
    [InlineData("x.npy")]
    [InlineData("x.idx")]
    [InlineData("x.idx.gz")]
    public void ByteFilesRoundTrip(string name)
    {
        const int n = 19, d = 5;
        var data = new byte[n * d];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 31);
        string path = _dir.File(name);
        VectorFiles.Write(path, data, d);
        using var reader = VectorFileReader.Open(path);
        Assert.Equal(VectorElementType.UInt8, reader.ElementType);
        Assert.Equal(data.Select(v => (int)v), reader.ReadAllInts().Data);
        Assert.Equal(data.Select(v => (float)v), reader.ReadAllFloats().Data);
    }

    [Theory]
    [InlineData(VectorElementType.Float16)]
    [InlineData(VectorElementType.Float64)]
    public void NpyFloatTypesConvert(VectorElementType type)
    {
        var data = new float[] { 0.5f, -2f, 1024f, 3.25f, 0f, -0.125f };
        string path = _dir.File("x.npy");
        VectorFiles.Write(path, data, 3, elementType: type);
        using var reader = VectorFileReader.Open(path);
        Assert.Equal(type, reader.ElementType);
        Assert.Equal(data, reader.ReadAllFloats().Data); // values exactly representable in half
    }

    [Fact]
    public void NpyInt64ConvertsAndRejectsOverflow()
    {
        string path = _dir.File("x.npy");
        VectorFiles.Write(path, new[] { 1, -2, 3, 4 }, 2, elementType: VectorElementType.Int64);
        Assert.Equal(new[] { 1, -2, 3, 4 }, VectorFiles.ReadInts(path).Data);

        // Patch one value beyond int32: the int reader must refuse it, the float reader converts.
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), 1L << 40);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<DataFormatException>(() => VectorFiles.ReadInts(path));
        Assert.Contains("does not fit", ex.Message);
        Assert.Equal((float)(1L << 40), VectorFiles.ReadFloats(path).Data[3]);
    }

    [Fact]
    public void IdxShapeFlattensTrailingAxes()
    {
        var data = new byte[4 * 2 * 3];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)i;
        string path = _dir.File("imgs-idx3-ubyte");
        VectorFiles.Write(path, data, 6, rowShape: [2, 3]);
        using var reader = VectorFileReader.Open(path);
        Assert.Equal(VectorFileFormat.Idx, reader.Format);
        Assert.Equal(new long[] { 4, 2, 3 }, reader.Shape);
        Assert.Equal(6, reader.Dimension);
        Assert.Equal(4, reader.Count);
        // Big-endian header: first bytes are 0 0 8 3, then 4, 2, 3 as u32 BE.
        var raw = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 4 }, raw[..8]);
    }

    [Fact]
    public void ReadRowsReadsARangeWithoutTheRest()
    {
        const int n = 5000, d = 16;
        var data = DataTempDir.RandomFloats(n * d, 2);
        string path = _dir.File("x.fvecs");
        VectorFiles.Write(path, data, d);
        using var reader = VectorFileReader.Open(path);
        var part = new float[300 * d];
        reader.ReadRows(4321, 300, part);
        Assert.Equal(data.AsSpan(4321 * d, 300 * d).ToArray(), part);
        Assert.Throws<ArgumentException>(() => reader.ReadRows(4800, 300, new float[300 * d]));
        Assert.Throws<ArgumentException>(() => reader.ReadRows(0, 3, new float[3 * d - 1]));
        Assert.Equal(data.AsSpan(10 * d, 2 * d).ToArray(), VectorFiles.ReadFloatRows(path, 10, 2).Data);
    }

    [Theory]
    [InlineData("x.fvecs", 3)]
    [InlineData("x.fbin", 3)]
    [InlineData("x.npy", 3)]
    [InlineData("x.idx", 3)]
    [InlineData("x.fvecs", 1000)]
    [InlineData("x.fbin", 1)]
    [InlineData("x.npy", 300)]
    [InlineData("x.idx", 10)]
    public void TruncatedFilesNameFileAndOffset(string name, int cut)
    {
        string path = _dir.File(name);
        VectorFiles.Write(path, DataTempDir.RandomFloats(40 * 8, 3), 8);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - cut)]);
        var ex = Assert.Throws<CorruptIndexException>(() => VectorFiles.ReadFloats(path));
        Assert.Equal(path, ex.FilePath);
        Assert.InRange(ex.Offset, 0, bytes.Length - cut);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void InconsistentRowDimensionInVecsIsReportedAtTheRow()
    {
        string path = _dir.File("x.ivecs");
        VectorFiles.Write(path, Enumerable.Range(0, 10 * 4).ToArray(), 4);
        var bytes = File.ReadAllBytes(path);
        const int rowBytes = 4 + 4 * 4;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(6 * rowBytes), 5); // row 6 claims d = 5
        File.WriteAllBytes(path, bytes);
        using var reader = VectorFileReader.Open(path);
        reader.ReadRows(0, 6, new int[6 * 4]); // rows before the bad one are fine
        var ex = Assert.Throws<CorruptIndexException>(() => reader.ReadAllInts());
        Assert.Equal(6 * rowBytes, ex.Offset);
        Assert.Contains("row 6 declares dimension 5", ex.Message);
    }

    [Fact]
    public void VecsWithImpossibleFirstDimensionIsCorrupt()
    {
        string path = _dir.File("x.fvecs");
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
        var ex = Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(path));
        Assert.Equal(0, ex.Offset);
        Assert.Contains("dimension -1", ex.Message);
    }

    [Fact]
    public void BinWithTrailingBytesIsCorrupt()
    {
        string path = _dir.File("x.ibin");
        VectorFiles.Write(path, new int[12], 3);
        File.AppendAllText(path, "junk");
        var ex = Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(path));
        Assert.Equal(8 + 12 * 4, ex.Offset);
        Assert.Contains("unexpected bytes", ex.Message);
    }

    [Fact]
    public void BadMagicIsCorrupt()
    {
        string npy = _dir.File("x.npy");
        File.WriteAllBytes(npy, "\x93NUMPX\x01\x00\x10\x00{}"u8.ToArray().Concat(new byte[16]).ToArray());
        Assert.Contains("magic", Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(npy)).Message);

        string idx = _dir.File("x.idx");
        File.WriteAllBytes(idx, [1, 0, 8, 1, 0, 0, 0, 0]);
        var ex = Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(idx));
        Assert.Equal(0, ex.Offset);
        Assert.Contains("magic", ex.Message);

        File.WriteAllBytes(idx, [0, 0, 0x42, 1, 0, 0, 0, 0]);
        Assert.Equal(2, Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(idx)).Offset);
    }

    [Fact]
    public void MissingFileNamesTheFile()
    {
        string path = _dir.File("absent.fvecs");
        var ex = Assert.Throws<FileNotFoundException>(() => VectorFileReader.Open(path));
        Assert.Equal(path, ex.FileName);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void GzipOnlyForIdxAndCorruptGzipIsReported()
    {
        string gz = _dir.File("x.fvecs.gz");
        File.WriteAllBytes(gz, [1, 2, 3]);
        Assert.Throws<DataFormatException>(() => VectorFileReader.Open(gz));

        string idxGz = _dir.File("x-idx1-ubyte.gz");
        File.WriteAllBytes(idxGz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0xde, 0xad, 0xbe, 0xef]);
        var ex = Assert.ThrowsAny<IOException>(() => VectorFileReader.Open(idxGz));
        Assert.Contains(idxGz, ex.Message);
    }

    [Fact]
    public void TruncatedGzipIdxIsReported()
    {
        string path = _dir.File("t-idx1-ubyte.gz");
        VectorFiles.Write(path, Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray(), 1, rowShape: []);
        using (var reader = VectorFileReader.Open(path)) Assert.Equal(1000, reader.Count);
        // Rewrite the same gzip with a lying header (count 2000) to get a short payload.
        using (var ms = new MemoryStream())
        {
            using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
            {
                gz.Write([0, 0, 8, 1, 0, 0, 0x07, 0xD0]);
                gz.Write(new byte[1000]);
            }
            File.WriteAllBytes(path, ms.ToArray());
        }
        var ex = Assert.Throws<CorruptIndexException>(() => VectorFileReader.Open(path));
        Assert.Contains("decompressed", ex.Message);
    }

    [Fact]
    public void WriterRejectsWrongSourceTypeAndLeavesNoFileWhenAbandoned()
    {
        string path = _dir.File("x.fvecs");
        using (var w = VectorFileWriter.Create(path, 4))
        {
            Assert.Throws<InvalidOperationException>(() => w.WriteRows(new int[4]));
            Assert.Throws<ArgumentException>(() => w.WriteRows(new float[5]));
            w.WriteRows(new float[8]);
        }
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(_dir.Path));
        Assert.Throws<ArgumentException>(() => VectorFileWriter.Create(path, 4, elementType: VectorElementType.Int32));
        Assert.Throws<ArgumentException>(() => VectorFileWriter.Create(_dir.File("x.npy"), 6, rowShape: [4]));
    }

    [Fact]
    public void StreamingWriterAppendsBlocks()
    {
        string path = _dir.File("x.fbin");
        var data = DataTempDir.RandomFloats(100 * 3, 4);
        using (var w = VectorFileWriter.Create(path, 3))
        {
            w.WriteRows(data.AsSpan(0, 40 * 3));
            w.WriteRows(data.AsSpan(40 * 3));
            Assert.Equal(100, w.RowsWritten);
            w.Complete();
        }
        Assert.Equal(data, VectorFiles.ReadFloats(path).Data);
    }

    [Fact]
    public void EmptyVecsFileHasNoRows()
    {
        string path = _dir.File("x.fvecs");
        File.WriteAllBytes(path, []);
        using var reader = VectorFileReader.Open(path);
        Assert.Equal(0, reader.Count);
        Assert.Empty(reader.ReadAllFloats().Data);
    }

    [Theory]
    [InlineData("a.fvecs", VectorFileFormat.Fvecs)]
    [InlineData("A.IVECS", VectorFileFormat.Ivecs)]
    [InlineData("b.u8bin", VectorFileFormat.U8bin)]
    [InlineData("train-images-idx3-ubyte", VectorFileFormat.Idx)]
    [InlineData("t10k-labels-idx1-ubyte.gz", VectorFileFormat.Idx)]
    [InlineData("/x/y.npy", VectorFileFormat.Npy)]
    public void FormatFromPath(string path, VectorFileFormat expected) =>
        Assert.Equal(expected, VectorFileFormats.FromPath(path));

    [Fact]
    public void UnknownExtensionIsRejected() =>
        Assert.Throws<ArgumentException>(() => VectorFileFormats.FromPath("x.csv"));
}
