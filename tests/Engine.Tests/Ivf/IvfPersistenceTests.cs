using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Ivf;

namespace Engine.Tests.Ivf;

public class IvfPersistenceTests
{
    private const int N = 2000, D = 16, NQ = 40, K = 5;
    private static readonly float[] Data = IvfTestData.Clustered(N, D, 20, seed: 31);
    private static readonly float[] Queries = IvfTestData.Clustered(NQ, D, 20, seed: 32);
    private static readonly long[] Ids = IvfTestData.Ids(N, 7);

    [Theory]
    [InlineData("IVF16,Flat")]
    [InlineData("IVF16,PQ4")]
    [InlineData("IVF16,PQ8x4fs,RFlat")]
    [InlineData("OPQ4,IVF16,PQ4x4fs,Refine(SQ8)")]
    [InlineData("IVF16,PQ8x4,Refine(F16)")]
    [InlineData("IVF16,PQ8x4fsnr")]
    [InlineData("OPQ4,IVF16,PQ4x4nr,RFlat")]
    [InlineData("OPQ4,IVF16,Flat")]
    [InlineData("OPQ8,IVF16,BIN2")]
    [InlineData("OPQ4,IVF16,BIN3nr,Refine(SQ8)")]
    public void SaveLoadGivesIdenticalResults(string spec)
    {
        using var dir = new IvfTestData.TempDir();
        using var index = new IvfIndex(spec, D, Metric.L2);
        index.Train(Data);
        index.Add(Data, Ids, Ids.Select(i => (double)(i % 100)).ToArray());
        index.Remove([7, 8, 9]);
        string path = dir.File("a.idx");
        index.Save(path);
        using var loaded = (IvfIndex)IndexFactory.Load(path);
        Assert.Equal(spec, loaded.Description);
        Assert.Equal(index.Count, loaded.Count);
        Assert.True(loaded.IsTrained);
        var p = new IvfSearchParameters { Probes = 4, RefineFactor = IvfTestData.Refine(index, 3), AttributeMin = 10, AttributeMax = 90 };
        var d1 = new float[NQ * K]; var l1 = new long[NQ * K];
        var d2 = new float[NQ * K]; var l2 = new long[NQ * K];
        index.Search(Queries, K, d1, l1, p);
        loaded.Search(Queries, K, d2, l2, p);
        Assert.Equal(l1, l2);
        Assert.Equal(d1, d2);
        // The loaded index keeps working: add, remove.
        loaded.Add(Data.AsSpan(0, D), [7]);
        Assert.Equal(1, loaded.Remove([10]));
    }

    [Fact]
    public void CorruptedFilesAreRejectedWithTheOffset()
    {
        using var dir = new IvfTestData.TempDir();
        using var index = new IvfIndex("IVF16,PQ8x4fs,RFlat", D);
        index.Train(Data);
        index.Add(Data, Ids);
        string path = dir.File("a.idx");
        index.Save(path);
        var bytes = File.ReadAllBytes(path);

        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(dir.File("flip.idx"), flipped);
        var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(dir.File("flip.idx")));
        Assert.Contains("checksum", e.Message);

        File.WriteAllBytes(dir.File("trunc.idx"), bytes.AsSpan(0, bytes.Length - 100).ToArray());
        Assert.Throws<CorruptIndexException>(() => IndexFactory.Load(dir.File("trunc.idx")));
    }

    [Fact]
    public void OtherKindsSpecsAndVersionsAreFormatErrors()
    {
        using var dir = new IvfTestData.TempDir();
        using (var flat = new FlatIndex(D)) { flat.Add(Data.AsSpan(0, 10 * D), Ids.AsSpan(0, 10)); flat.Save(dir.File("flat.idx")); }
        Assert.Throws<IndexFormatException>(() => IvfIndex.Load(dir.File("flat.idx")));

        using var index = new IvfIndex("IVF16,PQ8x4fs", D);
        index.Train(Data);
        index.Save(dir.File("ivf.idx"));
        Assert.Throws<IndexFormatException>(() => IvfIndex.Load(dir.File("ivf.idx"), expectedSpec: "IVF16,PQ8"));
        using (var ok = IvfIndex.Load(dir.File("ivf.idx"), expectedSpec: "IVF16,PQ8x4fs")) Assert.Equal(0, ok.Count);

        // A layout version this build does not know: rewrite the IVER section with a valid checksum.
        using (var w = new Engine.Storage.Format.IndexFileWriter(dir.File("v9.idx"),
            new Engine.Storage.Format.IndexFileHeader("ivf", "IVF16,PQ8x4fs", Metric.L2, D, 0, Engine.Storage.Format.IndexFile.FormatVersion)))
        {
            w.WriteArray<int>("IVER", [9, 1, 1]);
            w.Commit();
        }
        var ex = Assert.Throws<IndexFormatException>(() => IvfIndex.Load(dir.File("v9.idx")));
        Assert.Contains("version 9", ex.Message);
    }
}
