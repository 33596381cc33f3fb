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
/// posting it sits in and moves between postings byte for byte.
/// </summary>
internal sealed record SpannCodecSpec(SpannCodecKind Kind, int M, int Bits, bool FastScan = false)
{
    /// <summary>Parses a codec spelling (case-insensitive); null with a reason when it is not one.</summary>
    public static SpannCodecSpec? TryParse(string text, out string? problem)
    {
        problem = null;
        string s = text.Trim();
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
        problem = "known codecs: none, SQ8, PQ{m}, PQ{m}x4, RaBitQ, RaBitQ{b} (b = 1..8), RaBitQfs{b} (b = 1 or 4), BIN{b} (b = 1..4)";
        return null;
    }

    /// <summary>The canonical spelling (what <see cref="SpannSpec.Format"/> writes).</summary>
    public override string ToString() => Kind switch
    {
        SpannCodecKind.SQ8 => "SQ8",
        SpannCodecKind.PQ => Bits == 4 ? $"PQ{M}x4" : $"PQ{M}",
        SpannCodecKind.Binary => $"BIN{Bits}",
        _ => FastScan ? $"RaBitQfs{Bits}" : Bits == 1 ? "RaBitQ" : $"RaBitQ{Bits}",
    };

    /// <summary>An untrained codec for d-dimensional vectors compared with <paramref name="metric"/> (L2 or inner product).</summary>
    /// <exception cref="ArgumentException">The codec does not fit the dimension (PQ: m does not divide d).</exception>
    public IVectorCodec Create(int dimension, Metric metric) => Kind switch
    {
        SpannCodecKind.SQ8 => new VectorCodec(dimension, VectorEncoding.SQ8),
        SpannCodecKind.PQ => dimension % M == 0 ? new ProductQuantizer(dimension, M, Bits)
            : throw new ArgumentException($"SPANN option Codec={this} is invalid for dimension {dimension}: PQ m={M} must divide d.", nameof(SpannOptions.Codec)),
        SpannCodecKind.Binary => new BinaryCodec(dimension, Bits),
        _ => FastScan ? new RaBitQFastScanCodec(dimension, Bits, metric) : new RaBitQCodec(dimension, Bits, metric),
    };

    /// <summary>The codec's trained parameters as floats (SQ8: min then step; PQ: codebooks; BIN: d means then b
    /// stage scales; RaBitQ: none).</summary>
    public static float[] Parameters(IVectorCodec codec) => codec switch
    {
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
        _ => (0, 0),
    };

    /// <summary>Installs parameters read back from the metadata; false when their shape does not fit the codec.</summary>
    public static bool TryInstall(IVectorCodec codec, float[] parameters, long seed, long rounds)
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
        RaBitQCodec rq => (long)rq.Dimension * Math.Max(1, rq.Rotation?.Rounds ?? 0) * sizeof(float),
        _ => Parameters(codec).Length * (long)sizeof(float),
    };
}
