using System.Runtime.Intrinsics;
using Engine.Clustering;
using Engine.Distance;

namespace Engine.Quantization;

/// <summary>
/// Product quantizer: splits a d-vector into M sub-vectors of d/M floats and encodes each by the nearest of
/// 2^bits sub-centroids (Jégou et al. 2011). One code byte per sub-quantizer in the unpacked form.
/// </summary>
/// <remarks>
/// Codebooks are <c>M × Ksub × Dsub</c> floats. Training runs seeded <see cref="KMeans"/> per sub-space.
/// Thread safety: encoding, decoding and tables are read-only and safe from any number of threads once
/// trained; training and <see cref="SetCodebooks"/> are not.
/// </remarks>
public sealed class ProductQuantizer : IVectorCodec
{
    /// <summary>Creates an untrained quantizer.</summary>
    /// <exception cref="ArgumentException">M does not divide d, or bits is not 4 or 8.</exception>
    public ProductQuantizer(int dimension, int subQuantizers, int bits)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (subQuantizers <= 0 || dimension % subQuantizers != 0)
            throw new ArgumentException($"PQ sub-quantizer count M={subQuantizers} must be positive and divide the dimension d={dimension}.", nameof(subQuantizers));
        if (bits != 4 && bits != 8)
            throw new ArgumentException($"PQ code size nbits={bits} is not supported: use 4 or 8.", nameof(bits));
        Dimension = dimension;
        M = subQuantizers;
        Bits = bits;
        Ksub = 1 << bits;
        Dsub = dimension / subQuantizers;
        Codebooks = new float[M * Ksub * Dsub];
    }

    /// <summary>Vector dimension d.</summary>
    public int Dimension { get; }

    /// <summary>Number of sub-quantizers M.</summary>
    public int M { get; }

    /// <summary>Bits per code (4 or 8).</summary>
    public int Bits { get; }

    /// <summary>Centroids per sub-quantizer (2^bits).</summary>
    public int Ksub { get; }

    /// <summary>Floats per sub-vector (d / M).</summary>
    public int Dsub { get; }

    /// <summary>Codebooks, M × Ksub × Dsub row-major.</summary>
    public float[] Codebooks { get; private set; }

    // Codebooks transposed per sub-quantizer (M × Dsub × Ksub) so a query table is Dsub broadcast FMAs over
    // Ksub lanes instead of Ksub short dot products.
    private float[] _transposed = [];

    /// <summary>True after <see cref="Train"/> or <see cref="SetCodebooks"/>.</summary>
    public bool IsTrained { get; private set; }

    /// <summary>Installs externally trained codebooks (M × Ksub × Dsub floats).</summary>
    public void SetCodebooks(ReadOnlySpan<float> codebooks)
    {
        if (codebooks.Length != Codebooks.Length)
            throw new ArgumentException($"Codebooks must hold M×Ksub×Dsub = {Codebooks.Length} floats, got {codebooks.Length}.", nameof(codebooks));
        Guard.Finite(codebooks, Dsub, nameof(codebooks));
        Codebooks = codebooks.ToArray();
        Transpose();
        IsTrained = true;
    }

    private void Transpose()
    {
        var t = new float[Codebooks.Length];
        for (int m = 0; m < M; m++)
            for (int j = 0; j < Ksub; j++)
                for (int e = 0; e < Dsub; e++)
                    t[(m * Dsub + e) * Ksub + j] = Codebooks[(m * Ksub + j) * Dsub + e];
        _transposed = t;
    }

    /// <summary>Trains the codebooks on n × d rows with seeded k-means per sub-space.</summary>
    public void Train(ReadOnlySpan<float> vectors, int seed, int threads, int iterations = 10)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (n < Ksub) throw new ArgumentException($"PQ training needs at least {Ksub} vectors, got {n}.", nameof(vectors));
        var sub = new float[n * Dsub];
        for (int m = 0; m < M; m++)
        {
            for (int i = 0; i < n; i++) vectors.Slice(i * Dimension + m * Dsub, Dsub).CopyTo(sub.AsSpan(i * Dsub, Dsub));
            var c = KMeans.Train(sub, Dsub, new KMeansOptions(Ksub) { Seed = seed + m, Iterations = iterations, Threads = threads });
            c.CopyTo(Codebooks, m * Ksub * Dsub);
        }
        Transpose();
        IsTrained = true;
    }

    /// <summary>Bytes per code: one per sub-quantizer (M), also for 4-bit sub-codes.</summary>
    public int CodeSize => M;

    /// <inheritdoc />
    void IVectorCodec.Train(ReadOnlySpan<float> vectors, int seed, int threads) => Train(vectors, seed, threads);

    /// <inheritdoc />
    /// <remarks>Asymmetric distance: one M × Ksub table per query (L2 table, or negated inner products).</remarks>
    public IDistanceEstimator CreateEstimator(Metric metric) => new PQEstimator(this, metric);

    /// <summary>Sub-centroid <paramref name="j"/> of sub-quantizer <paramref name="m"/> (Dsub floats).</summary>
    public ReadOnlySpan<float> Centroid(int m, int j) => Codebooks.AsSpan((m * Ksub + j) * Dsub, Dsub);

    /// <summary>Encodes n rows into n × M code bytes (one sub-code per byte).</summary>
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (codes.Length < n * M) throw new ArgumentException($"codes must hold {n * M} bytes.", nameof(codes));
        // The nearest sub-centroid per sub-space, read off the row's own L2 table (one transposed-codebook pass).
        var table = M * Ksub <= 16384 ? stackalloc float[M * Ksub] : new float[M * Ksub];
        for (int i = 0; i < n; i++)
        {
            L2Table(vectors.Slice(i * Dimension, Dimension), table);
            for (int m = 0; m < M; m++)
            {
                var dist = table.Slice(m * Ksub, Ksub);
                int best = 0;
                for (int j = 1; j < Ksub; j++) if (dist[j] < dist[best]) best = j;
                codes[i * M + m] = (byte)best;
            }
        }
    }

    /// <summary>Decodes n × M code bytes into n × d floats.</summary>
    public void Decode(ReadOnlySpan<byte> codes, Span<float> vectors)
    {
        int n = codes.Length / M;
        if (vectors.Length < n * Dimension) throw new ArgumentException($"vectors must hold {n * Dimension} floats.", nameof(vectors));
        for (int i = 0; i < n; i++)
            for (int m = 0; m < M; m++)
                Centroid(m, codes[i * M + m]).CopyTo(vectors.Slice(i * Dimension + m * Dsub, Dsub));
    }

    /// <summary>Per sub-quantizer inner products ⟨x_m, c_mj⟩ into <paramref name="table"/> (M × Ksub).</summary>
    public void InnerProductTable(ReadOnlySpan<float> x, Span<float> table) => Table<DotOp>(x, table);

    /// <summary>Per sub-quantizer squared distances ‖x_m − c_mj‖² into <paramref name="table"/> (M × Ksub).</summary>
    /// <remarks>Computed directly as Σ (x − c)² (no norm expansion, so no cancellation).</remarks>
    public void L2Table(ReadOnlySpan<float> x, Span<float> table) => Table<L2Op>(x, table);

    // One ADC table: over the transposed codebooks, Dsub broadcast steps of TOp over Ksub centroids per vector of lanes.
    private void Table<TOp>(ReadOnlySpan<float> x, Span<float> table) where TOp : struct, IPairOp
    {
        if (table.Length < M * Ksub) throw new ArgumentException($"table must hold M×Ksub = {M * Ksub} floats.", nameof(table));
        var t = _transposed;
        if (Vector512.IsHardwareAccelerated && t.Length == Codebooks.Length)
        {
            for (int m = 0; m < M; m++)
                for (int j0 = 0; j0 < Ksub; j0 += 16)
                {
                    var acc = Vector512<float>.Zero;
                    for (int e = 0; e < Dsub; e++)
                        acc = TOp.Acc(Vector512.Create(x[m * Dsub + e]), Vector512.Create(t, (m * Dsub + e) * Ksub + j0), acc);
                    acc.CopyTo(table.Slice(m * Ksub + j0, 16));
                }
            return;
        }
        if (Vector256.IsHardwareAccelerated && t.Length == Codebooks.Length)
        {
            for (int m = 0; m < M; m++)
                for (int j0 = 0; j0 < Ksub; j0 += 8)
                {
                    var acc = Vector256<float>.Zero;
                    for (int e = 0; e < Dsub; e++)
                        acc = TOp.Acc(Vector256.Create(x[m * Dsub + e]), Vector256.Create(t, (m * Dsub + e) * Ksub + j0), acc);
                    acc.CopyTo(table.Slice(m * Ksub + j0, 8));
                }
            return;
        }
        for (int m = 0; m < M; m++)
        {
            var xm = x.Slice(m * Dsub, Dsub);
            for (int j = 0; j < Ksub; j++)
            {
                float acc = 0;
                var c = Codebooks.AsSpan((m * Ksub + j) * Dsub, Dsub);
                for (int e = 0; e < Dsub; e++) acc = TOp.Acc(xm[e], c[e], acc);
                table[m * Ksub + j] = acc;
            }
        }
    }
}
