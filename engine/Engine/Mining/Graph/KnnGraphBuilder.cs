using System.Globalization;
using Engine.Index;

namespace Engine.Mining.Graph;

/// <summary>Options of <see cref="KnnGraphBuilder"/>.</summary>
public sealed record KnnGraphOptions
{
    /// <summary>Neighbours per point (self excluded), 1 ≤ K &lt; n.</summary>
    public int K { get; init; } = 10;

    /// <summary>Points searched per index call: the memory bound of the self-join (chunk × (K + 1) results), ≥ 1.</summary>
    public int ChunkSize { get; init; } = 4096;

    /// <summary>Search threads (0 = all cores).</summary>
    public int Threads { get; init; }

    /// <summary>The index's search knobs by name (<c>probes</c>, <c>ef</c>, ...), as <c>engine bench --sweep</c> names them.</summary>
    public IReadOnlyDictionary<string, string>? Search { get; init; }

    /// <summary>Checks every field; throws <see cref="ArgumentOutOfRangeException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (K < 1) throw new ArgumentOutOfRangeException(nameof(K), K, $"K must be at least 1, got {K}.");
        if (ChunkSize < 1) throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, $"ChunkSize must be at least 1, got {ChunkSize}.");
        SearchParameters.CheckThreads(Threads);
    }
}

/// <summary>Receives graph rows as they are produced: rows <c>firstRow .. firstRow + n − 1</c>, n × k each.</summary>
public delegate void KnnGraphRows(int firstRow, ReadOnlySpan<long> neighbors, ReadOnlySpan<float> distances);

/// <summary>How <see cref="KnnGraphBuilder.Auto"/> chose its index.</summary>
/// <param name="Spec">The composition string built (<c>Flat</c> or <c>IVF{n},Flat</c>).</param>
/// <param name="Search">The chosen search knobs (e.g. <c>probes</c>).</param>
/// <param name="SampledRecall">recall@k of the chosen setting on the sampled points against exact neighbours (1 for Flat).</param>
/// <param name="SampleSize">Points in the recall sample (0 for Flat).</param>
/// <param name="Tried">Every setting tried with its sampled recall, in order.</param>
public sealed record KnnGraphChoice(string Spec, IReadOnlyDictionary<string, string> Search, double SampledRecall, int SampleSize,
    IReadOnlyList<(string Setting, double Recall)> Tried);

/// <summary>
/// k-NN graphs (all points' k nearest neighbours, self excluded) by a batched self-join through any index, and an
/// automatic index choice that meets a recall target measured on a sample.
/// </summary>
public static class KnnGraphBuilder
{
    /// <summary>Below this many points <see cref="Auto"/> builds the exact graph (a Flat self-join is then cheap).</summary>
    public const int ExactBelow = 20_000;

    /// <summary>Sampled points <see cref="Auto"/> checks recall on.</summary>
    public const int RecallSample = 500;

    /// <summary>
    /// Streams the graph of <paramref name="vectors"/> (n × d, row i has id <paramref name="ids"/>[i], already in
    /// <paramref name="index"/>) to <paramref name="sink"/>, chunk by chunk: each chunk is one search for k + 1
    /// neighbours, the point's own id removed (or the last neighbour when the approximate search missed the point).
    /// </summary>
    /// <exception cref="ArgumentException">Shapes disagree, vectors are not finite, or the index holds fewer than k + 1 points.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static void Build(IVectorIndex index, ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, KnnGraphOptions options,
        KnnGraphRows sink, IProgress<BuildProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sink);
        options.Validate();
        int d = index.Dimension, k = options.K;
        int n = Guard.Rows(vectors, d, nameof(vectors));
        if (ids.Length != n) throw new ArgumentException($"ids holds {ids.Length} entries for {n} vectors.", nameof(ids));
        Guard.Finite(vectors, d, nameof(vectors));
        if (k >= index.Count)
            throw new ArgumentException($"k = {k} must be below the number of indexed points ({index.Count}): every point needs k neighbours other than itself.", nameof(options));
        var parameters = IndexFactory.CreateParameters(index, options.Search ?? new Dictionary<string, string>(), options.Threads);
        int depth = k + 1;
        int chunk = (int)Math.Max(1, Math.Min(options.ChunkSize, Array.MaxLength / depth));
        var dist = new float[Math.Min(chunk, Math.Max(n, 1)) * depth];
        var labels = new long[dist.Length];
        var outIds = new long[dist.Length / depth * k];
        var outDist = new float[outIds.Length];
        float missing = index.Metric.MissingDistance();
        progress?.Report(new BuildProgress("knn-graph", 0, n));
        for (int start = 0; start < n; start += chunk)
        {
            int c = Math.Min(chunk, n - start);
            index.Search(vectors.Slice(start * d, c * d), depth, dist.AsSpan(0, c * depth), labels.AsSpan(0, c * depth), parameters);
            for (int i = 0; i < c; i++)
            {
                long self = ids[start + i];
                int taken = 0;
                for (int j = 0; j < depth && taken < k; j++)
                {
                    long id = labels[i * depth + j];
                    if (id == self) continue;
                    outIds[i * k + taken] = id;
                    outDist[i * k + taken] = id < 0 ? missing : dist[i * depth + j];
                    taken++;
                }
            }
            sink(start, outIds.AsSpan(0, c * k), outDist.AsSpan(0, c * k));
            progress?.Report(new BuildProgress("knn-graph", start + c, n));
        }
    }

    /// <summary><see cref="Build(IVectorIndex, ReadOnlySpan{float}, ReadOnlySpan{long}, KnnGraphOptions, KnnGraphRows, IProgress{BuildProgress})"/> into memory.</summary>
    public static KnnGraph Build(IVectorIndex index, ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids, KnnGraphOptions options,
        IProgress<BuildProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        int n = ids.Length, k = options.K;
        var neighbors = new long[(long)n * Math.Max(k, 1)];
        var distances = new float[neighbors.Length];
        Build(index, vectors, ids, options, (first, nb, ds) =>
        {
            nb.CopyTo(neighbors.AsSpan(first * k));
            ds.CopyTo(distances.AsSpan(first * k));
        }, progress);
        return new KnnGraph(index.Metric, k, ids.ToArray(), neighbors, distances);
    }

    /// <summary>
    /// Builds an index over <paramref name="vectors"/> (ids 0..n−1) fit for the graph: Flat below
    /// <see cref="ExactBelow"/> points, otherwise <c>IVF{≈√n},Flat</c> trained on a seeded sample, with the smallest
    /// probe count (1, 2, 4, ...) whose recall@k on <see cref="RecallSample"/> seeded sample points, against their
    /// exact neighbours (all lists probed), reaches <paramref name="targetRecall"/> + 0.005 (a margin for the sample).
    /// </summary>
    /// <param name="vectors">n × d points; they get ids 0..n−1.</param>
    /// <param name="dimension">d.</param>
    /// <param name="metric">Distance metric.</param>
    /// <param name="options">Graph options (K, threads, chunk); the returned copy carries the chosen search knobs.</param>
    /// <param name="targetRecall">recall@k the chosen setting must reach on the sample, in (0, 1].</param>
    /// <param name="seed">Seed of the training and recall samples.</param>
    /// <param name="progress">Training, add and auto-tuning reports; null for none.</param>
    /// <param name="exactBelow">Point count below which the exact Flat index is used.</param>
    /// <returns>The filled index (the caller owns it) and the options to pass to <see cref="Build(IVectorIndex, ReadOnlySpan{float}, ReadOnlySpan{long}, KnnGraphOptions, IProgress{BuildProgress})"/>.</returns>
    /// <exception cref="ArgumentException">k ≥ n, non-finite vectors, or a target outside (0, 1].</exception>
    public static (IVectorIndex Index, KnnGraphOptions Options, KnnGraphChoice Choice) Auto(ReadOnlySpan<float> vectors, int dimension,
        Metric metric, KnnGraphOptions options, double targetRecall = 0.95, int seed = 1, IProgress<BuildProgress>? progress = null,
        int exactBelow = ExactBelow)
    {
        ArgumentNullException.ThrowIfNull(options);
        int n = CheckAuto(vectors, dimension, options, targetRecall);
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        var none = new Dictionary<string, string>();
        if (n < exactBelow)
        {
            var flat = IndexFactory.Create("Flat", dimension, metric);
            flat.Add(vectors, ids, progress);
            return (flat, options with { Search = none }, new KnnGraphChoice("Flat", none, 1.0, 0, []));
        }

        int lists = Math.Clamp((int)Math.Round(Math.Sqrt(n)), 16, 65536);
        string spec = string.Create(CultureInfo.InvariantCulture, $"IVF{lists},Flat");
        var index = IndexFactory.Create(spec, dimension, metric);
        try
        {
            var rng = new Random(seed);
            int trainRows = Math.Min(n, lists * 64);
            var train = new float[(long)trainRows * dimension];
            var picked = SampleRows(n, trainRows, rng);
            for (int i = 0; i < trainRows; i++) vectors.Slice(picked[i] * dimension, dimension).CopyTo(train.AsSpan(i * dimension, dimension));
            index.Train(train, progress);
            index.Add(vectors, ids, progress);

            int s = Math.Min(n, RecallSample);
            var sampleRows = SampleRows(n, s, rng);
            var sample = new float[s * dimension];
            var sampleIds = new long[s];
            for (int i = 0; i < s; i++)
            {
                vectors.Slice(sampleRows[i] * dimension, dimension).CopyTo(sample.AsSpan(i * dimension, dimension));
                sampleIds[i] = sampleRows[i];
            }
            KnnGraph Sampled(int probes) => Build(index, sample, sampleIds, options with { Search = Probes(probes), ChunkSize = s });
            var exact = Sampled(lists);
            var tried = new List<(string, double)>();
            for (int probes = 1; ; probes = Math.Min(lists, probes * 2))
            {
                double recall = probes == lists ? 1.0 : Sampled(probes).RecallAgainst(exact, options.K);
                tried.Add(("probes=" + probes.ToString(CultureInfo.InvariantCulture), recall));
                progress?.Report(new BuildProgress("knn-graph auto", tried.Count, 0));
                if (recall >= Math.Min(1.0, targetRecall + 0.005) || probes == lists)
                    return (index, options with { Search = Probes(probes) }, new KnnGraphChoice(spec, Probes(probes), recall, s, tried));
            }
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The graph of <paramref name="vectors"/> (ids = row numbers 0..n−1) without a caller index: exact below
    /// <paramref name="exactBelow"/> points, otherwise an IVF-style list-major self-join (k-means lists, each point
    /// probing its p nearest lists, every list joined with all the points that probe it as one GEMM) with the smallest
    /// p whose recall@k on <see cref="RecallSample"/> seeded sample points reaches <paramref name="targetRecall"/> +
    /// 0.005. Rows are streamed to <paramref name="sink"/> in row order, chunk by chunk (at most
    /// <see cref="KnnGraphOptions.ChunkSize"/> points). Much faster than <see cref="Auto"/> + <see cref="Build(IVectorIndex, ReadOnlySpan{float}, ReadOnlySpan{long}, KnnGraphOptions, KnnGraphRows, IProgress{BuildProgress})"/>
    /// (which searches an index point by point); memory: the vectors twice (a copy stored list by list) plus a chunk.
    /// </summary>
    /// <returns>What was chosen: <c>Flat</c> or <c>IVF{n},Flat</c>, the probes, the sampled recall of each setting tried.</returns>
    /// <exception cref="ArgumentException">k ≥ n, non-finite vectors, or a dimension that does not divide the input.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option or the target is out of range.</exception>
    public static KnnGraphChoice BuildAuto(ReadOnlySpan<float> vectors, int dimension, Metric metric, KnnGraphOptions options,
        KnnGraphRows sink, double targetRecall = 0.95, int seed = 1, IProgress<BuildProgress>? progress = null, int exactBelow = ExactBelow)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sink);
        CheckAuto(vectors, dimension, options, targetRecall);
        return KnnSelfJoin.Run(vectors, dimension, metric, options, targetRecall, seed, exactBelow, sink, progress);
    }

    /// <summary><see cref="BuildAuto(ReadOnlySpan{float}, int, Metric, KnnGraphOptions, KnnGraphRows, double, int, IProgress{BuildProgress}, int)"/> into memory.</summary>
    public static (KnnGraph Graph, KnnGraphChoice Choice) BuildAuto(ReadOnlySpan<float> vectors, int dimension, Metric metric,
        KnnGraphOptions options, double targetRecall = 0.95, int seed = 1, IProgress<BuildProgress>? progress = null, int exactBelow = ExactBelow)
    {
        ArgumentNullException.ThrowIfNull(options);
        int n = dimension > 0 ? vectors.Length / dimension : 0, k = options.K;
        var neighbors = new long[(long)n * Math.Max(k, 1)];
        var distances = new float[neighbors.Length];
        var choice = BuildAuto(vectors, dimension, metric, options, (first, nb, ds) =>
        {
            nb.CopyTo(neighbors.AsSpan(first * k));
            ds.CopyTo(distances.AsSpan(first * k));
        }, targetRecall, seed, progress, exactBelow);
        var ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = i;
        return (new KnnGraph(metric, k, ids, neighbors, distances), choice);
    }

    // The checks shared by the automatic paths; returns n.
    private static int CheckAuto(ReadOnlySpan<float> vectors, int dimension, KnnGraphOptions options, double targetRecall)
    {
        options.Validate();
        if (!(targetRecall > 0 && targetRecall <= 1))
            throw new ArgumentOutOfRangeException(nameof(targetRecall), targetRecall, "targetRecall must be in (0, 1].");
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        if (options.K >= n)
            throw new ArgumentException($"k = {options.K} must be below the number of points ({n}): every point needs k neighbours other than itself.", nameof(options));
        Guard.Finite(vectors, dimension, nameof(vectors));
        return n;
    }

    private static Dictionary<string, string> Probes(int probes) =>
        new() { ["probes"] = probes.ToString(CultureInfo.InvariantCulture) };

    // A seeded sample of m distinct rows of 0..n-1, sorted (partial Fisher–Yates).
    internal static int[] SampleRows(int n, int m, Random rng)
    {
        if (m >= n) return Enumerable.Range(0, n).ToArray();
        var chosen = new HashSet<int>();
        var result = new int[m];
        for (int i = 0, j = n - m; i < m; i++, j++)
        {
            // Floyd's algorithm: m distinct values with m draws.
            int t = rng.Next(j + 1);
            result[i] = chosen.Add(t) ? t : j;
            if (result[i] == j) chosen.Add(j);
        }
        Array.Sort(result);
        return result;
    }
}
