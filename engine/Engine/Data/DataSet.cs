namespace Engine.Data;

/// <summary>Options for <see cref="DataSet.Load"/>.</summary>
public sealed class DataSetLoadOptions
{
    /// <summary>When true (default), a missing <c>gt.ivecs</c> is an error; when false it loads as <c>null</c>.</summary>
    public bool RequireGroundTruth { get; init; } = true;

    /// <summary>Load only the first this many queries (and their ground-truth rows); 0 loads all.</summary>
    public int MaxQueries { get; init; }
}

/// <summary>
/// A benchmark data set: base vectors, queries, exact neighbours and optional per-row labels, stored as a
/// directory of standard files.
/// </summary>
/// <remarks>
/// <para>Directory layout: <c>base.fvecs</c>, <c>query.fvecs</c>, <c>gt.ivecs</c> (for each query the ids, i.e.
/// base row numbers, of its exact nearest neighbours, closest first), <c>meta.json</c> (<see cref="DataSetMeta"/>),
/// and optionally <c>base.labels</c> / <c>query.labels</c> (one byte per row, no header). The same directory is
/// read by <c>/work/shared/peers/peers.py</c>, so the formats are the plain TEXMEX ones.</para>
/// <para>All arrays are row-major, the layout <see cref="IVectorIndex"/> takes. The instance is not mutated after
/// construction except by <see cref="SetGroundTruth"/>; share it between threads read-only.</para>
/// </remarks>
public sealed class DataSet
{
    /// <summary>File name of the base vectors.</summary>
    public const string BaseFile = "base.fvecs";
    /// <summary>File name of the queries.</summary>
    public const string QueryFile = "query.fvecs";
    /// <summary>File name of the exact neighbours.</summary>
    public const string GroundTruthFile = "gt.ivecs";
    /// <summary>File name of the metadata.</summary>
    public const string MetaFile = "meta.json";
    /// <summary>File name of the base labels.</summary>
    public const string BaseLabelsFile = "base.labels";
    /// <summary>File name of the query labels.</summary>
    public const string QueryLabelsFile = "query.labels";

    /// <summary>Creates an in-memory data set (arrays are not copied).</summary>
    /// <exception cref="ArgumentException">Sizes disagree with the dimension, each other or the ground truth.</exception>
    public DataSet(string name, Metric metric, int dimension, float[] baseVectors, float[] queries,
        int[]? groundTruth = null, int groundTruthK = 0, byte[]? baseLabels = null, byte[]? queryLabels = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(baseVectors);
        ArgumentNullException.ThrowIfNull(queries);
        if (!Enum.IsDefined(metric)) throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric.");
        Name = name;
        Metric = metric;
        Dimension = dimension;
        Count = Guard.Rows(baseVectors, dimension, nameof(baseVectors));
        QueryCount = Guard.Rows(queries, dimension, nameof(queries));
        Base = baseVectors;
        Queries = queries;
        if (baseLabels is not null && baseLabels.Length != Count)
            throw new ArgumentException($"baseLabels has {baseLabels.Length} entries for {Count} base vectors.", nameof(baseLabels));
        if (queryLabels is not null && queryLabels.Length != QueryCount)
            throw new ArgumentException($"queryLabels has {queryLabels.Length} entries for {QueryCount} queries.", nameof(queryLabels));
        BaseLabels = baseLabels;
        QueryLabels = queryLabels;
        if (groundTruth is not null) SetGroundTruth(groundTruth, groundTruthK);
    }

    /// <summary>Name, e.g. <c>mnist-784-euclidean</c>.</summary>
    public string Name { get; }

    /// <summary>The metric of the ground truth.</summary>
    public Metric Metric { get; }

    /// <summary>Vector dimension.</summary>
    public int Dimension { get; }

    /// <summary>Number of base vectors.</summary>
    public int Count { get; }

    /// <summary>Number of queries.</summary>
    public int QueryCount { get; }

    /// <summary>Base vectors, <see cref="Count"/> × <see cref="Dimension"/>, row-major. Row number = id.</summary>
    public float[] Base { get; }

    /// <summary>Queries, <see cref="QueryCount"/> × <see cref="Dimension"/>, row-major.</summary>
    public float[] Queries { get; }

    /// <summary>Exact neighbour ids, <see cref="QueryCount"/> × <see cref="GroundTruthK"/>, closest first; <c>null</c> when not loaded.</summary>
    public int[]? GroundTruth { get; private set; }

    /// <summary>Neighbours per query in <see cref="GroundTruth"/> (0 when none).</summary>
    public int GroundTruthK { get; private set; }

    /// <summary>One label byte per base vector, or <c>null</c>.</summary>
    public byte[]? BaseLabels { get; }

    /// <summary>One label byte per query, or <c>null</c>.</summary>
    public byte[]? QueryLabels { get; }

    /// <summary>The metadata record matching this data set.</summary>
    public DataSetMeta Meta => new(Name, Metric, Count, QueryCount, Dimension);

    /// <summary>
    /// Replaces the ground truth (<see cref="QueryCount"/> × <paramref name="k"/> base row numbers, closest first; -1
    /// pads the end of a row when the base set holds fewer than k neighbours).
    /// </summary>
    /// <exception cref="ArgumentException">Wrong size, k &lt; 1, an id outside [-1, Count), or a -1 that is not trailing
    /// padding (a row starting with -1, or a real id after a -1).</exception>
    public void SetGroundTruth(int[] ids, int k)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if ((long)QueryCount * k != ids.Length)
            throw new ArgumentException($"Ground truth has {ids.Length} ids but {QueryCount} queries × k={k} need {(long)QueryCount * k}.", nameof(ids));
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < -1 || ids[i] >= Count)
                throw new ArgumentException($"Ground-truth id {ids[i]} (query {i / k}, rank {i % k}) is not a base row number in [0, {Count}).", nameof(ids));
            // -1 pads a row whose base set holds fewer than k neighbours: it may only follow the real ids, and a row
            // needs at least one (all -1 would score every search 0 against nothing).
            if (i % k == 0 && ids[i] < 0)
                throw new ArgumentException($"Ground-truth row of query {i / k} starts with -1: it names no neighbour (-1 may only pad the end of a row).", nameof(ids));
            if (i % k > 0 && ids[i] >= 0 && ids[i - 1] < 0)
                throw new ArgumentException($"Ground-truth id {ids[i]} (query {i / k}, rank {i % k}) follows a -1: -1 may only pad the end of a row.", nameof(ids));
        }
        GroundTruth = ids;
        GroundTruthK = k;
    }

    /// <summary>
    /// k-recall@k of search results against <see cref="GroundTruth"/>; see <see cref="Data.GroundTruth.RecallAtK"/>.
    /// </summary>
    /// <param name="labels">Result ids, <see cref="QueryCount"/> × <paramref name="labelsPerQuery"/>, as an index search returns them.</param>
    /// <param name="labelsPerQuery">Row stride of <paramref name="labels"/> (the k the search ran with), ≥ <paramref name="k"/>.</param>
    /// <param name="k">The k of k-recall@k, ≤ <see cref="GroundTruthK"/>.</param>
    /// <exception cref="InvalidOperationException">No ground truth is loaded.</exception>
    public double RecallAtK(ReadOnlySpan<long> labels, int labelsPerQuery, int k)
    {
        if (GroundTruth is null)
            throw new InvalidOperationException($"Data set '{Name}' has no ground truth; run 'engine data gt' or load it with RequireGroundTruth.");
        return Data.GroundTruth.RecallAtK(labels, labelsPerQuery, GroundTruth, GroundTruthK, k);
    }

    /// <summary>
    /// Loads a data-set directory, checking every file against <c>meta.json</c> and each other.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">A required file is missing; the message names it.</exception>
    /// <exception cref="CorruptIndexException">A file is truncated or malformed.</exception>
    /// <exception cref="DataFormatException">Files disagree with meta.json or each other.</exception>
    public static DataSet Load(string directory, DataSetLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new DataSetLoadOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxQueries);
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Data-set directory '{directory}' does not exist.");
        var meta = DataSetMeta.Read(Required(directory, MetaFile));
        float[] baseVectors = ReadVectors(Required(directory, BaseFile), meta, meta.Count, meta.Count);
        int nq = options.MaxQueries > 0 ? Math.Min(options.MaxQueries, meta.QueryCount) : meta.QueryCount;
        if (nq == 0 && options.RequireGroundTruth)
            throw new DataFormatException(Path.Combine(directory, QueryFile), "the data set holds no queries (meta.json: 0): there is nothing to search or to measure recall on");
        float[] queries = ReadVectors(Required(directory, QueryFile), meta, meta.QueryCount, nq);
        byte[]? baseLabels = ReadLabels(Path.Combine(directory, BaseLabelsFile), meta.Count, meta.Count);
        byte[]? queryLabels = ReadLabels(Path.Combine(directory, QueryLabelsFile), meta.QueryCount, nq);

        string gtPath = Path.Combine(directory, GroundTruthFile);
        int[]? gt = null;
        int gtK = 0;
        if (File.Exists(gtPath))
            (gt, gtK) = ReadGroundTruth(gtPath, meta, nq);
        else if (options.RequireGroundTruth)
            throw new FileNotFoundException(
                $"Data set '{directory}' has no {GroundTruthFile}: compute it with 'engine data gt --data {directory}'.", gtPath);

        var set = new DataSet(meta.Name, meta.Metric, meta.Dimension, baseVectors, queries, null, 0, baseLabels, queryLabels);
        if (gt is not null)
        {
            try { set.SetGroundTruth(gt, gtK); }
            catch (ArgumentException ex) { throw new DataFormatException(gtPath, ex.Message, ex); }
        }
        return set;
    }

    /// <summary>
    /// Writes the data set to <paramref name="directory"/> (created if missing): vectors, labels when present,
    /// ground truth when present, and meta.json last, each file atomically.
    /// </summary>
    public void Save(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        System.IO.Directory.CreateDirectory(directory);
        VectorFiles.Write(Path.Combine(directory, BaseFile), Base, Dimension, VectorFileFormat.Fvecs);
        VectorFiles.Write(Path.Combine(directory, QueryFile), Queries, Dimension, VectorFileFormat.Fvecs);
        if (BaseLabels is not null) WriteAtomically(Path.Combine(directory, BaseLabelsFile), BaseLabels);
        if (QueryLabels is not null) WriteAtomically(Path.Combine(directory, QueryLabelsFile), QueryLabels);
        if (GroundTruth is not null) SaveGroundTruth(directory);
        Meta.Write(Path.Combine(directory, MetaFile));
    }

    /// <summary>Writes only <c>gt.ivecs</c> (after <see cref="SetGroundTruth"/>).</summary>
    /// <exception cref="InvalidOperationException">No ground truth is set.</exception>
    public void SaveGroundTruth(string directory)
    {
        if (GroundTruth is null) throw new InvalidOperationException($"Data set '{Name}' has no ground truth to save.");
        VectorFiles.Write(Path.Combine(directory, GroundTruthFile), GroundTruth, GroundTruthK, VectorFileFormat.Ivecs);
    }

    private static string Required(string directory, string file)
    {
        string path = Path.Combine(directory, file);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Data set '{directory}' is missing {file} (expected {BaseFile}, {QueryFile}, {GroundTruthFile}, {MetaFile}).", path);
        return path;
    }

    private static float[] ReadVectors(string path, DataSetMeta meta, int expectedRows, int rowsToRead)
    {
        using var reader = VectorFileReader.Open(path, VectorFileFormat.Fvecs);
        if (reader.Count != expectedRows || (reader.Count > 0 && reader.Dimension != meta.Dimension))
            throw new DataFormatException(path,
                $"holds {reader.Count} rows of dimension {reader.Dimension} but meta.json declares {expectedRows} rows of dimension {meta.Dimension}.");
        var data = new float[checked(rowsToRead * meta.Dimension)];
        reader.ReadRows(0, rowsToRead, data);
        return data;
    }

    private static (int[] Ids, int K) ReadGroundTruth(string path, DataSetMeta meta, int rowsToRead)
    {
        using var reader = VectorFileReader.Open(path, VectorFileFormat.Ivecs);
        if (reader.Count != meta.QueryCount)
            throw new DataFormatException(path, $"holds {reader.Count} rows but meta.json declares {meta.QueryCount} queries.");
        var ids = new int[checked(rowsToRead * reader.Dimension)];
        reader.ReadRows(0, rowsToRead, ids);
        return (ids, reader.Dimension);
    }

    private static byte[]? ReadLabels(string path, int expected, int count)
    {
        if (!File.Exists(path)) return null;
        using var stream = File.OpenRead(path);
        long length = stream.Length; // the target's length: FileInfo.Length of a symlink is the link's own
        if (length != expected)
            throw new DataFormatException(path, $"holds {length} label bytes but meta.json declares {expected} rows (one byte per row).");
        var labels = new byte[count];
        stream.ReadExactly(labels);
        return labels;
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, path, overwrite: true);
        }
        finally { File.Delete(temp); }
    }
}
