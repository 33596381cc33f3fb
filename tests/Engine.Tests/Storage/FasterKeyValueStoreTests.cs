using Engine.Faster;
using Engine.Tests.Support;

namespace Engine.Tests.Storage;

/// <summary>The FASTER KV store's page checksum files.</summary>
public class FasterKeyValueStoreTests
{
    private static void Fill(FasterKeyValueStore store, int from, int count, int seed)
    {
        var rng = new Random(seed);
        var value = new byte[50_000];
        for (int i = from; i < from + count; i++)
        {
            rng.NextBytes(value);
            store.Upsert(BitConverter.GetBytes(i), value);
        }
    }

    /// <summary>Each checkpoint hashes only the pages new or changed since the previous one; the result must equal a
    /// hash of everything, and a reopen checks the whole covered range.</summary>
    [Fact]
    public async Task IncrementalPageChecksums_EqualAFullRecomputation_AndAreCheckedOnOpen()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("kv");
        Guid token = default;
        using (var store = FasterKeyValueStore.Open(dir, null, 16L << 20))
        {
            for (int g = 0; g < 4; g++)
            {
                Fill(store, g * 100, 100, seed: g); // 5 MB per round: page boundaries fall inside and between rounds
                token = await store.CheckpointAsync();
                var sums = ReadSums(dir, token);
                var full = KvPageChecksums.Compute(token, sums.Begin, sums.End, previous: null, Path.Combine(dir, "kv.log"), 1L << 30);
                Assert.Equal(full.Pages, sums.Pages);
                Assert.True(sums.End > (g * 5L + 4) << 20);
            }
        }
        using (var again = FasterKeyValueStore.Open(dir, token, 16L << 20))
        {
            Assert.Equal(ReadSums(dir, token).End - ReadSums(dir, token).Begin, again.VerifiedLogBytes);
            Assert.NotNull(again.Read(BitConverter.GetBytes(399)));
        }
    }

    private static KvPageChecksums ReadSums(string dir, Guid token)
    {
        var b = File.ReadAllBytes(KvPageChecksums.FileOf(dir, token));
        return KvPageChecksums.Read(dir, token, BitConverter.ToInt64(b, 32), BitConverter.ToInt64(b, 40))!;
    }
}
