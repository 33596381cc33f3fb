using System.Diagnostics;
using Engine.Cli;
using Engine.Data;
using Engine.Index.Spann;
using Engine.Tests.Support;

namespace Engine.Tests.Cli;

/// <summary>
/// Defect 9 of issue 11: a killed <c>engine build</c> left a directory that opened as a complete, empty index. The
/// build now becomes visible atomically; these tests kill real <c>engine build</c> processes with SIGKILL.
/// </summary>
public class BuildKillTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int N = 3000;

    [Theory]
    [InlineData("SPANN(size=16,max=64)")]
    [InlineData("IVF16,Flat")]
    public void Killed_build_leaves_no_index_or_the_complete_one_and_a_new_build_works(string spec)
    {
        bool longRun = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
        int kills = longRun ? 24 : 3;
        using var tmp = new TempDir();
        string data = tmp.File("set");
        SyntheticData.ClusteredDataSet("set", N, 20, 16, 12, 31, Metric.L2, groundTruthK: 10).Save(data);
        string cli = Path.Combine(AppContext.BaseDirectory, "Engine.Cli.dll");
        var rng = new Random(spec.Length * 7919 + 9);
        // One uninterrupted build measures how long a build takes here; kills then land anywhere from early in the
        // build to just past its end, so some hit the publishing step.
        var clock = Stopwatch.StartNew();
        Assert.True(RunBuild(cli, data, spec, tmp.File("calibration"), int.MaxValue));
        int buildMs = (int)clock.ElapsedMilliseconds;
        int absent = 0, complete = 0;
        for (int run = 0; run < kills; run++)
        {
            string dir = tmp.File($"idx{run}");
            RunBuild(cli, data, spec, dir, rng.Next(buildMs / 4, buildMs * 11 / 10));
            if (HoldsIndex(dir))
            {
                complete++;
                using var idx = IndexDirectory.Open(dir);
                Assert.Equal(N, idx.Count);
                Assert.True(idx.TryReconstruct(N - 1, new float[16]), $"run {run}: the last vector is missing");
                Assert.Throws<ArgumentException>(() => BuildCommand.Run(data, spec, dir, TextWriter.Null)); // refused: holds an index
            }
            else
            {
                absent++;
                Assert.Equal(0, BuildCommand.Run(data, spec, dir, TextWriter.Null)); // a new build into it works
                using var idx = IndexDirectory.Open(dir);
                Assert.Equal(N, idx.Count);
            }
            Assert.Empty(Directory.GetDirectories(tmp.Path, $"idx{run}.building-*")); // the stale build directory is gone
        }
        output.WriteLine($"{spec}: a build takes {buildMs} ms; {kills} kills, {absent} left no index, {complete} left the complete index");
    }

    // Runs `engine build` as a child process and SIGKILLs it after killAfterMs unless it finished; true when it finished.
    private static bool RunBuild(string cli, string data, string spec, string dir, int killAfterMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "exec", cli, "build", "--data", data, "--index", spec, "--dir", dir }) psi.ArgumentList.Add(a);
        using var child = Process.Start(psi)!;
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        bool finished = child.WaitForExit(killAfterMs);
        if (!finished) child.Kill(); // SIGKILL on Unix
        child.WaitForExit();
        return finished && child.ExitCode == 0;
    }

    private static (string Data, string Dir) SmallSet(TempDir tmp, int seed)
    {
        string data = tmp.File("set");
        SyntheticData.ClusteredDataSet("set", 500, 10, 8, 12, seed, Metric.L2, groundTruthK: 10).Save(data);
        return (data, tmp.File("idx"));
    }

    private static bool HoldsIndex(string dir) =>
        File.Exists(Path.Combine(dir, SpannIndex.MetaFileName)) || File.Exists(Path.Combine(dir, IndexDirectory.IndexFileName));

    [Fact]
    public void Build_refuses_while_another_build_into_the_same_directory_runs_and_removes_stale_ones()
    {
        using var tmp = new TempDir();
        var (data, dir) = SmallSet(tmp, 32);
        // A build directory owned by a running process (pid 1, init, always runs).
        string running = dir + ".building-1-abcdef12";
        Directory.CreateDirectory(running);
        var ex = Assert.Throws<IOException>(() => BuildCommand.Run(data, "Flat", dir, TextWriter.Null));
        Assert.Contains(running, ex.Message);
        Assert.False(Directory.Exists(dir));
        Directory.Delete(running);
        // A stale one (no such process) is removed by the next build.
        string stale = dir + ".building-2147483646-abcdef12";
        Directory.CreateDirectory(Path.Combine(stale, "wal"));
        Assert.Equal(0, BuildCommand.Run(data, "SPANN(size=16,max=64)", dir, TextWriter.Null));
        Assert.False(Directory.Exists(stale));
        Assert.Empty(Directory.GetDirectories(tmp.Path, "*.building-*"));
    }

    [Fact]
    public void Build_into_an_existing_directory_without_an_index_keeps_its_files()
    {
        using var tmp = new TempDir();
        var (data, dir) = SmallSet(tmp, 33);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");
        Assert.Equal(0, BuildCommand.Run(data, "SPANN(size=16,max=64)", dir, TextWriter.Null));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(dir, "notes.txt")));
        using var idx = IndexDirectory.Open(dir);
        Assert.Equal(500, idx.Count);
    }
}
