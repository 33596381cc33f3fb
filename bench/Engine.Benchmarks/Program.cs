using BenchmarkDotNet.Running;

namespace Engine.Benchmarks;

/// <summary>
/// Entry point. <c>dotnet run -c Release --project bench/Engine.Benchmarks -- --filter '*' --job short</c> runs the
/// BenchmarkDotNet suites; <c>-- scan</c> prints the quick bandwidth / GFLOP/s report (<see cref="ScanReport"/>);
/// <c>-- wal-spann [N]</c> times SPANN recovery of N logged vectors per log kind (<see cref="WalSpannRecoveryReport"/>);
/// <c>-- collections [N] [D] [SPEC]</c> times record-collection upserts, filtered search and reopen (<see cref="CollectionsReport"/>);
/// <c>-- hnsw DIR [SPEC] [NQ]</c> prints the engine's side of the HNSW comparison with hnswlib (<see cref="HnswPeerReport"/>);
/// <c>-- kv-open [MB] [OPENS]</c> times FASTER KV's open with and without its page checksum check (<see cref="KvOpenReport"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "scan") return ScanReport.Run(args[1..]);
        if (args.Length > 0 && args[0] == "wal-spann") return WalSpannRecoveryReport.Run(args[1..]);
        if (args.Length > 0 && args[0] == "collections") return CollectionsReport.Run(args[1..]);
        if (args.Length > 0 && args[0] == "hnsw") return HnswPeerReport.Run(args[1..]);
        if (args.Length > 0 && args[0] == "kv-open") return KvOpenReport.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
