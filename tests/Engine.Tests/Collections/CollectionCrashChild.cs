using Engine.Collections;

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
        var rng = new Random(seed);
        using var c = RecordCollection<string>.Open(dir, CollectionTestData.Schema("HNSW8"), Options);
        Console.WriteLine("READY");
        var mine = new List<long>();
        long next = (long)run * 1_000_000;
        for (int op = 0; ; op++)
        {
            int kind = rng.Next(20);
            if (kind < 14 || mine.Count < 10)
            {
                // New keys, or a replacement of one of this run's keys with a new payload number.
                var ns = Enumerable.Range(0, rng.Next(1, 30)).Select(_ => next++).ToArray();
                Console.WriteLine("A " + string.Join(',', ns) + " E");
                c.UpsertBatchAsync(ns.Select(n => CollectionTestData.Make("k" + n, n))).GetAwaiter().GetResult();
                mine.AddRange(ns);
                Console.WriteLine("I " + string.Join(',', ns) + " E");
            }
            else if (kind < 19)
            {
                var ns = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => mine[rng.Next(mine.Count)]).Distinct().ToArray();
                Console.WriteLine("B " + string.Join(',', ns) + " E");
                c.DeleteBatchAsync(ns.Select(n => "k" + n)).GetAwaiter().GetResult();
                foreach (var n in ns) mine.Remove(n);
                Console.WriteLine("D " + string.Join(',', ns) + " E");
            }
            else
            {
                c.CheckpointAsync().GetAwaiter().GetResult();
                Console.WriteLine("C");
            }
        }
    }
}
