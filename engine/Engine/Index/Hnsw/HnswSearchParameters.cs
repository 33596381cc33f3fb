namespace Engine.Index.Hnsw;

/// <summary>Per-call knobs of an <see cref="HnswIndex"/> search (hnswlib's <c>ef</c>, faiss <c>SearchParametersHNSW</c>).</summary>
public sealed class HnswSearchParameters : SearchParameters
{
    /// <inheritdoc />
    public override string? IndexFamily => "HNSW";

    /// <summary>The largest ef accepted.</summary>
    public const int MaxEf = 1 << 20;

    private readonly int? _ef;
    private readonly double _fallback = 0.01;

    /// <summary>
    /// Size of the dynamic candidate list of the level-0 search (efSearch), 1..<see cref="MaxEf"/>; the search uses
    /// max(ef, k). Null uses <see cref="HnswIndex.DefaultEf"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside 1..<see cref="MaxEf"/>.</exception>
    public int? Ef
    {
        get => _ef;
        init
        {
            if (value is { } v && (v < 1 || v > MaxEf))
                throw new ArgumentOutOfRangeException(nameof(Ef), v, $"Ef must be in 1..{MaxEf}.");
            _ef = value;
        }
    }

    private readonly double? _min, _max;

    /// <summary>Lower bound (inclusive) of the numeric attribute window; null = unbounded below. Nodes added
    /// without an attribute never match a window.</summary>
    /// <exception cref="ArgumentOutOfRangeException">NaN.</exception>
    public double? AttributeMin
    {
        get => _min;
        init => _min = value is double v && double.IsNaN(v) ? throw new ArgumentOutOfRangeException(nameof(AttributeMin), v, "AttributeMin must be a number (or null).") : value;
    }

    /// <summary>Upper bound (inclusive) of the numeric attribute window; null = unbounded above.</summary>
    /// <exception cref="ArgumentOutOfRangeException">NaN.</exception>
    public double? AttributeMax
    {
        get => _max;
        init => _max = value is double v && double.IsNaN(v) ? throw new ArgumentOutOfRangeException(nameof(AttributeMax), v, "AttributeMax must be a number (or null).") : value;
    }

    /// <summary>True when an attribute window is set.</summary>
    public bool HasWindow => AttributeMin.HasValue || AttributeMax.HasValue;

    /// <summary>
    /// Allowed-set fraction at or below which a filtered search switches to exact search over the allowed set (the
    /// graph walk would visit too many rejected nodes). It also switches whenever the allowed set is smaller than
    /// what the graph walk would compute anyway (about ef × 2M distances). 0..1, default 0.01.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside 0..1 or NaN.</exception>
    public double ExactFallbackSelectivity
    {
        get => _fallback;
        init
        {
            if (!(value >= 0 && value <= 1))
                throw new ArgumentOutOfRangeException(nameof(ExactFallbackSelectivity), value, "ExactFallbackSelectivity must be in 0..1.");
            _fallback = value;
        }
    }
}
