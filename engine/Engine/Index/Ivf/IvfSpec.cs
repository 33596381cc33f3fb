using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Quantization;

namespace Engine.Index.Ivf;

/// <summary>How vectors are stored inside the inverted lists.</summary>
public enum IvfListEncoding
{
    /// <summary>Full float vectors (<c>Flat</c>).</summary>
    Flat = 0,

    /// <summary>Product quantisation, one code byte per sub-quantizer, scanned with float ADC tables (<c>PQ{m}</c>,
    /// <c>PQ{m}x4</c>; of residuals unless the spec ends in <c>nr</c>, see <see cref="IvfSpec.ByResidual"/>).</summary>
    PQ = 1,

    /// <summary>4-bit product quantisation packed for SIMD fast-scan (<c>PQ{m}x4fs</c>; of residuals unless the spec
    /// ends in <c>nr</c>, see <see cref="IvfSpec.ByResidual"/>).</summary>
    PQFastScan = 2,

    /// <summary>Residual RaBitQ codes, B = 1..8 bits per dimension (<c>RaBitQ</c>, <c>RaBitQ{b}</c>).</summary>
    RaBitQ = 3,

    /// <summary>Residual RaBitQ codes at 1 or 4 bits per dimension in fast-scan blocks (<c>RaBitQfs1</c>, <c>RaBitQfs4</c>).</summary>
    RaBitQFastScan = 4,

    /// <summary>Multi-bit binary codes by residual binarisation, b = 1..4 bits per dimension (<c>BIN{b}</c>; of
    /// residuals unless the spec ends in <c>nr</c>, see <see cref="IvfSpec.ByResidual"/>), scanned by popcounts
    /// (<see cref="BinaryCodec"/>).</summary>
    Binary = 5,
}

/// <summary>
/// A parsed IVF composition string: <c>[OPQ{m},]IVF{n}[_HNSW{M}][(soar[=λ])],(Flat|PQ{m}[x4|x8][nr][(aniso=T)]|PQ{m}x4fs[nr][(aniso=T)]|RaBitQ[{b}]|RaBitQfs{b}|BIN{b}[nr])[,Refine(Flat|SQ8|F16)|,RFlat]</c>
/// (<c>_HNSW{M}</c>: the coarse quantizer is an HNSW graph over the centroids, as faiss' <c>IVF65536_HNSW32</c>;
/// <c>nr</c>: PQ codes of the vectors, not of their residuals, see <see cref="ByResidual"/>; <c>(soar)</c>: every vector
/// is also filed under a second list, see <see cref="SpillLambda"/>). faiss' explicit
/// residual spelling <c>PQ{m}x4fsr</c> is accepted and prints as <c>PQ{m}x4fs</c>.
/// <c>Parse(s).ToString() == s</c> for every canonical string (<c>PQ{m}x8</c> prints as <c>PQ{m}</c>).
/// </summary>
/// <param name="Lists">Number of inverted lists (nlist).</param>
/// <param name="Encoding">List encoding.</param>
/// <param name="SubQuantizers">PQ sub-quantizers M (0 for Flat).</param>
/// <param name="Bits">PQ bits per sub-code: 4 or 8; RaBitQ bits per dimension: 1..8; binary bits per dimension: 1..4 (0 for Flat).</param>
/// <param name="OpqSubQuantizers">OPQ rotation sub-quantizers, 0 when there is no rotation. The rotation is the index's
/// front transform (every vector and query is rotated on entry); it is accepted in front of <c>Flat</c>, every PQ form
/// and <c>BIN{b}</c> lists and refused in front of RaBitQ lists (see <see cref="OpqBits"/> and docs/ivf.md).</param>
/// <param name="Refine">Encoding of the exact re-ranking store, null when there is none.</param>
/// <param name="RefineShorthand">True when the refine stage was written <c>RFlat</c>.</param>
public sealed partial record IvfSpec(int Lists, IvfListEncoding Encoding, int SubQuantizers, int Bits,
    int OpqSubQuantizers, VectorEncoding? Refine, bool RefineShorthand)
{
    /// <summary>Parses a composition string.</summary>
    /// <exception cref="ArgumentException">The string is malformed; the message names the bad part.</exception>
    public static IvfSpec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = spec.Trim().Split(',', StringSplitOptions.TrimEntries);
        int i = 0, opq = 0;
        Match mt;
        if (i < parts.Length && (mt = OpqRegex().Match(parts[i])).Success)
        {
            opq = ParsePositive(mt.Groups[1].Value, "OPQ sub-quantizer count", spec);
            i++;
        }
        if (i >= parts.Length || !(mt = IvfRegex().Match(parts[i])).Success)
            throw new ArgumentException($"Index spec '{spec}': expected 'IVF{{nlist}}' at part {i + 1}.", nameof(spec));
        int lists = ParsePositive(mt.Groups[1].Value, "IVF list count", spec);
        int coarseM = mt.Groups[2].Success ? ParsePositive(mt.Groups[2].Value, "HNSW coarse quantizer M", spec) : 0;
        double? spill = null;
        if (mt.Groups[3].Success)
        {
            double lambda = 1;
            if (mt.Groups[4].Success
                && (!double.TryParse(mt.Groups[4].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out lambda) || !(lambda >= 0 && lambda <= MaxSpillLambda)))
                throw new ArgumentException($"Index spec '{spec}': SOAR weight '{mt.Groups[4].Value}' must be a number in [0, {MaxSpillLambda}] (IVF{lists}(soar=1.5); IVF{lists}(soar) means 1).", nameof(spec));
            spill = lambda;
        }
        i++;
        if (i >= parts.Length) throw new ArgumentException($"Index spec '{spec}': missing list encoding after IVF{lists} (Flat, PQ{{m}} or PQ{{m}}x4fs).", nameof(spec));
        IvfListEncoding enc;
        int m = 0, bits = 0;
        bool bitsWritten = false;
        bool residual = true;
        double? aniso = null;
        if (parts[i].Equals("Flat", StringComparison.Ordinal)) enc = IvfListEncoding.Flat;
        else if ((mt = PqRegex().Match(parts[i])).Success)
        {
            m = ParsePositive(mt.Groups[1].Value, "PQ sub-quantizer count", spec);
            bits = mt.Groups[2].Success ? ParsePositive(mt.Groups[2].Value, "PQ bits", spec) : 8;
            bool fs = mt.Groups[3].Success;
            if (mt.Groups[4].Value == "r" && !fs)
                throw new ArgumentException($"Index spec '{spec}': the suffix 'r' is faiss' residual fast-scan spelling (PQ{m}x4fsr); PQ{m} codes are residual already ('nr' makes them raw).", nameof(spec));
            residual = mt.Groups[4].Value != "nr";
            if (bits != 4 && bits != 8)
                throw new ArgumentException($"Index spec '{spec}': PQ nbits={bits} is not supported (use 4 or 8).", nameof(spec));
            if (fs && bits != 4)
                throw new ArgumentException($"Index spec '{spec}': fast-scan ('fs') needs 4-bit codes (PQ{m}x4fs).", nameof(spec));
            enc = fs ? IvfListEncoding.PQFastScan : IvfListEncoding.PQ;
            if (mt.Groups[5].Success)
            {
                if (!double.TryParse(mt.Groups[5].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double t) || !(t >= 0 && t < 1))
                    throw new ArgumentException($"Index spec '{spec}': anisotropic threshold '{mt.Groups[5].Value}' must be a number in [0, 1) (PQ{m}…(aniso=0.2); 0 = plain codes).", nameof(spec));
                aniso = t;
            }
        }
        else if ((mt = RaBitQRegex().Match(parts[i])).Success)
        {
            enc = IvfListEncoding.RaBitQ;
            bits = ParseRaBitQBits(mt, spec);
            bitsWritten = mt.Groups[1].Success;
        }
        else if ((mt = RaBitQFastScanRegex().Match(parts[i])).Success)
        {
            enc = IvfListEncoding.RaBitQFastScan;
            bits = mt.Groups[1].Value switch
            {
                "1" => 1,
                "4" => 4,
                _ => throw new ArgumentException($"Index spec '{spec}': RaBitQ fast-scan bits '{mt.Groups[1].Value}' must be 1 or 4 (RaBitQfs1, RaBitQfs4).", nameof(spec)),
            };
        }
        else if ((mt = BinaryRegex().Match(parts[i])).Success)
        {
            enc = IvfListEncoding.Binary;
            if (!int.TryParse(mt.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out bits) || bits < 1 || bits > BinaryCodec.MaxBits)
                throw new ArgumentException($"Index spec '{spec}': binary bits per dimension '{mt.Groups[1].Value}' must be 1..{BinaryCodec.MaxBits} (BIN{{b}}).", nameof(spec));
            residual = !mt.Groups[2].Success;
        }
        else throw new ArgumentException($"Index spec '{spec}': unknown list encoding '{parts[i]}' (expected Flat, PQ{{m}}, PQ{{m}}x4 or PQ{{m}}x4fs, optionally ending in 'nr' for raw codes, RaBitQ, RaBitQ{{b}}, RaBitQfs{{b}} or BIN{{b}}[nr]).", nameof(spec));
        i++;
        VectorEncoding? refine = null;
        bool shorthand = false;
        if (i < parts.Length)
        {
            if (parts[i] == "RFlat") { refine = VectorEncoding.Flat; shorthand = true; }
            else if ((mt = RefineRegex().Match(parts[i])).Success)
                refine = mt.Groups[1].Value switch { "Flat" => VectorEncoding.Flat, "SQ8" => VectorEncoding.SQ8, _ => VectorEncoding.F16 };
            else throw new ArgumentException($"Index spec '{spec}': unknown refine stage '{parts[i]}' (expected Refine(Flat), Refine(SQ8), Refine(F16) or RFlat).", nameof(spec));
            i++;
        }
        if (i < parts.Length) throw new ArgumentException($"Index spec '{spec}': unexpected trailing part '{parts[i]}'.", nameof(spec));
        if ((enc is IvfListEncoding.RaBitQ or IvfListEncoding.RaBitQFastScan) && opq > 0)
            throw new ArgumentException($"Index spec '{spec}': OPQ in front of RaBitQ lists is refused: RaBitQ rotates every residual with its own random rotation, " +
                                        "which undoes whatever basis a learnt rotation chose, so OPQ would cost a d × d product per vector and query for nothing " +
                                        "(OPQ works in front of Flat, PQ and BIN lists).", nameof(spec));
        return new IvfSpec(lists, enc, m, bits, opq, refine, shorthand) { CoarseHnswM = coarseM, RaBitQBitsWritten = bitsWritten, ByResidual = residual, AnisotropicThreshold = aniso, SpillLambda = spill };
    }

    /// <summary>
    /// True (default) when PQ codes encode the residual x − centroid of the vector's list; false (<c>nr</c> suffix,
    /// e.g. <c>PQ{m}x4fsnr</c>) when they encode the vector itself. Residual codes spend their bits on the offset
    /// inside a list but need a lookup table per probed list (L2 term 2, re-quantised for fast-scan); raw codes share
    /// one table per query across every probed list and learn one codebook for the whole space. Which is more
    /// accurate depends on the data (raw wins on MNIST, residual on GloVe and on clustered data), so benchmarks
    /// should sweep both. Note: faiss' factory makes <c>PQ{m}x4fs</c> raw; here it stays residual and faiss'
    /// <c>…fsr</c> is accepted as an alias. Ignored by <c>Flat</c> lists.
    /// </summary>
    public bool ByResidual { get; init; } = true;

    /// <summary>
    /// The anisotropic (score-aware) threshold of PQ codes, written <c>PQ{m}…(aniso=T)</c>
    /// (<see cref="Quantization.ProductQuantizer.AnisotropicThreshold"/>; 0 = plain nearest-sub-centroid codes); null
    /// when the spec does not say: then an inner-product or cosine index chooses T on its training data
    /// (<see cref="IvfIndex.AnisotropicThreshold"/>, saved in the file) and an L2 index uses plain codes (the criterion
    /// is about inner products; an L2 index with T &gt; 0 is refused). Only the encoding changes: the codes, their
    /// layout and the search are those of plain PQ.
    /// </summary>
    public double? AnisotropicThreshold { get; init; }

    /// <summary>The threshold an index with <paramref name="metric"/> encodes with: the spec's; else null (chosen at
    /// training) for inner product and cosine, 0 for L2 and for lists that are not PQ.</summary>
    /// <exception cref="ArgumentException">An L2 index with a threshold above 0.</exception>
    public double? AnisotropicThresholdFor(Metric metric)
    {
        if (!IsPQ) return 0;
        if (metric == Metric.L2)
        {
            if (AnisotropicThreshold > 0)
                throw new ArgumentException($"Index spec '{this}': anisotropic PQ codes (aniso={AnisotropicThreshold.Value.ToString(CultureInfo.InvariantCulture)}) are for inner-product and cosine indexes, not L2 (use aniso=0 or leave it out).");
            return 0;
        }
        return AnisotropicThreshold;
    }

    /// <summary>
    /// M of the HNSW graph that serves as the coarse quantizer (<c>IVF{n}_HNSW{M}</c>), 0 for the exhaustive (flat)
    /// quantizer. The graph is built over the trained centroids (and rebuilt from them on load).
    /// </summary>
    public int CoarseHnswM { get; init; }

    /// <summary>
    /// SOAR spilling (Sun, Guo and Kumar, "SOAR: improved indexing for approximate nearest neighbor search", NeurIPS
    /// 2023; ScaNN): written <c>IVF{n}(soar)</c> (λ = 1) or <c>IVF{n}(soar=λ)</c>; null when vectors are filed under
    /// one list only. Each vector x is also filed under a second list c′ ≠ its nearest c, the one that minimises
    /// ‖x − c′‖² + λ ⟨r̂, x − c′⟩² with r̂ the unit residual (x − c)/‖x − c‖ (λ = 0: the second-nearest list). The λ term
    /// prefers a residual orthogonal to the first one, so a query whose direction makes the first residual's error
    /// large finds x through the second list. Searches return each id once. It costs a second code, id, attribute and
    /// refine row per vector (the lists hold 2n rows), and pays where partitions miss neighbours at the probes a
    /// recall needs (word vectors: the same partition recall at ~1.2× fewer codes scanned).
    /// </summary>
    public double? SpillLambda { get; init; }

    /// <summary>Largest SOAR weight λ a spec may set.</summary>
    public const double MaxSpillLambda = 100;

    /// <summary>True when a RaBitQ encoding was written with its bit count (<c>RaBitQ1</c>), false for plain <c>RaBitQ</c> (1 bit).</summary>
    public bool RaBitQBitsWritten { get; init; }

    /// <summary>Most inverted lists an index may have (4 Mi, faiss' largest common IVF size IVF4194304).</summary>
    public const int MaxLists = 1 << 22;

    /// <summary>
    /// Checks the spec against a dimension: list count 1..<see cref="MaxLists"/> with nlist × d centroid floats in one
    /// array, PQ and OPQ M dividing d, PQ codebooks (2^bits × d floats) and the OPQ rotation (d × d floats) in one
    /// array each.
    /// </summary>
    /// <exception cref="ArgumentException">A part of the spec is impossible for this dimension (the message names it).</exception>
    public void Validate(int dimension)
    {
        if (dimension <= 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (Lists < 1 || Lists > MaxLists)
            throw new ArgumentException($"Index spec '{this}': IVF list count {Lists} is out of range 1..{MaxLists}.");
        if (CoarseHnswM != 0 && (CoarseHnswM < 2 || CoarseHnswM > Hnsw.HnswSpec.MaxM))
            throw new ArgumentException($"Index spec '{this}': HNSW coarse quantizer M={CoarseHnswM} is out of range 2..{Hnsw.HnswSpec.MaxM}.");
        if ((long)Lists * dimension > Array.MaxLength)
            throw new ArgumentException($"Index spec '{this}': {Lists} lists × d={dimension} centroid values exceed one array ({Array.MaxLength}); use fewer lists.");
        if (Encoding == IvfListEncoding.RaBitQ && (Bits < 1 || Bits > 8))
            throw new ArgumentException($"Index spec '{this}': RaBitQ bits per dimension {Bits} is out of range 1..8.");
        if (Encoding == IvfListEncoding.RaBitQFastScan && Bits != 1 && Bits != 4)
            throw new ArgumentException($"Index spec '{this}': RaBitQ fast-scan bits per dimension {Bits} must be 1 or 4.");
        if (Encoding == IvfListEncoding.Binary && (Bits < 1 || Bits > BinaryCodec.MaxBits))
            throw new ArgumentException($"Index spec '{this}': binary bits per dimension {Bits} is out of range 1..{BinaryCodec.MaxBits}.");
        if (SpillLambda is { } sl && !(sl >= 0 && sl <= MaxSpillLambda))
            throw new ArgumentException($"Index spec '{this}': SOAR weight λ={sl} is out of range [0, {MaxSpillLambda}].");
        if (AnisotropicThreshold is { } at && (!IsPQ || !(at >= 0 && at < 1)))
            throw new ArgumentException($"Index spec '{this}': an anisotropic threshold needs PQ codes and must be in [0, 1).");
        if (IsPQ && (SubQuantizers < 1 || SubQuantizers > dimension))
            throw new ArgumentException($"Index spec '{this}': PQ sub-quantizer count M={SubQuantizers} must be in 1..d={dimension}.");
        if (IsPQ && ((long)dimension << Bits) > Array.MaxLength)
            throw new ArgumentException($"Index spec '{this}': PQ codebooks of 2^{Bits} × d={dimension} values exceed one array ({Array.MaxLength}).");
        if (OpqSubQuantizers > 0 && (OpqSubQuantizers > dimension || (long)dimension * dimension > Array.MaxLength))
            throw new ArgumentException($"Index spec '{this}': an OPQ rotation needs M <= d and a d × d matrix in one array (d <= {(int)Math.Sqrt(Array.MaxLength)}); got M={OpqSubQuantizers}, d={dimension}.");
        if (IsPQ && dimension % SubQuantizers != 0)
            throw new ArgumentException($"Index spec '{this}': PQ sub-quantizer count M={SubQuantizers} does not divide the dimension d={dimension}.");
        if (OpqSubQuantizers > 0 && dimension % OpqSubQuantizers != 0)
            throw new ArgumentException($"Index spec '{this}': OPQ sub-quantizer count M={OpqSubQuantizers} does not divide the dimension d={dimension}.");
    }

    /// <summary>The canonical composition string.</summary>
    public override string ToString()
    {
        var s = new System.Text.StringBuilder();
        if (OpqSubQuantizers > 0) s.Append("OPQ").Append(OpqSubQuantizers).Append(',');
        s.Append("IVF").Append(Lists.ToString(CultureInfo.InvariantCulture));
        if (CoarseHnswM > 0) s.Append("_HNSW").Append(CoarseHnswM.ToString(CultureInfo.InvariantCulture));
        if (SpillLambda is { } lambda) s.Append(lambda == 1 ? "(soar)" : $"(soar={lambda.ToString(CultureInfo.InvariantCulture)})");
        s.Append(',');
        s.Append(Encoding switch
        {
            IvfListEncoding.Flat => "Flat",
            IvfListEncoding.PQFastScan => $"PQ{SubQuantizers}x4fs",
            IvfListEncoding.RaBitQ => RaBitQBitsWritten ? $"RaBitQ{Bits}" : "RaBitQ",
            IvfListEncoding.RaBitQFastScan => $"RaBitQfs{Bits}",
            IvfListEncoding.Binary => $"BIN{Bits}",
            _ => Bits == 8 ? $"PQ{SubQuantizers}" : $"PQ{SubQuantizers}x{Bits}",
        });
        if (Encoding != IvfListEncoding.Flat && !ByResidual) s.Append("nr");
        if (AnisotropicThreshold is { } t) s.Append("(aniso=").Append(t.ToString(CultureInfo.InvariantCulture)).Append(')');
        if (Refine is { } r) s.Append(RefineShorthand ? ",RFlat" : $",Refine({r})");
        return s.ToString();
    }

    private bool IsPQ => Encoding is IvfListEncoding.PQ or IvfListEncoding.PQFastScan;

    /// <summary>
    /// Bits per sub-code of the PQ that the OPQ rotation is trained against: the list codes' own (4 or 8) for PQ lists,
    /// 8 for <c>Flat</c> and <c>BIN{b}</c> lists, which have no sub-quantizers of their own (OPQ then balances the
    /// variance over M sub-spaces as it would for 8-bit PQ). 0 without OPQ.
    /// </summary>
    public int OpqBits => OpqSubQuantizers == 0 ? 0 : IsPQ ? Bits : 8;

    private static int ParseRaBitQBits(Match mt, string spec)
    {
        if (!mt.Groups[1].Success) return 1;
        if (!int.TryParse(mt.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int b) || b < 1 || b > 8)
            throw new ArgumentException($"Index spec '{spec}': RaBitQ bits per dimension '{mt.Groups[1].Value}' must be 1..8 (RaBitQ = 1 bit, RaBitQ{{b}} = b bits).", nameof(spec));
        return b;
    }

    private static int ParsePositive(string digits, string what, string spec)
    {
        if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v <= 0)
            throw new ArgumentException($"Index spec '{spec}': {what} '{digits}' must be a positive integer.", nameof(spec));
        return v;
    }

    [GeneratedRegex(@"^OPQ(\d+)$")] private static partial Regex OpqRegex();
    [GeneratedRegex(@"^IVF(\d+)(?:_HNSW(\d+))?(\(soar(?:=([^()]*))?\))?$")] private static partial Regex IvfRegex();
    [GeneratedRegex(@"^PQ(\d+)(?:x(\d+)(fs)?)?(r|nr)?(?:\(aniso=([^()]*)\))?$")] private static partial Regex PqRegex();
    [GeneratedRegex(@"^RaBitQ(\d+)?$")] private static partial Regex RaBitQRegex();
    [GeneratedRegex(@"^RaBitQfs(\d+)$")] private static partial Regex RaBitQFastScanRegex();
    [GeneratedRegex(@"^BIN(\d+)(nr)?$")] private static partial Regex BinaryRegex();
    [GeneratedRegex(@"^Refine\((Flat|SQ8|F16)\)$")] private static partial Regex RefineRegex();
}
