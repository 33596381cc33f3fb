using System.Globalization;

namespace Engine.MultiVector;

/// <summary>
/// Parameters of MUVERA's fixed-dimensional encoding (Dhulipala et al., 2024, "MUVERA: Multi-Vector Retrieval via
/// Fixed Dimensional Encodings"). The FDE has <see cref="Repetitions"/> × 2^<see cref="SimHashBits"/> ×
/// <see cref="EffectiveProjectionDimension"/> coordinates, or <see cref="FinalDimension"/> after the optional final
/// projection.
/// </summary>
public sealed record MuveraOptions
{
    /// <summary>Largest <see cref="SimHashBits"/> (2^12 = 4096 buckets per repetition).</summary>
    public const int MaxSimHashBits = 12;

    /// <summary>Largest <see cref="Repetitions"/>.</summary>
    public const int MaxRepetitions = 1024;

    /// <summary>Largest FDE dimension before the final projection (one float array per encoding).</summary>
    public const int MaxFdeDimension = 1 << 22;

    /// <summary>k_sim: SimHash hyperplanes per repetition, 0..<see cref="MaxSimHashBits"/> (2^k_sim buckets; 0 = one bucket).</summary>
    public int SimHashBits { get; init; } = 4;

    /// <summary>d_proj: inner random ±1 projection of each bucket's vector, 0 for none (the bucket keeps all d coordinates).</summary>
    public int ProjectionDimension { get; init; } = 16;

    /// <summary>R: independent repetitions, concatenated, 1..<see cref="MaxRepetitions"/>.</summary>
    public int Repetitions { get; init; } = 20;

    /// <summary>d_final: optional final count-sketch projection of the whole FDE, 0 for none.</summary>
    public int FinalDimension { get; init; }

    /// <summary>Documents: fill an empty bucket with the token whose SimHash sketch is nearest (Hamming) to it. On by default, as in the paper.</summary>
    public bool FillEmptyBuckets { get; init; } = true;

    /// <summary>Seed of every random choice (hyperplanes, projections, final sketch).</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Buckets per repetition, 2^k_sim.</summary>
    public int Buckets => 1 << SimHashBits;

    /// <summary>Coordinates per bucket for token dimension <paramref name="dimension"/>: d_proj, or d without an inner projection.</summary>
    public int EffectiveProjectionDimension(int dimension) => ProjectionDimension > 0 ? ProjectionDimension : dimension;

    /// <summary>FDE coordinates before the final projection.</summary>
    public long RawDimension(int dimension) => (long)Repetitions * Buckets * EffectiveProjectionDimension(dimension);

    /// <summary>Dimension of the vectors the single-vector index holds.</summary>
    public int OutputDimension(int dimension) => FinalDimension > 0 ? FinalDimension : (int)RawDimension(dimension);

    /// <summary>Checks every field against its range for token dimension <paramref name="dimension"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field is out of range (the message names it and the range).</exception>
    public void Validate(int dimension)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Token dimension must be positive.");
        if (SimHashBits < 0 || SimHashBits > MaxSimHashBits)
            throw new ArgumentOutOfRangeException(nameof(SimHashBits), SimHashBits, $"SimHashBits (k_sim) must be in 0..{MaxSimHashBits}.");
        if (ProjectionDimension < 0 || ProjectionDimension > 65536)
            throw new ArgumentOutOfRangeException(nameof(ProjectionDimension), ProjectionDimension, "ProjectionDimension (d_proj) must be in 0..65536 (0 = no inner projection).");
        if (Repetitions < 1 || Repetitions > MaxRepetitions)
            throw new ArgumentOutOfRangeException(nameof(Repetitions), Repetitions, $"Repetitions must be in 1..{MaxRepetitions}.");
        if (FinalDimension < 0 || FinalDimension > MaxFdeDimension)
            throw new ArgumentOutOfRangeException(nameof(FinalDimension), FinalDimension, $"FinalDimension must be in 0..{MaxFdeDimension} (0 = no final projection).");
        if (RawDimension(dimension) > MaxFdeDimension)
            throw new ArgumentOutOfRangeException(nameof(Repetitions), Repetitions,
                $"The FDE would have {RawDimension(dimension)} coordinates (R={Repetitions} × 2^{SimHashBits} × {EffectiveProjectionDimension(dimension)}), above {MaxFdeDimension}; lower k_sim, d_proj or R.");
        if ((long)ProjectionDimension * dimension * Repetitions > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(ProjectionDimension), ProjectionDimension, "The inner projection matrices (R × d_proj × d) do not fit one array.");
    }

    /// <summary>The canonical text form, e.g. <c>MUVERA(ksim=4,dproj=16,reps=20,final=0,fill=1,seed=42)</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"MUVERA(ksim={SimHashBits},dproj={ProjectionDimension},reps={Repetitions},final={FinalDimension},fill={(FillEmptyBuckets ? 1 : 0)},seed={Seed})");

    /// <summary>
    /// Options from <c>NAME=V,NAME=V</c> text (the names of <see cref="ToString"/>: <c>ksim</c>, <c>dproj</c>,
    /// <c>reps</c>, <c>final</c>, <c>fill</c> (0/1), <c>seed</c>); a missing name keeps its default, null or "" gives
    /// the defaults. Also accepts the whole canonical form <c>MUVERA(...)</c>. Ranges are checked by
    /// <see cref="Validate"/> when the options are used.
    /// </summary>
    /// <exception cref="ArgumentException">A part that is not NAME=V, an unknown or repeated name, or a value that is not an integer.</exception>
    public static MuveraOptions Parse(string? text)
    {
        var options = new MuveraOptions();
        if (string.IsNullOrWhiteSpace(text)) return options;
        string body = text.Trim();
        if (body.StartsWith("MUVERA(", StringComparison.OrdinalIgnoreCase) && body.EndsWith(')')) body = body[7..^1];
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in body.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0 || eq == part.Length - 1)
                throw new ArgumentException($"MUVERA option '{part}' must look like NAME=VALUE (e.g. \"ksim=4,reps=20\").", nameof(text));
            string key = part[..eq].Trim(), value = part[(eq + 1)..].Trim();
            if (!seen.Add(key)) throw new ArgumentException($"MUVERA option '{key}' is given twice.", nameof(text));
            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
                throw new ArgumentException($"MUVERA option '{key}={value}' must be an integer.", nameof(text));
            options = key.ToLowerInvariant() switch
            {
                "ksim" => options with { SimHashBits = v },
                "dproj" => options with { ProjectionDimension = v },
                "reps" => options with { Repetitions = v },
                "final" => options with { FinalDimension = v },
                "fill" when v is 0 or 1 => options with { FillEmptyBuckets = v == 1 },
                "fill" => throw new ArgumentException($"MUVERA option 'fill={value}' must be 0 or 1.", nameof(text)),
                "seed" => options with { Seed = v },
                _ => throw new ArgumentException($"Unknown MUVERA option '{key}' (known: ksim, dproj, reps, final, fill, seed).", nameof(text)),
            };
        }
        return options;
    }
}
