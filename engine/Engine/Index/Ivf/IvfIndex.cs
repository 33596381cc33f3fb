using Engine.Clustering;
using Engine.Distance;
using Engine.Index.Lists;
using Engine.Quantization;
using Engine.Runtime;

namespace Engine.Index.Ivf;

/// <summary>
/// Inverted-file index (IVFADC, Jégou et al. 2011): a k-means coarse quantizer splits the corpus into lists; a
/// query scans only the lists of its nearest centroids. Lists hold full vectors (<c>IVF{n},Flat</c>), residual
/// PQ codes scanned with float ADC tables (<c>PQ{m}</c>) or 4-bit residual codes packed for SIMD fast-scan
/// (<c>PQ{m}x4fs</c>); an optional refine store re-ranks the best k × RefineFactor candidates exactly.
/// </summary>
/// <remarks>
/// <para>Design (faiss <c>IndexIVF</c>): four parts meet here and nowhere else. The coarse quantizer
/// (<see cref="ICoarseQuantizer"/>: exhaustive centroids today, any <see cref="IVectorIndex"/> through
/// <see cref="IndexCoarseQuantizer"/>), the list codec (<see cref="IVectorCodec"/>: f32 rows, <see cref="ProductQuantizer"/>
/// or <see cref="PQ4FastScanCodec"/>; the constructor is the one place that maps the spec to a codec), the inverted
/// lists (<see cref="Lists.InvertedLists"/>: heap or memory-mapped backing, codes in the codec's layout) and the list
/// scanner (<see cref="IvfListScanner"/>, chosen once per search thread for the codec; all scan loops live there). The
/// exact re-ranking store is a <see cref="VectorCodec"/>. A front transform (<see cref="IVectorTransform"/>: the OPQ
/// rotation of <c>OPQ{m},…</c>, in front of Flat, PQ and BIN lists) maps every vector and query once on entry and the
/// index works in its output space (a rotation preserves distances). Cosine vectors
/// are normalised on entry, so cosine is inner product inside. docs/extending.md shows how to add a codec.</para>
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
public sealed partial class IvfIndex : IVectorIndex, ITrimmableIndex
{
    private readonly IndexLock _lock = new(nameof(IvfIndex));
    private readonly ScratchPool<IvfScratch> _scratchPool;
    private readonly InvertedLists _lists;
    private readonly Dictionary<long, long> _directMap = new();
    // SOAR (IVF{n}(soar)): id → the location of its second copy; null when the spec does not spill. A vector whose
    // second list would be its first (one list) has no entry.
    private readonly Dictionary<long, long>? _spillMap;
    private readonly FlatCoarseQuantizer _flatQuantizer;
    private ICoarseQuantizer _quantizer;
    private readonly IVectorCodec _codec;
    private readonly ProductQuantizer? _pq;
    private readonly RaBitQCodec? _rabitq;
    private readonly BinaryCodec? _binary;
    private ResidualTables? _tables;
    private readonly bool _residual; // codes of x − centroid (false: of x itself, the PQ "nr" specs)
    // The front transform (OPQ today): every vector and query enters the working space through it. Null: none.
    private readonly IVectorTransform? _transform;
    private readonly VectorCodec? _refine;
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
        _scratchPool = new ScratchPool<IvfScratch>(NewScratch);
        _flatQuantizer = new FlatCoarseQuantizer(spec.Lists, dimension, metric);
        if (spec.SpillLambda is not null) _spillMap = new Dictionary<long, long>();
        _quantizer = _flatQuantizer;
        // The list codec: the one place that maps the spec's encoding to a codec; everything else asks the codec,
        // its code layout or the scanner it selects.
        switch (spec.Encoding)
        {
            case IvfListEncoding.Flat: _codec = new VectorCodec(dimension, VectorEncoding.Flat); break;
            case IvfListEncoding.PQ: _codec = _pq = new ProductQuantizer(dimension, spec.SubQuantizers, spec.Bits); break;
            case IvfListEncoding.RaBitQ: _codec = _rabitq = new RaBitQCodec(dimension, spec.Bits, metric == Metric.L2 ? Metric.L2 : Metric.InnerProduct); break;
            case IvfListEncoding.Binary: _codec = _binary = new BinaryCodec(dimension, spec.Bits); break;
            case IvfListEncoding.RaBitQFastScan:
                var rfs = new RaBitQFastScanCodec(dimension, spec.Bits, metric == Metric.L2 ? Metric.L2 : Metric.InnerProduct);
                (_codec, _rabitq) = (rfs, rfs.Codec);
                break;
            default:
                var fs = new PQ4FastScanCodec(dimension, spec.SubQuantizers);
                (_codec, _pq) = (fs, fs.Quantizer);
                break;
        }
        _chooseAnisotropic = _pq is not null && spec.AnisotropicThresholdFor(metric) is null; // IP / cosine: chosen when trained
        if (_pq is not null) _pq.AnisotropicThreshold = spec.AnisotropicThresholdFor(metric) ?? 0;
        _residual = ((_pq is not null || _binary is not null) && spec.ByResidual) || _rabitq is not null; // RaBitQ codes are always of residuals
        if (_residual && _pq is not null) _tables = new ResidualTables(_quantizer, _pq, metric);
        _transform = CreateTransform(spec, dimension);
        if (spec.Refine is { } r) _refine = new VectorCodec(dimension, r);
        _lists = new InvertedLists(spec.Lists, _codec switch
        {
            PQ4FastScanCodec f => f.Layout,
            RaBitQFastScanCodec rf => rf.Layout,
            _ => CodeLayout.Rows(_codec.CodeSize),
        }, _refine?.CodeSize ?? 0);
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
    public string Description => _description ??= Spec.ToString(); // the spec never changes; searches name it without allocating

    private string? _description;

    /// <summary>Number of inverted lists (nlist).</summary>
    public int ListCount => _lists.Count;

    /// <summary>The flat quantizer's centroids (nlist × d, in the working space), for tests.</summary>
    internal ReadOnlySpan<float> CoarseCentroids => _flatQuantizer.Centroids;

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

    /// <summary>The list codec (f32 rows for <c>Flat</c>, PQ codes of residuals or vectors otherwise).</summary>
    internal IVectorCodec Codec => _codec;

    /// <summary>Number of vectors in each list (for diagnostics and tests).</summary>
    public int[] ListSizes()
    {
        _lock.EnterRead();
        try { return _lists.Select(l => l.Count).ToArray(); }
        finally { _lock.ExitRead(); }
    }

    /// <inheritdoc />
    /// <remarks>Heap memory only: centroids, codebooks, tables, the id map and the lists held in managed arrays.
    /// Lists still pointing into the file mapping of a mapped load (<see cref="Load"/> with <c>mapped: true</c>)
    /// count nothing here; their bytes are reported by <see cref="MappedBytes"/> (OS page cache, not heap).</remarks>
    public long MemoryBytes
    {
        get
        {
            _lock.EnterRead();
            try
            {
                long b = _quantizer.MemoryBytes + (_pq?.Codebooks.Length ?? 0) * 4L + (_tables?.MemoryBytes ?? 0)
                    + TransformBytes + (long)(_directMap.Count + (_spillMap?.Count ?? 0)) * 24;
                foreach (var l in _lists) b += l.MemoryBytes;
                return b;
            }
            finally { _lock.ExitRead(); }
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
            _lock.EnterRead();
            try { return _lists.Sum(l => l.MappedBytes); }
            finally { _lock.ExitRead(); }
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
        if (centroids.Length != (long)ListCount * Dimension)
            throw new ArgumentException($"Centroids must hold nlist×d = {(long)ListCount * Dimension} floats, got {centroids.Length}.", nameof(centroids));
        Guard.Finite(centroids, Dimension, nameof(centroids));
        _lock.EnterWrite();
        Interlocked.Increment(ref _deviceStamp);
        try
        {
            if (_count > 0) throw new InvalidOperationException("Cannot replace centroids of an index that holds vectors.");
            _flatQuantizer.SetCentroids(centroids.ToArray());
            SetQuantizer(ServingQuantizer());
            _centroidsSupplied = true;
            if (_rabitq is { IsTrained: false }) _rabitq.UseRotationSeed(RaBitQSeed); // the rotation needs no data
            if (_pq is null && _binary is null && _refine?.IsTrained != false && _transform is null) _trained = true;
            else if (_pq is { IsTrained: true } && _refine?.IsTrained != false && _transform is null) { BuildTerm2(); _trained = true; }
        }
        finally { _lock.ExitWrite(); }
    }

    /// <summary>
    /// Serves the probes (and the assignment of new vectors) from <paramref name="quantizer"/> instead of the
    /// exhaustive centroids, e.g. an HNSW graph over the same centroids when nlist is large. The index must be trained
    /// and empty; the quantizer must hold ListCount centroids of dimension d in the working space. Lists, codecs and
    /// scanners are unchanged. Saving writes its centroids; a load serves them exhaustively again.
    /// </summary>
    internal void UseCoarseQuantizer(ICoarseQuantizer quantizer)
    {
        ArgumentNullException.ThrowIfNull(quantizer);
        if (quantizer.ListCount != ListCount)
            throw new ArgumentException($"The quantizer holds {quantizer.ListCount} centroids; the index has {ListCount} lists.", nameof(quantizer));
        _lock.EnterWrite();
        Interlocked.Increment(ref _deviceStamp);
        try
        {
            EnsureTrained();
            if (_count > 0) throw new InvalidOperationException("Cannot replace the coarse quantizer of an index that holds vectors.");
            SetQuantizer(quantizer);
            BuildTerm2();
        }
        finally { _lock.ExitWrite(); }
    }

    /// <summary>ef of the HNSW coarse quantizer's searches (the search uses max(ef, probes)).</summary>
    internal const int CoarseHnswEf = 64;

    // The quantizer that answers probes over the flat quantizer's centroids: the flat one itself, or (IVF{n}_HNSW{M})
    // an HNSW graph over them, built on one thread (deterministic for the centroids) with ids 0..nlist-1 and the
    // same keys as the flat quantizer (squared L2, or inner product in the working space).
    private ICoarseQuantizer ServingQuantizer()
    {
        if (Spec.CoarseHnswM == 0) return _flatQuantizer;
        var graph = new Hnsw.HnswIndex($"HNSW{Spec.CoarseHnswM}", Dimension, Metric == Metric.L2 ? Metric.L2 : Metric.InnerProduct) { BuildThreads = 1 };
        var ids = new long[ListCount];
        for (int i = 0; i < ids.Length; i++) ids[i] = i;
        graph.Add(_flatQuantizer.Centroids, ids);
        return new IndexCoarseQuantizer(graph, (threads, ef) => new Hnsw.HnswSearchParameters { Ef = ef ?? CoarseHnswEf, Threads = threads }, owned: true);
    }

    // Under the write lock: the quantizer, the residual tables over its centroids, and no pooled scanner holding the
    // old tables.
    private void SetQuantizer(ICoarseQuantizer quantizer)
    {
        if (!ReferenceEquals(_quantizer, quantizer)) (_quantizer as IDisposable)?.Dispose();
        _quantizer = quantizer;
        if (_residual && _pq is not null) _tables = new ResidualTables(quantizer, _pq, Metric);
        _scratchPool.Clear();
    }

    /// <summary>Installs externally trained PQ codebooks (M × 2^bits × d/M floats). <see cref="Train(ReadOnlySpan{float})"/> then keeps them.</summary>
    public void UseCodebooks(ReadOnlySpan<float> codebooks)
    {
        var pq = _pq ?? throw new InvalidOperationException($"A '{Description}' index has no product quantizer.");
        _lock.EnterWrite();
        Interlocked.Increment(ref _deviceStamp);
        try
        {
            if (_count > 0) throw new InvalidOperationException("Cannot replace codebooks of an index that holds vectors.");
            pq.SetCodebooks(codebooks);
            if (_centroidsSupplied && _refine?.IsTrained != false && _transform is null) { BuildTerm2(); _trained = true; }
        }
        finally { _lock.ExitWrite(); }
    }

    /// <summary>
    /// Trains what was not supplied: OPQ rotation, coarse centroids (seeded k-means on ≤ 256 points per list),
    /// PQ codebooks (on residuals, or on the vectors for raw "nr" codes), the refine store's range; then
    /// precomputes the L2 term-2 table of residual codes.
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
        _lock.EnterWrite();
        Interlocked.Increment(ref _deviceStamp);
        try
        {
            if (_count > 0) throw new InvalidOperationException("The index already holds vectors; create a new index to retrain.");
            if (_transform is ILearnedTransform learned)
            {
                progress?.Report(new BuildProgress("opq", 0, 1));
                var sample = Sample(vectors, n, Math.Min(n, OpqRotation.MaxTrainingRows), rng, transform: false);
                learned.Train(sample, TrainingSeed, threads);
            }
            // k-means samples ≤ 256 rows per list itself; only a transformed space (cosine / front transform) needs a
            // copy, and then only of that bounded sample.
            bool transformed = Metric == Metric.Cosine || _transform is not null;
            if (!_centroidsSupplied)
            {
                // Data on the unit sphere (cosine, or inner product over normalised vectors): spherical k-means, as faiss
                // does for inner-product IVFs (unit centroids keep the lists balanced under inner-product assignment).
                // Inner product over vectors of varying norm keeps plain k-means, whose lists and recall floors were
                // measured that way.
                bool spherical = Metric == Metric.Cosine || (Metric == Metric.InnerProduct && Distances.SampledUnitRows(vectors, n, Dimension));
                var opts = new KMeansOptions(ListCount) { Seed = TrainingSeed, Threads = threads, Balanced = BalancedLists, Spherical = spherical, Backend = ClusteringBackend, Progress = progress };
                float[] centroids = transformed
                    ? KMeans.Train(Sample(vectors, n, (int)Math.Min(n, (long)ListCount * opts.MaxPointsPerCentroid), rng, transform: true), d, opts)
                    : KMeans.Train(vectors, d, opts);
                if (opts.Spherical) ScaleToMeanProjection(centroids, Sample(vectors, n, Math.Min(n, 65536), new Random(TrainingSeed ^ 0x5BD1E995), transform: true), threads);
                _flatQuantizer.SetCentroids(centroids);
                SetQuantizer(ServingQuantizer());
            }
            // PQ codebooks and the SQ8 range learn from a second bounded sample (≤ 256 rows per PQ centroid).
            int cap = Math.Min(n, _pq is null ? 65536 : _pq.Ksub * 256);
            float[] train = Sample(vectors, n, cap, rng, transform: true);
            if (_pq is { IsTrained: false } || _binary is { IsTrained: false })
            {
                progress?.Report(new BuildProgress(_pq is null ? "binary scales" : "pq codebooks", 0, 1));
                var residuals = train;
                if (_residual)
                {
                    residuals = (float[])train.Clone();
                    _quantizer.ToResiduals(residuals, d, threads);
                }
                _codec.Train(residuals, TrainingSeed + 17, threads);
            }
            if (_chooseAnisotropic)
            {
                progress?.Report(new BuildProgress("anisotropic threshold", 0, 1));
                var sample = Sample(vectors, n, AnisotropicTuning.SampleRows(n, d), new Random(TrainingSeed ^ 0x3C6EF372), transform: true);
                (_pq!.AnisotropicThreshold, AnisotropicRecalls) = AnisotropicTuning.Choose(_pq, sample, d, _residual ? _quantizer : null, threads);
            }
            if (_rabitq is { IsTrained: false }) _rabitq.UseRotationSeed(RaBitQSeed);
            _refine?.Train(train);
            BuildTerm2();
            _trained = true;
            progress?.Report(new BuildProgress("train", 1, 1));
        }
        finally { _lock.ExitWrite(); }
    }

    private readonly bool _chooseAnisotropic;

    /// <summary>
    /// The anisotropic threshold the PQ codes are encoded with (<see cref="ProductQuantizer.AnisotropicThreshold"/>; 0:
    /// plain codes, and for lists that are not PQ): the spec's <c>(aniso=T)</c>, or for an inner-product or cosine spec
    /// that leaves it out the one <see cref="Train(ReadOnlySpan{float}, IProgress{BuildProgress}?)"/> chose from
    /// <c>0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3</c> by the recall of the codes' ranking on a sample of the training rows
    /// (saved in the file; an index loaded from a file written before these codes existed reports 0, and so does one
    /// made trained by <see cref="UseCentroids"/> and <see cref="UseCodebooks"/> alone, without training data).
    /// </summary>
    public double AnisotropicThreshold => _pq?.AnisotropicThreshold ?? 0;

    /// <summary>The sampled shortlist recall of each threshold tried by the last training that chose one (tests, diagnostics).</summary>
    internal double[]? AnisotropicRecalls { get; private set; }

    /// <summary>Seed of the RaBitQ rotation (derived from <see cref="TrainingSeed"/>; saved in the file).</summary>
    private int RaBitQSeed => unchecked(TrainingSeed + 17);

    /// <summary>True when the lists hold the f32 rows themselves (<c>Flat</c>), not codes of residuals.</summary>
    private bool FlatLists => _pq is null && _rabitq is null && _binary is null;

    /// <summary>
    /// Gives the unit centroids of spherical k-means one common length r, the mean of ⟨x, c(x)⟩ over a sample (c(x)
    /// the centroid x is filed under). A common length ranks lists by inner product exactly as unit length does, so
    /// probes and list balance are unchanged, but residuals x − r·c are far shorter than x − c for data whose
    /// clusters are not tight (unit centroids sit outside the cloud of their members), which residual codes need.
    /// </summary>
    private void ScaleToMeanProjection(float[] centroids, float[] sample, int threads)
    {
        int d = Dimension, rows = sample.Length / d;
        int[] assign = KMeans.AssignMaxInnerProduct(sample, centroids, d, threads);
        double sum = 0;
        for (int i = 0; i < rows; i++) sum += Distances.Dot(sample.AsSpan(i * d, d), centroids.AsSpan(assign[i] * d, d));
        float r = (float)(sum / Math.Max(1, rows));
        if (r > 0 && float.IsFinite(r)) System.Numerics.Tensors.TensorPrimitives.Multiply(centroids, r, centroids);
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

    /// <summary>Normalises (cosine) and transforms (OPQ) n rows; returns the array holding the result.</summary>
    internal float[] ToWorkingSpace(float[] rows, int n)
    {
        int d = Dimension;
        if (Metric == Metric.Cosine)
            for (int i = 0; i < n; i++) Normalize(rows.AsSpan(i * d, d));
        if (_transform is null) return rows;
        var rotated = new float[n * d];
        _transform.Apply(rows.AsSpan(0, n * d), rotated);
        return rotated;
    }

    /// <summary>The front transform of the spec: the OPQ rotation of <c>OPQ{m},…</c>, trained against PQ of
    /// <see cref="IvfSpec.OpqBits"/> bits; null without one. The one place that maps the spec to a transform.</summary>
    private static IVectorTransform? CreateTransform(IvfSpec spec, int dimension) =>
        spec.OpqSubQuantizers > 0 ? new OpqRotation(dimension, spec.OpqSubQuantizers, spec.OpqBits) : null;

    /// <summary>The front transform (null without one), for tests.</summary>
    internal IVectorTransform? Transform => _transform;

    // Resident bytes of the front transform: its learnt parameters, held twice (OPQ keeps R and Rᵀ).
    private long TransformBytes => (_transform as ILearnedTransform)?.Parameters.Length * 2L * sizeof(float) ?? 0;

    internal static void Normalize(Span<float> v) => Distances.NormalizeInPlace(v);

    // Term-2 tables of L2 residual PQ (see ResidualTables).
    private void BuildTerm2() => _tables?.Build(TrainingThreads > 0 ? TrainingThreads : Environment.ProcessorCount);

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
        // Under the write lock (searches in flight finish first); later callers get ObjectDisposedException.
        _lock.Close(() =>
        {
            Interlocked.Increment(ref _deviceStamp);
            _lists.Release();
            _directMap.Clear();
            _spillMap?.Clear();
            _count = 0;
            _mapping?.Dispose();
            _mapping = null;
            (_quantizer as IDisposable)?.Dispose();
            DisposeDeviceLists();
        });
    }
}
