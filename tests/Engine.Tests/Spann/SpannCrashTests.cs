using System.Diagnostics;
using Engine.Faster;
using Engine.Index.Spann;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

public class SpannCrashTests
{
    private const int D = CrashChild.Dimension;

    [Fact]
    public void Sigkill_AtRandomPoints_KeepsEveryAcknowledgedWrite()
    {
        bool longRun = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
        RunKills(longRun ? 50 : 5, seed: 2024);
    }

    private static void RunKills(int kills, int seed)
    {
        using var dir = new TestDirectory();
        var train = SpannTestData.Clustered(600, D, seed: 3);
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, new SpannOptions { PostingSize = 8, MaxPostingSize = 32, MinPostingSize = 2 }, d => new FasterWriteAheadLog(d)))
            idx.Train(train);
        var present = new HashSet<long>();
        var maybe = new HashSet<long>(); // deletes begun but not acknowledged
        var rng = new Random(seed);
        string self = typeof(CrashChild).Assembly.Location;
        for (int run = 1; run <= kills; run++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "exec", self, "spann-crash-child", dir.Path, run.ToString(), (seed + run).ToString() }) psi.ArgumentList.Add(a);
            using var child = Process.Start(psi)!;
            var lines = new List<string>();
            var ready = new ManualResetEventSlim();
            child.OutputDataReceived += (_, e) => { if (e.Data is null) return; lock (lines) lines.Add(e.Data); if (e.Data == "READY") ready.Set(); };
            child.BeginOutputReadLine();
            string err = "";
            child.ErrorDataReceived += (_, e) => { if (e.Data is not null) err += e.Data + "\n"; };
            child.BeginErrorReadLine();
            if (!ready.Wait(TimeSpan.FromSeconds(60)))
            {
                child.Kill();
                Assert.Fail($"child {run} did not open the index: {err}");
            }
            Thread.Sleep(rng.Next(50, 600));
            Assert.False(child.HasExited, $"child {run} exited early: {err}");
            child.Kill(); // SIGKILL on Unix
            child.WaitForExit();
            string[] snapshot;
            lock (lines) snapshot = lines.ToArray();
            foreach (var line in snapshot)
            {
                if (line.Length < 5 || !line.EndsWith(" E", StringComparison.Ordinal)) continue; // cut by the kill
                var ids = line[2..^2].Split(',').Select(long.Parse).ToArray();
                switch (line[0])
                {
                    case 'I': foreach (var id in ids) present.Add(id); break;
                    case 'B': foreach (var id in ids) maybe.Add(id); break;
                    case 'D': foreach (var id in ids) { present.Remove(id); maybe.Remove(id); } break;
                }
            }
            using var reopened = SpannIndex.Open(dir.Path, d => new FasterWriteAheadLog(d));
            var v = new float[D];
            foreach (var id in present)
            {
                bool found = reopened.TryReconstruct(id, v);
                if (maybe.Contains(id)) continue;
                Assert.True(found, $"run {run}: acknowledged id {id} is missing after SIGKILL");
                Assert.Equal(SpannTestData.VectorOf(id, D), v);
            }
            foreach (var id in maybe.Where(i => !reopened.TryReconstruct(i, v)).ToList()) { present.Remove(id); maybe.Remove(id); }
            var dd = new float[5]; var ll = new long[5];
            var some = present.Where(i => !maybe.Contains(i)).Take(3).ToArray();
            foreach (var id in some)
            {
                reopened.Search(SpannTestData.VectorOf(id, D), 5, dd, ll);
                Assert.Equal(id, ll[0]);
            }
        }
        Assert.True(present.Count > 0, "children acknowledged no inserts");
    }
}
