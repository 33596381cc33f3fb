using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Engine.Mining.Output;

/// <summary>Output formats of <see cref="HardNegativeMiner.MineToFile(MiningInput, string, MiningOutputFormat, MiningManifest?)"/>.</summary>
public enum MiningOutputFormat
{
    /// <summary>JSON lines (<see cref="JsonlMiningWriter"/>).</summary>
    Jsonl = 0,
    /// <summary>Checksummed binary container (<see cref="BinaryMiningWriter"/>).</summary>
    Binary = 1,
}

/// <summary>
/// Provenance written beside every mining output as <c>&lt;output&gt;.manifest.json</c>: the index it came from
/// (description, metric, size, checksum), checksums of the inputs, every option, the seed, the engine version,
/// the output's own SHA-256 and the full report — so "how were these negatives made?" has an answer.
/// </summary>
public sealed class MiningManifest
{
    /// <summary>Checksum of the index or its corpus (e.g. SHA-256 of the corpus file); null when unknown.</summary>
    public string? IndexChecksum { get; init; }

    /// <summary>Named inputs and their checksums (e.g. <c>corpus → sha256:…</c>).</summary>
    public IReadOnlyDictionary<string, string> Inputs { get; init; } = new Dictionary<string, string>();

    /// <summary>Free-form notes (command line, data set name).</summary>
    public string? Notes { get; init; }

    /// <summary>The version of the engine assembly.</summary>
    public static string EngineVersion => typeof(MiningManifest).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>Path of the manifest for an output file.</summary>
    public static string PathFor(string outputPath) => outputPath + ".manifest.json";

    /// <summary>SHA-256 of a file as <c>sha256:hex</c>.</summary>
    public static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>Writes the manifest beside <paramref name="outputPath"/> atomically; returns its path.</summary>
    public string Write(string outputPath, MiningOutputFormat format, IVectorIndex index, MiningOptions options, MiningReport report) =>
        Write(outputPath, format == MiningOutputFormat.Jsonl ? "jsonl" : "binary", index, options, report);

    /// <summary>
    /// Writes the manifest beside <paramref name="outputPath"/> atomically, naming the output's format in words
    /// (e.g. <c>triplet+scores/parquet</c> for a training layout); returns its path.
    /// </summary>
    public string Write(string outputPath, string formatName, IVectorIndex index, MiningOptions options, MiningReport report)
    {
        ArgumentException.ThrowIfNullOrEmpty(formatName);
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(report);
        string path = PathFor(Path.GetFullPath(outputPath));
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("kind", "engine-mining-manifest");
            w.WriteString("engine_version", EngineVersion);
            w.WriteStartObject("output");
            w.WriteString("file", Path.GetFileName(outputPath));
            w.WriteString("format", formatName);
            w.WriteString("checksum", Sha256(outputPath));
            w.WriteNumber("bytes", Engine.Storage.FileLengths.Of(outputPath));
            w.WriteEndObject();
            w.WriteStartObject("index");
            w.WriteString("description", index.Description);
            w.WriteString("metric", index.Metric.ToShortName());
            w.WriteNumber("dimension", index.Dimension);
            w.WriteNumber("count", index.Count);
            if (IndexChecksum is null) w.WriteNull("checksum"); else w.WriteString("checksum", IndexChecksum);
            w.WriteEndObject();
            w.WriteStartObject("inputs");
            foreach (var (k, v) in Inputs.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteNumber("seed", options.Seed);
            w.WritePropertyName("options");
            WriteOptions(w, options);
            if (Notes is not null) w.WriteString("notes", Notes);
            w.WritePropertyName("report");
            report.WriteJson(w);
            w.WriteEndObject();
        }
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllBytes(temp, ms.ToArray());
        File.Move(temp, path, overwrite: true);
        return path;
    }

    /// <summary>Every option as JSON (snake_case; nulls for unset filters).</summary>
    internal static void WriteOptions(Utf8JsonWriter w, MiningOptions o)
    {
        w.WriteStartObject();
        w.WriteNumber("num_negatives", o.NumNegatives);
        w.WriteNumber("range_min", o.RangeMin);
        w.WriteNumber("range_max", o.RangeMax);
        w.WriteNumber("candidate_depth", o.CandidateDepth);
        Nullable(w, "duplicate_threshold", o.DuplicateThreshold);
        Nullable(w, "absolute_margin", o.AbsoluteMargin);
        Nullable(w, "relative_margin", o.RelativeMargin);
        w.WriteString("positive_anchor", o.PositiveAnchor.ToString().ToLowerInvariant());
        Nullable(w, "min_score", o.MinScore);
        Nullable(w, "max_score", o.MaxScore);
        w.WriteString("sampling", o.Sampling.ToString().ToLowerInvariant());
        w.WriteNumber("simans_a", o.SimAnsA);
        w.WriteNumber("simans_b", o.SimAnsB);
        w.WriteNumber("temperature", o.Temperature);
        w.WriteNumber("hubness_gamma", o.HubnessGamma);
        w.WriteNumber("max_hand_outs_per_item", o.MaxHandOutsPerItem);
        w.WriteString("shortfall", o.Shortfall.ToString().ToLowerInvariant());
        w.WriteBoolean("rescore_exact", o.RescoreExact);
        w.WriteBoolean("include_positives", o.IncludePositives);
        w.WriteNumber("anchor_id_offset", o.AnchorIdOffset);
        if (o.Normalizer is null) w.WriteNull("normalizer"); else w.WriteString("normalizer", o.Normalizer.Name);
        w.WriteNumber("chunk_size", o.ChunkSize);
        w.WriteEndObject();
    }

    private static void Nullable(Utf8JsonWriter w, string name, float? v)
    {
        if (v is float f) w.WriteNumber(name, f); else w.WriteNull(name);
    }

    /// <summary>Reads back the manifest JSON text (for tests and tools).</summary>
    public static JsonDocument Read(string outputPath) =>
        JsonDocument.Parse(File.ReadAllText(PathFor(Path.GetFullPath(outputPath)), Encoding.UTF8));
}
