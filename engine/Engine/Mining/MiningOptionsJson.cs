using System.Text.Json;
using Engine.Index;
using Engine.Mining;
using Engine.Mining.Hubness;

namespace Engine.Mining;

/// <summary>
/// Parses the JSON option objects of mining and hubness (snake_case keys, every key optional), as the C ABI
/// (<c>engine_mine</c>, <c>engine_hubness</c>), the Python package and the cluster gateway take them. Unknown keys, keys
/// given twice and values of the wrong type are <see cref="ArgumentException"/>s that name the key.
/// </summary>
public static class MiningOptionsJson
{
    /// <summary>Mining option keys, in the order the docs list them.</summary>
    public static readonly string[] MiningKeys =
    [
        "num_negatives", "range_min", "range_max", "candidate_depth", "duplicate_threshold", "absolute_margin",
        "relative_margin", "positive_anchor", "min_score", "max_score", "sampling", "simans_a", "simans_b",
        "temperature", "hubness_gamma", "max_hand_outs_per_item", "shortfall", "rescore_exact", "seed", "threads", "chunk_size",
        "include_positives", "anchor_id_offset", "search",
    ];

    /// <summary>Hubness option keys.</summary>
    public static readonly string[] HubnessKeys = ["k", "sample_size", "hub_factor", "top_hubs", "seed", "threads", "chunk_size"];

    /// <summary>
    /// Builds <see cref="MiningOptions"/> from a JSON object (null or empty = defaults). <paramref name="occurrence"/>
    /// is the k-occurrence table of the <c>*_with_occurrence</c> exports (null for the plain ones); it is used when
    /// <c>hubness_gamma</c> &gt; 0 and must be absent otherwise.
    /// </summary>
    /// <remarks>The <c>search</c> key holds the candidate search's knobs as <c>"NAME=V,NAME=V"</c> (the names of
    /// <c>engine_index_search_with</c>); they become <see cref="MiningOptions.SearchParameters"/> for
    /// <paramref name="index"/>, which must then be given.</remarks>
    public static MiningOptions Mining(string? json, IReadOnlyDictionary<long, int>? occurrence = null, IVectorIndex? index = null)
    {
        var o = new MiningOptions();
        string? search = null;
        using var doc = Parse(json);
        foreach (var p in Properties(doc, MiningKeys))
        {
            o = p.Name switch
            {
                "num_negatives" => o with { NumNegatives = Int(p) },
                "range_min" => o with { RangeMin = Int(p) },
                "range_max" => o with { RangeMax = Int(p) },
                "candidate_depth" => o with { CandidateDepth = Int(p) },
                "duplicate_threshold" => o with { DuplicateThreshold = NullableFloat(p) },
                "absolute_margin" => o with { AbsoluteMargin = NullableFloat(p) },
                "relative_margin" => o with { RelativeMargin = NullableFloat(p) },
                "positive_anchor" => o with { PositiveAnchor = Enum<PositiveAnchor>(p, ("min", PositiveAnchor.Min), ("mean", PositiveAnchor.Mean), ("max", PositiveAnchor.Max)) },
                "min_score" => o with { MinScore = NullableFloat(p) },
                "max_score" => o with { MaxScore = NullableFloat(p) },
                "sampling" => o with { Sampling = Enum<SamplingStrategy>(p, ("top", SamplingStrategy.Top), ("uniform", SamplingStrategy.Uniform), ("random", SamplingStrategy.Uniform), ("simans", SamplingStrategy.SimAns), ("softmax", SamplingStrategy.Softmax)) },
                "simans_a" => o with { SimAnsA = Double(p) },
                "simans_b" => o with { SimAnsB = Double(p) },
                "temperature" => o with { Temperature = Double(p) },
                "hubness_gamma" => o with { HubnessGamma = Double(p) },
                "max_hand_outs_per_item" => o with { MaxHandOutsPerItem = Int(p) },
                "shortfall" => o with { Shortfall = Enum<ShortfallPolicy>(p, ("drop", ShortfallPolicy.Drop), ("pad", ShortfallPolicy.PadFromDeeper), ("pad_from_deeper", ShortfallPolicy.PadFromDeeper), ("keep_short", ShortfallPolicy.KeepShort)) },
                "rescore_exact" => o with { RescoreExact = Bool(p) },
                "seed" => o with { Seed = Seed(p) },
                "threads" => o with { Threads = Int(p) },
                "chunk_size" => o with { ChunkSize = Int(p) },
                "include_positives" => o with { IncludePositives = Bool(p) },
                "anchor_id_offset" => o with { AnchorIdOffset = Long(p) },
                "search" => SetSearch(o, ref search, p),
                _ => throw new InvalidOperationException("unreachable: key list and switch disagree"),
            };
        }
        if (o.HubnessGamma < 0)
            throw new ArgumentException($"Option 'hubness_gamma' must be >= 0 (got {o.HubnessGamma}).", "options");
        if (o.HubnessGamma > 0 && occurrence is null)
            throw new ArgumentException("Option 'hubness_gamma' > 0 needs a k-occurrence table (N_k per corpus id, e.g. from engine_hubness): "
                + "call engine_mine_with_occurrence / engine_mine_to_file_with_occurrence.", "options");
        if (o.HubnessGamma == 0 && occurrence is not null)
            throw new ArgumentException("A k-occurrence table was given but option 'hubness_gamma' is 0 (off): set hubness_gamma > 0 or pass no table.", "options");
        if (o.HubnessGamma > 0 && o.Sampling == SamplingStrategy.Top)
            throw new ArgumentException("Option 'hubness_gamma' > 0 needs sampling 'uniform', 'simans' or 'softmax' (got 'top').", "options");
        o = o with { KOccurrence = o.HubnessGamma > 0 ? occurrence : null };
        if (search is not null)
        {
            if (index is null) throw new ArgumentException("Option 'search' needs the index it is for.", "options");
            o = o with { SearchParameters = IndexFactory.CreateParameters(index, SearchSettings.Parse(search, "params"), o.Threads) };
        }
        o.Validate();
        return o;
    }

    /// <summary>Builds <see cref="HubnessOptions"/> from a JSON object (null or empty = defaults).</summary>
    public static HubnessOptions Hubness(string? json)
    {
        var o = new HubnessOptions();
        using var doc = Parse(json);
        foreach (var p in Properties(doc, HubnessKeys))
        {
            o = p.Name switch
            {
                "k" => o with { K = Int(p) },
                "sample_size" => o with { SampleSize = Int(p) },
                "hub_factor" => o with { HubFactor = Double(p) },
                "top_hubs" => o with { TopHubs = Int(p) },
                "seed" => o with { Seed = Seed(p) },
                "threads" => o with { Threads = Int(p) },
                "chunk_size" => o with { ChunkSize = Int(p) },
                _ => throw new InvalidOperationException("unreachable: key list and switch disagree"),
            };
        }
        return o;
    }

    private static JsonDocument? Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json)) return null;
        try { return JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ArgumentException($"options is not valid JSON: {e.Message}", "options"); }
    }

    private static IEnumerable<JsonProperty> Properties(JsonDocument? doc, string[] known)
    {
        if (doc is null) yield break;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"options must be a JSON object, got {doc.RootElement.ValueKind}.", "options");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (Array.IndexOf(known, p.Name) < 0)
                throw new ArgumentException($"Unknown option '{p.Name}'. Known options: {string.Join(", ", known)}.", "options");
            // JSON leaves repeated keys to the reader: refused, not "last one wins" (which silently drops a setting).
            if (!seen.Add(p.Name))
                throw new ArgumentException($"Option '{p.Name}' is given twice; give each option once.", "options");
            yield return p;
        }
    }

    private static int Int(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int v) ? v
            : throw new ArgumentException($"Option '{p.Name}' must be an integer, got {p.Value.GetRawText()}.", "options");

    private static MiningOptions SetSearch(MiningOptions o, ref string? search, JsonProperty p)
    {
        search = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()
            : throw new ArgumentException($"Option 'search' must be a string like \"probes=16,refine=4\", got {p.Value.GetRawText()}.", "options");
        return o;
    }

    private static long Long(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out long v) ? v
            : throw new ArgumentException($"Option '{p.Name}' must be an integer, got {p.Value.GetRawText()}.", "options");

    private static double Double(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Number ? p.Value.GetDouble()
            : throw new ArgumentException($"Option '{p.Name}' must be a number, got {p.Value.GetRawText()}.", "options");

    private static float? NullableFloat(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Null ? null : (float)Double(p);

    private static bool Bool(JsonProperty p) => p.Value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new ArgumentException($"Option '{p.Name}' must be true or false, got {p.Value.GetRawText()}.", "options"),
    };

    private static ulong Seed(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetUInt64(out ulong v) ? v
            : throw new ArgumentException($"Option '{p.Name}' must be a non-negative integer, got {p.Value.GetRawText()}.", "options");

    private static T Enum<T>(JsonProperty p, params (string Name, T Value)[] names)
    {
        string? s = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
        foreach (var (name, value) in names)
            if (string.Equals(s, name, StringComparison.OrdinalIgnoreCase)) return value;
        throw new ArgumentException(
            $"Option '{p.Name}' must be one of {string.Join(", ", names.Select(n => n.Name))}; got {p.Value.GetRawText()}.", "options");
    }
}
