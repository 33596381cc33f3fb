using Engine.Collections;
using Engine.Tests.Support;
using Engine.VectorData;
using Microsoft.Extensions.VectorData;
using static Engine.Tests.VectorData.VectorDataTestData;

namespace Engine.Tests.VectorData;

/// <summary>
/// Child process of <see cref="VectorDataCrashTests"/>: <c>dotnet Engine.Tests.dll vectordata-crash-child DIR RUN SEED</c>
/// opens the store, prints READY, then upserts and deletes through the VectorData connector (and checkpoints through
/// the underlying collection) until it is killed, in the <see cref="CrashLog"/> protocol.
/// </summary>
internal static class VectorDataCrashChild
{
    public static readonly EngineVectorStoreOptions Options = new() { Collection = new CollectionOptions { CheckpointLogBytes = 1L << 20 } };

    public static int Run(string dir, int run, int seed)
    {
        using var store = new EngineVectorStore(dir, Options);
        var docs = store.GetCollection<string, VdDoc>("docs");
        docs.EnsureCollectionExistsAsync().GetAwaiter().GetResult();
        var inner = (RecordCollection<string>)docs.GetService(typeof(RecordCollection<string>))!;
        Console.WriteLine("READY");
        CrashLog.RunWriter(run * 100_000L, seed,
            ns => docs.UpsertAsync(ns.Select(n => Doc((int)n))).GetAwaiter().GetResult(),
            ns => docs.DeleteAsync(ns.Select(n => "doc-" + n)).GetAwaiter().GetResult(),
            () => inner.CheckpointAsync().GetAwaiter().GetResult());
        return 0;
    }
}

public class VectorDataCrashTests
{
    /// <summary>
    /// SIGKILL a child that writes through the connector at random points (6 kills; 40 with ENGINE_LONG_TESTS=1): after
    /// each, a new store must open the collection with every acknowledged record (payload and vector equal to what was
    /// written), an interrupted batch all or nothing, the records, key map and index in agreement, and search finding them.
    /// </summary>
    [Fact]
    public async Task Sigkill_DuringUpserts_LosesNoAcknowledgedRecord()
    {
        int kills = Environment.GetEnvironmentVariable("ENGINE_LONG_TESTS") == "1" ? 40 : 6;
        using var dir = new TempDir();
        var present = new HashSet<long>();
        var rng = new Random(7);
        for (int run = 1; run <= kills; run++)
        {
            using var child = new KilledChild("vectordata-crash-child", dir.Path, run.ToString(), (500 + run).ToString());
            child.WaitReady(TimeSpan.FromSeconds(120));
            await Task.Delay(rng.Next(100, 700));
            string[] snapshot = child.Kill();
            var (inFlightInsert, inFlightDelete) = CrashLog.Apply(snapshot, present);

            using var store = new EngineVectorStore(dir.Path, VectorDataCrashChild.Options);
            var docs = store.GetCollection<string, VdDoc>("docs");
            var inner = (RecordCollection<string>)docs.GetService(typeof(RecordCollection<string>))!;
            inner.VerifyConsistency();
            if (inFlightInsert is not null)
            {
                int visible = (await docs.GetAsync(inFlightInsert.Select(n => "doc-" + n)).ToListAsync()).Count;
                Assert.True(visible == 0 || visible == inFlightInsert.Length, $"run {run}: {visible} of {inFlightInsert.Length} records of an unacknowledged batch are visible");
                if (visible > 0) foreach (var n in inFlightInsert) present.Add(n);
            }
            if (inFlightDelete is not null)
            {
                var still = (await docs.GetAsync(inFlightDelete.Where(present.Contains).Select(n => "doc-" + n)).ToListAsync()).Count;
                int candidates = inFlightDelete.Count(present.Contains);
                Assert.True(still == 0 || still == candidates, $"run {run}: {candidates - still} of {candidates} deletes of an unacknowledged batch applied");
                if (still == 0) foreach (var n in inFlightDelete) present.Remove(n);
            }
            var all = await docs.GetAsync(d => true, int.MaxValue, new FilteredRecordRetrievalOptions<VdDoc> { IncludeVectors = true }).ToListAsync();
            Assert.Equal(present.Count, all.Count);
            var byId = all.ToDictionary(d => d.Id);
            foreach (var n in present)
            {
                Assert.True(byId.TryGetValue("doc-" + n, out var got), $"run {run}: acknowledged record doc-{n} is missing after SIGKILL");
                VectorDataCrudTests.AssertSameDoc(Doc((int)n), got!, vectors: true);
            }
            foreach (var n in present.Take(3))
                Assert.Equal("doc-" + n, (await docs.SearchAsync(VectorOf((int)n), 1).ToListAsync())[0].Record.Id);
        }
        Assert.True(present.Count > 0, "children acknowledged no writes");
    }
}
