using Engine.Index.Hnsw;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hnsw;

public class HnswConcurrencyTests
{
    private const int D = 16, K = 10;

    [Fact]
    public async Task SearchesDuringInsertsAndRepairsSeeOnlyWholeNodes()
    {
        // Ids are never reused, so a result is correct only if its id was inserted and its distance is the one to
        // that id's vector: a torn read (half-linked node, reused slot, half-written row) would break that.
        const int Batches = 6, Batch = 400;
        var all = IvfTestData.Clustered(Batches * Batch + 64, D, 20, seed: 71);
        var queries = all[(Batches * Batch * D)..];
        using var index = new HnswIndex("HNSW8,efC40", D) { BuildThreads = 2 };
        index.Add(all.AsSpan(0, Batch * D), IvfTestData.Ids(Batch));
        int searches = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var done = new ManualResetEventSlim();
        var readers = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
        {
            var dist = new float[K];
            var lab = new long[K];
            var p = new HnswSearchParameters { Ef = 32, Threads = 1 };
            for (int i = t; !done.IsSet || i < t + 200; i++)
            {
                var q = queries.AsSpan(i % 64 * D, D);
                index.Search(q, K, dist, lab, p);
                Interlocked.Increment(ref searches);
                var seen = new HashSet<long>();
                for (int j = 0; j < K; j++)
                {
                    if (lab[j] < 0) continue;
                    if (lab[j] >= Batches * Batch || !seen.Add(lab[j])) { failures.Enqueue($"bad id {lab[j]}"); continue; }
                    float exact = Engine.Distance.Distances.SquaredL2(q, all.AsSpan((int)lab[j] * D, D));
                    if (Math.Abs(exact - dist[j]) > 1e-4f * Math.Max(1f, exact)) failures.Enqueue($"id {lab[j]}: {dist[j]} vs {exact}");
                    if (j > 0 && dist[j] < dist[j - 1]) failures.Enqueue("unsorted row");
                }
            }
        })).ToArray();
        for (int b = 1; b < Batches; b++)
        {
            index.Add(all.AsSpan(b * Batch * D, Batch * D), IvfTestData.Ids(Batch, b * Batch));
            // Remove a third of the previous batch: crosses the repair threshold, so slots are freed and reused.
            index.Remove(IvfTestData.Ids(Batch, (b - 1) * Batch).Where(i => i % 3 == 0).ToArray());
        }
        done.Set();
        await Task.WhenAll(readers);
        Assert.Empty(failures);
        Assert.True(searches >= 400);
        Assert.True(index.SlotCount < Batches * Batch, $"slots {index.SlotCount}: freed slots were reused");
    }
}
