using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Quantization;

namespace Engine.Index.Binary;

/// <summary>
/// A parsed binary-code composition string: <c>BIN{b}[,RFlat|,Refine(Flat|SQ8|F16)]</c>, b = 1..4 bits per
/// dimension (<see cref="BinaryCodec"/>), scanned exhaustively (the Flat family), with an optional exact re-rank store.
/// <c>Parse(s).ToString() == s</c> for every canonical string.
/// </summary>
/// <param name="Bits">Bits per dimension b.</param>
/// <param name="Refine">Encoding of the re-rank store, null for none.</param>
/// <param name="RefineShorthand">True when the refine stage was written <c>RFlat</c>.</param>
public sealed partial record BinarySpec(int Bits, VectorEncoding? Refine, bool RefineShorthand)
{
    /// <summary>Parses <paramref name="spec"/>; false when it is not a binary spec at all (it does not start with <c>BIN</c> and a digit).</summary>
    /// <exception cref="ArgumentException">It is a binary spec, but malformed (the message names the part).</exception>
    public static bool TryParse(string spec, out BinarySpec result)
    {
        ArgumentNullException.ThrowIfNull(spec);
        result = null!;
        var parts = spec.Trim().Split(',', StringSplitOptions.TrimEntries);
        var m = BinRegex().Match(parts[0]);
        if (!m.Success) return false;
        if (!int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int bits) || bits < 1 || bits > BinaryCodec.MaxBits)
            throw new ArgumentException($"Index spec '{spec}': BIN takes 1..{BinaryCodec.MaxBits} bits per dimension, got '{m.Groups[1].Value}'.", nameof(spec));
        VectorEncoding? refine = null;
        bool shorthand = false;
        if (parts.Length > 1)
        {
            if (parts[1] == "RFlat") (refine, shorthand) = (VectorEncoding.Flat, true);
            else if ((m = RefineRegex().Match(parts[1])).Success)
                refine = m.Groups[1].Value switch { "Flat" => VectorEncoding.Flat, "SQ8" => VectorEncoding.SQ8, _ => VectorEncoding.F16 };
            else throw new ArgumentException($"Index spec '{spec}': unknown refine stage '{parts[1]}' (expected RFlat, Refine(Flat), Refine(SQ8) or Refine(F16)).", nameof(spec));
        }
        if (parts.Length > 2) throw new ArgumentException($"Index spec '{spec}': unexpected trailing part '{parts[2]}'.", nameof(spec));
        result = new BinarySpec(bits, refine, shorthand);
        return true;
    }

    /// <summary>Parses a binary spec.</summary>
    /// <exception cref="ArgumentException">Not a binary spec, or malformed.</exception>
    public static BinarySpec Parse(string spec) =>
        TryParse(spec, out var s) ? s : throw new ArgumentException($"Index spec '{spec}' is not BIN{{b}}[,RFlat|,Refine(...)].", nameof(spec));

    /// <summary>The canonical composition string.</summary>
    public override string ToString() =>
        $"BIN{Bits.ToString(CultureInfo.InvariantCulture)}" + (Refine is { } r ? (RefineShorthand ? ",RFlat" : $",Refine({r})") : "");

    [GeneratedRegex(@"^BIN(\d+)$")] private static partial Regex BinRegex();
    [GeneratedRegex(@"^Refine\((Flat|SQ8|F16)\)$")] private static partial Regex RefineRegex();
}

/// <summary>Per-call knobs of a <see cref="BinaryIndex"/> search.</summary>
public sealed class BinarySearchParameters : SearchParameters
{
    /// <summary>Largest <see cref="RefineFactor"/>.</summary>
    public const int MaxRefineFactor = 65536;

    /// <summary>
    /// Candidates re-ranked exactly per result (k × factor), 1..<see cref="MaxRefineFactor"/>; null for the default 4.
    /// Only indexes with a refine stage take it (others reject it rather than ignore it).
    /// </summary>
    public int? RefineFactor { get; init; }

    /// <summary>Encode the query too and score by XOR-popcount (symmetric) instead of the asymmetric 4-bit query (default).</summary>
    public bool Symmetric { get; init; }

    /// <inheritdoc />
    public override string? IndexFamily => "BIN";

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (RefineFactor is { } f && (f < 1 || f > MaxRefineFactor))
            throw new ArgumentOutOfRangeException(nameof(RefineFactor), f, $"RefineFactor must be in 1..{MaxRefineFactor}.");
    }
}
