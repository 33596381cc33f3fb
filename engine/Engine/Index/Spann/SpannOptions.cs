using System.Globalization;
using System.Text;

namespace Engine.Index.Spann;

/// <summary>Build and maintenance settings of a <see cref="SpannIndex"/> (names follow SPTAG where one exists).</summary>
public sealed record SpannOptions
{
    /// <summary>Target number of vectors per posting from clustering (SPTAG leaf size); heads ≈ N / this.</summary>
    public int PostingSize { get; init; } = 64;

    /// <summary>Target number of postings; 0 derives it from <see cref="PostingSize"/> and the training set.</summary>
    public int PostingCount { get; init; }

    /// <summary>Hard cap on entries (replicas included) per posting (SPTAG <c>PostingPageLimit</c> in entries).
    /// Build truncates the farthest replicas beyond it; updates split postings that grow past it.</summary>
    public int MaxPostingSize { get; init; } = 160;

    /// <summary>Postings emptier than this (live entries) are merged into their neighbours.</summary>
    public int MinPostingSize { get; init; } = 4;

    /// <summary>Most postings one vector is written to (SPTAG <c>ReplicaCount</c>).</summary>
    public int Replicas { get; init; } = 8;

    /// <summary>Closure factor ε₁: a replica head must be within (1+ε₁) of the nearest head's distance.</summary>
    public float ClosureFactor { get; init; } = 0.5f;

    /// <summary>RNG factor: a candidate head is skipped when RNGFactor·d(head, chosen) &lt; d(x, head).</summary>
    public float RngFactor { get; init; } = 1.0f;

    /// <summary>Candidate heads considered per vector when assigning replicas (SPTAG <c>InternalResultNum</c>).</summary>
    public int AssignCandidates { get; init; } = 64;

    /// <summary>Default number of postings a query probes at most (SPTAG <c>SearchInternalResultNum</c>).</summary>
    public int Probes { get; init; } = 48;

    /// <summary>Default query-aware pruning ε₂: probe head i only if d(q, c_i) ≤ (1+ε₂)·d(q, c_1).</summary>
    public float PruneFactor { get; init; } = 4.0f;

    /// <summary>Byte budget of the posting read cache (counted in <see cref="SpannIndex.MemoryBytes"/>).</summary>
    public long CacheBytes { get; init; } = 1 << 20;

    /// <summary>Seed of clustering (results are deterministic for a seed).</summary>
    public int Seed { get; init; } = 1234;

    /// <summary>
    /// What postings hold: null (or <c>none</c>) keeps raw f32 vectors; <c>SQ8</c>, <c>PQ{m}</c>, <c>PQ{m}x4</c>,
    /// <c>RaBitQ</c>, <c>RaBitQ{b}</c> (b = 1..8), <c>RaBitQfs{b}</c> (b = 1 or 4: RaBitQ codes in 32-entry fast-scan
    /// blocks, estimated 32 at a time) or <c>BIN{b}</c> (b = 1..4) store codes trained at <see cref="SpannIndex.Train(ReadOnlySpan{float})"/>;
    /// <c>OPQ{m},</c> in front of any of them but RaBitQ (<c>OPQ16,PQ16</c>) rotates vectors and queries by a learnt OPQ
    /// rotation before the codec (trained with it, saved in the metadata),
    /// with the full vectors in a separate refine file read only for the candidates that are re-ranked
    /// (spec key <c>codec</c>). Case-insensitive; <see cref="SpannSpec.Format"/> writes the canonical spelling.
    /// </summary>
    public string? Codec { get; init; }

    /// <summary>Coded postings: a query re-ranks the best k × this many candidates by exact distance from the refine
    /// file (spec key <c>rerank</c>; per call <see cref="SpannSearchParameters.Rerank"/>). Raw postings (no
    /// <see cref="Codec"/>) have nothing to re-rank: there a value other than <see cref="DefaultRerank"/> is rejected by
    /// <see cref="Validate"/>, and the spec key by <see cref="SpannSpec.TryParse"/>.</summary>
    public int Rerank { get; init; } = DefaultRerank;

    /// <summary>Default of <see cref="Rerank"/>.</summary>
    public const int DefaultRerank = 8;

    /// <summary>Largest <see cref="Rerank"/> (and per-call re-rank factor).</summary>
    public const int MaxRerank = 1024;

    /// <summary>True when postings hold codes (<see cref="Codec"/> is set and not <c>none</c>).</summary>
    public bool IsCoded => Codec is not null && !Codec.Trim().Equals("none", StringComparison.OrdinalIgnoreCase);

    internal SpannCodecSpec? CodecSpec()
    {
        if (!IsCoded) return null;
        return SpannCodecSpec.TryParse(Codec!, out string? problem)
            ?? throw new ArgumentException($"SPANN option Codec={Codec} is invalid: {problem}.", nameof(Codec));
    }

    /// <summary>
    /// Where the Lloyd steps of the build's hierarchical balanced clustering run (e.g. Engine.Gpu's
    /// <c>GpuKMeansBackend</c>); null runs them in-process. Not part of the spec string and not saved: posting
    /// splits during updates always cluster on the CPU.
    /// </summary>
    public Engine.Clustering.IKMeansBackend? ClusteringBackend { get; init; }

    /// <summary>Checks every value, naming the first bad one. Ranges: PostingSize &gt;= 2, PostingCount &gt;= 0,
    /// MaxPostingSize &gt;= 2·PostingSize, MinPostingSize in [0, PostingSize), Replicas 1..64, AssignCandidates &gt;=
    /// Replicas (clamped to the head count when used), Probes &gt;= 1 (clamped to the head count at search),
    /// ClosureFactor and PruneFactor finite and &gt;= 0, RngFactor finite and &gt; 0, CacheBytes &gt;= 0,
    /// Rerank 1..1024 (and the default unless Codec is set); Codec null, <c>none</c> or a known codec spelling.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range (the parameter name is the option's).</exception>
    /// <exception cref="ArgumentException"><see cref="Codec"/> is not a known codec spelling (the parameter name is <c>Codec</c>),
    /// or <see cref="Rerank"/> is set on raw postings (parameter <c>Rerank</c>).</exception>
    public void Validate()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"SPANN option {name}={value} is invalid: {rule}.");
        }
        Check(PostingSize >= 2, nameof(PostingSize), PostingSize, "must be at least 2");
        Check(PostingCount >= 0, nameof(PostingCount), PostingCount, "must be >= 0 (0 = automatic)");
        Check(MaxPostingSize >= 2L * PostingSize, nameof(MaxPostingSize), MaxPostingSize, "must be at least twice PostingSize");
        Check(MinPostingSize >= 0 && MinPostingSize < PostingSize, nameof(MinPostingSize), MinPostingSize, "must be in [0, PostingSize)");
        Check(Replicas is >= 1 and <= 64, nameof(Replicas), Replicas, "must be in 1..64");
        Check(float.IsFinite(ClosureFactor) && ClosureFactor >= 0, nameof(ClosureFactor), ClosureFactor, "must be finite and >= 0");
        Check(float.IsFinite(RngFactor) && RngFactor > 0, nameof(RngFactor), RngFactor, "must be finite and > 0");
        Check(AssignCandidates >= Replicas, nameof(AssignCandidates), AssignCandidates, "must be >= Replicas");
        Check(Probes >= 1, nameof(Probes), Probes, "must be at least 1");
        Check(float.IsFinite(PruneFactor) && PruneFactor >= 0, nameof(PruneFactor), PruneFactor, "must be finite and >= 0");
        Check(CacheBytes >= 0, nameof(CacheBytes), CacheBytes, "must be >= 0");
        Check(Rerank is >= 1 and <= MaxRerank, nameof(Rerank), Rerank, $"must be in 1..{MaxRerank}");
        CodecSpec();
        if (Rerank != DefaultRerank && !IsCoded)
            throw new ArgumentException($"SPANN option Rerank={Rerank} applies to coded postings only, and Codec is not set (raw postings hold the full " +
                                        "vectors: there is nothing to re-rank). Set Codec or leave Rerank at its default.", nameof(Rerank));
    }
}

/// <summary>
/// Parses the SPANN composition string: <c>SPANN</c> or <c>SPANN(key=value,...)</c> with keys
/// <c>postings</c> (target posting count), <c>size</c> (target vectors per posting), <c>max</c> (posting cap),
/// <c>replicas</c>, <c>probes</c>, <c>eps</c> (query pruning ε₂), <c>closure</c> (ε₁), <c>codec</c> (what postings hold:
/// <c>none</c>, <c>SQ8</c>, <c>PQ{m}</c>, <c>PQ{m}x4</c>, <c>RaBitQ</c>, <c>RaBitQ{b}</c>, <c>RaBitQfs{b}</c>, <c>BIN{b}</c>, each but RaBitQ
/// optionally behind an OPQ rotation as in faiss, <c>OPQ{m},PQ{m}</c> (the comma belongs to the value: <c>SPANN(codec=OPQ16,PQ16,rerank=4)</c>); see <see cref="SpannOptions.Codec"/>)
/// and <c>rerank</c> (candidates re-ranked per result for coded postings). <see cref="Format"/> writes
/// the canonical form (non-default keys only), and <c>TryParse(Format(o))</c> gives back <c>o</c>.
/// </summary>
public static class SpannSpec
{
    /// <summary>Parses <paramref name="spec"/>; false when it is not a SPANN spec at all.</summary>
    /// <exception cref="ArgumentException">It is a SPANN spec with an unknown key or a bad value.</exception>
    public static bool TryParse(string spec, out SpannOptions options)
    {
        options = new SpannOptions();
        if (spec is null) return false;
        string s = spec.Trim();
        if (!s.StartsWith("SPANN", StringComparison.OrdinalIgnoreCase)) return false;
        string rest = s[5..].Trim();
        if (rest.Length == 0) return true;
        if (!rest.StartsWith('(') || !rest.EndsWith(')')) return false;
        string body = rest[1..^1];
        if (body.Trim().Length == 0) return true;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string part in JoinCodecParts(body.Split(',')))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"SPANN spec '{spec}': '{part.Trim()}' is not key=value.", nameof(spec));
            string key = part[..eq].Trim().ToLowerInvariant();
            string value = part[(eq + 1)..].Trim();
            if (!seen.Add(key)) throw new ArgumentException($"SPANN spec '{spec}': key '{key}' is given twice.", nameof(spec));
            options = key switch
            {
                "postings" => options with { PostingCount = Int(spec, key, value) },
                "size" => options with { PostingSize = Int(spec, key, value) },
                "max" => options with { MaxPostingSize = Int(spec, key, value) },
                "replicas" => options with { Replicas = Int(spec, key, value) },
                "probes" => options with { Probes = Int(spec, key, value) },
                "eps" => options with { PruneFactor = Float(spec, key, value) },
                "closure" => options with { ClosureFactor = Float(spec, key, value) },
                "codec" => options with { Codec = CodecName(spec, value) },
                "rerank" => options with { Rerank = Int(spec, key, value) },
                _ => throw new ArgumentException($"SPANN spec '{spec}': unknown key '{key}' (known: postings, size, max, replicas, probes, eps, closure, codec, rerank).", nameof(spec)),
            };
        }
        if (seen.Contains("rerank") && !options.IsCoded)
            throw new ArgumentException($"SPANN spec '{spec}': rerank applies to coded postings only (it re-scores the codes' candidates with the refine " +
                                        "file); without codec=... the postings hold full vectors and there is nothing to re-rank. Add codec=... or drop rerank.", nameof(spec));
        try { options.Validate(); }
        catch (ArgumentException e) { throw new ArgumentException($"SPANN spec '{spec}': {Guard.MessageWithoutParameter(e)}", nameof(spec), e); }
        return true;
    }

    /// <summary>The canonical composition string of <paramref name="options"/>.</summary>
    public static string Format(SpannOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var d = new SpannOptions();
        var parts = new List<string>();
        var c = CultureInfo.InvariantCulture;
        if (options.PostingCount != d.PostingCount) parts.Add("postings=" + options.PostingCount.ToString(c));
        if (options.PostingSize != d.PostingSize) parts.Add("size=" + options.PostingSize.ToString(c));
        if (options.MaxPostingSize != d.MaxPostingSize) parts.Add("max=" + options.MaxPostingSize.ToString(c));
        if (options.Replicas != d.Replicas) parts.Add("replicas=" + options.Replicas.ToString(c));
        if (options.Probes != d.Probes) parts.Add("probes=" + options.Probes.ToString(c));
        if (options.PruneFactor != d.PruneFactor) parts.Add("eps=" + options.PruneFactor.ToString("R", c));
        if (options.ClosureFactor != d.ClosureFactor) parts.Add("closure=" + options.ClosureFactor.ToString("R", c));
        if (options.CodecSpec() is { } codec) parts.Add("codec=" + codec);
        if (options.Rerank != d.Rerank) parts.Add("rerank=" + options.Rerank.ToString(c));
        var sb = new StringBuilder("SPANN");
        if (parts.Count > 0) sb.Append('(').AppendJoin(',', parts).Append(')');
        return sb.ToString();
    }

    // The codec value may hold commas itself (OPQ16,PQ16, faiss' spelling): a part without '=' right after a codec
    // part whose value so far ends in its front transform (OPQ{m}) continues that value.
    private static IEnumerable<string> JoinCodecParts(string[] parts)
    {
        string? pending = null;
        foreach (string part in parts)
        {
            if (pending is not null && !part.Contains('=', StringComparison.Ordinal) && EndsInTransform(pending))
            {
                pending += "," + part.Trim();
                continue;
            }
            if (pending is not null) yield return pending;
            pending = part;
        }
        if (pending is not null) yield return pending;

        static bool EndsInTransform(string part)
        {
            int eq = part.IndexOf('=');
            if (eq <= 0 || !part[..eq].Trim().Equals("codec", StringComparison.OrdinalIgnoreCase)) return false;
            string last = part[(eq + 1)..].Split(',')[^1].Trim();
            return last.StartsWith("OPQ", StringComparison.OrdinalIgnoreCase);
        }
    }

    private static int Int(string spec, string key, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new ArgumentException($"SPANN spec '{spec}': {key}='{value}' is not an integer.", nameof(spec));

    // The canonical spelling, or null for "none" (so that SPANN(codec=none) is the plain SPANN spec).
    private static string? CodecName(string spec, string value)
    {
        if (value.Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
        return SpannCodecSpec.TryParse(value, out string? problem)?.ToString()
            ?? throw new ArgumentException($"SPANN spec '{spec}': codec='{value}' is not a codec ({problem}).", nameof(spec));
    }

    private static float Float(string spec, string key, string value) =>
        float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) && float.IsFinite(v) ? v
            : throw new ArgumentException($"SPANN spec '{spec}': {key}='{value}' is not a finite number.", nameof(spec));
}

/// <summary>Per-call SPANN search knobs (override the index defaults). Out-of-range values are rejected with
/// <see cref="ArgumentOutOfRangeException"/> naming the knob and its range.</summary>
public sealed class SpannSearchParameters : SearchParameters
{
    /// <inheritdoc />
    public override string? IndexFamily => "SPANN";

    /// <summary>Most postings to probe, at least 1; null uses <see cref="SpannOptions.Probes"/>. A value above the
    /// number of postings (heads) is clamped to it, so <c>int.MaxValue</c> means "every posting".</summary>
    public int? Probes { get; init; }

    /// <summary>Query-aware pruning ε₂, finite and &gt;= 0; null uses <see cref="SpannOptions.PruneFactor"/>.</summary>
    public float? PruneFactor { get; init; }

    /// <summary>Coded postings: re-rank the best k × this many candidates (by their code estimate) with exact distances
    /// from the refine file, 1..<see cref="SpannOptions.MaxRerank"/>; null uses <see cref="SpannOptions.Rerank"/>.
    /// An index whose postings hold raw vectors (no posting codec: its distances are exact already) rejects it with an
    /// <see cref="ArgumentException"/> rather than ignoring it.</summary>
    public int? Rerank { get; init; }

    /// <inheritdoc />
    public override void Validate()
    {
        base.Validate();
        if (Probes is < 1)
            throw new ArgumentOutOfRangeException(nameof(Probes), Probes,
                $"Probes must be >= 1 (values above the posting count are clamped to it; null = the index default), got {Probes}.");
        if (PruneFactor is float e && !(float.IsFinite(e) && e >= 0))
            throw new ArgumentOutOfRangeException(nameof(PruneFactor), e,
                $"PruneFactor must be a finite number >= 0 (null = the index default), got {e}.");
        if (Rerank is < 1 or > SpannOptions.MaxRerank)
            throw new ArgumentOutOfRangeException(nameof(Rerank), Rerank,
                $"Rerank must be in 1..{SpannOptions.MaxRerank} (null = the index default), got {Rerank}.");
    }
}
