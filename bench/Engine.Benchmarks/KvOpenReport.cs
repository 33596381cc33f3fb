using System.Diagnostics;
using Engine.Faster;

namespace Engine.Benchmarks;

/// <summary>
/// <c>-- kv-open [MB] [OPENS]</c>: the open-time cost of checking FASTER KV's page checksums. Writes MB megabytes of
/// 64 KiB random values (seed 7) into a store, checkpoints it, then opens it OPENS times with its page checksum file
/// (the log checked before FASTER's recovery) and OPENS times with the file moved aside (unchecked, as a store from
/// before these files opens), alternating, and prints the medians.
/// </summary>
public static class KvOpenReport
{
    public static int Run(string[] args)
    {
        int mb = args.Length > 0 ? int.Parse(args[0]) : 400;
        int opens = args.Length > 1 ? int.Parse(args[1]) : 7;
        string dir = Path.Combine(Path.GetTempPath(), "kv-open-" + Guid.NewGuid().ToString("N"));
        try
        {
            Guid token;
            var value = new byte[64 << 10];
            var rng = new Random(7);
            var write = Stopwatch.StartNew();
            using (var store = FasterKeyValueStore.Open(dir, null))
            {
                for (int i = 0; i < mb * 16; i++)
                {
                    rng.NextBytes(value);
                    store.Upsert(BitConverter.GetBytes(i), value);
                }
                var cp = Stopwatch.StartNew();
                token = store.CheckpointAsync().GetAwaiter().GetResult();
                Console.WriteLine($"wrote {mb} MB in {write.Elapsed.TotalSeconds:F1} s; checkpoint (with the first, full page hash) {cp.Elapsed.TotalSeconds:F2} s");
            }
            string sums = Path.Combine(dir, "checksums", token.ToString("N") + ".crc"), aside = sums + ".aside";
            var verified = new List<double>();
            var unverified = new List<double>();
            long bytes = 0;
            for (int i = 0; i < opens; i++)
            {
                foreach (bool check in new[] { i % 2 == 0, i % 2 != 0 })
                {
                    if (!check) File.Move(sums, aside);
                    var t = Stopwatch.StartNew();
                    using (var store = FasterKeyValueStore.Open(dir, token))
                    {
                        t.Stop();
                        if (check) bytes = store.VerifiedLogBytes;
                    }
                    if (!check) File.Move(aside, sums);
                    (check ? verified : unverified).Add(t.Elapsed.TotalMilliseconds);
                }
            }
            double Median(List<double> l) { l.Sort(); return l[l.Count / 2]; }
            Console.WriteLine($"open, {opens} each, median: with page checksums {Median(verified):F0} ms ({bytes / 1e6:F0} MB checked), " +
                $"without {Median(unverified):F0} ms; cost {Median(verified) - Median(unverified):F0} ms");
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
