using Engine.Index.Spann;

namespace Engine.Tests.Spann;

/// <summary>
/// Entry point of the test assembly. Normally unused (the test host runs tests); crash tests start
/// <c>dotnet Engine.Tests.dll spann-crash-child DIR RUN SEED</c>, which mutates a durable SPANN index and
/// prints one line before (A = insert, B = delete) and after (I, D) each operation, ending in " E" so a line cut by the
/// kill is ignored, until the parent kills it with SIGKILL. Between them it checkpoints (C) and runs maintenance (M);
/// background splits and merges run throughout. The index's own log kind (from its metadata) is used.
/// </summary>
public static class TestProgram
{
    public static int Main(string[] args)
    {
        if (args.Length == 4 && args[0] == "spann-crash-child") return CrashChild.Run(args[1], int.Parse(args[2]), int.Parse(args[3]));
        if (args.Length == 4 && args[0] == "collection-crash-child") return Collections.CollectionCrashChild.Run(args[1], int.Parse(args[2]), int.Parse(args[3]));
        if (args.Length == 4 && args[0] == "vectordata-crash-child") return VectorData.VectorDataCrashChild.Run(args[1], int.Parse(args[2]), int.Parse(args[3]));
        Console.Error.WriteLine("Engine.Tests is run by the test host; as a program it only serves crash tests.");
        return 2;
    }
}

internal static class CrashChild
{
    public const int Dimension = 16;

    public static int Run(string dir, int run, int seed)
    {
        var rng = new Random(seed);
        using var index = SpannIndex.Open(dir);
        Console.WriteLine("READY");
        var mine = new List<long>();
        long next = (long)run * 1_000_000;
        for (int op = 0; ; op++)
        {
            int kind = rng.Next(20);
            if (kind < 13 || mine.Count < 10)
            {
                int b = rng.Next(1, 20);
                var ids = new long[b];
                var vectors = new float[b * Dimension];
                for (int i = 0; i < b; i++)
                {
                    ids[i] = next++;
                    SpannTestData.VectorOf(ids[i], Dimension).CopyTo(vectors, i * Dimension);
                }
                Console.WriteLine("A " + string.Join(',', ids) + " E");
                index.Add(vectors, ids);
                mine.AddRange(ids);
                Console.WriteLine("I " + string.Join(',', ids) + " E");
            }
            else if (kind < 17)
            {
                var ids = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => mine[rng.Next(mine.Count)]).Distinct().ToArray();
                Console.WriteLine("B " + string.Join(',', ids) + " E");
                index.Remove(ids);
                foreach (var id in ids) mine.Remove(id);
                Console.WriteLine("D " + string.Join(',', ids) + " E");
            }
            else if (kind < 19)
            {
                index.Checkpoint();
                Console.WriteLine("C");
            }
            else
            {
                index.Maintain();
                Console.WriteLine("M");
            }
        }
    }
}
