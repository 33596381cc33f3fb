using System.Globalization;
using Engine.Quantization;

namespace Engine.Index.Spann;

/// <summary>The kinds of code a SPANN posting can hold instead of raw f32 vectors.</summary>
internal enum SpannCodecKind
{
    SQ8,
    PQ,
    RaBitQ,
    Binary,
}

/// <summary>
/// A parsed posting codec spelling (<see cref="SpannOptions.Codec"/>): <c>SQ8</c>, <c>PQ{m}</c> (8-bit sub-codes),
/// <c>PQ{m}x4</c>, <c>RaBitQ</c> (= <c>RaBitQ1</c>), <c>RaBitQ{b}</c> with b = 1..8 bits per dimension,
/// <c>RaBitQfs{b}</c> with b = 1 or 4 (the same codes stored in 32-entry fast-scan blocks, estimated 32 at a time), or
/// <c>BIN{b}</c> (residual binarisation, b = 1..4 bits per dimension, <see cref="BinaryCodec"/>). Codes encode
/// the whole (normalised, for cosine) vector with the center at the origin, so an entry's code does not depend on the
/// posting it sits in and moves between postings byte for byte. <c>OPQ{m},</c> in front of <c>SQ8</c>, <c>PQ{m}</c>,
/// <c>PQ{m}x4</c> or <c>BIN{b}</c> (faiss' <c>OPQ16,PQ16</c>) puts a learnt rotation in front of the codec
/// (<see cref="TransformedCodec"/> over <see cref="OpqRotation"/>); it is refused in front of RaBitQ, whose own random
/// rotation undoes any learnt basis.
/// </summary>
/// <param name="Kind">The codec.</param>
/// <param name="M">PQ sub-quantizers (0 for other codecs).</param>
/// <param name="Bits">Bits per sub-code (PQ), per dimension (RaBitQ, BIN) or 8 (SQ8).</param>
/// <param name="FastScan">RaBitQ codes in fast-scan blocks.</param>
/// <param name="Opq">Sub-quantizers of the OPQ rotation in front, 0 for none.</param>
internal sealed record SpannCodecSpec(SpannCodecKind Kind, int M, int Bits, bool FastScan = false, int Opq = 0)
{
    /// <summary>Parses a codec spelling (case-insensitive); null with a reason when it is not one.</summary>
    public static SpannCodecSpec? TryParse(string text, out string? problem)
    {
        problem = null;
        string s = text.Trim();
        if (s.StartsWith("OPQ", StringComparison.OrdinalIgnoreCase)) return TryParseOpq(s, out problem);
        if (s.Equals("SQ8", StringComparison.OrdinalIgnoreCase)) return new SpannCodecSpec(SpannCodecKind.SQ8, 0, 8);
        if (s.StartsWith("RaBitQfs", StringComparison.OrdinalIgnoreCase))
        {
            string b = s[8..];
            if (b is "1" or "4") return new SpannCodecSpec(SpannCodecKind.RaBitQ, 0, b == "1" ? 1 : 4, FastScan: true);
            problem = $"RaBitQfs bits '{b}' must be 1 or 4";
            return null;
        }
        if (s.StartsWith("RaBitQ", StringComparison.OrdinalIgnoreCase))
        {
            string b = s[6..];
            if (b.Length == 0) return new SpannCodecSpec(SpannCodecKind.RaBitQ, 0, 1);
            if (int.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out int bits) && bits is >= 1 and <= 8)
                return new SpannCodecSpec(SpannCodecKind.RaBitQ, 0, bits);
            problem = $"RaBitQ bits '{b}' must be an integer in 1..8";
            return null;
        }
        if (s.StartsWith("BIN", StringComparison.OrdinalIgnoreCase))
        {
            string b = s[3..];
            if (int.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out int bits) && bits is >= 1 and <= BinaryCodec.MaxBits)
                return new SpannCodecSpec(SpannCodecKind.Binary, 0, bits);
            problem = $"BIN bits '{b}' must be an integer in 1..{BinaryCodec.MaxBits}";
            return null;
        }
        if (s.StartsWith("PQ", StringComparison.OrdinalIgnoreCase))
        {
            string body = s[2..];
            int bits = 8;
            int x = body.IndexOf('x', StringComparison.OrdinalIgnoreCase);
            if (x >= 0)
            {
                if (body[(x + 1)..] != "4" && body[(x + 1)..] != "8")
                {
                    problem = $"PQ bits '{body[(x + 1)..]}' must be 4 or 8";
                    return null;
                }
                bits = body[(x + 1)..] == "4" ? 4 : 8;
                body = body[..x];
            }
            if (int.TryParse(body, NumberStyles.None, CultureInfo.InvariantCulture, out int m) && m >= 1)
                return new SpannCodecSpec(SpannCodecKind.PQ, m, bits);
            problem = $"PQ sub-quantizer count '{body}' must be a positive integer";
            return null;
        }
        problem = "known codecs: none, SQ8, PQ{m}, PQ{m}x4, RaBitQ, RaBitQ{b} (b = 1..8), RaBitQfs{b} (b = 1 or 4), BIN{b} (b = 1..4), each but RaBitQ optionally after OPQ{m}, (OPQ{m},PQ{m})";
        return null;
    }

    // OPQ{m},<codec>: the rotation's M, then the codec behind it (not RaBitQ, not another OPQ).
    private static SpannCodecSpec? TryParseOpq(string s, out string? problem)
    {
        int comma = s.IndexOf(',');
        string head = comma < 0 ? s[3..] : s[3..comma].TrimEnd();
        if (!int.TryParse(head, NumberStyles.None, CultureInfo.InvariantCulture, out int m) || m < 1)
        {
            problem = $"OPQ sub-quantizer count '{head}' must be a positive integer (OPQ{{m}},PQ{{m}})";
            return null;
        }
        if (comma < 0)
        {
            problem = $"OPQ{m} needs the codec it rotates for after a comma (OPQ{m},PQ{m}, OPQ{m},SQ8 or OPQ{m},BIN{{b}})";
            return null;
        }
        string rest = s[(comma + 1)..].Trim();
        if (rest.StartsWith("OPQ", StringComparison.OrdinalIgnoreCase))
        {
            problem = "one OPQ rotation at most";
            return null;
        }
        var inner = TryParse(rest, out problem);
        if (inner is null) return null;
        if (inner.Kind == SpannCodecKind.RaBitQ)
        {
            problem = $"OPQ in front of {inner} is refused: RaBitQ rotates every vector with its own random rotation, which undoes the basis a learnt " +
                      "rotation chose (OPQ works in front of SQ8, PQ{m}, PQ{m}x4 and BIN{b})";
            return null;
        }
        return inner with { Opq = m };
    }

    /// <summary>Bits per sub-code of the PQ the OPQ rotation is trained against: the codec's own for PQ, 8 in front of
    /// SQ8 and BIN (which have no sub-quantizers).</summary>
    private int OpqBits => Kind == SpannCodecKind.PQ ? Bits : 8;

    /// <summary>The canonical spelling (what <see cref="SpannSpec.Format"/> writes).</summary>
    public override string ToString() => (Opq > 0 ? $"OPQ{Opq}," : "") + Kind switch
    {
        SpannCodecKind.SQ8 => "SQ8",
        SpannCodecKind.PQ => Bits == 4 ? $"PQ{M}x4" : $"PQ{M}",
        SpannCodecKind.Binary => $"BIN{Bits}",
        _ => FastScan ? $"RaBitQfs{Bits}" : Bits == 1 ? "RaBitQ" : $"RaBitQ{Bits}",
    };

    /// <summary>An untrained codec for d-dimensional vectors compared with <paramref name="metric"/> (L2 or inner product):
    /// with OPQ, a <see cref="TransformedCodec"/> of an untrained <see cref="OpqRotation"/> (trained with the codec).</summary>
    /// <exception cref="ArgumentException">The codec does not fit the dimension (PQ or OPQ: m does not divide d).</exception>
    public IVectorCodec Create(int dimension, Metric metric)
    {
        var codec = CreateCodec(dimension, metric);
        if (Opq == 0) return codec;
        if (dimension % Opq != 0)
            throw new ArgumentException($"SPANN option Codec={this} is invalid for dimension {dimension}: OPQ m={Opq} must divide d.", nameof(SpannOptions.Codec));
        return new TransformedCodec(new OpqRotation(dimension, Opq, OpqBits), codec);
    }

    private IVectorCodec CreateCodec(int dimension, Metric metric) => Kind switch
    {
        SpannCodecKind.SQ8 => new VectorCodec(dimension, VectorEncoding.SQ8),
        SpannCodecKind.PQ => dimension % M == 0 ? new ProductQuantizer(dimension, M, Bits)
            : throw new ArgumentException($"SPANN option Codec={this} is invalid for dimension {dimension}: PQ m={M} must divide d.", nameof(SpannOptions.Codec)),
        SpannCodecKind.Binary => new BinaryCodec(dimension, Bits),
        _ => FastScan ? new RaBitQFastScanCodec(dimension, Bits, metric) : new RaBitQCodec(dimension, Bits, metric),
    };

    /// <summary>The codec's trained parameters as floats (SQ8: min then step; PQ: codebooks; BIN: d means then b
    /// stage scales; RaBitQ: none; behind a transform: the transform's learnt parameters, the OPQ rotation's d × d,
    /// then the inner codec's).</summary>
    public static float[] Parameters(IVectorCodec codec) => codec switch
    {
        TransformedCodec t => [.. t.Transform is ILearnedTransform learned ? learned.Parameters : [], .. Parameters(t.Inner)],
        VectorCodec v => [.. v.Range.Min, .. v.Range.Step],
        ProductQuantizer pq => pq.Codebooks.ToArray(),
        BinaryCodec b => [.. b.Parameters.Mean, .. b.Parameters.Scales],
        _ => [],
    };

    /// <summary>The rotation seed and rounds of a RaBitQ codec (0, 0 for others).</summary>
    public static (long Seed, long Rounds) Rotation(IVectorCodec codec) => codec switch
    {
        RaBitQCodec { Rotation: { } r } => (r.Seed, r.Rounds),
        RaBitQFastScanCodec fs => Rotation(fs.Codec),
        TransformedCodec t => Rotation(t.Inner),
        _ => (0, 0),
    };

    /// <summary>Installs parameters read back from the metadata; null when done, else what does not fit.</summary>
    public static string? Install(IVectorCodec codec, float[] parameters, long seed, long rounds)
    {
        if (codec is not TransformedCodec t)
            return TryInstall(codec, parameters, seed, rounds) ? null : $"{parameters.Length} floats, rotation seed {seed}, rounds {rounds} do not fit dimension {codec.Dimension}";
        int n = (t.Transform as ILearnedTransform)?.Parameters.Length ?? 0;
        if (parameters.Length < n) return $"{parameters.Length} floats cannot hold the {n} of the front transform";
        if (t.Transform is ILearnedTransform learned)
        {
            try { learned.SetParameters(parameters.AsSpan(0, n)); }
            catch (ArgumentException e) { return "the front transform is damaged: " + Guard.MessageWithoutParameter(e); }
        }
        return Install(t.Inner, parameters[n..], seed, rounds);
    }

    // The codecs that are not behind a transform: false when the parameters' shape does not fit.
    private static bool TryInstall(IVectorCodec codec, float[] parameters, long seed, long rounds)
    {
        switch (codec)
        {
            case VectorCodec v:
                if (parameters.Length != 2 * v.Dimension) return false;
                v.SetRange(parameters[..v.Dimension], parameters[v.Dimension..]);
                return true;
            case ProductQuantizer pq:
                if (parameters.Length != pq.Codebooks.Length) return false;
                pq.SetCodebooks(parameters);
                return true;
            case BinaryCodec b:
                if (parameters.Length != b.Dimension + b.Bits * b.Dimension && parameters.Length != b.Dimension + b.Bits) return false;
                try { b.SetParameters(parameters[..b.Dimension], parameters[b.Dimension..]); }
                catch (ArgumentException) { return false; }
                return true;
            case RaBitQFastScanCodec fs:
                return TryInstall(fs.Codec, parameters, seed, rounds);
            case RaBitQCodec rq:
                if (parameters.Length != 0 || rounds is < 1 or > 64 || seed is < int.MinValue or > int.MaxValue) return false;
                rq.UseRotationSeed((int)seed, (int)rounds);
                return true;
            default:
                return false;
        }
    }

    /// <summary>Resident bytes of the trained codec (parameters; RaBitQ's rotation is a seed plus sign vectors).</summary>
    public static long MemoryBytes(IVectorCodec codec) => codec switch
    {
        RaBitQFastScanCodec fs => MemoryBytes(fs.Codec),
        TransformedCodec t => ((t.Transform as ILearnedTransform)?.Parameters.Length ?? 0) * 2L * sizeof(float) + MemoryBytes(t.Inner), // OPQ keeps R and Rᵀ
        RaBitQCodec rq => (long)rq.Dimension * Math.Max(1, rq.Rotation?.Rounds ?? 0) * sizeof(float),
        _ => Parameters(codec).Length * (long)sizeof(float),
    };
}
