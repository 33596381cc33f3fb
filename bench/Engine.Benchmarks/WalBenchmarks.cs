using BenchmarkDotNet.Attributes;
using Engine.Faster;
using Engine.Storage.Wal;

namespace Engine.Benchmarks;

/// <summary>The write-ahead logs a SPANN index can use, by kind name.</summary>
public static class WalKinds
{
    public static IWriteAheadLogProvider Provider(string kind) =>
        kind == FileWriteAheadLogProvider.KindName ? FileWriteAheadLogProvider.Instance : FasterWriteAheadLogProvider.Instance;

    /// <summary>One SPANN insert record of <paramref name="vectors"/> vectors of dimension 96 (type, count, ids, floats).</summary>
    public static byte[] InsertRecord(int vectors) => Enumerable.Range(0, 5 + vectors * (8 + 4 * WalAppendBenchmarks.Dimension)).Select(i => (byte)(i * 31)).ToArray();
}

/// <summary>
/// Appends with durable acknowledgement: each SPANN <c>Add</c> appends its records and commits (file log: fsync of the
/// records, then of the commit slot; FASTER: a strong commit). One record = one vector of dimension 96 (397 bytes).
/// Per-append time; appends per second = 1 / mean.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class WalAppendBenchmarks
{
    public const int Dimension = 96;
    private string _dir = "";
    private IWriteAheadLog? _log;
    private readonly byte[] _record = WalKinds.InsertRecord(1);

    [Params("file", "faster")]
    public string Kind { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "engine-wal-bench-" + Guid.NewGuid().ToString("N"));
        _log = WalKinds.Provider(Kind).Create(_dir);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>One append, one commit (an <c>Add</c> of a single vector).</summary>
    [Benchmark(Baseline = true)]
    public long CommitPerAppend()
    {
        long a = _log!.Append(_record);
        _log.Commit();
        return a;
    }

    /// <summary>100 appends, one commit (group commit); time per append.</summary>
    [Benchmark(OperationsPerInvoke = 100)]
    public long CommitPer100Appends()
    {
        long a = 0;
        for (int i = 0; i < 100; i++) a = _log!.Append(_record);
        _log!.Commit();
        return a;
    }
}

/// <summary>
/// Recovery of a log holding 1 M vectors of dimension 96 (1,000 SPANN insert records of 1,000 vectors, 392 MB): open
/// (recover to the last commit, with every check) and replay every record, files in the page cache. The SPANN work of
/// applying the records is not included (it does not depend on the log).
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 3, invocationCount: 1)]
public class WalRecoveryBenchmarks
{
    private string _dir = "";

    [Params("file", "faster")]
    public string Kind { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "engine-wal-bench-" + Guid.NewGuid().ToString("N"));
        var record = WalKinds.InsertRecord(1000);
        using var log = WalKinds.Provider(Kind).Create(_dir);
        for (int i = 0; i < 1000; i++)
        {
            log.Append(record);
            log.Commit();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark]
    public long OpenAndReplay1MVectors()
    {
        long bytes = 0;
        using var log = WalKinds.Provider(Kind).Open(_dir);
        log.Replay(0, (_, r) => bytes += r.Length);
        if (bytes != 1000L * WalKinds.InsertRecord(1000).Length) throw new InvalidOperationException($"replayed {bytes} bytes");
        return bytes;
    }
}
