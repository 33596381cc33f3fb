using System.Runtime.InteropServices;
using Engine.Index;
using Engine.Index.Spann;
using Engine.Storage.Format;
using Engine.Storage.Wal;
using Engine.Tests.Storage;

namespace Engine.Tests.Spann;

/// <summary>
/// SPANN postings coded behind an OPQ rotation (<c>codec=OPQ{m},PQ{m}</c>, a <see cref="Quantization.TransformedCodec"/>):
/// the rotation is trained with the codec, saved in the metadata's <c>CODP</c> section in front of the codec's own
/// parameters, and a damaged rotation there is corruption. Recall and reopening are covered with the other codecs in
/// <see cref="SpannCodedPostingsTests"/>.
/// </summary>
public class SpannOpqCodecTests
{
    private const int D = 32, N = 2000;
    private static readonly float[] Data = SpannTestData.Clustered(N, D, seed: 77, clusters: 60);
    private static readonly float[] Queries = SpannTestData.Clustered(50, D, seed: 78, clusters: 60);

    private static long[] Range(int count) => Enumerable.Range(0, count).Select(i => (long)i).ToArray();

    private static string Build(TestDirectory dir, string codec)
    {
        string idx = Path.Combine(dir.Path, "idx");
        using var index = SpannIndex.Create(idx, D, Metric.L2, new SpannOptions { PostingSize = 32, Codec = codec, CacheBytes = 0 }, FileWriteAheadLogProvider.Instance);
        index.Train(Data);
        index.Add(Data, Range(N));
        index.Checkpoint();
        return idx;
    }

    [Fact]
    public void TheRotationIsLearntWithTheCodec_AndCodesDifferFromPlainPQ()
    {
        using var opq = new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 32, Codec = "OPQ8,PQ8" }) { BackgroundMaintenance = false };
        using var plain = new SpannIndex(D, Metric.L2, new SpannOptions { PostingSize = 32, Codec = "PQ8" }) { BackgroundMaintenance = false };
        Assert.Equal("SPANN(size=32,codec=OPQ8,PQ8)", opq.Description);
        foreach (var index in new[] { opq, plain })
        {
            index.Train(Data);
            index.Add(Data, Range(N));
        }
        // The rotation is held besides the codebooks: d × d floats more (R and Rᵀ).
        Assert.True(opq.MemoryBytes >= plain.MemoryBytes + 2L * D * D * sizeof(float) - 4096,
            $"OPQ index holds {opq.MemoryBytes} bytes, plain PQ {plain.MemoryBytes}");
        // Without a re-rank the keys are the codes' estimates: the rotation changes them.
        var p = new SpannSearchParameters { Probes = 8, Rerank = 1, Threads = 1 };
        var d1 = new float[50 * 10]; var l1 = new long[50 * 10];
        var d2 = new float[50 * 10]; var l2 = new long[50 * 10];
        opq.Search(Queries, 10, d1, l1, p);
        plain.Search(Queries, 10, d2, l2, p);
        Assert.NotEqual(l2, l1);
    }

    [Fact]
    public void ADimensionTheRotationDoesNotDivide_IsRejectedAtCreate()
    {
        using var dir = new TestDirectory();
        var e = Assert.Throws<ArgumentException>(() => SpannIndex.Create(dir.Path, 30, Metric.L2, new SpannOptions { Codec = "OPQ4,PQ5" }));
        Assert.Contains("OPQ m=4", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.Path, SpannIndex.MetaFileName)));
    }

    [Fact]
    public void InsertsLoggedAfterTheCheckpoint_AreReplayedThroughTheRotation()
    {
        using var dir = new TestDirectory();
        string idx = Path.Combine(dir.Path, "idx");
        double live;
        using (var index = SpannIndex.Create(idx, D, Metric.L2, new SpannOptions { PostingSize = 32, Codec = "OPQ8,PQ8x4", CacheBytes = 0 }, FileWriteAheadLogProvider.Instance))
        {
            index.Train(Data);
            index.Add(Data.AsSpan(0, 1500 * D), Range(1500));
            index.Checkpoint();
            // In the log only: inserts (encoded through the rotation again on replay) and a delete.
            index.Add(Data.AsSpan(1500 * D), Enumerable.Range(1500, N - 1500).Select(i => (long)i).ToArray());
            index.Remove([3, 1600]);
            using var ex0 = new Engine.Index.Flat.FlatIndex(D, Metric.L2);
            ex0.Add(Data, Range(N));
            ex0.Remove([3, 1600]);
            live = SpannTestData.Recall(index, ex0, Queries, 10, new SpannSearchParameters { Probes = 12, Threads = 1 });
        }
        using var reopened = SpannIndex.Open(idx);
        Assert.Equal(N - 2, reopened.Count);
        Assert.True(reopened.Verify().IsClean);
        // Each replayed vector is found as its own nearest neighbour (its code was made through the rotation), and the
        // deleted ones are gone.
        var p = new SpannSearchParameters { Probes = 12, Threads = 1 };
        var dist = new float[1]; var label = new long[1];
        foreach (int id in new[] { 1500, 1777, 1999 })
        {
            reopened.Search(Data.AsSpan(id * D, D), 1, dist, label, p);
            Assert.Equal(id, label[0]);
            Assert.Equal(0f, dist[0], 4);
        }
        Assert.False(reopened.TryReconstruct(1600, new float[D]));
        using var exact = new Engine.Index.Flat.FlatIndex(D, Metric.L2);
        exact.Add(Data, Range(N));
        exact.Remove([3, 1600]);
        double recall = SpannTestData.Recall(reopened, exact, Queries, 10, p);
        // The floor against the exact index, and the replayed index within 0.05 of the one that logged the writes.
        // Not equal: replay places the logged inserts and splits postings differently from the live index, and loses
        // as much recall with plain PQ8x4 codes (0.796 live, 0.754 replayed; OPQ8,PQ8x4: 0.794, 0.758).
        Assert.True(recall >= 0.7 && recall >= live - 0.05, $"recall after replay {recall:F3}, live {live:F3}");
    }

    [Theory]
    [InlineData(0, "not finite")]
    [InlineData(1, "not orthogonal")]
    [InlineData(2, "floats")]
    public void ADamagedRotationInTheMetadata_IsCorruption(int damage, string says)
    {
        using var dir = new TestDirectory();
        string idx = Build(dir, "OPQ8,PQ8");
        using (var reopened = SpannIndex.Open(idx)) Assert.True(reopened.Verify().IsClean);
        DamageRotation(Path.Combine(idx, SpannIndex.MetaFileName), damage);
        var e = Assert.Throws<CorruptIndexException>(() => SpannIndex.Open(idx));
        Assert.Contains(says, e.Message);
        Assert.Contains("OPQ8,PQ8", e.Message);
    }

    // Rewrites the metadata section by section (fresh checksums) with the rotation at the head of CODP damaged: 0 = a
    // NaN entry, 1 = an entry moved by 0.5 (finite, no longer orthogonal), 2 = the section cut to half the rotation.
    private static void DamageRotation(string meta, int damage)
    {
        string copy = meta + ".tmp";
        using (var r = new IndexFileReader(meta, SpannIndex.FileKind))
        using (var w = new IndexFileWriter(copy, r.Header))
        {
            bool seen = false;
            while (r.PeekTag() is { } tag && tag != IndexFile.EndTag)
            {
                var payload = r.ReadSection(tag);
                if (tag == "CODP")
                {
                    seen = true;
                    var f = MemoryMarshal.Cast<byte, float>(payload).ToArray();
                    Assert.True(f.Length > D * D);
                    if (damage == 0) f[2 * D + 7] = float.NaN;
                    else if (damage == 1) f[2 * D + 7] += 0.5f;
                    else f = f[..(D * D / 2)];
                    payload = MemoryMarshal.AsBytes(f.AsSpan()).ToArray();
                }
                w.WriteSection(tag, payload);
            }
            Assert.True(seen, "no CODP section");
            w.Commit();
        }
        File.Move(copy, meta, overwrite: true);
    }
}
