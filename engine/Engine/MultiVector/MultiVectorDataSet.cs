using Engine.Data;
using Engine.Distance;

namespace Engine.MultiVector;

/// <summary>
/// A multi-vector data-set directory: <c>base.tokens.fvecs</c> + <c>base.counts.ivecs</c> (every item's tokens back
/// to back, and one token count per item), the same two files for <c>query</c>, <c>gt.ivecs</c> (exact Chamfer
/// top-k item numbers per query, best first) and <c>meta.json</c> (name, metric <c>ip</c>, n, nq, token d).
/// </summary>
public sealed class MultiVectorDataSet
{
    /// <summary>Tokens of the base items.</summary>
    public const string BaseTokensFile = "base.tokens.fvecs";
    /// <summary>Token count per base item (one int per row).</summary>
    public const string BaseCountsFile = "base.counts.ivecs";
    /// <summary>Tokens of the queries.</summary>
    public const string QueryTokensFile = "query.tokens.fvecs";
    /// <summary>Token count per query.</summary>
    public const string QueryCountsFile = "query.counts.ivecs";

    /// <summary>Creates a data set (ground truth optional).</summary>
    /// <exception cref="ArgumentException">Base and queries differ in dimension, or the ground truth has the wrong shape.</exception>
    public MultiVectorDataSet(string name, MultiVectorSet baseItems, MultiVectorSet queries, int[]? groundTruth, int groundTruthK)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(baseItems);
        ArgumentNullException.ThrowIfNull(queries);
        if (baseItems.Dimension != queries.Dimension)
            throw new ArgumentException($"Mixed dimensions: base tokens have d={baseItems.Dimension}, query tokens d={queries.Dimension}.", nameof(queries));
        if (groundTruth is not null && (groundTruthK <= 0 || groundTruth.Length != (long)queries.Count * groundTruthK))
            throw new ArgumentException($"The ground truth holds {groundTruth.Length} ids, not {queries.Count} queries × k={groundTruthK}.", nameof(groundTruth));
        (Name, Base, Queries, GroundTruth, GroundTruthK) = (name, baseItems, queries, groundTruth, groundTruth is null ? 0 : groundTruthK);
    }

    /// <summary>Data-set name.</summary>
    public string Name { get; }
    /// <summary>Base items.</summary>
    public MultiVectorSet Base { get; }
    /// <summary>Queries.</summary>
    public MultiVectorSet Queries { get; }
    /// <summary>Exact Chamfer top-k per query (item numbers), or null.</summary>
    public int[]? GroundTruth { get; }
    /// <summary>Ids per query in <see cref="GroundTruth"/>.</summary>
    public int GroundTruthK { get; }

    /// <summary>Writes the directory (created when missing).</summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        Write(directory, BaseTokensFile, BaseCountsFile, Base);
        Write(directory, QueryTokensFile, QueryCountsFile, Queries);
        if (GroundTruth is not null) VectorFiles.Write(Path.Combine(directory, DataSet.GroundTruthFile), GroundTruth, GroundTruthK);
        new DataSetMeta(Name, Metric.InnerProduct, Base.Count, Queries.Count, Base.Dimension).Write(Path.Combine(directory, DataSet.MetaFile));
    }

    /// <summary>Reads a directory written by <see cref="Save"/>, checking every file against meta.json.</summary>
    /// <param name="directory">The directory.</param>
    /// <param name="maxQueries">Keep only the first queries (0 = all).</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="DataFormatException">Files that disagree with each other or with meta.json.</exception>
    public static MultiVectorDataSet Load(string directory, int maxQueries = 0)
    {
        string metaPath = Path.Combine(directory, DataSet.MetaFile);
        var meta = DataSetMeta.Read(metaPath);
        var items = Read(directory, BaseTokensFile, BaseCountsFile, meta.Count, meta.Dimension);
        var queries = Read(directory, QueryTokensFile, QueryCountsFile, meta.QueryCount, meta.Dimension);
        int[]? gt = null;
        int k = 0;
        string gtPath = Path.Combine(directory, DataSet.GroundTruthFile);
        if (File.Exists(gtPath))
        {
            var m = VectorFiles.ReadInts(gtPath);
            if (m.Rows != queries.Count) throw new DataFormatException(gtPath, $"{m.Rows} ground-truth rows for {queries.Count} queries.");
            foreach (int id in m.Data)
                if (id < -1 || id >= items.Count) throw new DataFormatException(gtPath, $"ground-truth id {id} is outside 0..{items.Count - 1}.");
            (gt, k) = (m.Data, m.Columns);
        }
        if (maxQueries > 0 && maxQueries < queries.Count)
        {
            queries = queries.Slice(0, maxQueries);
            if (gt is not null) gt = gt[..(maxQueries * k)];
        }
        return new MultiVectorDataSet(meta.Name, items, queries, gt, k);
    }

    private static void Write(string directory, string tokensFile, string countsFile, MultiVectorSet set)
    {
        VectorFiles.Write(Path.Combine(directory, tokensFile), set.Tokens, set.Dimension);
        var counts = new int[set.Count];
        for (int i = 0; i < counts.Length; i++) counts[i] = set.TokenCount(i);
        VectorFiles.Write(Path.Combine(directory, countsFile), counts, 1);
    }

    private static MultiVectorSet Read(string directory, string tokensFile, string countsFile, int items, int d)
    {
        string tokensPath = Path.Combine(directory, tokensFile), countsPath = Path.Combine(directory, countsFile);
        var tokens = VectorFiles.ReadFloats(tokensPath);
        var counts = VectorFiles.ReadInts(countsPath);
        if (counts.Columns != 1 || counts.Rows != items)
            throw new DataFormatException(countsPath, $"expected {items} rows of one token count, found {counts.Rows} × {counts.Columns}.");
        if (tokens.Columns != d && tokens.Rows > 0)
            throw new DataFormatException(tokensPath, $"tokens have d={tokens.Columns}, meta.json says d={d}.");
        try { return new MultiVectorSet(d, tokens.Data, counts.Data); }
        catch (ArgumentException e) { throw new DataFormatException(tokensPath, e.Message, e); }
    }
}

/// <summary>Exact multi-vector ground truth: Chamfer similarity of every query with every item.</summary>
public static class ExactChamfer
{
    /// <summary>
    /// Top-k item numbers (best first; ties by smaller number; −1 padding) of each query by Chamfer similarity,
    /// computed with the GEMM kernel on blocks of items.
    /// </summary>
    /// <exception cref="ArgumentException">Mixed dimensions or k &lt; 1.</exception>
    public static int[] TopK(MultiVectorSet items, MultiVectorSet queries, int k, int threads = 0, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(queries);
        if (items.Dimension != queries.Dimension)
            throw new ArgumentException($"Mixed dimensions: items have d={items.Dimension}, queries d={queries.Dimension}.", nameof(queries));
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        SearchParameters.CheckThreads(threads, nameof(threads));
        int d = items.Dimension, nq = queries.Count;
        var result = new int[(long)nq * k];
        int done = 0;
        ParallelWork.For(0, nq, threads, qi =>
        {
            var q = queries.Item(qi);
            int qt = queries.TokenCount(qi);
            const int blockTokens = 2048;
            var dots = new float[qt * blockTokens];
            var keys = new float[k];
            var ids = new long[k];
            var heap = new TopKHeap(keys, ids);
            int item = 0;
            while (item < items.Count)
            {
                int first = item, tokens = 0;
                while (item < items.Count && (tokens == 0 || tokens + items.TokenCount(item) <= blockTokens)) tokens += items.TokenCount(item++);
                if (tokens > blockTokens) dots = new float[qt * tokens];
                int start = items.TokenOffset(first);
                Distances.DotManyToMany(q, items.Tokens.Slice(start * d, tokens * d), d, dots);
                for (int j = first; j < item; j++)
                {
                    int c0 = items.TokenOffset(j) - start, c1 = c0 + items.TokenCount(j);
                    float sum = 0;
                    for (int t = 0; t < qt; t++)
                    {
                        var row = dots.AsSpan(t * tokens + c0, c1 - c0);
                        sum += System.Numerics.Tensors.TensorPrimitives.Max(row);
                    }
                    heap.Push(-sum, j);
                }
            }
            heap.SortAndPad(float.PositiveInfinity);
            for (int j = 0; j < k; j++) result[(long)qi * k + j] = (int)ids[j];
            if (progress is not null) progress.Report(Interlocked.Increment(ref done));
        });
        return result;
    }
}
