using Engine.Data;
using PureHDF;
using PureHDF.VOL.Native;

namespace Engine.Bench;

/// <summary>
/// Loads what a user points <c>--data</c> at into a <see cref="DataSet"/>:
/// <list type="bullet">
/// <item>a data-set directory (<see cref="DataSet"/>'s layout: <c>base.fvecs</c>, <c>query.fvecs</c>, <c>gt.ivecs</c>,
/// <c>meta.json</c>), where base and query may instead be <c>.bvecs</c>, <c>.npy</c>, <c>.fbin</c> or <c>.u8bin</c>
/// and the ground truth <c>.npy</c> or <c>.ibin</c>;</item>
/// <item>an ann-benchmarks <c>.hdf5</c> file: datasets <c>train</c> (base), <c>test</c> (queries), <c>neighbors</c>
/// (exact ids, closest first) and <c>distances</c>, and the root attribute <c>distance</c>
/// (<c>euclidean</c>, <c>angular</c> or <c>dot</c>/<c>ip</c>).</item>
/// </list>
/// </summary>
public static class BenchData
{
    private static readonly string[] VectorExtensions = [".fvecs", ".bvecs", ".npy", ".fbin", ".u8bin"];
    private static readonly string[] GroundTruthExtensions = [".ivecs", ".npy", ".ibin"];

    /// <summary>Loads a directory or an <c>.hdf5</c> file (see the type's remarks).</summary>
    /// <param name="path">Directory or <c>.hdf5</c> / <c>.h5</c> file.</param>
    /// <param name="maxQueries">Keep only the first this many queries (0 = all).</param>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>, or a required file is missing.</exception>
    /// <exception cref="DataFormatException">A file is malformed or files disagree; the message names the file.</exception>
    public static DataSet Load(string path, int maxQueries = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueries);
        if (File.Exists(path))
        {
            string ext = Path.GetExtension(path).ToLowerInvariant();
            if (ext is ".hdf5" or ".h5") return LoadHdf5(path, maxQueries);
            throw new ArgumentException($"--data '{path}' is a file but not .hdf5/.h5; point it at a data-set directory or an ann-benchmarks .hdf5 file.");
        }
        if (!Directory.Exists(path)) throw new FileNotFoundException($"--data '{path}' is neither a directory nor a file.", path);
        if (File.Exists(Path.Combine(path, DataSet.BaseFile)) && File.Exists(Path.Combine(path, DataSet.QueryFile))
            && (File.Exists(Path.Combine(path, DataSet.GroundTruthFile)) || Find(path, "gt", GroundTruthExtensions) is null))
            return DataSet.Load(path, new DataSetLoadOptions { MaxQueries = maxQueries });
        return LoadMixedDirectory(path, maxQueries);
    }

    private static string? Find(string dir, string stem, string[] extensions)
    {
        var found = extensions.Select(e => Path.Combine(dir, stem + e)).Where(File.Exists).ToList();
        if (found.Count > 1)
            throw new ArgumentException($"Data-set directory '{dir}' holds {string.Join(" and ", found.Select(Path.GetFileName))}: keep one.");
        return found.Count == 1 ? found[0] : null;
    }

    private static DataSet LoadMixedDirectory(string dir, int maxQueries)
    {
        string metaPath = Path.Combine(dir, DataSet.MetaFile);
        if (!File.Exists(metaPath))
            throw new FileNotFoundException($"Data-set directory '{dir}' has no {DataSet.MetaFile} (name, metric, counts, dimension).", metaPath);
        var meta = DataSetMeta.Read(metaPath);
        string basePath = Find(dir, "base", VectorExtensions)
            ?? throw new FileNotFoundException($"Data-set directory '{dir}' has no base vectors (base{string.Join("|", VectorExtensions)}).");
        string queryPath = Find(dir, "query", VectorExtensions)
            ?? throw new FileNotFoundException($"Data-set directory '{dir}' has no queries (query{string.Join("|", VectorExtensions)}).");
        string gtPath = Find(dir, "gt", GroundTruthExtensions)
            ?? throw new FileNotFoundException($"Data-set directory '{dir}' has no ground truth (gt{string.Join("|", GroundTruthExtensions)}); compute it with 'engine data gt'.");

        var baseRows = ReadVectors(basePath, meta.Count, meta.Dimension);
        var queries = ReadVectors(queryPath, meta.QueryCount, meta.Dimension);
        var gt = VectorFiles.ReadInts(gtPath);
        if (gt.Rows != meta.QueryCount)
            throw new DataFormatException(gtPath, $"holds {gt.Rows} rows but meta.json declares {meta.QueryCount} queries.");
        return Assemble(meta.Name, meta.Metric, meta.Dimension, baseRows.Data, queries.Data, gt.Data, gt.Columns, maxQueries, gtPath);
    }

    private static DenseMatrix<float> ReadVectors(string path, int rows, int dimension)
    {
        var m = VectorFiles.ReadFloats(path);
        if (m.Rows != rows || (m.Rows > 0 && m.Columns != dimension))
            throw new DataFormatException(path, $"holds {m.Rows} rows of dimension {m.Columns} but meta.json declares {rows} rows of dimension {dimension}.");
        return m;
    }

    private static DataSet Assemble(string name, Metric metric, int dimension, float[] baseRows, float[] queries, int[] gt, int gtK,
        int maxQueries, string gtSource)
    {
        int nq = queries.Length / Math.Max(1, dimension);
        if (maxQueries > 0 && maxQueries < nq)
        {
            queries = queries.AsSpan(0, maxQueries * dimension).ToArray();
            gt = gt.AsSpan(0, maxQueries * gtK).ToArray();
        }
        var set = new DataSet(name, metric, dimension, baseRows, queries);
        try { set.SetGroundTruth(gt, gtK); }
        catch (ArgumentException ex) { throw new DataFormatException(gtSource, ex.Message, ex); }
        return set;
    }

    private static DataSet LoadHdf5(string path, int maxQueries)
    {
        NativeFile file;
        try { file = H5File.OpenRead(path); }
        catch (Exception ex) when (ex is not IOException)
        {
            throw new DataFormatException(path, $"is not a readable HDF5 file ({ex.Message}).", ex);
        }
        using (file)
        {
            Metric metric = ReadMetric(file, path);
            var (train, n, d) = ReadFloatMatrix(file, "train", path);
            var (test, nq, dq) = ReadFloatMatrix(file, "test", path);
            if (dq != d) throw new DataFormatException(path, $"'test' has dimension {dq} but 'train' has {d}.");
            var (neighbors, gtRows, gtK) = ReadIntMatrix(file, "neighbors", path);
            if (gtRows != nq) throw new DataFormatException(path, $"'neighbors' has {gtRows} rows but 'test' has {nq} queries.");
            if (file.LinkExists("distances"))
            {
                var dims = file.Dataset("distances").Space.Dimensions;
                if (dims.Length != 2 || (long)dims[0] != nq || (long)dims[1] != gtK)
                    throw new DataFormatException(path, $"'distances' has shape ({string.Join(", ", dims)}) but 'neighbors' is ({nq}, {gtK}).");
            }
            _ = n;
            string name = Path.GetFileNameWithoutExtension(path);
            return Assemble(name, metric, d, train, test, neighbors, gtK, maxQueries, path);
        }
    }

    private static Metric ReadMetric(NativeFile file, string path)
    {
        if (!file.AttributeExists("distance"))
            throw new DataFormatException(path, "has no root attribute 'distance' (ann-benchmarks files say euclidean, angular or dot).");
        string distance;
        try { distance = file.Attribute("distance").Read<string>(); }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new DataFormatException(path, $"root attribute 'distance' is not a string ({ex.Message}).", ex);
        }
        return distance.Trim().ToLowerInvariant() switch
        {
            "euclidean" or "l2" => Metric.L2,
            "angular" or "cosine" => Metric.Cosine,
            "dot" or "ip" or "inner_product" => Metric.InnerProduct,
            _ => throw new DataFormatException(path, $"distance '{distance}' is not supported (euclidean, angular, dot)."),
        };
    }

    private static IH5Dataset Dataset(NativeFile file, string name, string path, out int rows, out int columns)
    {
        if (!file.LinkExists(name))
            throw new DataFormatException(path, $"has no dataset '{name}' (ann-benchmarks files hold train, test, neighbors, distances).");
        var ds = file.Dataset(name);
        var dims = ds.Space.Dimensions;
        if (dims.Length != 2)
            throw new DataFormatException(path, $"dataset '{name}' has {dims.Length} dimensions; expected 2 (rows, columns).");
        if (dims[0] > int.MaxValue || dims[1] > (ulong)VectorFileReader.MaxDimension || dims[0] * dims[1] > (ulong)Array.MaxLength)
            throw new DataFormatException(path, $"dataset '{name}' of shape ({dims[0]}, {dims[1]}) is too large to load.");
        rows = (int)dims[0];
        columns = (int)dims[1];
        return ds;
    }

    private static (float[] Data, int Rows, int Columns) ReadFloatMatrix(NativeFile file, string name, string path)
    {
        var ds = Dataset(file, name, path, out int rows, out int columns);
        var type = ds.Type;
        float[] data = (type.Class, type.Size) switch
        {
            (H5DataTypeClass.FloatingPoint, 4) => ds.Read<float[]>(),
            (H5DataTypeClass.FloatingPoint, 8) => Array.ConvertAll(ds.Read<double[]>(), v => (float)v),
            (H5DataTypeClass.FixedPoint, 1) => Array.ConvertAll(ds.Read<byte[]>(), v => (float)v),
            (H5DataTypeClass.FixedPoint, 4) => Array.ConvertAll(ds.Read<int[]>(), v => (float)v),
            _ => throw new DataFormatException(path, $"dataset '{name}' holds {type.Class} of {type.Size} bytes; expected float32/64, uint8 or int32."),
        };
        if (data.Length != (long)rows * columns)
            throw new DataFormatException(path, $"dataset '{name}' read {data.Length} values for shape ({rows}, {columns}).");
        return (data, rows, columns);
    }

    private static (int[] Data, int Rows, int Columns) ReadIntMatrix(NativeFile file, string name, string path)
    {
        var ds = Dataset(file, name, path, out int rows, out int columns);
        var type = ds.Type;
        int[] data = (type.Class, type.Size) switch
        {
            (H5DataTypeClass.FixedPoint, 4) => ds.Read<int[]>(),
            (H5DataTypeClass.FixedPoint, 8) => Array.ConvertAll(ds.Read<long[]>(), v => v is >= -1 and <= int.MaxValue
                ? (int)v : throw new DataFormatException(path, $"dataset '{name}' holds id {v}, outside the int32 range.")),
            _ => throw new DataFormatException(path, $"dataset '{name}' holds {type.Class} of {type.Size} bytes; expected int32 or int64 ids."),
        };
        if (data.Length != (long)rows * columns)
            throw new DataFormatException(path, $"dataset '{name}' read {data.Length} values for shape ({rows}, {columns}).");
        return (data, rows, columns);
    }
}
