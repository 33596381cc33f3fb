using Engine.Index.Spann;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

public class SpannCorruptionTests
{
    private const int D = 16;

    [Theory]
    [MemberData(nameof(TestLogs.Kinds), MemberType = typeof(TestLogs))]
    public async Task FlippedBytes_InEveryFile_GiveCorruptIndexException_OrCorrectResults(string kind)
    {
        using var dir = new TestDirectory();
        var data = SpannTestData.Clustered(800, D, seed: 31);
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, new SpannOptions { PostingSize = 8, MaxPostingSize = 32, CacheBytes = 0 }, TestLogs.Provider(kind)))
        {
            idx.Train(data);
            idx.Add(data.AsSpan(0, 600 * D), Enumerable.Range(0, 600).Select(i => (long)i).ToArray());
            idx.Checkpoint();
            idx.Add(data.AsSpan(600 * D), Enumerable.Range(600, 200).Select(i => (long)i).ToArray()); // in the log only
        }
        var files = Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories);
        Assert.Contains(files, f => f.EndsWith(SpannIndex.MetaFileName, StringComparison.Ordinal));
        Assert.Contains(files, f => Path.GetFileName(f).StartsWith("postings-", StringComparison.Ordinal));
        Assert.Contains(files, f => f == TestLogs.Provider(kind).LogFile(Path.Combine(dir.Path, "wal")));
        var rng = new Random(5);
        int corrupt = 0, correct = 0;
        foreach (var file in files)
        {
            var original = File.ReadAllBytes(file);
            if (original.Length == 0) continue;
            // Evenly spread offsets (every region of the file: headers, tables, payloads, padding) plus random ones.
            var offsets = Enumerable.Range(0, 32).Select(i => (int)((long)i * original.Length / 32))
                .Concat(Enumerable.Range(0, 24).Select(_ => rng.Next(original.Length)));
            foreach (int at in offsets)
            {
                var bad = (byte[])original.Clone();
                bad[at] ^= (byte)rng.Next(1, 256);
                File.WriteAllBytes(file, bad);
                // A hang is a failure too: each trial runs under a time limit.
                var trial = Task.Run(() => Trial(dir.Path, data));
                CorruptIndexException? outcome;
                try { outcome = await trial.WaitAsync(TimeSpan.FromSeconds(60)); }
                catch (Exception e) when (e is not TimeoutException) { throw new Xunit.Sdk.XunitException($"flip at {at} of {file} ({original.Length} bytes): {e.Message}"); }
                if (outcome is null) correct++;
                else
                {
                    corrupt++;
                    Assert.False(string.IsNullOrEmpty(outcome.FilePath), $"flip at {at} of {file}: exception names no file");
                    Assert.StartsWith(dir.Path, Path.GetFullPath(outcome.FilePath));
                    Assert.True(outcome.Offset >= 0, $"flip at {at} of {file}: negative offset");
                    Assert.Contains(outcome.FilePath, outcome.Message);
                }
                File.WriteAllBytes(file, original);
                foreach (var extra in Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories).Except(files)) File.Delete(extra);
            }
        }
        Assert.True(corrupt > 0 && correct > 0, $"{corrupt} detected, {correct} harmless flips");
        // With every file restored the index is whole again: a flip never destroyed stored data.
        Assert.Null(Trial(dir.Path, data));
    }

    /// <summary>Opens and queries the index; null when everything it answered is right, else the corruption report.</summary>
    private static CorruptIndexException? Trial(string path, float[] data)
    {
        try
        {
            using var idx = SpannIndex.Open(path);
            idx.BackgroundMaintenance = false;
            // Whatever opened must answer correctly or report corruption: never a wrong vector.
            var v = new float[D];
            for (int id = 0; id < 800; id += 7)
                if (idx.TryReconstruct(id, v)) Assert.Equal(data.AsSpan(id * D, D).ToArray(), v);
            var dd = new float[10]; var ll = new long[10];
            foreach (int q in new[] { 100, 350, 650, 777 })
            {
                idx.Search(data.AsSpan(q * D, D), 10, dd, ll);
                Assert.Equal(q, ll[0]);
            }
            return null;
        }
        catch (CorruptIndexException e)
        {
            return e;
        }
    }
}
