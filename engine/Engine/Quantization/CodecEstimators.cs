using Engine.Distance;

namespace Engine.Quantization;

/// <summary>Estimator of the whole-vector codecs: decodes (f16, SQ8) or views (f32) the code and computes the exact key.</summary>
internal sealed class VectorCodecEstimator(VectorCodec codec, Metric metric) : IDistanceEstimator
{
    private readonly float[] _query = new float[codec.Dimension];
    private readonly float[] _scratch = new float[codec.Dimension];
    private readonly bool _innerProduct = metric != Metric.L2;

    public void SetQuery(ReadOnlySpan<float> query) => query[..codec.Dimension].CopyTo(_query);

    public float Distance(ReadOnlySpan<byte> code) => codec.Key(_query, code, _innerProduct, _scratch);
}

/// <summary>Asymmetric distance (ADC) estimator of a product quantizer: one M × Ksub table per query, M lookups per code.</summary>
internal sealed class PQEstimator(ProductQuantizer pq, Metric metric) : IDistanceEstimator
{
    private readonly float[] _table = new float[pq.M * pq.Ksub];
    private readonly bool _innerProduct = metric != Metric.L2;

    public void SetQuery(ReadOnlySpan<float> query)
    {
        if (_innerProduct)
        {
            pq.InnerProductTable(query, _table);
            System.Numerics.Tensors.TensorPrimitives.Negate(_table, _table);
        }
        else pq.L2Table(query, _table);
    }

    public float Distance(ReadOnlySpan<byte> code)
    {
        float key = 0;
        int ksub = pq.Ksub;
        for (int m = 0; m < pq.M; m++) key += _table[m * ksub + code[m]];
        return key;
    }
}

/// <summary>Estimator of a <see cref="TransformedCodec"/>: transforms the query once, then asks the inner estimator.</summary>
internal sealed class TransformedEstimator(IVectorTransform transform, IDistanceEstimator inner) : IDistanceEstimator
{
    private readonly float[] _query = new float[transform.Dimension];

    public void SetQuery(ReadOnlySpan<float> query)
    {
        transform.Apply(query[..transform.Dimension], _query);
        inner.SetQuery(_query);
    }

    public float Distance(ReadOnlySpan<byte> code) => inner.Distance(code);
}

/// <summary>
/// A codec behind a transform (faiss <c>IndexPreTransform</c> for codecs, e.g. <c>OPQ16,PQ16</c>): vectors are
/// transformed before encoding, queries before estimating, and decoded vectors transformed back. The inner codec, its
/// codes and its estimators work in the transformed space unchanged; with an orthogonal transform (a rotation) the
/// distances are those of the original space.
/// </summary>
/// <remarks><see cref="Train"/> learns an untrained <see cref="ILearnedTransform"/> first (on the same rows), then
/// the inner codec on the transformed rows. Thread safety: as the inner codec's.</remarks>
/// <param name="transform">The transform (e.g. a trained <see cref="OpqRotation"/>).</param>
/// <param name="inner">The codec working in the transformed space.</param>
public sealed class TransformedCodec(IVectorTransform transform, IVectorCodec inner) : IVectorCodec
{
    /// <summary>The transform in front.</summary>
    public IVectorTransform Transform { get; } = Check(transform, inner);

    /// <summary>The codec in the transformed space.</summary>
    public IVectorCodec Inner { get; } = inner;

    private static IVectorTransform Check(IVectorTransform transform, IVectorCodec inner)
    {
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentNullException.ThrowIfNull(inner);
        if (transform.Dimension != inner.Dimension)
            throw new ArgumentException($"The transform maps d={transform.Dimension} but the codec encodes d={inner.Dimension}.", nameof(inner));
        return transform;
    }

    /// <inheritdoc />
    public int Dimension => Inner.Dimension;

    /// <inheritdoc />
    public int CodeSize => Inner.CodeSize;

    /// <inheritdoc />
    public bool IsTrained => Transform.IsTrained && Inner.IsTrained;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The transform is not trained and cannot learn (not an <see cref="ILearnedTransform"/>).</exception>
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads)
    {
        Guard.Rows(vectors, Dimension, nameof(vectors));
        if (Transform is ILearnedTransform { IsTrained: false } learned) learned.Train(vectors, seed, threads);
        Inner.Train(Forward(vectors), seed, threads);
    }

    /// <inheritdoc />
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes) => Inner.Encode(Forward(vectors), codes);

    /// <inheritdoc />
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors)
    {
        int n = codes.Length / CodeSize;
        var y = new float[n * Dimension];
        Inner.Decode(codes[..(n * CodeSize)], y);
        Transform.Revert(y, vectors[..(n * Dimension)]);
    }

    /// <inheritdoc />
    public IDistanceEstimator CreateEstimator(Metric metric) => new TransformedEstimator(Transform, Inner.CreateEstimator(metric));

    private float[] Forward(ReadOnlySpan<float> vectors)
    {
        if (!Transform.IsTrained) throw new InvalidOperationException("The transform in front of the codec is not trained.");
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        var y = new float[n * Dimension];
        Transform.Apply(vectors, y);
        return y;
    }
}
