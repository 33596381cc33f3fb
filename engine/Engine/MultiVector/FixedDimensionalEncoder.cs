using System.Numerics;
using Engine.Distance;

namespace Engine.MultiVector;

/// <summary>
/// MUVERA's fixed-dimensional encoding (FDE): maps a token set to one vector whose inner product with another set's
/// FDE approximates their Chamfer similarity, so that a single-vector index can retrieve multi-vector candidates.
/// </summary>
/// <remarks>
/// <para>Per repetition r (of R): k_sim Gaussian hyperplanes give each token a k_sim-bit SimHash sketch, its bucket
/// (bit i set when the token lies on the positive side of hyperplane i; buckets whose numbers differ in few bits are
/// near in angle). Every token is projected by a random ±1 matrix scaled by 1/√d_proj (identity when d_proj = 0), and
/// bucket b of the FDE holds: for a query, the sum of its tokens' projections in b; for a document, their mean (the
/// centroid), and for an empty bucket (with <see cref="MuveraOptions.FillEmptyBuckets"/>) the projection of the
/// token whose sketch is nearest to b in Hamming distance. The R blocks are concatenated, then optionally compressed
/// by a count sketch to d_final coordinates.</para>
/// <para>Without projections, ⟨FDE_q(Q), FDE_doc(P)⟩ / R ≤ Chamfer(Q, P) always (each query token meets a mean of, or
/// one of, P's tokens in its bucket), and with enough buckets it approaches Chamfer: the paper's Theorem 2.1 bounds
/// the error of (1/|Q|)⟨·,·⟩ by ε for unit vectors with high probability.</para>
/// <para>All random parameters are drawn from <see cref="MuveraOptions.Seed"/> and kept (they are saved with an
/// index), so encodings never depend on the runtime's random generator after a load. Thread-safe.</para>
/// </remarks>
public sealed class FixedDimensionalEncoder
{
    private readonly float[] _hyperplanes;   // R × k × d
    private readonly float[] _projections;   // R × dp × d (±1), empty without an inner projection
    private readonly int[] _finalIndex;      // raw → final coordinate, empty without a final projection
    private readonly float[] _finalSign;     // ±1 per raw coordinate
    private readonly int _dp;

    /// <summary>Creates an encoder for tokens of dimension <paramref name="dimension"/>, drawing its random parameters from the options' seed.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public FixedDimensionalEncoder(int dimension, MuveraOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(dimension);
        Options = options;
        Dimension = dimension;
        _dp = options.EffectiveProjectionDimension(dimension);
        var rng = new Random(options.Seed);
        _hyperplanes = new float[options.Repetitions * options.SimHashBits * dimension];
        for (int i = 0; i < _hyperplanes.Length; i++) _hyperplanes[i] = Gaussian(rng);
        _projections = options.ProjectionDimension > 0 ? new float[options.Repetitions * options.ProjectionDimension * dimension] : [];
        for (int i = 0; i < _projections.Length; i++) _projections[i] = rng.Next(2) == 0 ? -1f : 1f;
        int raw = (int)options.RawDimension(dimension);
        _finalIndex = options.FinalDimension > 0 ? new int[raw] : [];
        _finalSign = options.FinalDimension > 0 ? new float[raw] : [];
        for (int i = 0; i < _finalIndex.Length; i++)
        {
            _finalIndex[i] = rng.Next(options.FinalDimension);
            _finalSign[i] = rng.Next(2) == 0 ? -1f : 1f;
        }
    }

    private FixedDimensionalEncoder(int dimension, MuveraOptions options, float[] hyperplanes, float[] projections, int[] finalIndex, float[] finalSign)
    {
        Options = options;
        Dimension = dimension;
        _dp = options.EffectiveProjectionDimension(dimension);
        (_hyperplanes, _projections, _finalIndex, _finalSign) = (hyperplanes, projections, finalIndex, finalSign);
    }

    /// <summary>Re-creates an encoder from stored parameters (<see cref="Parameters"/>); the arrays are validated for shape and finiteness.</summary>
    /// <exception cref="ArgumentException">An array has the wrong length or holds invalid values.</exception>
    internal static FixedDimensionalEncoder FromParameters(int dimension, MuveraOptions options, float[] hyperplanes, float[] projections, int[] finalIndex, float[] finalSign)
    {
        options.Validate(dimension);
        int raw = (int)options.RawDimension(dimension);
        if (hyperplanes.Length != options.Repetitions * options.SimHashBits * dimension) throw new ArgumentException("hyperplanes have the wrong length.");
        if (projections.Length != (options.ProjectionDimension > 0 ? options.Repetitions * options.ProjectionDimension * dimension : 0)) throw new ArgumentException("projections have the wrong length.");
        int final = options.FinalDimension > 0 ? raw : 0;
        if (finalIndex.Length != final || finalSign.Length != final) throw new ArgumentException("the final projection has the wrong length.");
        foreach (float h in hyperplanes) if (!float.IsFinite(h)) throw new ArgumentException("a hyperplane holds a non-finite value.");
        foreach (float p in projections) if (p is not (1f or -1f)) throw new ArgumentException("an inner projection entry is not ±1.");
        foreach (int i in finalIndex) if ((uint)i >= (uint)options.FinalDimension) throw new ArgumentException("a final projection index is out of range.");
        foreach (float s in finalSign) if (s is not (1f or -1f)) throw new ArgumentException("a final projection sign is not ±1.");
        return new FixedDimensionalEncoder(dimension, options, hyperplanes, projections, finalIndex, finalSign);
    }

    /// <summary>The options the encoder was made with.</summary>
    public MuveraOptions Options { get; }

    /// <summary>Token dimension d.</summary>
    public int Dimension { get; }

    /// <summary>FDE dimension (after the final projection, when there is one).</summary>
    public int OutputDimension => Options.OutputDimension(Dimension);

    /// <summary>The random parameters (for persistence): hyperplanes, inner projections, final sketch indices and signs.</summary>
    internal (float[] Hyperplanes, float[] Projections, int[] FinalIndex, float[] FinalSign) Parameters =>
        (_hyperplanes, _projections, _finalIndex, _finalSign);

    /// <summary>Encodes one query token set (n × d) into <paramref name="fde"/> (<see cref="OutputDimension"/> floats).</summary>
    /// <param name="tokens">The query's tokens, n × d row-major (n ≥ 1).</param>
    /// <param name="fde">Output.</param>
    /// <param name="repetitions">Repetitions to fill, 1..R (0 = all); the others are left zero, so the inner product uses only the first ones.</param>
    /// <exception cref="ArgumentException">Bad shapes or an empty token set.</exception>
    public void EncodeQuery(ReadOnlySpan<float> tokens, Span<float> fde, int repetitions = 0) => Encode(tokens, fde, false, repetitions);

    /// <summary>Encodes one document token set (n × d) into <paramref name="fde"/> (bucket centroids, empty buckets filled).</summary>
    /// <exception cref="ArgumentException">Bad shapes or an empty token set.</exception>
    public void EncodeDocument(ReadOnlySpan<float> tokens, Span<float> fde) => Encode(tokens, fde, true, 0);

    /// <summary>Encodes every item of <paramref name="items"/> into <paramref name="fdes"/> (Count × <see cref="OutputDimension"/>).</summary>
    /// <param name="items">The token sets.</param>
    /// <param name="document">True for documents (centroids, filling), false for queries (sums).</param>
    /// <param name="fdes">Output rows.</param>
    /// <param name="repetitions">Queries: repetitions to fill (0 = all). Documents always use all.</param>
    /// <param name="threads">Worker threads (0 = all processors).</param>
    public void EncodeAll(MultiVectorSet items, bool document, Span<float> fdes, int repetitions, int threads)
    {
        ArgumentNullException.ThrowIfNull(items);
        CheckDimension(items);
        int od = OutputDimension;
        if (fdes.Length < (long)items.Count * od) throw new ArgumentException($"fdes must hold {items.Count} × {od} floats.", nameof(fdes));
        float[] output = new float[items.Count * od];
        ParallelWork.For(0, items.Count, threads, i => Encode(items.Item(i), output.AsSpan(i * od, od), document, document ? 0 : repetitions));
        output.CopyTo(fdes);
    }

    /// <summary>Rejects token sets of another dimension. An empty batch holds no token, so no dimension to disagree
    /// with (<see cref="MultiVectorSet.FromItems"/> of no items cannot know d): it passes, as an empty batch passes the
    /// single-vector indexes.</summary>
    internal void CheckDimension(MultiVectorSet items)
    {
        if (items.Count > 0 && items.Dimension != Dimension)
            throw new ArgumentException($"Mixed dimensions: the tokens have d={items.Dimension}, but the encoder (index) was made for d={Dimension}.");
    }

    private void Encode(ReadOnlySpan<float> tokens, Span<float> fde, bool document, int repetitions)
    {
        int d = Dimension, k = Options.SimHashBits, buckets = Options.Buckets, dp = _dp, reps = Options.Repetitions;
        int n = Guard.Rows(tokens, d, nameof(tokens));
        if (n == 0) throw new ArgumentException("The token set is empty; an FDE needs at least one token.", nameof(tokens));
        if (fde.Length != OutputDimension) throw new ArgumentException($"fde must hold {OutputDimension} floats, got {fde.Length}.", nameof(fde));
        if (repetitions < 0 || repetitions > reps)
            throw new ArgumentOutOfRangeException(nameof(repetitions), repetitions, $"repetitions must be in 0..{reps} (0 = all).");
        int used = repetitions == 0 ? reps : repetitions;
        int blockLength = buckets * dp;
        bool final = _finalIndex.Length > 0;
        float[] raw = final ? new float[used * blockLength] : [];
        Span<float> rawSpan = final ? raw : fde;
        if (!final) fde.Clear();
        var dots = new float[n * Math.Max(k, 1)];
        var codes = new int[n];
        var counts = new int[buckets];
        var projected = _projections.Length == 0 ? null : new float[n * dp];
        float scale = _projections.Length > 0 ? 1f / MathF.Sqrt(dp) : 1f;
        for (int r = 0; r < used; r++)
        {
            Array.Clear(codes);
            if (k > 0)
            {
                Distances.DotManyToMany(tokens, _hyperplanes.AsSpan(r * k * d, k * d), d, dots);
                for (int t = 0; t < n; t++)
                {
                    int code = 0;
                    for (int i = 0; i < k; i++) if (dots[t * k + i] > 0) code |= 1 << i;
                    codes[t] = code;
                }
            }
            ReadOnlySpan<float> p = tokens;
            if (projected is not null)
            {
                Distances.DotManyToMany(tokens, _projections.AsSpan(r * dp * d, dp * d), d, projected);
                System.Numerics.Tensors.TensorPrimitives.Multiply(projected, scale, projected);
                p = projected;
            }
            var block = rawSpan.Slice(r * blockLength, blockLength);
            Array.Clear(counts);
            for (int t = 0; t < n; t++)
            {
                var dst = block.Slice(codes[t] * dp, dp);
                System.Numerics.Tensors.TensorPrimitives.Add(dst, p.Slice(t * dp, dp), dst);
                counts[codes[t]]++;
            }
            if (!document) continue;
            for (int b = 0; b < buckets; b++)
            {
                var dst = block.Slice(b * dp, dp);
                if (counts[b] > 1) System.Numerics.Tensors.TensorPrimitives.Multiply(dst, 1f / counts[b], dst);
                else if (counts[b] == 0 && Options.FillEmptyBuckets)
                {
                    int nearest = 0, bestDistance = int.MaxValue;
                    for (int t = 0; t < n; t++)
                    {
                        int h = BitOperations.PopCount((uint)(codes[t] ^ b));
                        if (h < bestDistance) { bestDistance = h; nearest = t; }
                    }
                    p.Slice(nearest * dp, dp).CopyTo(dst);
                }
            }
        }
        if (!final) return;
        fde.Clear();
        for (int i = 0; i < raw.Length; i++) fde[_finalIndex[i]] += _finalSign[i] * raw[i];
    }

    private static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
