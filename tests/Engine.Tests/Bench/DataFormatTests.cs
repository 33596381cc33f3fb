using System.Buffers.Binary;
using System.Text;
using Engine.Bench;
using Engine.Data;
using Engine.Tests.Support;
using PureHDF;

namespace Engine.Tests.Bench;

/// <summary>
/// <c>--data</c> in every format users have: the same data set written as fvecs, bvecs, npy (float32 and uint8) and
/// ann-benchmarks hdf5 by writers independent of the engine's own (hand-built bytes, PureHDF's writer) loads identically.
/// </summary>
public class DataFormatTests
{
    private const int N = 300, Nq = 12, D = 8, GtK = 10;

    /// <summary>Byte-valued vectors (so bvecs/uint8 hold them exactly) with exact ground truth.</summary>
    private static DataSet Reference()
    {
        var rng = new Random(1234);
        var b = new float[N * D];
        var q = new float[Nq * D];
        for (int i = 0; i < b.Length; i++) b[i] = rng.Next(256);
        for (int i = 0; i < q.Length; i++) q[i] = rng.Next(256);
        var gt = GroundTruth.Compute(b, q, D, Metric.L2, GtK, threads: 1);
        return new DataSet("ref", Metric.L2, D, b, q, gt, GtK);
    }

    private static void AssertSame(DataSet expected, DataSet actual, int nq = Nq)
    {
        Assert.Equal(expected.Metric, actual.Metric);
        Assert.Equal(expected.Dimension, actual.Dimension);
        Assert.Equal(expected.Base, actual.Base);
        Assert.Equal(expected.Queries.AsSpan(0, nq * D).ToArray(), actual.Queries);
        Assert.Equal(expected.GroundTruthK, actual.GroundTruthK);
        Assert.Equal(expected.GroundTruth!.AsSpan(0, nq * GtK).ToArray(), actual.GroundTruth);
    }

    private static void WriteMeta(string dir, DataSet set) => set.Meta.Write(Path.Combine(dir, DataSet.MetaFile));

    /// <summary>A NumPy v1.0 file built byte by byte, as numpy.save lays it out (header padded to 64 bytes).</summary>
    private static void WriteNpy(string path, string descr, int rows, int cols, Action<BinaryWriter> body)
    {
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        using var w = new BinaryWriter(File.Create(path));
        w.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 });
        w.Write((ushort)header.Length);
        w.Write(Encoding.ASCII.GetBytes(header));
        body(w);
    }

    private static void WriteBvecs(string path, float[] rows)
    {
        using var w = new BinaryWriter(File.Create(path));
        for (int r = 0; r < rows.Length / D; r++)
        {
            w.Write(D);
            for (int c = 0; c < D; c++) w.Write((byte)rows[r * D + c]);
        }
    }

    private static float[,] To2D(float[] flat, int cols)
    {
        var m = new float[flat.Length / cols, cols];
        Buffer.BlockCopy(flat, 0, m, 0, flat.Length * sizeof(float));
        return m;
    }

    private static int[,] To2D(int[] flat, int cols)
    {
        var m = new int[flat.Length / cols, cols];
        Buffer.BlockCopy(flat, 0, m, 0, flat.Length * sizeof(int));
        return m;
    }

    private static void WriteHdf5(string path, DataSet set, string distance, bool withDistances = true, string? drop = null)
    {
        var file = new H5File { Attributes = new() { ["distance"] = distance } };
        if (drop != "train") file["train"] = To2D(set.Base, D);
        if (drop != "test") file["test"] = To2D(set.Queries, D);
        if (drop != "neighbors") file["neighbors"] = To2D(set.GroundTruth!, GtK);
        if (withDistances) file["distances"] = new float[set.QueryCount, GtK];
        file.Write(path);
    }

    [Fact]
    public void Fvecs_bvecs_npy_and_hdf5_load_identically()
    {
        using var dir = new TempDir();
        var reference = Reference();

        string fvecs = Path.Combine(dir.Path, "fvecs");
        reference.Save(fvecs);
        AssertSame(reference, BenchData.Load(fvecs));

        string bvecs = Path.Combine(dir.Path, "bvecs");
        Directory.CreateDirectory(bvecs);
        WriteBvecs(Path.Combine(bvecs, "base.bvecs"), reference.Base);
        WriteBvecs(Path.Combine(bvecs, "query.bvecs"), reference.Queries);
        File.Copy(Path.Combine(fvecs, DataSet.GroundTruthFile), Path.Combine(bvecs, DataSet.GroundTruthFile));
        WriteMeta(bvecs, reference);
        AssertSame(reference, BenchData.Load(bvecs));

        string npy = Path.Combine(dir.Path, "npy");
        Directory.CreateDirectory(npy);
        WriteNpy(Path.Combine(npy, "base.npy"), "<f4", N, D, w => { foreach (var v in reference.Base) w.Write(v); });
        WriteNpy(Path.Combine(npy, "query.npy"), "|u1", Nq, D, w => { foreach (var v in reference.Queries) w.Write((byte)v); });
        WriteNpy(Path.Combine(npy, "gt.npy"), "<i8", Nq, GtK, w => { foreach (var v in reference.GroundTruth!) w.Write((long)v); });
        WriteMeta(npy, reference);
        AssertSame(reference, BenchData.Load(npy));

        string h5 = dir.File("ref-8-euclidean.hdf5");
        WriteHdf5(h5, reference, "euclidean");
        var fromHdf5 = BenchData.Load(h5);
        AssertSame(reference, fromHdf5);
        Assert.Equal("ref-8-euclidean", fromHdf5.Name);

        // --nq keeps the first queries and their ground truth, the same in every format.
        AssertSame(reference, BenchData.Load(h5, maxQueries: 5), nq: 5);
        AssertSame(reference, BenchData.Load(npy, maxQueries: 5), nq: 5);
    }

    [Theory]
    [InlineData("angular", Metric.Cosine)]
    [InlineData("dot", Metric.InnerProduct)]
    [InlineData("euclidean", Metric.L2)]
    public void Hdf5_distance_attribute_sets_the_metric(string distance, Metric metric)
    {
        using var dir = new TempDir();
        string h5 = dir.File("x.hdf5");
        WriteHdf5(h5, Reference(), distance, withDistances: false);
        Assert.Equal(metric, BenchData.Load(h5).Metric);
    }

    [Theory]
    [InlineData("hamming", null, "distance 'hamming' is not supported")]
    [InlineData("euclidean", "test", "no dataset 'test'")]
    [InlineData("euclidean", "neighbors", "no dataset 'neighbors'")]
    public void Bad_hdf5_files_name_the_problem(string distance, string? drop, string expected)
    {
        using var dir = new TempDir();
        string h5 = dir.File("bad.hdf5");
        WriteHdf5(h5, Reference(), distance, drop: drop);
        var ex = Assert.Throws<DataFormatException>(() => BenchData.Load(h5));
        Assert.Contains(expected, ex.Message);
        Assert.Contains("bad.hdf5", ex.Message);
    }

    [Fact]
    public void Hdf5_rows_that_disagree_are_rejected()
    {
        using var dir = new TempDir();
        var set = Reference();
        string h5 = dir.File("short.hdf5");
        new H5File
        {
            Attributes = new() { ["distance"] = "euclidean" },
            ["train"] = To2D(set.Base, D),
            ["test"] = To2D(set.Queries, D),
            ["neighbors"] = To2D(set.GroundTruth!.AsSpan(0, 3 * GtK).ToArray(), GtK),
        }.Write(h5);
        Assert.Contains("'neighbors' has 3 rows", Assert.Throws<DataFormatException>(() => BenchData.Load(h5)).Message);

        File.WriteAllBytes(dir.File("junk.hdf5"), Encoding.ASCII.GetBytes("this is not an HDF5 file at all, just text"));
        Assert.Contains("junk.hdf5", Assert.ThrowsAny<IOException>(() => BenchData.Load(dir.File("junk.hdf5"))).Message);
    }

    [Fact]
    public void Directories_with_two_formats_or_missing_parts_are_rejected()
    {
        using var dir = new TempDir();
        var reference = Reference();
        reference.Save(dir.Path);
        File.Copy(Path.Combine(dir.Path, DataSet.BaseFile), dir.File("base.npy"));
        File.Move(Path.Combine(dir.Path, DataSet.GroundTruthFile), dir.File("gt.ivecs.bak"));
        WriteNpy(dir.File("gt.npy"), "<i4", Nq, GtK, w => { foreach (var v in reference.GroundTruth!) w.Write(v); });
        Assert.Contains("keep one", Assert.Throws<ArgumentException>(() => BenchData.Load(dir.Path)).Message);
        File.Delete(dir.File("base.npy"));
        AssertSame(reference, BenchData.Load(dir.Path)); // fvecs base and query with gt.npy
        File.Delete(dir.File("gt.npy"));
        Assert.Contains("gt.ivecs", Assert.Throws<FileNotFoundException>(() => BenchData.Load(dir.Path)).Message);
        Assert.Contains("not .hdf5", Assert.Throws<ArgumentException>(() => BenchData.Load(dir.File("gt.ivecs.bak"))).Message);
        Assert.Throws<FileNotFoundException>(() => BenchData.Load(dir.File("nothing-here")));
    }
}
