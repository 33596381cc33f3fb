namespace Engine.Quantization;

/// <summary>
/// A vector codec (faiss <c>Quantizer</c> / <c>CodecIndex</c>): turns d floats into <see cref="CodeSize"/> bytes and
/// back, and estimates distances from a float query to codes. Indexes compose a codec with a coarse quantizer, list
/// storage and a scanner; the codec itself knows nothing of indexes, lists or files.
/// </summary>
/// <remarks>Implementations: <see cref="VectorCodec"/> (Flat, F16, SQ8), <see cref="ProductQuantizer"/> (PQ, 4 or 8
/// bits per sub-code, one byte each) and <see cref="PQ4FastScanCodec"/> (4-bit PQ stored in fast-scan blocks).
/// <see cref="TransformedCodec"/> puts an <see cref="IVectorTransform"/> such as <see cref="OpqRotation"/> in front of
/// any codec. Thread safety: once trained, encode, decode and estimators may be used from any number of threads
/// (an estimator itself belongs to one thread).</remarks>
public interface IVectorCodec
{
    /// <summary>Vector dimension d.</summary>
    int Dimension { get; }

    /// <summary>Bytes of one vector's code.</summary>
    int CodeSize { get; }

    /// <summary>True when the codec can encode.</summary>
    bool IsTrained { get; }

    /// <summary>Learns the codec's parameters from n × d rows (no-op for codecs without parameters).</summary>
    /// <param name="vectors">Training rows.</param>
    /// <param name="seed">Seed of any random choice.</param>
    /// <param name="threads">Worker threads (0 = all processors).</param>
    void Train(ReadOnlySpan<float> vectors, int seed, int threads);

    /// <summary>Encodes n × d rows into n × <see cref="CodeSize"/> bytes.</summary>
    void Encode(ReadOnlySpan<float> vectors, Span<byte> codes);

    /// <summary>Decodes n × <see cref="CodeSize"/> bytes into n × d floats (the codec's reconstruction).</summary>
    void Decode(ReadOnlySpan<byte> codes, Span<float> vectors);

    /// <summary>
    /// A per-query distance estimator for <paramref name="metric"/> (for cosine the caller normalises vectors and
    /// queries, which makes it inner product). Each thread uses its own.
    /// </summary>
    IDistanceEstimator CreateEstimator(Metric metric);
}

/// <summary>
/// Distances from one query to codes (faiss <c>FlatCodesDistanceComputer</c>): <see cref="SetQuery"/> once (builds
/// tables), then <see cref="Distance"/> per code. Keys are "smaller is better": squared L2, or the negated inner
/// product. Not thread-safe: one per thread.
/// </summary>
public interface IDistanceEstimator
{
    /// <summary>Sets the query (d floats) the next distances are measured from.</summary>
    void SetQuery(ReadOnlySpan<float> query);

    /// <summary>The distance key from the query to one code (<see cref="IVectorCodec.CodeSize"/> bytes).</summary>
    float Distance(ReadOnlySpan<byte> code);
}

/// <summary>
/// An estimator that also bounds its error per code (RaBitQ): with a confidence set by <c>epsilon</c> (1.9 ≈ 99.9 %
/// per pair in RaBitQ's analysis), the true key lies within ±<see cref="Bound"/> of <see cref="IDistanceEstimator.Distance"/>.
/// Re-ranking then reads candidates in order of estimate − bound and stops at the first that cannot beat the k-th.
/// </summary>
public interface IBoundedDistanceEstimator : IDistanceEstimator
{
    /// <summary>The error bound of the key of <paramref name="code"/> at confidence <paramref name="epsilon"/>.</summary>
    float Bound(ReadOnlySpan<byte> code, float epsilon);
}

/// <summary>
/// An invertible linear map applied to vectors before a codec (faiss <c>VectorTransform</c>), e.g. the OPQ rotation.
/// Rotations preserve distances, so an index works in the transformed space unchanged.
/// </summary>
public interface IVectorTransform
{
    /// <summary>Input and output dimension.</summary>
    int Dimension { get; }

    /// <summary>True when the transform can be applied.</summary>
    bool IsTrained { get; }

    /// <summary>Transforms n × d rows of <paramref name="x"/> into <paramref name="y"/>.</summary>
    void Apply(ReadOnlySpan<float> x, Span<float> y);

    /// <summary>Maps n × d transformed rows back (the inverse of <see cref="Apply"/>).</summary>
    void Revert(ReadOnlySpan<float> y, Span<float> x);
}

/// <summary>
/// A transform whose parameters are learnt from data and saved with the index that uses it (e.g.
/// <see cref="OpqRotation"/>): the index trains it before anything that works in its output space, writes
/// <see cref="Parameters"/> and installs them again on load. Indexes hold it as an <see cref="IVectorTransform"/> and
/// know nothing else of it.
/// </summary>
public interface ILearnedTransform : IVectorTransform
{
    /// <summary>Learns the parameters from n × d rows (a sample: implementations may sub-sample further).</summary>
    /// <param name="vectors">Training rows.</param>
    /// <param name="seed">Seed of any random choice.</param>
    /// <param name="threads">Worker threads (0 = all processors).</param>
    void Train(ReadOnlySpan<float> vectors, int seed, int threads);

    /// <summary>The learnt parameters as floats (what an index saves; a fixed length for the dimension, also before training).</summary>
    ReadOnlySpan<float> Parameters { get; }

    /// <summary>Installs parameters read back from a file (marks the transform trained).</summary>
    /// <exception cref="ArgumentException">They do not form a valid transform (length, non-finite values, or a
    /// rotation that is not orthogonal); the message names the problem.</exception>
    void SetParameters(ReadOnlySpan<float> parameters);
}
