using System.Text;
using System.Text.Json;

namespace Engine.Mining.Hubness;

/// <summary>k-occurrence counts and hubness summaries (definitions as in scikit-hubness).</summary>
public sealed class HubnessReport
{
    internal HubnessReport(Dictionary<long, int> occurrence, int k, int queries, double hubFactor, int topHubs)
    {
        Occurrence = occurrence;
        K = k;
        QueryCount = queries;
        var values = occurrence.Values.Select(v => (double)v).ToArray();
        Array.Sort(values);
        double total = values.Sum();
        double mean = values.Length == 0 ? 0 : total / values.Length;
        Skewness = Statistics.Skewness(values);
        RobinHood = total == 0 ? 0 : 0.5 * values.Sum(v => Math.Abs(v - mean)) / total;
        // Gini from the sorted values: Σ(2i − n − 1)·x_i / (n Σx), i = 1..n (equals Σ_i Σ_j |x_i − x_j| / (2 n Σx)).
        double g = 0;
        for (int i = 0; i < values.Length; i++) g += (2.0 * (i + 1) - values.Length - 1) * values[i];
        Gini = total == 0 ? 0 : g / (values.Length * total);
        double hubSize = hubFactor * k;
        HubShare = values.Length == 0 ? 0 : values.Count(v => v >= hubSize) / (double)values.Length;
        HubOccurrence = total == 0 ? 0 : values.Where(v => v >= hubSize).Sum() / total;
        AntihubShare = values.Length == 0 ? 0 : values.Count(v => v == 0) / (double)values.Length;
        TopHubs = occurrence.OrderByDescending(p => p.Value).ThenBy(p => p.Key).Take(topHubs)
            .Select(p => (p.Key, p.Value)).ToArray();
    }

    /// <summary>N_k per corpus id.</summary>
    public IReadOnlyDictionary<long, int> Occurrence { get; }
    /// <summary>Neighbourhood size k.</summary>
    public int K { get; }
    /// <summary>Size of the query bank.</summary>
    public int QueryCount { get; }
    /// <summary>Skewness of the N_k distribution (S_k).</summary>
    public double Skewness { get; }
    /// <summary>Robin Hood index ½·Σ|N_k − mean| / Σ N_k: the share of occurrences to move for equality.</summary>
    public double RobinHood { get; }
    /// <summary>Gini coefficient of N_k.</summary>
    public double Gini { get; }
    /// <summary>Fraction of corpus items with N_k ≥ hub factor · k.</summary>
    public double HubShare { get; }
    /// <summary>Share of all occurrences that fall on hubs.</summary>
    public double HubOccurrence { get; }
    /// <summary>Fraction of corpus items with N_k = 0.</summary>
    public double AntihubShare { get; }
    /// <summary>The largest hubs, (id, N_k), largest first, ties by id.</summary>
    public IReadOnlyList<(long Id, int Count)> TopHubs { get; }

    /// <summary>The report as JSON (snake_case keys).</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("k", K);
            w.WriteNumber("queries", QueryCount);
            w.WriteNumber("corpus", Occurrence.Count);
            JsonNumbers.Write(w, "skewness", Skewness);
            w.WriteNumber("robin_hood", RobinHood);
            w.WriteNumber("gini", Gini);
            w.WriteNumber("hub_share", HubShare);
            w.WriteNumber("hub_occurrence", HubOccurrence);
            w.WriteNumber("antihub_share", AntihubShare);
            w.WriteStartArray("top_hubs");
            foreach (var (id, c) in TopHubs) { w.WriteStartObject(); w.WriteNumber("id", id); w.WriteNumber("n_k", c); w.WriteEndObject(); }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>A short human-readable summary.</summary>
    public override string ToString() =>
        $"k={K} queries={QueryCount} corpus={Occurrence.Count} skewness={Skewness:F3} robin-hood={RobinHood:F3} gini={Gini:F3} " +
        $"hubs={HubShare:P2} (occurrence {HubOccurrence:P2}) antihubs={AntihubShare:P2} top: " +
        string.Join(", ", TopHubs.Take(5).Select(h => $"{h.Id}:{h.Count}"));
}
