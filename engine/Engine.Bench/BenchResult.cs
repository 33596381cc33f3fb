using System.Globalization;

namespace Engine.Bench;

/// <summary>
/// One point of a recall–QPS sweep: a system (<c>engine</c>, <c>faiss</c>, <c>hnswlib</c>…), an index spec, the
/// search parameters of this setting and what was measured with them.
/// </summary>
/// <param name="System">Who produced the row (<c>engine</c> for this engine's own rows).</param>
/// <param name="Spec">Index composition string, e.g. <c>IVF1024,PQ32x4fs,RFlat</c>.</param>
/// <param name="Params">Search parameters of this setting, name to value as written on the command line.</param>
/// <param name="Recall">k-recall@k in [0, 1].</param>
/// <param name="Qps">Queries per second (batch throughput), &gt; 0.</param>
public sealed record BenchResult(string System, string Spec, IReadOnlyDictionary<string, string> Params, double Recall, double Qps)
{
    /// <summary>The k of recall@k (0 when the source did not say).</summary>
    public int K { get; init; }

    /// <summary>Seconds to train and add (and, for disk indexes, maintain and checkpoint); <c>null</c> when unknown.</summary>
    public double? BuildSeconds { get; init; }

    /// <summary>Median single-query latency in milliseconds; <c>null</c> when not measured.</summary>
    public double? P50Ms { get; init; }

    /// <summary>99th-percentile single-query latency in milliseconds; <c>null</c> when not measured.</summary>
    public double? P99Ms { get; init; }

    /// <summary>Resident bytes of the index; <c>null</c> when unknown.</summary>
    public long? MemoryBytes { get; init; }

    /// <summary>Bytes on disk (disk indexes only).</summary>
    public long? DiskBytes { get; init; }

    /// <summary>Postings read per query from disk or cache (disk indexes only).</summary>
    public double? ReadsPerQuery { get; init; }

    /// <summary>The parameters as <c>name=value</c> pairs separated by spaces, in their given order.</summary>
    public string ParamsText => string.Join(' ', Params.Select(p => $"{p.Key}={p.Value}"));

    /// <summary>The plot series this row belongs to: the spec for the engine, <c>system spec</c> for a peer.</summary>
    public string Series => System == EngineSystem ? Spec : $"{System} {Spec}";

    /// <summary>The <see cref="System"/> name of this engine's own rows.</summary>
    public const string EngineSystem = "engine";

    /// <summary>Checks the values a plot or CSV needs; throws naming the row otherwise.</summary>
    /// <exception cref="ArgumentException">Empty system or spec, recall outside [0, 1], QPS not a positive number.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(System)) throw new ArgumentException($"A result row of spec '{Spec}' has no system name.");
        if (string.IsNullOrWhiteSpace(Spec)) throw new ArgumentException($"A result row of system '{System}' has no spec.");
        if (!(Recall >= 0 && Recall <= 1))
            throw new ArgumentException($"Row {Series} [{ParamsText}]: recall {Recall.ToString(CultureInfo.InvariantCulture)} is outside [0, 1].");
        if (!(Qps > 0) || double.IsInfinity(Qps))
            throw new ArgumentException($"Row {Series} [{ParamsText}]: QPS {Qps.ToString(CultureInfo.InvariantCulture)} is not a positive finite number.");
    }
}
