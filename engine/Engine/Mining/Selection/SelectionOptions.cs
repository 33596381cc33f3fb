namespace Engine.Mining.Selection;

/// <summary>How <see cref="DataSelector"/> picks points.</summary>
public enum SelectionMethod
{
    /// <summary>Greedy farthest-point k-center (the 2-approximation); reports the covering radius.</summary>
    KCenter,
    /// <summary>k-means clusters, per-cluster quotas (proportional or equal, optionally weighted), seeded sample within each.</summary>
    Stratified,
    /// <summary>Coverage-centric coreset (CCS): prune the hardest share of a difficulty score, stratify the rest, sample evenly across strata.</summary>
    Coverage,
    /// <summary>k-means-cost sensitivity sampling with importance weights.</summary>
    Sensitivity,
    /// <summary>A seeded uniform subset.</summary>
    Random,
    /// <summary>A fresh seeded uniform subset per epoch.</summary>
    RandomPerEpoch,
}

/// <summary>Per-cluster quotas of <see cref="SelectionMethod.Stratified"/>.</summary>
public enum StratifiedQuota
{
    /// <summary>Quota ∝ cluster size (× weight), largest remainders rounded up.</summary>
    Proportional,
    /// <summary>Equal quota per cluster (× weight), capped by the cluster size; the rest goes to clusters with room.</summary>
    Equal,
}

/// <summary>Options of <see cref="DataSelector.Select"/>.</summary>
public sealed record SelectionOptions
{
    /// <summary>The method.</summary>
    public SelectionMethod Method { get; init; } = SelectionMethod.Random;

    /// <summary>Points to select, 1 ≤ N ≤ n (for sensitivity: draws, possibly fewer distinct points).</summary>
    public int N { get; init; } = 1000;

    /// <summary>Seed of every random choice.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Threads (0 = all cores); results do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>k-means clusters for stratified and sensitivity (0 = auto: round(√N), at least 2, at most n).</summary>
    public int Clusters { get; init; }

    /// <summary>Stratified quotas.</summary>
    public StratifiedQuota Quota { get; init; } = StratifiedQuota.Proportional;

    /// <summary>Stratified: optional weight ≥ 0 per cluster multiplying its quota (Diversify-and-Conquer updates them
    /// between rounds from per-cluster feedback and passes the already chosen ids in <see cref="Exclude"/>).</summary>
    public IReadOnlyList<double>? ClusterWeights { get; init; }

    /// <summary>Ids never selected (e.g. chosen in an earlier round).</summary>
    public IReadOnlySet<long>? Exclude { get; init; }

    /// <summary>Coverage: difficulty score per point (larger = harder), required.</summary>
    public IReadOnlyList<float>? Scores { get; init; }

    /// <summary>Coverage: strata over the score range (≥ 1).</summary>
    public int Strata { get; init; } = 50;

    /// <summary>Coverage: share of the hardest points pruned before stratifying, in [0, 1) (CCS's β).</summary>
    public double PruneRate { get; init; }

    /// <summary>Random-per-epoch: epochs (≥ 1), each a fresh subset.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Checks the fields that do not depend on the data.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A field is out of range; the message names it.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Method)) throw new ArgumentOutOfRangeException(nameof(Method), Method, "Unknown selection method.");
        if (N < 1) throw new ArgumentOutOfRangeException(nameof(N), N, $"N must be at least 1, got {N}.");
        SearchParameters.CheckThreads(Threads);
        if (Clusters < 0) throw new ArgumentOutOfRangeException(nameof(Clusters), Clusters, "Clusters must be >= 0 (0 = auto).");
        if (Strata < 1) throw new ArgumentOutOfRangeException(nameof(Strata), Strata, "Strata must be >= 1.");
        if (!(PruneRate >= 0 && PruneRate < 1)) throw new ArgumentOutOfRangeException(nameof(PruneRate), PruneRate, "PruneRate must be in [0, 1).");
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Epochs must be >= 1.");
        if (ClusterWeights is not null)
            for (int i = 0; i < ClusterWeights.Count; i++)
                if (!(ClusterWeights[i] >= 0) || double.IsInfinity(ClusterWeights[i]))
                    throw new ArgumentOutOfRangeException(nameof(ClusterWeights), ClusterWeights[i], $"ClusterWeights[{i}] must be finite and >= 0.");
    }

    /// <summary>Parses kcenter, stratified, coverage, sensitivity, random, random-per-epoch.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static SelectionMethod ParseMethod(string name) => name.Trim().ToLowerInvariant() switch
    {
        "kcenter" or "k-center" => SelectionMethod.KCenter,
        "stratified" => SelectionMethod.Stratified,
        "coverage" or "ccs" => SelectionMethod.Coverage,
        "sensitivity" => SelectionMethod.Sensitivity,
        "random" => SelectionMethod.Random,
        "random-per-epoch" => SelectionMethod.RandomPerEpoch,
        _ => throw new ArgumentException($"Unknown selection method '{name}': expected kcenter, stratified, coverage, sensitivity, random or random-per-epoch.", nameof(name)),
    };
}

/// <summary>What <see cref="DataSelector.Select"/> chose.</summary>
public sealed class SelectionResult
{
    internal SelectionResult(SelectionMethod method, long[] ids, float[]? weights, long[][]? epochs, IReadOnlyDictionary<string, object> report)
    {
        Method = method;
        Ids = ids;
        Weights = weights;
        Epochs = epochs;
        Report = report;
    }

    /// <summary>The method used.</summary>
    public SelectionMethod Method { get; }

    /// <summary>Selected ids in selection order (random-per-epoch: the first epoch's).</summary>
    public long[] Ids { get; }

    /// <summary>Sensitivity: importance weight of each selected id (aligned with <see cref="Ids"/>); null otherwise.</summary>
    public float[]? Weights { get; }

    /// <summary>Random-per-epoch: one subset per epoch; null otherwise.</summary>
    public long[][]? Epochs { get; }

    /// <summary>Method-specific numbers (covering radius, quotas, strata, ...), JSON-serialisable values.</summary>
    public IReadOnlyDictionary<string, object> Report { get; }

    /// <summary>The report as one JSON object, with method, count and seed.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            foreach (var (key, value) in Report)
            {
                w.WritePropertyName(key);
                WriteValue(w, value);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteValue(System.Text.Json.Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int i: w.WriteNumberValue(i); break;
            case long l: w.WriteNumberValue(l); break;
            case ulong u: w.WriteNumberValue(u); break;
            case double d: if (double.IsFinite(d)) w.WriteNumberValue(d); else w.WriteNullValue(); break;
            case float f: if (float.IsFinite(f)) w.WriteNumberValue(f); else w.WriteNullValue(); break;
            case System.Collections.IEnumerable items:
                w.WriteStartArray();
                foreach (var item in items) WriteValue(w, item);
                w.WriteEndArray();
                break;
            default: w.WriteStringValue(value.ToString()); break;
        }
    }
}
