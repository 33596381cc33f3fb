namespace Engine.Data;

/// <summary>Which independent sample stream of a <see cref="ClusteredDistribution"/> rows come from.</summary>
public enum SampleStream
{
    /// <summary>Base (corpus) vectors.</summary>
    Base = 0,

    /// <summary>Query vectors: same distribution, independent draws.</summary>
    Query = 1,
}

/// <summary>
/// A seeded Gaussian mixture: <see cref="Clusters"/> centres drawn from N(0, 1)^d, unequal cluster weights and
/// spreads; a row picks a cluster by weight and adds isotropic Gaussian noise of that cluster's spread.
/// </summary>
/// <remarks>
/// <para>Determinism: every row is drawn from its own generator seeded by (seed, stream, row number), so row
/// <c>i</c> is the same whatever the thread count, batch boundaries or number of rows requested. Centres, weights
/// and spreads depend only on (seed, dimension, clusters, spread).</para>
/// <para>Cluster weights are <c>0.5 + u</c> and spreads <c>spread × (0.5 + u)</c> with u uniform in [0, 1), so
/// clusters differ in size and tightness as real embeddings do. Thread safety: immutable; sample freely.</para>
/// </remarks>
public sealed class ClusteredDistribution
{
    private readonly float[] _centers;
    private readonly float[] _spreads;
    private readonly double[] _cumulativeWeights;

    /// <summary>Creates the mixture.</summary>
    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="clusters">Mixture components ≥ 1.</param>
    /// <param name="seed">Seed; the same seed gives the same distribution and rows.</param>
    /// <param name="spread">Mean per-coordinate standard deviation around a centre (centres have unit variance).</param>
    /// <exception cref="ArgumentOutOfRangeException">A parameter is out of range.</exception>
    public ClusteredDistribution(int dimension, int clusters, long seed, float spread = 0.5f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(clusters, 1);
        if (!(spread > 0) || !float.IsFinite(spread)) throw new ArgumentOutOfRangeException(nameof(spread), spread, "Spread must be positive and finite.");
        Dimension = dimension;
        Clusters = clusters;
        Seed = seed;
        Spread = spread;
        _centers = new float[checked(clusters * dimension)];
        _spreads = new float[clusters];
        _cumulativeWeights = new double[clusters];
        double total = 0;
        for (int c = 0; c < clusters; c++)
        {
            var rng = new SplitMix64(seed, 2, c);
            for (int j = 0; j < dimension; j++) _centers[c * dimension + j] = (float)rng.NextGaussian();
            _spreads[c] = spread * (float)(0.5 + rng.NextDouble());
            total += 0.5 + rng.NextDouble();
            _cumulativeWeights[c] = total;
        }
        for (int c = 0; c < clusters; c++) _cumulativeWeights[c] /= total;
    }

    /// <summary>Vector dimension.</summary>
    public int Dimension { get; }

    /// <summary>Number of mixture components.</summary>
    public int Clusters { get; }

    /// <summary>The seed.</summary>
    public long Seed { get; }

    /// <summary>Mean spread of the components.</summary>
    public float Spread { get; }

    /// <summary>Cluster centres, <see cref="Clusters"/> × <see cref="Dimension"/>, row-major.</summary>
    public ReadOnlySpan<float> Centers => _centers;

    /// <summary>
    /// Draws rows <paramref name="firstRow"/> .. firstRow + n − 1 of <paramref name="stream"/> into
    /// <paramref name="destination"/> (n × d; n = destination.Length / d).
    /// </summary>
    /// <param name="stream">Base or query stream.</param>
    /// <param name="firstRow">Row number of the first row drawn.</param>
    /// <param name="destination">Output rows.</param>
    /// <param name="clusterOfRow">Optional: receives the component of each row (length ≥ n), or empty.</param>
    /// <param name="normalize">Scale each row to unit length (for cosine data).</param>
    /// <param name="threads">Worker threads; 0 = all cores. The output does not depend on it.</param>
    /// <exception cref="ArgumentException">destination is not whole rows or clusterOfRow is too short.</exception>
    public void Sample(SampleStream stream, long firstRow, Span<float> destination, Span<int> clusterOfRow = default,
        bool normalize = false, int threads = 0)
    {
        int n = Guard.Rows(destination, Dimension, nameof(destination));
        if (!clusterOfRow.IsEmpty && clusterOfRow.Length < n)
            throw new ArgumentException($"clusterOfRow holds {clusterOfRow.Length} entries for {n} rows.", nameof(clusterOfRow));
        // Parallel.For cannot capture spans: draw into arrays and copy out.
        float[] rows = new float[destination.Length];
        int[] labels = new int[n];
        SampleInto(stream, firstRow, rows, labels, normalize, threads);
        rows.CopyTo(destination);
        if (!clusterOfRow.IsEmpty) labels.CopyTo(clusterOfRow);
    }

    /// <summary>Array form of <see cref="Sample(SampleStream, long, Span{float}, Span{int}, bool, int)"/>, without the copy.</summary>
    /// <param name="stream">Base or query stream.</param>
    /// <param name="firstRow">Row number of the first row drawn.</param>
    /// <param name="destination">Output rows (n × d).</param>
    /// <param name="clusterOfRow">Optional: receives the component of each row (length ≥ n).</param>
    /// <param name="normalize">Scale each row to unit length.</param>
    /// <param name="threads">Worker threads; 0 = all cores. The output does not depend on it.</param>
    public void SampleInto(SampleStream stream, long firstRow, float[] destination, int[]? clusterOfRow = null,
        bool normalize = false, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(destination);
        int n = Guard.Rows(destination, Dimension, nameof(destination));
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (clusterOfRow is not null && clusterOfRow.Length < n)
            throw new ArgumentException($"clusterOfRow holds {clusterOfRow.Length} entries for {n} rows.", nameof(clusterOfRow));
        const int Block = 256;
        int blocks = (n + Block - 1) / Block;
        // Each row has its own generator, so blocks may run in any order on any thread.
        ParallelWork.For(0, blocks, threads, b =>
        {
            int r0 = b * Block, r1 = Math.Min(n, r0 + Block);
            for (int r = r0; r < r1; r++)
            {
                int c = DrawRow(stream, firstRow + r, destination.AsSpan(r * Dimension, Dimension), normalize);
                if (clusterOfRow is not null) clusterOfRow[r] = c;
            }
        });
    }

    /// <summary>Draws <paramref name="count"/> rows starting at row <paramref name="firstRow"/> into a new array.</summary>
    public float[] Sample(SampleStream stream, int count, long firstRow = 0, bool normalize = false, int threads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rows = new float[checked(count * Dimension)];
        SampleInto(stream, firstRow, rows, null, normalize, threads);
        return rows;
    }

    private int DrawRow(SampleStream stream, long row, Span<float> output, bool normalize)
    {
        var rng = new SplitMix64(Seed, (int)stream, row);
        double u = rng.NextDouble();
        int c = Array.BinarySearch(_cumulativeWeights, u);
        c = c >= 0 ? Math.Min(c + 1, Clusters - 1) : Math.Min(~c, Clusters - 1);
        var centre = _centers.AsSpan(c * Dimension, Dimension);
        float s = _spreads[c];
        for (int j = 0; j < output.Length; j++) output[j] = centre[j] + s * (float)rng.NextGaussian();
        if (normalize)
        {
            double norm = 0;
            for (int j = 0; j < output.Length; j++) norm += (double)output[j] * output[j];
            if (norm > 0)
            {
                float inv = (float)(1 / Math.Sqrt(norm));
                for (int j = 0; j < output.Length; j++) output[j] *= inv;
            }
        }
        return c;
    }
}

/// <summary>Seeded synthetic data sets for tests, demos and <c>engine data synth</c>.</summary>
public static class SyntheticData
{
    /// <summary>The default spread of <see cref="ClusteredDistribution"/>.</summary>
    public const float DefaultSpread = 0.5f;

    /// <summary>
    /// <paramref name="n"/> × <paramref name="d"/> base vectors from the seeded Gaussian mixture
    /// <see cref="ClusteredDistribution"/>(d, clusters, seed, spread); identical for a seed at any thread count.
    /// </summary>
    public static float[] Clustered(int n, int d, int clusters, long seed, float spread = DefaultSpread, bool normalize = false, int threads = 0) =>
        new ClusteredDistribution(d, clusters, seed, spread).Sample(SampleStream.Base, n, 0, normalize, threads);

    /// <summary>
    /// <paramref name="nq"/> queries from the same mixture as <see cref="Clustered"/> with the same arguments,
    /// drawn from an independent stream (never copies of base rows).
    /// </summary>
    public static float[] ClusteredQueries(int nq, int d, int clusters, long seed, float spread = DefaultSpread, bool normalize = false, int threads = 0) =>
        new ClusteredDistribution(d, clusters, seed, spread).Sample(SampleStream.Query, nq, 0, normalize, threads);

    /// <summary>
    /// A complete data set: base and queries from one mixture, cluster ids as labels (when clusters ≤ 256), and
    /// exact top-<paramref name="groundTruthK"/> ground truth (skipped when <paramref name="groundTruthK"/> is 0).
    /// Cosine data sets are generated unit-length, so L2, inner-product and cosine neighbours coincide.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is out of range.</exception>
    public static DataSet ClusteredDataSet(string name, int n, int nq, int d, int clusters, long seed, Metric metric,
        int groundTruthK = GroundTruth.DefaultK, float spread = DefaultSpread, int threads = 0, IProgress<int>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(nq);
        ArgumentOutOfRangeException.ThrowIfNegative(groundTruthK);
        var dist = new ClusteredDistribution(d, clusters, seed, spread);
        bool normalize = metric == Metric.Cosine;
        var baseVectors = new float[checked(n * d)];
        var queries = new float[checked(nq * d)];
        var baseClusters = new int[n];
        var queryClusters = new int[nq];
        dist.SampleInto(SampleStream.Base, 0, baseVectors, baseClusters, normalize, threads);
        dist.SampleInto(SampleStream.Query, 0, queries, queryClusters, normalize, threads);
        byte[]? baseLabels = clusters <= 256 ? Array.ConvertAll(baseClusters, c => (byte)c) : null;
        byte[]? queryLabels = clusters <= 256 ? Array.ConvertAll(queryClusters, c => (byte)c) : null;
        var set = new DataSet(name, metric, d, baseVectors, queries, null, 0, baseLabels, queryLabels);
        if (groundTruthK > 0 && nq > 0)
            set.SetGroundTruth(GroundTruth.Compute(baseVectors, queries, d, metric, groundTruthK, threads, progress), groundTruthK);
        return set;
    }
}

/// <summary>
/// Labelled vectors for training demos: each row is the sum of a draw from a <em>class</em> mixture (its component
/// is the label) and a scaled draw from an independent <em>distractor</em> mixture whose components carry no label.
/// In the input space the distractor structure competes with the classes, so nearest neighbours often have
/// another class; a learned projection can remove the distractor directions.
/// </summary>
/// <remarks>Row i of a stream depends only on (seed, stream, i), like <see cref="ClusteredDistribution"/>.</remarks>
public sealed class DistractedClasses
{
    private readonly ClusteredDistribution _classes;
    private readonly ClusteredDistribution _distractors;

    /// <summary>Creates the generator.</summary>
    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="classes">Labelled components ≥ 1.</param>
    /// <param name="distractors">Unlabelled components ≥ 1.</param>
    /// <param name="seed">Seed of both mixtures.</param>
    /// <param name="distractorScale">Factor on the distractor draw (&gt; 0; larger = harder).</param>
    /// <param name="spread">Spread of both mixtures.</param>
    /// <exception cref="ArgumentOutOfRangeException">A parameter is out of range.</exception>
    public DistractedClasses(int dimension, int classes, int distractors, long seed, float distractorScale = 1.5f, float spread = 0.5f)
    {
        if (!(distractorScale > 0) || !float.IsFinite(distractorScale))
            throw new ArgumentOutOfRangeException(nameof(distractorScale), distractorScale, "The distractor scale must be positive and finite.");
        _classes = new ClusteredDistribution(dimension, classes, seed, spread);
        _distractors = new ClusteredDistribution(dimension, distractors, unchecked(seed * 0x5851F42D4C957F2DL + 0x14057B7EF767814FL), spread);
        DistractorScale = distractorScale;
    }

    /// <summary>Vector dimension.</summary>
    public int Dimension => _classes.Dimension;

    /// <summary>Number of classes (labels are 0..Classes−1).</summary>
    public int Classes => _classes.Clusters;

    /// <summary>Factor on the distractor draw.</summary>
    public float DistractorScale { get; }

    /// <summary>Draws <paramref name="count"/> rows of <paramref name="stream"/> with their labels.</summary>
    /// <param name="stream">Base (training corpus) or query (held-out) stream.</param>
    /// <param name="count">Rows ≥ 0.</param>
    /// <param name="threads">Worker threads (0 = all cores); the output does not depend on it.</param>
    public (float[] Vectors, int[] Labels) Sample(SampleStream stream, int count, int threads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var x = new float[checked(count * Dimension)];
        var labels = new int[count];
        _classes.SampleInto(stream, 0, x, labels, threads: threads);
        var noise = _distractors.Sample(stream, count, 0, threads: threads);
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(noise, DistractorScale, x, x);
        return (x, labels);
    }
}

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014) seeded from (seed, stream, index): a fast generator whose output depends
/// only on those three numbers, which is what makes per-row sampling reproducible at any thread count.
/// </summary>
internal struct SplitMix64
{
    private ulong _state;
    private double _spare;
    private bool _hasSpare;

    public SplitMix64(long seed, int stream, long index)
    {
        _state = Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL * (ulong)(stream + 1)) ^ Mix((ulong)index + 0xD1B54A32D192ED03UL);
        _spare = 0;
        _hasSpare = false;
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Standard normal (Marsaglia polar method; a pair per two accepted uniforms).</summary>
    public double NextGaussian()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double m = Math.Sqrt(-2 * Math.Log(s) / s);
        _spare = v * m;
        _hasSpare = true;
        return u * m;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
