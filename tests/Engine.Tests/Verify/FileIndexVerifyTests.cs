using Engine.Cli;
using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Tests.Ivf;
using Engine.Tests.Support;

namespace Engine.Tests.Verify;

/// <summary>Defect 10 of issue 11 (Flat and IVF files, and <c>engine verify</c>).</summary>
public class FileIndexVerifyTests
{
    private const int D = 8;

    private static string SaveIvf(TempDir tmp, string spec, int n = 400)
    {
        var data = IvfTestData.Clustered(n, D, 8, seed: 51);
        using var idx = new IvfIndex(spec, D);
        idx.Train(data);
        idx.Add(data, IvfTestData.Ids(n));
        string path = tmp.File("ivf.idx");
        idx.Save(path);
        return path;
    }

    [Theory]
    [InlineData("IVF8,Flat")]
    [InlineData("IVF8,PQ4")]
    [InlineData("IVF8,PQ4x4fs,RFlat")]
    public void List_sizes_shifted_between_lists_with_the_same_total_are_refused_at_load(string spec)
    {
        using var tmp = new TempDir();
        string path = SaveIvf(tmp, spec);
        using (var clean = IvfIndex.Load(path)) Assert.True(clean.Verify().IsClean);
        var sizes = IndexFileEditor.Read(path, "LCNT");
        int a = Enumerable.Range(0, 7).First(i => BitConverter.ToInt32(sizes, i * 4) > 0 && BitConverter.ToInt32(sizes, i * 4 + 4) > 0);
        IndexFileEditor.Set(path, "LCNT", a, IndexFileEditor.Get<int>(path, "LCNT", a) + 1);
        IndexFileEditor.Set(path, "LCNT", a + 1, IndexFileEditor.Get<int>(path, "LCNT", a + 1) - 1);
        foreach (bool mapped in new[] { true, false })
        {
            var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(path, mapped: mapped));
            Assert.Equal(path, e.FilePath);
            Assert.Contains($"list {a}", e.Message);
            Assert.Contains("list sizes", e.Message);
        }
    }

    [Fact]
    public void Layout_1_files_without_list_checksums_still_load()
    {
        using var tmp = new TempDir();
        string path = SaveIvf(tmp, "IVF8,PQ4x4fs,RFlat");
        var queries = IvfTestData.Clustered(20, D, 8, seed: 53);
        long[] expected;
        using (var idx = IvfIndex.Load(path)) expected = IvfTestData.SearchLabels(idx, queries, 5);
        IndexFileEditor.RemoveLastSection(path, "LCRC");
        IndexFileEditor.Set(path, "IVER", 0, 1);
        using var old = IvfIndex.Load(path);
        Assert.True(old.Verify().IsClean);
        Assert.Equal(expected, IvfTestData.SearchLabels(old, queries, 5));
    }

    [Fact]
    public void Nan_centroid_is_refused_at_load_naming_its_offset()
    {
        using var tmp = new TempDir();
        string path = SaveIvf(tmp, "IVF8,PQ4");
        IndexFileEditor.Set(path, "CENT", 3 * D + 1, float.NaN);
        var e = Assert.Throws<CorruptIndexException>(() => IvfIndex.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("centroid 3", e.Message);
        var cent = IndexFileEditor.Sections(File.ReadAllBytes(path)).Single(s => s.Tag == "CENT");
        Assert.Equal(cent.Payload + 3 * D * sizeof(float), e.Offset);
    }

    [Fact]
    public void Nan_stored_vector_in_an_ivf_flat_list_is_found_by_verify()
    {
        using var tmp = new TempDir();
        string path = SaveIvf(tmp, "IVF8,Flat");
        IndexFileEditor.Set(path, "CODE", 10 * D + 5, float.NaN); // row 10 of the concatenated lists
        using var idx = IvfIndex.Load(path);
        var report = idx.Verify();
        var problem = Assert.Single(report.Problems);
        Assert.Equal(path, problem.File);
        var code = IndexFileEditor.Sections(File.ReadAllBytes(path)).Single(s => s.Tag == "CODE");
        Assert.Equal(code.Payload + 10 * D * sizeof(float), problem.Offset);
        Assert.Contains("not finite", problem.What);
        Assert.Equal(400, report.VectorsChecked);
    }

    [Fact]
    public void Nan_stored_vector_in_a_flat_file_is_refused_at_load()
    {
        using var tmp = new TempDir();
        var data = IvfTestData.Clustered(100, D, 4, seed: 52);
        string path = tmp.File("flat.idx");
        using (var idx = new FlatIndex(D))
        {
            idx.Add(data, IvfTestData.Ids(100));
            Assert.True(idx.Verify().IsClean);
            idx.Save(path);
        }
        using (var loaded = FlatIndex.Load(path)) Assert.True(loaded.Verify().IsClean);
        IndexFileEditor.Set(path, "VECS", 7 * D, float.NaN);
        var e = Assert.Throws<CorruptIndexException>(() => FlatIndex.Load(path));
        Assert.Equal(path, e.FilePath);
        var vecs = IndexFileEditor.Sections(File.ReadAllBytes(path)).Single(s => s.Tag == "VECS");
        Assert.Equal(vecs.Payload + 7 * D * sizeof(float), e.Offset);
    }

    [Fact]
    public void Engine_verify_exits_0_when_clean_and_1_listing_the_problems()
    {
        using var tmp = new TempDir();
        string path = SaveIvf(tmp, "IVF8,Flat");
        var output = new StringWriter();
        Assert.Equal(0, VerifyCommand.Run(null, path, output));
        Assert.Contains("verify: OK", output.ToString());
        Assert.Contains("400 vectors", output.ToString());

        IndexFileEditor.Set(path, "CODE", 3, float.PositiveInfinity);
        output = new StringWriter();
        Assert.Equal(VerifyCommand.Corrupt, VerifyCommand.Run(null, path, output));
        Assert.Contains("1 problem", output.ToString());
        Assert.Contains(path, output.ToString());

        // Damage that stops the load is listed the same way; --dir finds index.bin; usage errors exit 2.
        Directory.CreateDirectory(tmp.File("dir"));
        File.Copy(path, Path.Combine(tmp.File("dir"), IndexDirectory.IndexFileName));
        IndexFileEditor.Set(Path.Combine(tmp.File("dir"), IndexDirectory.IndexFileName), "CENT", 0, float.NaN);
        output = new StringWriter();
        Assert.Equal(VerifyCommand.Corrupt, VerifyCommand.Run(tmp.File("dir"), null, output));
        Assert.Contains("centroid 0", output.ToString());
        Assert.Equal(2, Program.Main(["verify", "--dir", tmp.File("dir"), "--index", path]));
        Assert.Equal(2, Program.Main(["verify", "--index", tmp.File("missing")]));
        Assert.Equal(1, Program.Main(["verify", "--index", path]));
    }
}
