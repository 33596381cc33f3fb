namespace Engine.Tests.Support;

/// <summary>
/// The stdout protocol of the crash-test children: "A ids E" before and "I ids E" after an acknowledged upsert batch,
/// "B ids E" / "D ids E" around a delete batch, "C" after a checkpoint. A line cut by the kill (no " E") is ignored.
/// </summary>
public static class CrashLog
{
    /// <summary>Applies the acknowledged operations of <paramref name="lines"/> to <paramref name="present"/> and
    /// returns the batches that were in flight when the child died (null: none).</summary>
    public static (long[]? InFlightInsert, long[]? InFlightDelete) Apply(IEnumerable<string> lines, HashSet<long> present)
    {
        long[]? inFlightInsert = null, inFlightDelete = null;
        foreach (var line in lines)
        {
            if (line.Length < 5 || !line.EndsWith(" E", StringComparison.Ordinal)) continue; // cut by the kill
            var ns = line[2..^2].Split(',').Select(long.Parse).ToArray();
            switch (line[0])
            {
                case 'A': inFlightInsert = ns; break;
                case 'I': foreach (var n in ns) present.Add(n); inFlightInsert = null; break;
                case 'B': inFlightDelete = ns; break;
                case 'D': foreach (var n in ns) present.Remove(n); inFlightDelete = null; break;
            }
        }
        return (inFlightInsert, inFlightDelete);
    }

    /// <summary>
    /// The children's write loop, until the parent kills the process: batches of 1–29 new ids upserted (A/I), batches of
    /// 1–4 of this run's ids deleted (B/D), checkpoints (C), chosen by <paramref name="seed"/>; ids start at <paramref name="firstId"/>.
    /// </summary>
    public static void RunWriter(long firstId, int seed, Action<long[]> upsert, Action<long[]> delete, Action checkpoint)
    {
        var rng = new Random(seed);
        var mine = new List<long>();
        long next = firstId;
        while (true)
        {
            int kind = rng.Next(20);
            if (kind < 14 || mine.Count < 10)
            {
                var ns = Enumerable.Range(0, rng.Next(1, 30)).Select(_ => next++).ToArray();
                Console.WriteLine("A " + string.Join(',', ns) + " E");
                upsert(ns);
                mine.AddRange(ns);
                Console.WriteLine("I " + string.Join(',', ns) + " E");
            }
            else if (kind < 19)
            {
                var ns = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => mine[rng.Next(mine.Count)]).Distinct().ToArray();
                Console.WriteLine("B " + string.Join(',', ns) + " E");
                delete(ns);
                foreach (var n in ns) mine.Remove(n);
                Console.WriteLine("D " + string.Join(',', ns) + " E");
            }
            else
            {
                checkpoint();
                Console.WriteLine("C");
            }
        }
    }
}
