using Engine.Collections;
using Engine.Tests.Support;

namespace Engine.Tests.Collections;

/// <summary>
/// Child process of <see cref="CollectionCrashTests"/>: <c>dotnet Engine.Tests.dll collection-crash-child DIR RUN SEED</c>
/// opens the collection, prints READY, then upserts (A before, I after), deletes (B, D) and checkpoints (C) until it is
/// killed. Lines end in " E" so that a line cut by the kill is ignored.
/// </summary>
internal static class CollectionCrashChild
{
    public static readonly CollectionOptions Options = new() { CheckpointLogBytes = 1L << 20 };

    public static int Run(string dir, int run, int seed)
    {
        using var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema("HNSW8"), Options);
        Console.WriteLine("READY");
        CrashLog.RunWriter((long)run * 1_000_000, seed,
            ns => c.UpsertBatchAsync(ns.Select(n => CollectionTestData.Make("k" + n, n))).GetAwaiter().GetResult(),
            ns => c.DeleteBatchAsync(ns.Select(n => "k" + n)).GetAwaiter().GetResult(),
            () => c.CheckpointAsync().GetAwaiter().GetResult());
        return 0;
    }
}
