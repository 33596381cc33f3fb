using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Index.Spann;
using Engine.Mining;
using Engine.Tests.Ivf;
using Engine.Tests.Support;

namespace Engine.Tests.Hardening;

/// <summary>
/// Issue 11 defect 3: the exception a caller sees must not depend on the thread count. Each index fails the same way
/// with 1 and 4 threads: a corrupt posting is a <see cref="CorruptIndexException"/>, a failing filter or reconstruct
/// surfaces as its own exception, never as an <see cref="AggregateException"/>.
/// </summary>
public class ThreadCountExceptionTests
{
    private const int D = 16;

    /// <summary>A filter that fails on one id, as a faulty user callback would.</summary>
    private sealed class FaultingFilter(long badId) : IIdFilter
    {
        public bool IsAllowed(long id) =>
            id == badId ? throw new CorruptIndexException("filter-source", id, "injected fault") : true;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Spann_CorruptPostingOnDisk_IsCorruptIndexException(int threads)
    {
        using var dir = new TempDir();
        var data = IvfTestData.Clustered(2000, D, 20, seed: 3);
        using (var idx = SpannIndex.Create(dir.Path, D, Metric.L2, new SpannOptions { PostingSize = 16, MaxPostingSize = 64, CacheBytes = 0 }))
        {
            idx.Train(data);
            idx.Add(data, IvfTestData.Ids(2000));
            idx.Maintain(); // nothing left for Open to queue
            idx.Checkpoint();
        }
        using var index = SpannIndex.Open(dir.Path);
        index.BackgroundMaintenance = false;
        index.WaitForMaintenance(); // whatever Open queued runs now, before the damage (else Dispose reports it)
        // Damage every posting block on disk after the index opened (so only the search reads them).
        string postings = Directory.GetFiles(dir.Path, "postings-*.dat").Single();
        var original = File.ReadAllBytes(postings);
        var junk = new byte[original.Length];
        new Random(7).NextBytes(junk);
        Exception? ex;
        try
        {
            using (var f = new FileStream(postings, FileMode.Open, FileAccess.Write)) f.Write(junk);
            int nq = 64;
            ex = Record.Exception(() => index.Search(data.AsSpan(0, nq * D), 5, new float[nq * 5], new long[nq * 5],
                new SpannSearchParameters { Threads = threads }));
        }
        finally
        {
            using var f = new FileStream(postings, FileMode.Open, FileAccess.Write);
            f.Write(original);
        }
        var corrupt = Assert.IsType<CorruptIndexException>(ex);
        Assert.Equal(Path.GetFullPath(postings), Path.GetFullPath(corrupt.FilePath));
        Assert.Contains(nameof(SpannIndex), corrupt.StackTrace); // the original stack, not the rethrow site only
    }

    [Theory]
    [InlineData("Flat", 1)]
    [InlineData("Flat", 4)]
    [InlineData("IVF8,Flat", 1)]
    [InlineData("IVF8,Flat", 4)]
    [InlineData("IVF8,PQ4", 1)]
    [InlineData("IVF8,PQ4", 4)]
    [InlineData("SPANN", 1)]
    [InlineData("SPANN", 4)]
    [InlineData("HNSW8", 1)]
    [InlineData("HNSW8", 4)]
    public void FaultingFilter_SurfacesUnwrapped(string spec, int threads)
    {
        var data = IvfTestData.Clustered(4000, D, 20, seed: 4);
        using var index = Engine.Index.IndexFactory.Create(spec, D, Metric.L2);
        index.Train(data);
        index.Add(data, IvfTestData.Ids(4000));
        int nq = 256;
        // Each query's own row is its nearest neighbour, so the filter sees (and fails on) id 200.
        var p = spec.StartsWith("IVF", StringComparison.Ordinal)
            ? new IvfSearchParameters { Threads = threads, Filter = new FaultingFilter(200), Probes = 8 }
            : new SearchParameters { Threads = threads, Filter = new FaultingFilter(200) };
        var ex = Record.Exception(() => index.Search(data.AsSpan(0, nq * D), 5, new float[nq * 5], new long[nq * 5], p));
        var corrupt = Assert.IsType<CorruptIndexException>(ex);
        Assert.Equal(200, corrupt.Offset);
        Assert.Contains(nameof(FaultingFilter), corrupt.StackTrace);
    }

    /// <summary>Delegates to a Flat index but fails to reconstruct one id (a damaged stored vector).</summary>
    private sealed class FaultingReconstruct(FlatIndex inner, long badId) : IVectorIndex
    {
        public int Dimension => inner.Dimension;
        public Metric Metric => inner.Metric;
        public long Count => inner.Count;
        public bool IsTrained => true;
        public string Description => inner.Description;
        public long MemoryBytes => inner.MemoryBytes;
        public void Train(ReadOnlySpan<float> vectors) => inner.Train(vectors);
        public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids) => inner.Add(vectors, ids);
        public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null) =>
            inner.Search(queries, k, distances, labels, parameters);
        public int Remove(ReadOnlySpan<long> ids) => inner.Remove(ids);
        public bool TryReconstruct(long id, Span<float> destination) =>
            id == badId ? throw new CorruptIndexException("vectors", id, "injected fault") : inner.TryReconstruct(id, destination);
        public void Save(string path) => inner.Save(path);
        public void Dispose() => inner.Dispose();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Miner_FaultInParallelCandidateWork_SurfacesUnwrapped(int threads)
    {
        var data = IvfTestData.Clustered(500, D, 10, seed: 5);
        using var index = new FaultingReconstruct(new FlatIndex(D, Metric.L2), badId: 499);
        index.Add(data, IvfTestData.Ids(500));
        // Anchors are external vectors equal to rows 0..63; positives 0..63; id 499 is a candidate of some anchor
        // (the depth covers the whole corpus), reconstructed only by the exact re-scoring inside the parallel loop.
        var positives = Enumerable.Range(0, 64).Select(i => new long[] { i }).ToArray();
        var input = MiningInput.FromVectors(data.AsSpan(0, 64 * D).ToArray(), D, positives);
        var miner = new HardNegativeMiner(index, new MiningOptions { Threads = threads, RescoreExact = true, CandidateDepth = 500, RangeMax = 500 });
        var ex = Record.Exception(() => miner.MineAll(input, out _));
        var corrupt = Assert.IsType<CorruptIndexException>(ex);
        Assert.Equal(499, corrupt.Offset);
    }

    [Fact]
    public void ParallelWork_Rethrows_FirstInner_WithOriginalStack()
    {
        var ex = Record.Exception(() => ParallelWork.For(0, 64, 4, i =>
        {
            if (i == 17) ThrowDeep();
        }));
        var e = Assert.IsType<InvalidDataException>(ex);
        Assert.Contains(nameof(ThrowDeep), e.StackTrace);
    }

    private static void ThrowDeep() => throw new InvalidDataException("deep");
}
