using System.Globalization;
using Engine.Clustering;
using Engine.Index.Binary;
using Engine.Index.Flat;
using Engine.Index.Hnsw;
using Engine.Index.Ivf;
using Engine.Index.Spann;
using Engine.Storage.Format;

namespace Engine.Index;

/// <summary>
/// Build-time settings of <see cref="IndexFactory.Create(string, int, Metric, IndexBuildOptions)"/> that are not part
/// of the composition string (and are not saved with the index).
/// </summary>
public sealed record IndexBuildOptions
{
    /// <summary>All defaults: in-process clustering, in-memory indexes.</summary>
    public static IndexBuildOptions Default { get; } = new();

    /// <summary>
    /// Where the Lloyd steps of training run: the coarse k-means of IVF specs and the balanced clustering of SPANN
    /// builds. Null runs them in-process; Engine.Gpu's <c>GpuKMeansBackend</c> runs them on an ILGPU accelerator.
    /// Flat ignores it.
    /// </summary>
    public IKMeansBackend? ClusteringBackend { get; init; }

    /// <summary>SPANN only: the directory to create the disk-backed index in (null: postings in memory). Other specs ignore it.</summary>
    public string? Directory { get; init; }
}

/// <summary>
/// Builds indexes from composition strings (faiss <c>index_factory</c> style) and loads saved indexes.
/// <c>Create(s).Description == s</c> for every canonical string.
/// </summary>
public static class IndexFactory
{
    /// <summary>Creates an empty index for <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">Unknown or malformed spec (the message names the part that is wrong).</exception>
    public static IVectorIndex Create(string spec, int dimension, Metric metric) => Create(spec, dimension, metric, null);

    /// <summary>
    /// Creates an empty index for <paramref name="spec"/> with build-time settings that are not part of the spec
    /// (for example a k-means backend for IVF and SPANN training).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown or malformed spec (the message names the part that is wrong).</exception>
    public static IVectorIndex Create(string spec, int dimension, Metric metric, IndexBuildOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        options ??= IndexBuildOptions.Default;
        string s = spec.Trim();
        if (s.Equals("Flat", StringComparison.OrdinalIgnoreCase)) return new FlatIndex(dimension, metric);
        if (s.StartsWith("IVF", StringComparison.Ordinal) || s.StartsWith("OPQ", StringComparison.Ordinal))
            return new IvfIndex(IvfSpec.Parse(s), dimension, metric) { ClusteringBackend = options.ClusteringBackend };
        if (HnswSpec.TryParse(s, out var hnsw)) return new HnswIndex(hnsw, dimension, metric);
        if (BinarySpec.TryParse(s, out var bin)) return new BinaryIndex(bin, dimension, metric);
        if (SpannSpec.TryParse(s, out var spann))
        {
            spann = spann with { ClusteringBackend = options.ClusteringBackend };
            return options.Directory is null
                ? new SpannIndex(dimension, metric, spann)
                : SpannIndex.Create(options.Directory, dimension, metric, spann);
        }
        throw new ArgumentException($"Unknown index spec '{spec}'. Known forms: Flat, [OPQ{{m}},]IVF{{n}},(Flat|PQ{{m}}[x4][nr]|PQ{{m}}x4fs[nr]|RaBitQ[{{b}}]|RaBitQfs{{b}}|BIN{{b}}[nr])[,Refine(Flat|SQ8|F16)|,RFlat], HNSW{{M}}[,efC{{n}}][,SQ8|,F16], SPANN[(postings=…,size=…,max=…,replicas=…,probes=…,eps=…,closure=…,codec=[OPQ{{m}},](SQ8|PQ{{m}}[x4]|BIN{{b}})|RaBitQ[{{b}}]|RaBitQfs{{b}},rerank=…)], BIN{{b}}[,RFlat|,Refine(Flat|SQ8|F16)].", nameof(spec));
    }

    /// <summary>Loads any index saved with <see cref="IVectorIndex.Save"/>, dispatching on the kind in its header.</summary>
    /// <param name="path">The file (or SPANN directory).</param>
    /// <param name="mapped">IVF and HNSW indexes: keep the lists (IVF) or the vectors (HNSW) in a read-only memory
    /// mapping of the file (no copy; see <see cref="IvfIndex.Load"/>, <see cref="HnswIndex.Load"/>). On by default: searching a mapped index is as fast as a heap-loaded one
    /// (IvfMappedSearchBenchmarks). The index owns the mapping until it is disposed.</param>
    public static IVectorIndex Load(string path, bool mapped = true)
    {
        // A SPANN index is a directory (posting file, metadata, log); its path is the directory or its metadata file.
        if (Directory.Exists(path) && File.Exists(Path.Combine(path, SpannIndex.MetaFileName))) return SpannIndex.Open(path);
        if (Path.GetFileName(path) == SpannIndex.MetaFileName && File.Exists(path)) return SpannIndex.Open(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string kind;
        using (var r = new IndexFileReader(path)) kind = r.Header.Kind;
        return kind switch
        {
            FlatIndex.FileKind => FlatIndex.Load(path),
            IvfIndex.FileKind => IvfIndex.Load(path, mapped: mapped),
            HnswIndex.FileKind => HnswIndex.Load(path, mapped: mapped),
            BinaryIndex.FileKind => BinaryIndex.Load(path),
            _ => throw new IndexFormatException(path, $"unknown index kind '{kind}'."),
        };
    }

    /// <summary>
    /// Turns named settings (from <c>--sweep NAME=V</c> on the command line, e.g. <c>probes=16</c>) into
    /// search parameters for <paramref name="index"/>.
    /// </summary>
    /// <param name="index">The index the parameters are for.</param>
    /// <param name="settings">Named settings (case-insensitive keys).</param>
    /// <param name="threads">Worker threads per call (0 = all cores; negative is rejected).</param>
    /// <param name="stats">Counters the searches add to (null = none).</param>
    /// <exception cref="ArgumentException">A setting the index does not understand, or a bad value.</exception>
    public static SearchParameters CreateParameters(IVectorIndex index, IReadOnlyDictionary<string, string> settings, int threads,
        SearchStats? stats = null) => CreateParameters(index, settings, threads, stats, filter: null);

    /// <summary>
    /// <see cref="CreateParameters(IVectorIndex, IReadOnlyDictionary{string, string}, int, SearchStats?)"/> with an id
    /// filter the search applies (the distributed shards pass the router's filter this way).
    /// </summary>
    /// <param name="index">The index the parameters are for.</param>
    /// <param name="settings">Named settings (case-insensitive keys).</param>
    /// <param name="threads">Worker threads per call (0 = all cores; negative is rejected).</param>
    /// <param name="stats">Counters the searches add to (null = none).</param>
    /// <param name="filter">Only ids it allows are returned (null = none).</param>
    /// <exception cref="ArgumentException">A setting the index does not understand, or a bad value.</exception>
    public static SearchParameters CreateParameters(IVectorIndex index, IReadOnlyDictionary<string, string> settings, int threads,
        SearchStats? stats, IIdFilter? filter)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(settings);
        SearchParameters.CheckThreads(threads, nameof(threads));
        if (index is IvfIndex ivf) return CreateIvfParameters(ivf, settings, threads, stats, filter);
        if (index is SpannIndex) return CreateSpannParameters(index, settings, threads, stats, filter);
        if (index is HnswIndex) return CreateHnswParameters(index, settings, threads, stats, filter);
        if (index is BinaryIndex binary) return CreateBinaryParameters(binary, settings, threads, stats, filter);
        foreach (var key in settings.Keys)
            throw new ArgumentException($"Search parameter '{key}' is not understood by a '{index.Description}' index.", nameof(settings));
        return new SearchParameters { Threads = threads, Stats = stats, Filter = filter };
    }

    private static IvfSearchParameters CreateIvfParameters(IvfIndex index, IReadOnlyDictionary<string, string> settings, int threads, SearchStats? stats, IIdFilter? filter)
    {
        int? probes = null, refine = null, quantizerEf = null;
        long? maxCodes = null;
        float? epsilon = null;
        bool graph = index.Spec.CoarseHnswM > 0;
        bool bounded = index.Spec.Encoding is IvfListEncoding.RaBitQ or IvfListEncoding.RaBitQFastScan;
        bool refines = IvfIndex.UsesRefineFactor(index.Spec);
        foreach (var (key, value) in settings)
        {
            switch (key.Trim().ToLowerInvariant())
            {
                case "probes" or "nprobe":
                    probes = SearchSettings.Once(probes, "probes", key, ParseInt(key, value, 1, index.ListCount));
                    break;
                case "quantizer_ef" or "quantizer_efsearch" when graph:
                    quantizerEf = SearchSettings.Once(quantizerEf, "quantizer_ef", key, ParseInt(key, value, 1, Hnsw.HnswSearchParameters.MaxEf));
                    break;
                case "refine" or "k_factor" or "refine_factor":
                    refine = SearchSettings.Once(refine, "refine", key, ParseInt(key, value, 1, IvfSearchParameters.MaxRefineFactor));
                    if (refine > 1 && !refines)
                        throw new ArgumentException($"Search parameter '{key}={value}' changes nothing on a '{index.Description}' index: it has no refine store (add ',RFlat' or ',Refine(...)' to the spec).", nameof(settings));
                    break;
                case "maxcodes" or "max_codes":
                    maxCodes = SearchSettings.Once(maxCodes, "maxcodes", key, (long)ParseInt(key, value, 1, int.MaxValue));
                    break;
                case "eps" or "epsilon" when bounded:
                    if (!float.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float e) || !(e > 0 && e <= 16))
                        throw new ArgumentException($"Search parameter '{key}={value}': must be a number greater than 0 and at most 16.", nameof(settings));
                    epsilon = SearchSettings.Once(epsilon, "eps", key, e);
                    break;
                default:
                    throw new ArgumentException($"Search parameter '{key}' is not understood by a '{index.Description}' index (known: probes, refine, maxcodes{(graph ? ", quantizer_ef" : "")}{(bounded ? ", eps" : "")}).", nameof(settings));
            }
        }
        return new IvfSearchParameters { Threads = threads, Probes = probes, RefineFactor = refine, MaxCodes = maxCodes, QuantizerEf = quantizerEf, BoundEpsilon = epsilon, Stats = stats, Filter = filter };
    }

    private static HnswSearchParameters CreateHnswParameters(IVectorIndex index, IReadOnlyDictionary<string, string> settings, int threads, SearchStats? stats, IIdFilter? filter)
    {
        int? ef = null;
        foreach (var (key, value) in settings)
        {
            switch (key.Trim().ToLowerInvariant())
            {
                case "ef" or "efsearch" or "ef_search":
                    ef = SearchSettings.Once(ef, "ef", key, ParseInt(key, value, 1, HnswSearchParameters.MaxEf));
                    break;
                default:
                    throw new ArgumentException($"Search parameter '{key}' is not understood by a '{index.Description}' index (known: ef).", nameof(settings));
            }
        }
        return new HnswSearchParameters { Threads = threads, Ef = ef, Stats = stats, Filter = filter };
    }

    private static SpannSearchParameters CreateSpannParameters(IVectorIndex index, IReadOnlyDictionary<string, string> settings, int threads, SearchStats? stats, IIdFilter? filter)
    {
        int? probes = null;
        float? prune = null;
        int? rerank = null;
        foreach (var (key, value) in settings)
        {
            switch (key.Trim().ToLowerInvariant())
            {
                case "probes" or "nprobe":
                    probes = SearchSettings.Once(probes, "probes", key, ParseInt(key, value, 1, int.MaxValue)); // clamped to the posting count by the search
                    break;
                case "rerank" or "refine" or "k_factor" when index is SpannIndex { IsCoded: true }:
                    rerank = SearchSettings.Once(rerank, "rerank", key, ParseInt(key, value, 1, SpannOptions.MaxRerank));
                    break;
                case "eps" or "prune":
                    if (!float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out float e) || !float.IsFinite(e) || e < 0)
                        throw new ArgumentOutOfRangeException(nameof(settings), value, $"Search parameter '{key}={value}' must be a finite number >= 0.");
                    prune = SearchSettings.Once(prune, "eps", key, e);
                    break;
                default:
                    throw new ArgumentException($"Search parameter '{key}' is not understood by a '{index.Description}' index (known: probes, eps; rerank for coded postings).", nameof(settings));
            }
        }
        return new SpannSearchParameters { Threads = threads, Probes = probes, PruneFactor = prune, Rerank = rerank, Stats = stats, Filter = filter };
    }

    private static BinarySearchParameters CreateBinaryParameters(BinaryIndex index, IReadOnlyDictionary<string, string> settings, int threads, SearchStats? stats, IIdFilter? filter)
    {
        int? refine = null;
        bool? symmetric = null;
        foreach (var (key, value) in settings)
        {
            switch (key.Trim().ToLowerInvariant())
            {
                case "refine" or "k_factor" or "refine_factor" when index.Spec.Refine is not null:
                    refine = SearchSettings.Once(refine, "refine", key, ParseInt(key, value, 1, BinarySearchParameters.MaxRefineFactor));
                    break;
                case "symmetric":
                    symmetric = SearchSettings.Once(symmetric, "symmetric", key, ParseInt(key, value, 0, 1) == 1);
                    break;
                default:
                    throw new ArgumentException($"Search parameter '{key}' is not understood by a '{index.Description}' index (known: symmetric{(index.Spec.Refine is null ? "" : ", refine")}).", nameof(settings));
            }
        }
        return new BinarySearchParameters { Threads = threads, RefineFactor = refine, Symmetric = symmetric ?? false, Stats = stats, Filter = filter };
    }

    private static int ParseInt(string key, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new ArgumentOutOfRangeException(key, value, $"Search parameter '{key}={value}' must be an integer in {min}..{max}.");
        return v;
    }
}
