using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Quantization;

namespace Engine.Index.Hnsw;

/// <summary>
/// A parsed HNSW composition string: <c>HNSW{M}[,efC{n}][,SQ8|,F16|,Flat]</c>. <c>Parse(s).ToString() == s</c> for
/// every canonical string (efConstruction 200 and f32 storage are the defaults and are not printed).
/// </summary>
/// <param name="M">Links per node on the upper levels (2M on level 0), 2..512.</param>
/// <param name="EfConstruction">Candidate list size while building, at least 1.</param>
/// <param name="Storage">How vectors are stored: f32 (<see cref="VectorEncoding.Flat"/>), f16 or SQ8.</param>
public sealed partial record HnswSpec(int M, int EfConstruction, VectorEncoding Storage)
{
    /// <summary>efConstruction when the spec does not give one (hnswlib's usual setting).</summary>
    public const int DefaultEfConstruction = 200;

    /// <summary>The largest M accepted.</summary>
    public const int MaxM = 512;

    /// <summary>The largest efConstruction accepted.</summary>
    public const int MaxEfConstruction = 1 << 16;

    /// <summary>Parses a composition string.</summary>
    /// <exception cref="ArgumentException">The string is malformed; the message names the bad part.</exception>
    public static HnswSpec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = spec.Trim().Split(',', StringSplitOptions.TrimEntries);
        var mt = HeadRegex().Match(parts[0]);
        if (!mt.Success) throw new ArgumentException($"Index spec '{spec}': expected 'HNSW{{M}}' at part 1.", nameof(spec));
        int m = ParseInt(mt.Groups[1].Value, "HNSW M", 2, MaxM, spec);
        int efc = DefaultEfConstruction;
        VectorEncoding storage = VectorEncoding.Flat;
        bool sawEfc = false, sawStorage = false;
        for (int i = 1; i < parts.Length; i++)
        {
            string p = parts[i];
            if ((mt = EfcRegex().Match(p)).Success && !sawEfc)
            {
                efc = ParseInt(mt.Groups[1].Value, "efConstruction", 1, MaxEfConstruction, spec);
                sawEfc = true;
            }
            else if (!sawStorage && p is "SQ8" or "F16" or "Flat")
            {
                storage = p switch { "SQ8" => VectorEncoding.SQ8, "F16" => VectorEncoding.F16, _ => VectorEncoding.Flat };
                sawStorage = true;
            }
            else
            {
                throw new ArgumentException($"Index spec '{spec}': part {i + 1} '{p}' is not understood (expected efC{{n}} once and one of Flat, SQ8, F16 once).", nameof(spec));
            }
        }
        return new HnswSpec(m, efc, storage);
    }

    /// <summary>Parses <paramref name="spec"/> when it starts with <c>HNSW</c>; false for other families.</summary>
    /// <exception cref="ArgumentException">It starts with HNSW but is malformed.</exception>
    public static bool TryParse(string spec, out HnswSpec result)
    {
        ArgumentNullException.ThrowIfNull(spec);
        result = null!;
        if (!spec.TrimStart().StartsWith("HNSW", StringComparison.Ordinal)) return false;
        result = Parse(spec);
        return true;
    }

    /// <summary>The canonical composition string.</summary>
    public override string ToString()
    {
        string s = "HNSW" + M.ToString(CultureInfo.InvariantCulture);
        if (EfConstruction != DefaultEfConstruction) s += ",efC" + EfConstruction.ToString(CultureInfo.InvariantCulture);
        return Storage switch { VectorEncoding.SQ8 => s + ",SQ8", VectorEncoding.F16 => s + ",F16", _ => s };
    }

    private static int ParseInt(string text, string what, int min, int max, string spec)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new ArgumentException($"Index spec '{spec}': {what} '{text}' must be an integer in {min}..{max}.", nameof(spec));
        return v;
    }

    [GeneratedRegex(@"^HNSW(\d+)$")]
    private static partial Regex HeadRegex();

    [GeneratedRegex(@"^efC(\d+)$")]
    private static partial Regex EfcRegex();
}
