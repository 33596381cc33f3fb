using System.Collections.Concurrent;
using Engine.Clustering;
using Engine.Distance;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>
/// Inverted-file index (IVFADC, Jégou et al. 2011): a k-means coarse quantizer splits the corpus into lists; a
/// query scans only the lists of its nearest centroids. Lists hold full vectors (<c>IVF{n},Flat</c>), residual
/// PQ codes scanned with float ADC tables (<c>PQ{m}</c>) or 4-bit residual codes packed for SIMD fast-scan
/// (<c>PQ{m}x4fs</c>); an optional refine store re-ranks the best k × RefineFactor candidates exactly.
/// </summary>
/// <remarks>
/// <para>Design: the coarse quantizer, the code (<see cref="ProductQuantizer"/>, <see cref="PQ4FastScan"/>),
/// the list storage (<see cref="IvfList"/>) and the exact store (<see cref="VectorCodec"/>) are separate
/// pieces. With OPQ every vector and query is rotated once on entry and the index works in the rotated space
/// (distances are preserved). Cosine vectors are normalised on entry, so cosine is inner product inside.</para>
/// <para>L2 residual distances use faiss' decomposition d = ‖q − c‖² + (‖r‖² + 2⟨c, r⟩) − 2⟨q, r⟩: the first
/// term comes from the coarse search, the second is a per-(list, sub-quantizer, code) table precomputed at
/// training time (<c>term2</c>, capped in size; otherwise computed per probed list) and the third is one
/// query table shared by all probed lists.</para>
/// <para>A direct map id → (list, offset) gives O(1) <see cref="Remove"/> (the list's last vector moves into
/// the hole, also inside packed fast-scan blocks) and upserts.</para>
/// <para>Thread safety: any number of concurrent searches; mutations take an exclusive lock, so searches never
/// see a half-applied mutation. Expensive work of <see cref="Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/>
/// (assignment, encoding) runs before the lock is taken.</para>
/// </remarks>
public sealed partial class IvfIndex : IVectorIndex
{
    /// <summary>The largest precomputed term-2 table kept (floats); bigger ones are computed per probed list.</summary>
    internal const long MaxTerm2Floats = 64L << 20;

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly ConcurrentBag<IvfScratch> _scratchPool = new();
    private readonly IvfList[] _lists;
    private readonly Dictionary<long, long> _directMap = new();
    private float[] _centroids;
    private float[] _centroidNorms;
    private readonly ProductQuantizer? _pq;
    private readonly OpqRotation? _opq;
    private readonly VectorCodec? _refine;
    private float[]? _term2;
    private bool _trained;
    private bool _centroidsSupplied;
    private long _count;
    private int _defaultProbes = 1;
    private Storage.Format.IndexFileMapping? _mapping;
    private int _disposed;

    /// <summary>Creates an empty, untrained index for <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">Bad spec, or a PQ/OPQ M that does not divide d.</exception>
    public IvfIndex(IvfSpec spec, int dimension, Metric metric = Metric.L2)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        if (spec.Lists <= 0) throw new ArgumentOutOfRangeException(nameof(spec), spec.Lists, "The list count must be positive.");
        spec.Validate(dimension);
        Spec = spec;
        Dimension = dimension;
        Metric = metric;
        _lists = new IvfList[spec.Lists];
        for (int i = 0; i < _lists.Length; i++) _lists[i] = new IvfList();
        _centroids = new float[spec.Lists * dimension];
        _centroidNorms = new float[spec.Lists];
        if (spec.Encoding != IvfListEncoding.Flat) _pq = new ProductQuantizer(dimension, spec.SubQuantizers, spec.Bits);
        if (spec.OpqSubQuantizers > 0) _opq = new OpqRotation(dimension, spec.OpqSubQuantizers);
        if (spec.Refine is { } r) _refine = new VectorCodec(dimension, r);
        CodeSize = spec.Encoding switch
        {
            IvfListEncoding.Flat => dimension * sizeof(float),
            IvfListEncoding.PQ => spec.SubQuantizers,
            _ => 0,
        };
    }

    /// <summary>Parses <paramref name="spec"/> and creates the index.</summary>
    public IvfIndex(string spec, int dimension, Metric metric = Metric.L2) : this(IvfSpec.Parse(spec), dimension, metric) { }

    /// <summary>The parsed composition.</summary>
    public IvfSpec Spec { get; }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <inheritdoc />
    public Metric Metric { get; }

    /// <inheritdoc />
    public long Count => Interlocked.Read(ref _count);

    /// <inheritdoc />
    public bool IsTrained => Volatile.Read(ref _trained);

    /// <inheritdoc />
    public string Description => Spec.ToString();

    /// <summary>Number of inverted lists (nlist).</summary>
    public int ListCount => _lists.Length;

    /// <summary>Probes used when a call does not set <see cref="IvfSearchParameters.Probes"/> (1..nlist).</summary>
    public int DefaultProbes
    {
        get => _defaultProbes;
        set
        {
            if (value < 1 || value > ListCount) throw new ArgumentOutOfRangeException(nameof(value), value, $"Probes must be in 1..{ListCount} (the list count).");
            _defaultProbes = value;
        }
    }

    /// <summary>Seed for training (k-means, PQ, OPQ, samples). Default 1234.</summary>
    public int TrainingSeed { get; init; } = 1234;

    /// <summary>Threads used by training and adding; 0 (default) means all processors.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative value.</exception>
    public int TrainingThreads
    {
        get => _trainingThreads;
        init
        {
            SearchParameters.CheckThreads(value, nameof(TrainingThreads));
            _trainingThreads = value;
        }
    }

    private readonly int _trainingThreads;

    /// <summary>Balanced coarse k-means (size penalty; largest list of the sample ≤ 1.5 × the mean).</summary>
    public bool BalancedLists { get; init; }

    /// <summary>
    /// Where the Lloyd steps of the coarse quantizer's k-means run (<see cref="KMeansOptions.Backend"/>, e.g.
    /// Engine.Gpu's <c>GpuKMeansBackend</c>); null runs them in-process. PQ codebooks, OPQ and list assignment
    /// stay on the CPU. Not saved with the index.
    /// </summary>
    public IKMeansBackend? ClusteringBackend { get; init; }

    /// <summary>Bytes per stored code for unpacked encodings (0 for fast-scan, whose codes live in blocks).</summary>
    internal int CodeSize { get; }

    /// <summary>Number of vectors in each list (for diagnostics and tests).</summary>
    public int[] ListSizes()
    {
        _lock.EnterReadLock();
        try { return _lists.Select(l => l.Count).ToArray(); }
        finally { _lock.ExitReadLock(); }
    }

    /// <inheritdoc />
    /// <remarks>Heap memory only: centroids, codebooks, tables, the id map and the lists held in managed arrays.
    /// Lists still pointing into the file mapping of a mapped load (<see cref="Load"/> with <c>mapped: true</c>)
    /// count nothing here; their bytes are reported by <see cref="MappedBytes"/> (OS page cache, not heap).</remarks>
    public long MemoryBytes
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                long b = (long)_centroids.Length * 4 + (_pq?.Codebooks.Length ?? 0) * 4L + (_term2?.Length ?? 0) * 4L
                    + (_opq is null ? 0 : (long)Dimension * Dimension * 8) + (long)_directMap.Count * 24;
                foreach (var l in _lists) b += l.MemoryBytes;
                return b;
            }
            finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>
    /// Bytes of list data (ids, attributes, codes, refine codes) read in place from the file mapping of a mapped
    /// load; 0 for an index built in memory or loaded to the heap. Falls as mutations copy lists to the heap.
    /// </summary>
    public long MappedBytes
    {
        get
        {
            _lock.EnterReadLock();
            try { return _lists.Sum(l => l.MappedBytes); }
            finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>True when the index was loaded memory-mapped and holds the file mapping (until <see cref="Dispose"/>).</summary>
    public bool IsMapped => Volatile.Read(ref _mapping) is not null;

    /// <summary>
    /// Installs externally trained coarse centroids (nlist × d, in the index's working space: normalised for
    /// cosine, rotated when there is OPQ). <see cref="Train(ReadOnlySpan{float})"/> then keeps them.
    /// </summary>
    public void UseCentroids(ReadOnlySpan<float> centroids)
    {
        if (centroids.Length != _centroids.Length)
            throw new ArgumentException($"Centroids must hold nlist×d = {_centroids.Length} floats, got {centroids.Length}.", nameof(centroids));
        Guard.Finite(centroids, Dimension, nameof(centroids));
        _lock.EnterWriteLock();
        try
        {
            if (_count > 0) throw new InvalidOperationException("Cannot replace centroids of an index that holds vectors.");
            _centroids = centroids.ToArray();
            Distances.SquaredNorms(_centroids, Dimension, _centroidNorms);
            _centroidsSupplied = true;
            if (_pq is null && _refine?.IsTrained != false && _opq is null) _trained = true;
            else if (_pq is { IsTrained: true } && _refine?.IsTrained != false && _opq is null) { BuildTerm2(); _trained = true; }
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>Installs externally trained PQ codebooks (M × 2^bits × d/M floats). <see cref="Train(ReadOnlySpan{float})"/> then keeps them.</summary>
    public void UseCodebooks(ReadOnlySpan<float> codebooks)
    {
        var pq = _pq ?? throw new InvalidOperationException($"A '{Description}' index has no product quantizer.");
        _lock.EnterWriteLock();
        try
        {
            if (_count > 0) throw new InvalidOperationException("Cannot replace codebooks of an index that holds vectors.");
            pq.SetCodebooks(codebooks);
            if (_centroidsSupplied && _refine?.IsTrained != false && _opq is null) { BuildTerm2(); _trained = true; }
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>
    /// Trains what was not supplied: OPQ rotation, coarse centroids (seeded k-means on ≤ 256 points per list),
    /// PQ codebooks on residuals, the refine store's range; then precomputes the L2 term-2 table.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, or fewer vectors than lists.</exception>
    public void Train(ReadOnlySpan<float> vectors) => Train(vectors, null);

    /// <summary>
    /// <see cref="Train(ReadOnlySpan{float})"/> reporting each stage: <c>opq</c>, <c>k-means</c> (one report per
    /// Lloyd iteration of the coarse quantizer), <c>pq codebooks</c>, <c>train</c> (done).
    /// </summary>
    /// <exception cref="ArgumentException">Wrong dimension, non-finite values, or fewer vectors than lists.</exception>
    public void Train(ReadOnlySpan<float> vectors, IProgress<BuildProgress>? progress)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        Guard.Finite(vectors, Dimension, nameof(vectors));
        if (n < ListCount && !_centroidsSupplied)
            throw new ArgumentException($"Training needs at least nlist = {ListCount} vectors, got {n}.", nameof(vectors));
        if (n == 0) throw new ArgumentException("Training needs at least one vector.", nameof(vectors));
        int d = Dimension, threads = TrainingThreads;
        var rng = new Random(TrainingSeed);
        _lock.EnterWriteLock();
        try
        {
            if (_count > 0) throw new InvalidOperationException("The index already holds vectors; create a new index to retrain.");
            if (_opq is not null)
            {
                progress?.Report(new BuildProgress("opq", 0, 1));
                var sample = Sample(vectors, n, Math.Min(n, 8192), rng, transform: false);
                _opq.Train(sample, Spec.Bits, TrainingSeed, threads, iterations: d > 256 ? 2 : 6);
            }
            // k-means samples ≤ 256 rows per list itself; only a transformed space (cosine / OPQ) needs a copy, and
            // then only of that bounded sample.
            bool transformed = Metric == Metric.Cosine || _opq is not null;
            if (!_centroidsSupplied)
            {
                var opts = new KMeansOptions(ListCount) { Seed = TrainingSeed, Threads = threads, Balanced = BalancedLists, Backend = ClusteringBackend, Progress = progress };
                _centroids = transformed
                    ? KMeans.Train(Sample(vectors, n, (int)Math.Min(n, (long)ListCount * opts.MaxPointsPerCentroid), rng, transform: true), d, opts)
                    : KMeans.Train(vectors, d, opts);
                Distances.SquaredNorms(_centroids, d, _centroidNorms);
            }
            // PQ codebooks and the SQ8 range learn from a second bounded sample (≤ 256 rows per PQ centroid).
            int cap = Math.Min(n, _pq is null ? 65536 : _pq.Ksub * 256);
            float[] train = Sample(vectors, n, cap, rng, transform: true);
            if (_pq is { IsTrained: false } pq)
            {
                progress?.Report(new BuildProgress("pq codebooks", 0, 1));
                var residuals = (float[])train.Clone();
                var assign = KMeans.Assign(residuals, _centroids, d, threads);
                for (int i = 0; i < cap; i++)
                    System.Numerics.Tensors.TensorPrimitives.Subtract(residuals.AsSpan(i * d, d), _centroids.AsSpan(assign[i] * d, d), residuals.AsSpan(i * d, d));
                pq.Train(residuals, TrainingSeed + 17, threads);
            }
            _refine?.Train(train);
            BuildTerm2();
            _trained = true;
            progress?.Report(new BuildProgress("train", 1, 1));
        }
        finally { _lock.ExitWriteLock(); }
    }

    // Up to `count` rows chosen by a seeded shuffle (all rows in order when count == n), optionally moved to the
    // working space.
    private float[] Sample(ReadOnlySpan<float> vectors, int n, int count, Random rng, bool transform)
    {
        int d = Dimension;
        var result = new float[count * d];
        if (count == n) vectors.CopyTo(result);
        else
        {
            var perm = Enumerable.Range(0, n).ToArray();
            for (int i = 0; i < count; i++) { int j = i + rng.Next(n - i); (perm[i], perm[j]) = (perm[j], perm[i]); }
            Array.Sort(perm, 0, count);
            for (int i = 0; i < count; i++) vectors.Slice(perm[i] * d, d).CopyTo(result.AsSpan(i * d, d));
        }
        return transform ? ToWorkingSpace(result, count) : result;
    }

    /// <summary>Normalises (cosine) and rotates (OPQ) n rows; returns the array holding the result.</summary>
    internal float[] ToWorkingSpace(float[] rows, int n)
    {
        int d = Dimension;
        if (Metric == Metric.Cosine)
            for (int i = 0; i < n; i++) Normalize(rows.AsSpan(i * d, d));
        if (_opq is null) return rows;
        var rotated = new float[n * d];
        _opq.Apply(rows.AsSpan(0, n * d), rotated);
        return rotated;
    }

    internal static void Normalize(Span<float> v)
    {
        float norm = Distances.SquaredNorm(v);
        if (norm > 0) System.Numerics.Tensors.TensorPrimitives.Multiply(v, 1f / MathF.Sqrt(norm), v);
    }

    // term2[l, m, j] = ‖c_mj‖² + 2⟨centroid_l (sub-vector m), c_mj⟩ for L2 residual PQ.
    private void BuildTerm2()
    {
        _term2 = null;
        if (_pq is null || Metric != Metric.L2) return;
        long size = (long)ListCount * _pq.M * _pq.Ksub;
        if (size > MaxTerm2Floats) return;
        var t = new float[size];
        int per = _pq.M * _pq.Ksub;
        ParallelWork.For(0, ListCount, TrainingThreads > 0 ? TrainingThreads : Environment.ProcessorCount,
            l => ComputeTerm2(l, t.AsSpan(l * per, per)));
        _term2 = t;
    }

    internal void ComputeTerm2(int list, Span<float> row)
    {
        var pq = _pq!;
        pq.InnerProductTable(_centroids.AsSpan(list * Dimension, Dimension), row);
        for (int m = 0; m < pq.M; m++)
            for (int j = 0; j < pq.Ksub; j++)
                row[m * pq.Ksub + j] = 2 * row[m * pq.Ksub + j] + Distances.SquaredNorm(pq.Centroid(m, j));
    }

    private void EnsureTrained()
    {
        if (!_trained) throw new InvalidOperationException($"The '{Description}' index is not trained: call Train first.");
    }

    /// <inheritdoc />
    /// <remarks>Waits for running searches and mutations, then releases the file mapping of a mapped load (the
    /// file can then be deleted or overwritten). Idempotent.</remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _lock.EnterWriteLock();
        try
        {
            foreach (var list in _lists) list.Release();
            _directMap.Clear();
            _count = 0;
            _mapping?.Dispose();
            _mapping = null;
        }
        finally { _lock.ExitWriteLock(); }
        _lock.Dispose();
    }
}
