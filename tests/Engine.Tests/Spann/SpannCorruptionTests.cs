using Engine.Index.Spann;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

public class SpannCorruptionTests
{
    private const int D = 16;

    [Fact]
    public void FlippedBytes_InEveryFile_GiveCorruptIndexException_OrCorrectResults()
    {
        using var dir = new TestDirectory();
        var data = SpannTestData.Clustered(800, D, seed: 31);
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, new SpannOptions { PostingSize = 8, MaxPostingSize = 32, CacheBytes = 0 }))
        {
            idx.Train(data);
            idx.Add(data.AsSpan(0, 600 * D), Enumerable.Range(0, 600).Select(i => (long)i).ToArray());
            idx.Checkpoint();
            idx.Add(data.AsSpan(600 * D), Enumerable.Range(600, 200).Select(i => (long)i).ToArray()); // in the log only
        }
        var files = Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories);
        var rng = new Random(5);
        foreach (var file in files)
        {
            var original = File.ReadAllBytes(file);
            if (original.Length == 0) continue;
            for (int trial = 0; trial < 6; trial++)
            {
                var bad = (byte[])original.Clone();
                int at = rng.Next(bad.Length);
                bad[at] ^= (byte)(1 << rng.Next(8));
                File.WriteAllBytes(file, bad);
                try
                {
                    using var idx = SpannIndex.Open(dir.Path);
                    idx.BackgroundMaintenance = false;
                    // Whatever opened must answer correctly or report corruption: never a wrong vector.
                    var v = new float[D];
                    for (int id = 0; id < 800; id += 7)
                        if (idx.TryReconstruct(id, v)) Assert.Equal(data.AsSpan(id * D, D).ToArray(), v);
                    var dd = new float[10]; var ll = new long[10];
                    idx.Search(data.AsSpan(100 * D, D), 10, dd, ll);
                    Assert.Equal(100, ll[0]);
                }
                catch (CorruptIndexException e)
                {
                    Assert.False(string.IsNullOrEmpty(e.FilePath));
                }
                File.WriteAllBytes(file, original);
            }
        }
    }
}
