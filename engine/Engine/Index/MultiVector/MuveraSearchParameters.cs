using System.Globalization;

namespace Engine.Index.MultiVector;

/// <summary>Per-call knobs of a <see cref="MultiVectorIndex"/> search.</summary>
public sealed class MuveraSearchParameters : SearchParameters
{
    /// <summary>Largest <see cref="Candidates"/>.</summary>
    public const int MaxCandidates = 1 << 20;

    /// <summary>
    /// N: FDE candidates re-ranked by exact Chamfer per query, 1..<see cref="MaxCandidates"/> and at least k; null for
    /// the default max(10·k, 100). Clamped to the number of items.
    /// </summary>
    public int? Candidates { get; init; }

    /// <summary>
    /// Repetitions of the query FDE to use, 1..R (the index's repetitions); null for all. Fewer repetitions make the
    /// query encoding cheaper and the FDE score coarser (the unused blocks are zero).
    /// </summary>
    public int? Repetitions { get; init; }

    /// <summary>
    /// Parameters of the single-vector FDE index search (probes for IVF, ef for HNSW, ...); null for plain parameters
    /// with this call's <see cref="SearchParameters.Threads"/> and <see cref="SearchParameters.Filter"/>. The
    /// <see cref="SearchParameters.Filter"/> of this object is applied again at re-rank either way.
    /// </summary>
    public SearchParameters? FdeParameters { get; init; }

    /// <inheritdoc />
    public override string? IndexFamily => "MUVERA";

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (Candidates is { } n && (n < 1 || n > MaxCandidates))
            throw new ArgumentOutOfRangeException(nameof(Candidates), n, $"Candidates must be in 1..{MaxCandidates}.");
        if (Repetitions is { } r && (r < 1 || r > Engine.MultiVector.MuveraOptions.MaxRepetitions))
            throw new ArgumentOutOfRangeException(nameof(Repetitions), r, $"Repetitions must be in 1..R (the index's repetitions).");
        FdeParameters?.Validate();
    }

    /// <summary>
    /// Named knobs → parameters: <c>candidates</c> (or <c>n</c>) and <c>reps</c> (or <c>repetitions</c>) are MUVERA's;
    /// every other name (<c>probes</c>, <c>ef</c>, …) goes to the FDE index through <see cref="IndexFactory.CreateParameters(IVectorIndex, IReadOnlyDictionary{string, string}, int, SearchStats?)"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A value that is not an integer in range, or a name the FDE index does not know.</exception>
    public static MuveraSearchParameters FromSettings(MultiVectorIndex index, IReadOnlyDictionary<string, string> settings, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(settings);
        int? candidates = null, reps = null;
        var inner = new Dictionary<string, string>();
        foreach (var (key, value) in settings)
        {
            switch (key.Trim().ToLowerInvariant())
            {
                case "candidates" or "n":
                    candidates = SearchSettings.Once(candidates, "candidates", key, ParseInt(key, value, 1, MaxCandidates));
                    break;
                case "reps" or "repetitions":
                    reps = SearchSettings.Once(reps, "reps", key, ParseInt(key, value, 1, index.Encoder.Options.Repetitions));
                    break;
                default:
                    inner[key] = value;
                    break;
            }
        }
        var fde = inner.Count > 0 ? IndexFactory.CreateParameters(index.FdeIndex, inner, threads) : null;
        return new MuveraSearchParameters { Candidates = candidates, Repetitions = reps, FdeParameters = fde, Threads = threads };
    }

    private static int ParseInt(string key, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new ArgumentOutOfRangeException(key, value, $"Setting '{key}={value}' must be an integer in {min}..{max}.");
        return v;
    }
}
