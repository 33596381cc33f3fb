namespace Engine.Mining;

/// <summary>
/// Streaming summary of a score series: exact count, mean, standard deviation, min and max, and quantiles from a
/// deterministic reservoir sample (exact while the count is at most <see cref="ReservoirCapacity"/>).
/// Memory is bounded by the reservoir.
/// </summary>
public sealed class ScoreSummary
{
    /// <summary>Largest number of values kept for quantiles.</summary>
    public const int ReservoirCapacity = 1 << 16;

    private readonly ulong _seed;
    private readonly List<float> _reservoir = new();
    private double _sum, _sumSq;

    /// <summary>Creates an empty summary whose reservoir is driven by <paramref name="seed"/>.</summary>
    public ScoreSummary(ulong seed) => _seed = seed;

    /// <summary>Values added.</summary>
    public long Count { get; private set; }

    /// <summary>Smallest value (NaN when empty).</summary>
    public double Min { get; private set; } = double.NaN;

    /// <summary>Largest value (NaN when empty).</summary>
    public double Max { get; private set; } = double.NaN;

    /// <summary>Mean (NaN when empty).</summary>
    public double Mean => Count == 0 ? double.NaN : _sum / Count;

    /// <summary>Population standard deviation (NaN when empty).</summary>
    public double Std => Count == 0 ? double.NaN : Math.Sqrt(Math.Max(0, _sumSq / Count - Mean * Mean));

    /// <summary>Adds a value (call in a deterministic order).</summary>
    public void Add(float value)
    {
        Count++;
        _sum += value;
        _sumSq += (double)value * value;
        if (Count == 1 || value < Min) Min = value;
        if (Count == 1 || value > Max) Max = value;
        if (_reservoir.Count < ReservoirCapacity) { _reservoir.Add(value); return; }
        // Algorithm R with a counter-based draw: replace slot j when j < capacity.
        ulong j = CounterRng.Hash(_seed, 0x5CA1AB1E, (ulong)Count) % (ulong)Count;
        if (j < ReservoirCapacity) _reservoir[(int)j] = value;
    }

    /// <summary>The q-quantile (0..1) by linear interpolation over the sample (NaN when empty).</summary>
    public double Quantile(double q)
    {
        if (_reservoir.Count == 0) return double.NaN;
        var sorted = _reservoir.ToArray();
        Array.Sort(sorted);
        return QuantileOfSorted(sorted, q);
    }

    /// <summary>Linear-interpolated quantile of an ascending array (numpy's default method).</summary>
    public static double QuantileOfSorted(ReadOnlySpan<float> sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        double pos = Math.Clamp(q, 0, 1) * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    internal void WriteJson(System.Text.Json.Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("count", Count);
        JsonNumbers.Write(w, "mean", Mean);
        JsonNumbers.Write(w, "std", Std);
        JsonNumbers.Write(w, "min", Min);
        JsonNumbers.Write(w, "p25", Quantile(0.25));
        JsonNumbers.Write(w, "p50", Quantile(0.5));
        JsonNumbers.Write(w, "p75", Quantile(0.75));
        JsonNumbers.Write(w, "max", Max);
        w.WriteBoolean("quantiles_exact", Count <= ReservoirCapacity);
        w.WriteEndObject();
    }
}

/// <summary>JSON helpers: non-finite numbers are written as null (JSON has no NaN).</summary>
internal static class JsonNumbers
{
    public static void Write(System.Text.Json.Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteNull(name);
    }
}
