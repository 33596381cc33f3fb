using Engine.Index;
using Engine.Index.Ivf;
using Engine.Index.Spann;
using Engine.Storage.Wal;
using Engine.Tests.Support;

namespace Engine.Tests.Verify;

/// <summary>
/// The corruption sweep of issue 11 ("Must show"): for a small index of each kind, every file is damaged one way at a
/// time (a byte XORed with 0xFF, 0x01 or 0x80, or the file cut to a shorter length), then the index is opened, verified
/// in depth and searched. Each case has exactly one outcome:
/// <list type="bullet">
/// <item><b>detected</b>: open/load, <see cref="IVerifiableIndex.Verify"/> or the search reported
/// <see cref="CorruptIndexException"/> or <see cref="IndexFormatException"/> (the documented exceptions for bad files);</item>
/// <item><b>benign</b>: everything succeeded and the answers are identical to the undamaged index's: the count, and for
/// a fixed query set every label and every distance bit for bit (e.g. a byte in a posting block's page padding, which
/// no reader uses);</item>
/// <item><b>crash</b>: any other exception; <b>hang</b>: a case over <see cref="CaseTimeout"/>; <b>wrong</b>: everything
/// succeeded but some answer differs. The test requires 0 crashes, 0 hangs and 0 wrong answers.</item>
/// </list>
/// CI damages a sample of offsets and lengths (fixed seed); <c>ENGINE_LONG_TESTS=1</c> damages every byte with every
/// pattern and cuts every file to every length.
/// </summary>
public class CorruptionSweepTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int D = 4;
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);
    private static readonly byte[] Patterns = [0xFF, 0x01, 0x80];
    private static bool Full => Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1";
    private static string? Progress => Environment.GetEnvironmentVariable("ENGINE_SWEEP_PROGRESS"); // a file to follow long runs

    /// <summary>What an index answered: count, then labels and distances of every query.</summary>
    private sealed record Answer(long Count, long[] Labels, float[] Distances)
    {
        public bool SameAs(Answer o) => Count == o.Count && Labels.AsSpan().SequenceEqual(o.Labels)
            && System.Runtime.InteropServices.MemoryMarshal.AsBytes(Distances.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(o.Distances.AsSpan()));
    }

    private enum Outcome { Detected, Benign, Crash, Hang, Wrong }

    private sealed class Tally
    {
        private readonly int[] _counts = new int[5];
        public readonly List<string> Failures = new();
        public TimeSpan Elapsed;
        public int this[Outcome o] => _counts[(int)o];
        public int Cases => _counts.Sum();
        public void Count(Outcome o, string label)
        {
            _counts[(int)o]++;
            if (o is Outcome.Crash or Outcome.Hang or Outcome.Wrong) Failures.Add($"{o}: {label}");
        }
        public override string ToString() =>
            $"{Cases} cases: {this[Outcome.Detected]} detected, {this[Outcome.Benign]} benign, {this[Outcome.Crash]} crashes, {this[Outcome.Hang]} hangs, {this[Outcome.Wrong]} wrong"
            + (Elapsed > TimeSpan.Zero ? $" ({Elapsed.TotalSeconds:F1} s)" : "");
    }

    private static float[] Data(int n, int seed) => Ivf.IvfTestData.Clustered(n, D, 6, seed);

    private static Answer Search(IVectorIndex index, float[] queries, SearchParameters p)
    {
        int nq = queries.Length / D, k = 5;
        var labels = new long[nq * k];
        var distances = new float[nq * k];
        index.Search(queries, k, distances, labels, p);
        return new Answer(index.Count, labels, distances);
    }

    // Opens the file index the way the CLI does (IndexFactory.Load, mapped), verifies it, searches every list.
    private static Answer FileTrial(string path, float[] queries)
    {
        using var index = IndexFactory.Load(path);
        ((IVerifiableIndex)index).Verify().ThrowIfCorrupt();
        SearchParameters p = index is IvfIndex ivf ? new IvfSearchParameters { Probes = ivf.ListCount, Threads = 1 } : new SearchParameters { Threads = 1 };
        return Search(index, queries, p);
    }

    [Theory]
    [InlineData("Flat")]
    [InlineData("IVF4,Flat")]
    [InlineData("IVF4,PQ2x4fs,RFlat")]
    [InlineData("HNSW4")]
    [InlineData("HNSW4,SQ8")]
    [InlineData("IVF4,RaBitQfs4,RFlat")]
    [InlineData("IVF4,RaBitQ2,Refine(SQ8)")]
    [InlineData("IVF4,RaBitQfs1")]
    public void Every_damaged_file_index_is_detected_or_answers_exactly_as_before(string spec)
    {
        using var tmp = new TempDir();
        var data = Data(160, 61);
        string path = tmp.File("index.bin");
        using (var index = IndexFactory.Create(spec, D, Metric.L2))
        {
            index.Train(data);
            index.Add(data, Enumerable.Range(0, 160).Select(i => (long)i).ToArray());
            index.Save(path);
        }
        var queries = data.AsSpan(0, 24 * D).ToArray();
        var tally = Sweep(tmp.Path, [path], () => FileTrial(path, queries), seed: spec.Length);
        output.WriteLine($"{spec} ({new FileInfo(path).Length} bytes): {tally}");
        AssertClean(tally);
    }

    /// <summary>Logs and posting codecs the SPANN sweep runs with: raw postings on the file log and on FASTER's; coded
    /// postings (their <c>CODC</c>/<c>CODN</c>/<c>CODP</c> meta sections and the refine file) on the file log.</summary>
    public static TheoryData<string, string?> Logs => new()
    {
        { FileWriteAheadLogProvider.KindName, null },
        { WriteAheadLogs.FasterKind, null },
        { FileWriteAheadLogProvider.KindName, "RaBitQfs4" },
        { FileWriteAheadLogProvider.KindName, "PQ2x4" },
    };

    private static IWriteAheadLogProvider LogFactory(string log) => log switch
    {
        FileWriteAheadLogProvider.KindName => FileWriteAheadLogProvider.Instance,
        WriteAheadLogs.FasterKind => Engine.Faster.FasterWriteAheadLogProvider.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(log), log, "unknown log"),
    };

    [Theory]
    [MemberData(nameof(Logs))]
    public void Every_damaged_file_of_a_spann_directory_is_detected_or_answers_exactly_as_before(string log, string? codec)
    {
        using var tmp = new TempDir();
        var data = Data(160, 62);
        var options = new SpannOptions { PostingSize = 40, MaxPostingSize = 160, MinPostingSize = 2, Replicas = 2, CacheBytes = 0, Codec = codec };
        using (var index = SpannIndex.Create(tmp.Path, D, Metric.L2, options, LogFactory(log)))
        {
            index.Train(data);
            index.Add(data.AsSpan(0, 120 * D), Enumerable.Range(0, 120).Select(i => (long)i).ToArray());
            index.Maintain();
            index.Checkpoint();
            // After the checkpoint, in the log only: adds and a delete.
            index.Add(data.AsSpan(120 * D), Enumerable.Range(120, 40).Select(i => (long)i).ToArray());
            index.Remove([3, 50, 121]);
        }
        var queries = data.AsSpan(0, 24 * D).ToArray();
        Answer Trial()
        {
            using var index = SpannIndex.Open(tmp.Path, new SpannOpenOptions { Log = LogFactory(log) });
            index.BackgroundMaintenance = false;
            index.Verify().ThrowIfCorrupt();
            return Search(index, queries, new SpannSearchParameters { Probes = index.PostingCount, Threads = 1 });
        }
        var files = Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        Assert.Contains(files, f => f.EndsWith(SpannIndex.MetaFileName, StringComparison.Ordinal));
        Assert.Contains(files, f => Path.GetFileName(f).StartsWith("postings-", StringComparison.Ordinal));
        // A cleanly closed FASTER log keeps exactly one commit record (older ones, which FASTER deletes lazily, would
        // make a damaged newest record fall back to an older commit; that fallback is only for a crash mid-commit).
        if (log == WriteAheadLogs.FasterKind)
            Assert.Single(files, f => Path.GetFileName(f).StartsWith("commit.", StringComparison.Ordinal));
        var tally = Sweep(tmp.Path, files, Trial, seed: 7);
        output.WriteLine($"SPANN ({log} log, codec {codec ?? "none"}): {tally}");
        AssertClean(tally);
    }

    private void AssertClean(Tally tally)
    {
        foreach (var f in tally.Failures.Take(20)) output.WriteLine("  " + f);
        Assert.True(tally[Outcome.Crash] == 0 && tally[Outcome.Hang] == 0 && tally[Outcome.Wrong] == 0, $"{tally}\n{string.Join("\n", tally.Failures.Take(20))}");
        Assert.True(tally[Outcome.Detected] > 0, tally.ToString());
    }

    /// <summary>
    /// Damages each of <paramref name="files"/> in turn (everything under <paramref name="root"/> restored before each
    /// case, so trials that write, e.g. an open that cuts garbage, start from the same bytes) and classifies each case.
    /// </summary>
    private Tally Sweep(string root, string[] files, Func<Answer> trial, int seed)
    {
        var pristine = Directory.GetFiles(root, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        var baseline = trial();
        Restore(root, pristine);
        var tally = new Tally();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var rng = new Random(seed);
        foreach (var file in files)
        {
            var perFile = new Tally();
            var fileClock = System.Diagnostics.Stopwatch.StartNew();
            foreach (var (what, damaged) in Damage(pristine[file], rng))
            {
                Restore(root, pristine);
                File.WriteAllBytes(file, damaged);
                string label = $"{Path.GetRelativePath(root, file)} {what}";
                var (outcome, detail) = Classify(trial, baseline);
                if (detail is not null) label += ": " + detail;
                tally.Count(outcome, label);
                perFile.Count(outcome, label);
                if (Progress is { } log && tally.Cases % 5000 == 0) File.AppendAllText(log, $"{DateTime.UtcNow:HH:mm:ss} {label}: {tally}\n");
            }
            perFile.Elapsed = fileClock.Elapsed;
            string line = $"  {Path.GetRelativePath(root, file)} ({pristine[file].Length} bytes): {perFile}";
            output.WriteLine(line);
            if (Progress is { } log2) File.AppendAllText(log2, $"{DateTime.UtcNow:HH:mm:ss} {line}\n");
        }
        tally.Elapsed = clock.Elapsed;
        Restore(root, pristine);
        Assert.True(trial().SameAs(baseline), "the restored index answers as before");
        return tally;
    }

    private static (Outcome, string?) Classify(Func<Answer> trial, Answer baseline)
    {
        var task = Task.Run(trial);
        try
        {
            if (!task.Wait(CaseTimeout)) return (Outcome.Hang, null);
            return (task.Result.SameAs(baseline) ? Outcome.Benign : Outcome.Wrong, null);
        }
        catch (AggregateException ae) when (ae.InnerException is CorruptIndexException or IndexFormatException)
        {
            return (Outcome.Detected, null);
        }
        catch (AggregateException ae)
        {
            return (Outcome.Crash, $"{ae.InnerException?.GetType().Name}: {ae.InnerException?.Message}");
        }
    }

    // The damaged versions of a file: flips (every byte in the full sweep, with every pattern in files up to 16 KiB and
    // with 0xFF in bigger ones, i.e. the posting file, most of which is page padding; a fixed-seed sample of
    // offsets, always including the first and last bytes, in CI) and cuts (every shorter length, or a sample).
    private static IEnumerable<(string What, byte[] Bytes)> Damage(byte[] original, Random rng)
    {
        int n = original.Length;
        IEnumerable<int> offsets = Full ? Enumerable.Range(0, n)
            : new[] { 0, n - 1 }.Concat(Enumerable.Range(0, 40).Select(_ => rng.Next(n))).Where(i => i >= 0 && i < n).Distinct().Order();
        foreach (int at in offsets.ToList())
            foreach (byte pattern in Full ? (n <= 16384 ? Patterns : Patterns[..1]) : [Patterns[rng.Next(Patterns.Length)]])
            {
                var bad = (byte[])original.Clone();
                bad[at] ^= pattern;
                yield return ($"flip {at} ^0x{pattern:X2}", bad);
            }
        IEnumerable<int> lengths = Full ? Enumerable.Range(0, n)
            : new[] { 0, 1, n - 1 }.Concat(Enumerable.Range(0, 12).Select(_ => rng.Next(n))).Where(l => l >= 0 && l < n).Distinct().Order();
        foreach (int length in lengths.ToList()) yield return ($"cut to {length}", original.AsSpan(0, length).ToArray());
    }

    private static void Restore(string root, Dictionary<string, byte[]> pristine)
    {
        foreach (var f in Directory.GetFiles(root, "*", SearchOption.AllDirectories))
            if (!pristine.ContainsKey(f)) File.Delete(f);
        foreach (var (f, bytes) in pristine)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(f)!);
            File.WriteAllBytes(f, bytes);
        }
    }
}
