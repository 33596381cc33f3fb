using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
public sealed class ProductQuantizer : IResidualCodec
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

    /// <summary>Encodes n rows into n × M code bytes (one sub-code per byte): the nearest sub-centroids, or with
    /// <see cref="AnisotropicThreshold"/> &gt; 0 the score-aware codes of the rows themselves.</summary>
    public void Encode(ReadOnlySpan<float> vectors, Span<byte> codes)
    {
        int n = Guard.Rows(vectors, Dimension, nameof(vectors));
        if (codes.Length < n * M) throw new ArgumentException($"codes must hold {n * M} bytes.", nameof(codes));
        if (_anisotropic > 0) { EncodeAnisotropic(vectors, default, n, codes); return; } // the vectors themselves: x = r
        // The nearest sub-centroid per sub-space, read off the row's own L2 table (one transposed-codebook pass).
        var table = M * Ksub <= 16384 ? stackalloc float[M * Ksub] : new float[M * Ksub];
        for (int i = 0; i < n; i++)
        {
            L2Table(vectors.Slice(i * Dimension, Dimension), table);
            for (int m = 0; m < M; m++) codes[i * M + m] = (byte)Nearest(table.Slice(m * Ksub, Ksub));
        }
    }

    /// <summary>
    /// Score-aware (anisotropic) encoding for inner-product search (Guo et al., "Accelerating Large-Scale Inference
    /// with Anisotropic Vector Quantization", ICML 2020; ScaNN's <c>anisotropic_quantization_threshold</c>): with a
    /// threshold T &gt; 0 a vector x is encoded to minimise ‖e⊥‖² + η ‖e∥‖² instead of ‖e‖², where e = x − x̃ is the
    /// quantisation error, e∥ its component along x and η = <see cref="AnisotropicWeight.For"/>(d, T / ‖x‖) (the
    /// weight for unit queries whose inner product with x̂ exceeds T / ‖x‖, i.e. with x above T). The error along x is what moves ⟨q, x⟩ for every query that
    /// ranks x high, so these codes rank inner products better at the same size. Codebooks are trained as before;
    /// only the choice of sub-codes changes (nearest sub-centroids, then coordinate descent over the sub-quantizers,
    /// at most <see cref="AnisotropicPasses"/> passes). 0 (default): plain nearest-sub-centroid codes.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The threshold is not in [0, 1).</exception>
    public double AnisotropicThreshold
    {
        get => _anisotropic;
        set
        {
            if (!(value >= 0 && value < 1))
                throw new ArgumentOutOfRangeException(nameof(value), value, "The anisotropic threshold must be in [0, 1) (0 = plain codes).");
            _anisotropic = value;
        }
    }

    private double _anisotropic;

    /// <summary>Most coordinate-descent passes of the anisotropic encoding (each pass revisits every sub-quantizer).</summary>
    public const int AnisotropicPasses = 4;

    /// <summary>
    /// Encodes n residuals r = x − center (n × d each): with <see cref="AnisotropicThreshold"/> 0 as
    /// <see cref="Encode"/> (the centers are not read); otherwise anisotropically with the error measured along
    /// x = r + center, the vector whose inner products the codes serve.
    /// </summary>
    public void EncodeResiduals(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, Span<byte> codes)
    {
        int n = Guard.Rows(residuals, Dimension, nameof(residuals));
        if (_anisotropic == 0) { Encode(residuals, codes); return; }
        if (centers.Length != residuals.Length) throw new ArgumentException($"centers must hold {residuals.Length} floats, one row per residual.", nameof(centers));
        EncodeAnisotropic(residuals, centers, n, codes);
    }

    // The sub-code with the smallest squared distance in one sub-quantizer's row of an L2 table (the first on ties).
    private static int Nearest(ReadOnlySpan<float> dist)
    {
        int best = 0;
        for (int j = 1; j < dist.Length; j++) if (dist[j] < dist[best]) best = j;
        return best;
    }

    // Per row: the L2 table ‖r_m − c_mj‖² (the squared error of each sub-code choice) and the table ⟨c_mj, x̂_m⟩ give
    // every change of one sub-code in O(1): total squared error E and parallel error P = ⟨e, x̂⟩ are sums over m.
    private void EncodeAnisotropic(ReadOnlySpan<float> residuals, ReadOnlySpan<float> centers, int n, Span<byte> codes)
    {
        if (codes.Length < n * M) throw new ArgumentException($"codes must hold {n * M} bytes.", nameof(codes));
        int d = Dimension, tableLength = M * Ksub;
        var l2 = new float[tableLength];
        var along = new float[tableLength];
        var x = new float[d];
        var code = new int[M];
        for (int i = 0; i < n; i++)
        {
            var r = residuals.Slice(i * d, d);
            L2Table(r, l2);
            for (int m = 0; m < M; m++) code[m] = Nearest(l2.AsSpan(m * Ksub, Ksub));
            if (centers.IsEmpty) r.CopyTo(x);
            else System.Numerics.Tensors.TensorPrimitives.Add(r, centers.Slice(i * d, d), x);
            double norm2 = Distances.SquaredNorm(x);
            if (norm2 > 0 && d > 1)
            {
                double w = AnisotropicWeight.For(d, _anisotropic / Math.Sqrt(norm2)) - 1; // η − 1: the extra weight of the parallel error
                System.Numerics.Tensors.TensorPrimitives.Multiply(x, (float)(1 / Math.Sqrt(norm2)), x);
                InnerProductTable(x, along);
                double e = 0, p = Distances.Dot(r, x); // P = ⟨r − r̃, x̂⟩ = ⟨r, x̂⟩ − Σ_m ⟨c_m,code, x̂_m⟩
                for (int m = 0; m < M; m++) { e += l2[m * Ksub + code[m]]; p -= along[m * Ksub + code[m]]; }
                for (int pass = 0; pass < AnisotropicPasses; pass++)
                {
                    bool changed = false;
                    for (int m = 0; m < M; m++)
                    {
                        int o = m * Ksub, cur = code[m];
                        double e0 = e - l2[o + cur], p0 = p + along[o + cur];
                        double bestLoss = e + w * p * p;
                        int best = cur;
                        for (int j = 0; j < Ksub; j++)
                        {
                            double pj = p0 - along[o + j];
                            double loss = e0 + l2[o + j] + w * pj * pj;
                            if (loss < bestLoss) { bestLoss = loss; best = j; }
                        }
                        if (best == cur) continue;
                        e = e0 + l2[o + best];
                        p = p0 - along[o + best];
                        code[m] = best;
                        changed = true;
                    }
                    if (!changed) break;
                }
            }
            for (int m = 0; m < M; m++) codes[i * M + m] = (byte)code[m];
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

    // The 512-bit table: a tile is 16 centroids of one sub-quantizer (m, j0), accumulated over its Dsub dimensions in
    // order. Four tiles run side by side (four independent dependency chains instead of one: the FMA latency, not its
    // throughput, bounded the one-tile loop), each with the one-tile loop's per-lane order, so the table is the same.
    // Tile u is sub-quantizer u >> shift (Ksub / 16 = 2^shift tiles each): shifts, not divisions (four integer
    // divisions per four tiles took a fifth of the table's time), and each tile's offsets advance by Ksub per dimension.
    private void Table512<TOp>(ReadOnlySpan<float> x, Span<float> table, float[] t) where TOp : struct, IPairOp
    {
        int shift = System.Numerics.BitOperations.Log2((uint)(Ksub / 16)), tiles = M << shift, dsub = Dsub;
        nint ksub = Ksub;
        ref float tx = ref MemoryMarshal.GetReference(x);
        ref float tt = ref MemoryMarshal.GetArrayDataReference(t);
        ref float to = ref MemoryMarshal.GetReference(table);
        int u = 0;
        for (; u + 4 <= tiles; u += 4)
        {
            nint x0 = XOffset(u, shift), x1 = XOffset(u + 1, shift), x2 = XOffset(u + 2, shift), x3 = XOffset(u + 3, shift);
            nint c0 = TileOffset(u, shift, 16), c1 = TileOffset(u + 1, shift, 16), c2 = TileOffset(u + 2, shift, 16), c3 = TileOffset(u + 3, shift, 16);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int e = 0; e < dsub; e++, c0 += ksub, c1 += ksub, c2 += ksub, c3 += ksub)
            {
                a0 = TOp.Acc(Vector512.Create(Unsafe.Add(ref tx, x0 + e)), Vector512.LoadUnsafe(ref tt, (nuint)c0), a0);
                a1 = TOp.Acc(Vector512.Create(Unsafe.Add(ref tx, x1 + e)), Vector512.LoadUnsafe(ref tt, (nuint)c1), a1);
                a2 = TOp.Acc(Vector512.Create(Unsafe.Add(ref tx, x2 + e)), Vector512.LoadUnsafe(ref tt, (nuint)c2), a2);
                a3 = TOp.Acc(Vector512.Create(Unsafe.Add(ref tx, x3 + e)), Vector512.LoadUnsafe(ref tt, (nuint)c3), a3);
            }
            // the table is M × Ksub: tile u's 16 entries start at u · 16
            a0.StoreUnsafe(ref to, (nuint)u * 16);
            a1.StoreUnsafe(ref to, (nuint)(u + 1) * 16);
            a2.StoreUnsafe(ref to, (nuint)(u + 2) * 16);
            a3.StoreUnsafe(ref to, (nuint)(u + 3) * 16);
        }
        for (; u < tiles; u++)
        {
            nint xo = XOffset(u, shift), c = TileOffset(u, shift, 16);
            var acc = Vector512<float>.Zero;
            for (int e = 0; e < dsub; e++, c += ksub)
                acc = TOp.Acc(Vector512.Create(Unsafe.Add(ref tx, xo + e)), Vector512.LoadUnsafe(ref tt, (nuint)c), acc);
            acc.StoreUnsafe(ref to, (nuint)u * 16);
        }
    }

    // Table512 at 256 bits: a tile is 8 centroids of one sub-quantizer, four tiles side by side (an MNIST query's raw
    // L2 table took 4 % of the query with one tile at a time and bounds-checked loads on an AVX2 machine).
    private void Table256<TOp>(ReadOnlySpan<float> x, Span<float> table, float[] t) where TOp : struct, IPairOp
    {
        int shift = System.Numerics.BitOperations.Log2((uint)(Ksub / 8)), tiles = M << shift, dsub = Dsub;
        nint ksub = Ksub;
        ref float tx = ref MemoryMarshal.GetReference(x);
        ref float tt = ref MemoryMarshal.GetArrayDataReference(t);
        ref float to = ref MemoryMarshal.GetReference(table);
        int u = 0;
        for (; u + 4 <= tiles; u += 4)
        {
            nint x0 = XOffset(u, shift), x1 = XOffset(u + 1, shift), x2 = XOffset(u + 2, shift), x3 = XOffset(u + 3, shift);
            nint c0 = TileOffset(u, shift, 8), c1 = TileOffset(u + 1, shift, 8), c2 = TileOffset(u + 2, shift, 8), c3 = TileOffset(u + 3, shift, 8);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int e = 0; e < dsub; e++, c0 += ksub, c1 += ksub, c2 += ksub, c3 += ksub)
            {
                a0 = TOp.Acc(Vector256.Create(Unsafe.Add(ref tx, x0 + e)), Vector256.LoadUnsafe(ref tt, (nuint)c0), a0);
                a1 = TOp.Acc(Vector256.Create(Unsafe.Add(ref tx, x1 + e)), Vector256.LoadUnsafe(ref tt, (nuint)c1), a1);
                a2 = TOp.Acc(Vector256.Create(Unsafe.Add(ref tx, x2 + e)), Vector256.LoadUnsafe(ref tt, (nuint)c2), a2);
                a3 = TOp.Acc(Vector256.Create(Unsafe.Add(ref tx, x3 + e)), Vector256.LoadUnsafe(ref tt, (nuint)c3), a3);
            }
            a0.StoreUnsafe(ref to, (nuint)u * 8);
            a1.StoreUnsafe(ref to, (nuint)(u + 1) * 8);
            a2.StoreUnsafe(ref to, (nuint)(u + 2) * 8);
            a3.StoreUnsafe(ref to, (nuint)(u + 3) * 8);
        }
        for (; u < tiles; u++)
        {
            nint xo = XOffset(u, shift), c = TileOffset(u, shift, 8);
            var acc = Vector256<float>.Zero;
            for (int e = 0; e < dsub; e++, c += ksub)
                acc = TOp.Acc(Vector256.Create(Unsafe.Add(ref tx, xo + e)), Vector256.LoadUnsafe(ref tt, (nuint)c), acc);
            acc.StoreUnsafe(ref to, (nuint)u * 8);
        }
    }

    // Tile u's first query value: sub-quantizer u >> shift starts at m · Dsub.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint XOffset(int u, int shift) => (nint)(u >> shift) * Dsub;

    // Tile u's first transposed codebook entry (w centroids wide): sub-quantizer m's rows start at m · Dsub · Ksub, the
    // tile's centroids at (u mod 2^shift) · w within each row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint TileOffset(int u, int shift, int w) => (nint)(u >> shift) * Dsub * Ksub + (u & ((1 << shift) - 1)) * w;

    // One ADC table: over the transposed codebooks, Dsub broadcast steps of TOp over Ksub centroids per vector of lanes.
    private void Table<TOp>(ReadOnlySpan<float> x, Span<float> table) where TOp : struct, IPairOp
    {
        if (table.Length < M * Ksub) throw new ArgumentException($"table must hold M×Ksub = {M * Ksub} floats.", nameof(table));
        if (x.Length < Dimension) throw new ArgumentException($"The query has {x.Length} values, the quantizer's dimension is {Dimension}.", nameof(x));
        var t = _transposed;
        if (Vector512.IsHardwareAccelerated && t.Length == Codebooks.Length)
        {
            Table512<TOp>(x, table, t);
            return;
        }
        if (Vector256.IsHardwareAccelerated && t.Length == Codebooks.Length)
        {
            Table256<TOp>(x, table, t);
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
