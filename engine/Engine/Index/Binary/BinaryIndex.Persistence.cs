using Engine.Quantization;
using Engine.Storage.Format;

namespace Engine.Index.Binary;

public sealed partial class BinaryIndex
{
    internal const string FileKind = "binary";

    /// <inheritdoc />
    /// <remarks>The header stores the composition string (<see cref="Description"/>); sections hold the codec's mean
    /// and stage scales, the SQ8 refine range, ids, binary codes and refine codes.</remarks>
    public void Save(string path)
    {
        _lock.EnterRead();
        try
        {
            using var w = new IndexFileWriter(path, new IndexFileHeader(FileKind, Description, Metric, Dimension, _count, IndexFile.FormatVersion));
            var (mean, scales) = _codec.Parameters;
            w.WriteArray<float>("BMEA", mean);
            w.WriteArray<float>("BSCL", scales);
            var (min, step) = _refine?.Range ?? ([], []);
            w.WriteArray<float>("RMIN", min);
            w.WriteArray<float>("RSTP", step);
            w.WriteArray<long>("IDS ", _ids.AsSpan(0, _count));
            w.WriteArray<byte>("CODE", _codes.AsSpan(0, _count * _codec.CodeSize));
            w.WriteArray<byte>("REFN", _refine is null ? [] : _refineCodes.AsSpan(0, _count * _refine.CodeSize));
            w.Commit();
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>Loads an index written by <see cref="Save"/>, verifying checksums, shapes, parameters and ids.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorruptIndexException">Truncated, corrupted or inconsistent file (names the offset).</exception>
    /// <exception cref="IndexFormatException">Another index kind or format version.</exception>
    public static BinaryIndex Load(string path)
    {
        using var r = new IndexFileReader(path, FileKind);
        var h = r.Header;
        BinarySpec spec;
        try { spec = BinarySpec.Parse(h.Description); }
        catch (ArgumentException e) { throw new CorruptIndexException(r.Path, 0, $"bad spec in the header: {e.Message}", e); }
        if (h.Dimension <= 0 || h.Count < 0 || h.Count > int.MaxValue || !Enum.IsDefined(h.Metric))
            throw new CorruptIndexException(r.Path, 0, $"impossible header: d={h.Dimension}, count={h.Count}, metric={h.Metric}");
        var index = new BinaryIndex(spec, h.Dimension, h.Metric);
        int n = (int)h.Count;
        long at = r.Position;
        var mean = r.ReadArray<float>("BMEA");
        var scales = r.ReadArray<float>("BSCL");
        var min = r.ReadArray<float>("RMIN");
        var step = r.ReadArray<float>("RSTP");
        try
        {
            if (mean.Length > 0 || n > 0) index._codec.SetParameters(mean, scales);
            if (index._refine is { Encoding: VectorEncoding.SQ8 } && (min.Length > 0 || n > 0)) index._refine.SetRange(min, step);
        }
        catch (ArgumentException e) { throw new CorruptIndexException(r.Path, at, $"bad codec parameters: {e.Message}", e); }
        long idsAt = r.Position;
        var ids = r.ReadArray<long>("IDS ", n);
        index._codes = r.ReadArray<byte>("CODE", (long)n * index._codec.CodeSize);
        index._refineCodes = r.ReadArray<byte>("REFN", index._refine is null ? 0 : (long)n * index._refine.CodeSize);
        r.VerifyEnd();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || !index._rowOf.TryAdd(ids[i], i))
                throw new CorruptIndexException(r.Path, idsAt + (long)i * sizeof(long), $"id {ids[i]} at row {i} is negative or duplicated");
        index._ids = ids;
        index._count = n;
        return index;
    }
}
