using Engine.Storage.Format;

namespace Engine.Index.Flat;

public sealed partial class FlatIndex
{
    internal const string FileKind = "flat";

    /// <inheritdoc />
    public void Save(string path)
    {
        _lock.EnterReadLock();
        try
        {
            using var w = new IndexFileWriter(path, new IndexFileHeader(FileKind, Description, Metric, Dimension, _count, IndexFile.FormatVersion));
            w.WriteArray<long>("IDS ", _ids.AsSpan(0, _count));
            w.WriteArray<float>("VECS", _data.AsSpan(0, _count * Dimension));
            w.Commit();
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>Loads an index written by <see cref="Save"/>, verifying header, section and trailer checksums.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorruptIndexException">Truncated or corrupted file (names the offset).</exception>
    /// <exception cref="IndexFormatException">The file holds another index kind or format version.</exception>
    public static FlatIndex Load(string path)
    {
        using var r = new IndexFileReader(path, FileKind);
        var h = r.Header;
        if (h.Count * h.Dimension > Array.MaxLength)
            throw new CorruptIndexException(r.Path, 0, $"impossible size {h.Count} × {h.Dimension}");
        var ids = r.ReadArray<long>("IDS ", h.Count);
        var vecs = r.ReadArray<float>("VECS", h.Count * h.Dimension);
        r.VerifyEnd();
        var index = new FlatIndex(h.Dimension, h.Metric);
        index._data = vecs;
        index._ids = ids;
        index._norms = new float[ids.Length];
        Distance.Distances.SquaredNorms(vecs, h.Dimension, index._norms);
        CheckFinite(r.Path, r.PayloadOffset("VECS"), index._norms, ids, h.Dimension);
        (index._source, index._idsAt, index._vectorsAt) = (r.Path, r.PayloadOffset("IDS "), r.PayloadOffset("VECS"));
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0 || !index._rowOf.TryAdd(ids[i], i))
                throw new CorruptIndexException(r.Path, r.PayloadOffset("IDS ") + (long)i * sizeof(long), $"id {ids[i]} at row {i} is negative or duplicated");
        }
        index._count = ids.Length;
        return index;
    }
}
