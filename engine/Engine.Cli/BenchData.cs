using System.Buffers.Binary;
using System.Text.Json;

namespace Engine.Cli;

/// <summary>A data-set directory loaded for benchmarking.</summary>
internal sealed class BenchData
{
    public required string Name { get; init; }
    public required Metric Metric { get; init; }
    public required int Dimension { get; init; }
    public required float[] Base { get; init; }
    public required float[] Queries { get; init; }
    public required int[] GroundTruth { get; init; }
    public required int GroundTruthDepth { get; init; }
    public int Count => Base.Length / Dimension;
    public int QueryCount => Queries.Length / Dimension;

    public static BenchData Load(string dir, int queryLimit)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Data-set directory '{dir}' does not exist.");
        string metaPath = Path.Combine(dir, "meta.json");
        if (!File.Exists(metaPath)) throw new FileNotFoundException($"Data set '{dir}' has no meta.json.", metaPath);
        using var meta = JsonDocument.Parse(File.ReadAllText(metaPath));
        string name = meta.RootElement.TryGetProperty("name", out var n) ? n.GetString() ?? Path.GetFileName(dir) : Path.GetFileName(dir);
        var metric = MetricExtensions.ParseMetric(meta.RootElement.TryGetProperty("metric", out var m) ? m.GetString() ?? "l2" : "l2");
        var (b, d) = ReadVecs<float>(Path.Combine(dir, "base.fvecs"));
        var (q, dq) = ReadVecs<float>(Path.Combine(dir, "query.fvecs"));
        var (gt, gd) = ReadVecs<int>(Path.Combine(dir, "gt.ivecs"));
        if (dq != d) throw new ArgumentException($"query.fvecs has dimension {dq} but base.fvecs has {d}.");
        int nq = q.Length / d;
        if (gt.Length / gd != nq) throw new ArgumentException($"gt.ivecs has {gt.Length / gd} rows but query.fvecs has {nq}.");
        if (queryLimit > 0 && queryLimit < nq)
        {
            q = q.AsSpan(0, queryLimit * d).ToArray();
            gt = gt.AsSpan(0, queryLimit * gd).ToArray();
        }
        return new BenchData { Name = name, Metric = metric, Dimension = d, Base = b, Queries = q, GroundTruth = gt, GroundTruthDepth = gd };
    }

    private static (T[] data, int dim) ReadVecs<T>(string path) where T : unmanaged
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Data-set file '{path}' is missing.", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 4) throw new CorruptIndexException(path, 0, "file is too short for a vecs header");
        int d = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (d <= 0) throw new CorruptIndexException(path, 0, $"bad dimension {d}");
        long rowBytes = 4 + 4L * d;
        if (bytes.Length % rowBytes != 0) throw new CorruptIndexException(path, bytes.Length - bytes.Length % rowBytes, "file is truncated mid-row");
        int rows = (int)(bytes.Length / rowBytes);
        var result = new T[rows * d];
        var dst = System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan());
        for (int i = 0; i < rows; i++)
        {
            int off = (int)(i * rowBytes);
            int di = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(off));
            if (di != d) throw new CorruptIndexException(path, off, $"row {i} has dimension {di}, expected {d}");
            bytes.AsSpan(off + 4, 4 * d).CopyTo(dst.Slice(i * 4 * d));
        }
        return (result, d);
    }
}
