using Engine.Cli;
using Engine.Data;
using Engine.Index;
using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Storage;
using Engine.Storage.Wal;
using Engine.Tests.Ivf;
using Engine.Tests.Support;

namespace Engine.Tests.Hardening;

/// <summary>
/// Issue 11 defect 11: files reached through symbolic links are measured and read as their targets (FileInfo.Length
/// of a link is the length of its target path).
/// </summary>
public class SymlinkTests
{
    /// <summary>Moves every file of a saved data set to <c>store/</c> and links it back under <c>set/</c>.</summary>
    private static string LinkedDataSet(TempDir tmp, DataSet set)
    {
        string store = Directory.CreateDirectory(tmp.File("store")).FullName;
        string linked = Directory.CreateDirectory(tmp.File("set")).FullName;
        set.Save(store);
        foreach (var file in Directory.GetFiles(store))
            File.CreateSymbolicLink(Path.Combine(linked, Path.GetFileName(file)), file);
        return linked;
    }

    [Fact]
    public void DataSet_AllFilesSymlinked_LoadsLikeTheTargets()
    {
        using var tmp = new TempDir();
        var set = SyntheticData.ClusteredDataSet("linked", n: 3000, nq: 30, d: 8, clusters: 5, seed: 7, Metric.L2, groundTruthK: 10, threads: 1);
        Assert.NotNull(set.BaseLabels);
        string dir = LinkedDataSet(tmp, set);
        foreach (var name in new[] { DataSet.BaseFile, DataSet.QueryFile, DataSet.GroundTruthFile, "base.labels", "query.labels", DataSet.MetaFile })
            Assert.NotNull(new FileInfo(Path.Combine(dir, name)).LinkTarget);
        var back = DataSet.Load(dir);
        Assert.Equal(set.Base, back.Base);
        Assert.Equal(set.Queries, back.Queries);
        Assert.Equal(set.GroundTruth, back.GroundTruth);
        Assert.Equal(set.BaseLabels, back.BaseLabels);
        Assert.Equal(set.QueryLabels, back.QueryLabels);
        // engine bench over the linked directory (it failed with "holds N label bytes" before).
        var sw = new StringWriter();
        Assert.Equal(0, BenchRunner.Run(new BenchOptions(dir, "Flat", 10, 1, [], Json: true, Repeats: 1, QueryLimit: 0), sw));
        Assert.Contains("\"recall\":1", sw.ToString().Replace(" ", "", StringComparison.Ordinal));
    }

    [Fact]
    public void IndexFile_Symlinked_Loads_HeapAndMapped()
    {
        using var tmp = new TempDir();
        var data = IvfTestData.Clustered(500, 8, 4, seed: 2);
        using (var flat = new FlatIndex(8, Metric.L2)) { flat.Add(data, IvfTestData.Ids(500)); flat.Save(tmp.File("flat.idx")); }
        using (var ivf = new IvfIndex(IvfSpec.Parse("IVF4,Flat"), 8, Metric.L2))
        {
            ivf.Train(data);
            ivf.Add(data, IvfTestData.Ids(500));
            ivf.Save(tmp.File("ivf.idx"));
        }
        File.CreateSymbolicLink(tmp.File("flat-link.idx"), tmp.File("flat.idx"));
        File.CreateSymbolicLink(tmp.File("ivf-link.idx"), tmp.File("ivf.idx"));
        foreach (var (link, mapped) in new[] { ("flat-link.idx", true), ("ivf-link.idx", true), ("ivf-link.idx", false) })
        {
            using var index = IndexFactory.Load(tmp.File(link), mapped);
            Assert.Equal(500, index.Count);
            var lab = new long[1];
            index.Search(data.AsSpan(7 * 8, 8), 1, new float[1], lab);
            Assert.Equal(7, lab[0]);
        }
    }

    [Fact]
    public void FileLengths_FollowLinks()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp.File("target.bin"), new byte[60_000]);
        Directory.CreateDirectory(tmp.File("d"));
        File.CreateSymbolicLink(tmp.File("d/link.bin"), tmp.File("target.bin"));
        File.CreateSymbolicLink(tmp.File("d/dangling.bin"), tmp.File("missing.bin"));
        Assert.NotEqual(60_000, new FileInfo(tmp.File("d/link.bin")).Length); // the trap FileLengths avoids
        Assert.Equal(60_000, FileLengths.Of(tmp.File("d/link.bin")));
        Assert.Equal(60_000, FileLengths.OfDirectory(tmp.File("d")));
        Assert.Throws<FileNotFoundException>(() => FileLengths.Of(tmp.File("d/dangling.bin")));
    }

    [Fact]
    public void FileWriteAheadLog_ThroughASymlink_IsMeasuredAsItsTarget()
    {
        using var tmp = new TempDir();
        using (var log = FileWriteAheadLog.Create(tmp.File("real.log")))
        {
            log.Append(new byte[] { 1, 2, 3 });
            log.Commit();
        }
        File.CreateSymbolicLink(tmp.File("wal.log"), tmp.File("real.log"));
        using (var log = FileWriteAheadLog.Open(tmp.File("wal.log")))
        {
            var records = new List<byte[]>();
            log.Replay(0, (_, r) => records.Add(r.ToArray()));
            Assert.Equal([new byte[] { 1, 2, 3 }], records);
            log.Append(new byte[] { 4 });
            log.Commit();
        }
        Assert.NotNull(new FileInfo(tmp.File("wal.log")).LinkTarget); // still a link: the log wrote through it
        using (var log = FileWriteAheadLog.Open(tmp.File("real.log")))
        {
            int n = 0;
            log.Replay(0, (_, _) => n++);
            Assert.Equal(2, n);
        }
        // A link to an empty file is an empty log (its header is gone), not a log the length of the link's path.
        File.WriteAllBytes(tmp.File("empty.log"), []);
        File.CreateSymbolicLink(tmp.File("empty-link.log"), tmp.File("empty.log"));
        var e = Assert.Throws<CorruptIndexException>(() => FileWriteAheadLog.Open(tmp.File("empty-link.log")));
        Assert.Contains("empty", e.Message);
    }
}
