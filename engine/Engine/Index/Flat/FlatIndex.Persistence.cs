using Engine.Storage.Format;

namespace Engine.Index.Flat;

public sealed partial class FlatIndex
{
    internal const string FileKind = "flat";

    /// <inheritdoc />
    public void Save(string path)
    {
        _lock.EnterRead();
        try
        {
            using var w = new IndexFileWriter(path, new IndexFileHeader(FileKind, Description, Metric, Dimension, _count, IndexFile.FormatVersion));
            w.WriteArray<long>("IDS ", _ids.AsSpan(0, _count));
            // One section whatever the block count: the file format does not depend on how the rows are held.
            w.BeginSection("VECS", (long)_count * Dimension * sizeof(float));
            for (int r0 = 0, m; r0 < _count; r0 += m)
            {
                m = Math.Min(_count - r0, RowsInBlockFrom(r0));
                w.WritePayload(System.Runtime.InteropServices.MemoryMarshal.AsBytes(RowRange(r0, m)));
            }
            w.EndSection();
            w.Commit();
        }
        finally { _lock.ExitRead(); }
    }

    /// <summary>Loads an index written by <see cref="Save"/>, verifying header, section and trailer checksums.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorruptIndexException">Truncated or corrupted file (names the offset).</exception>
    /// <exception cref="IndexFormatException">The file holds another index kind or format version.</exception>
    public static FlatIndex Load(string path)
    {
        using var r = new IndexFileReader(path, FileKind);
        var h = r.Header;
        if (h.Count > Array.MaxLength || (long)h.Count * h.Dimension > Array.MaxLength)
            throw new CorruptIndexException(r.Path, 0, $"impossible size {h.Count} × {h.Dimension} in the header");
        // A header whose rows need more bytes than the file holds: the file was cut short (the header itself checked).
        long needed = (long)h.Count * (sizeof(float) * (long)h.Dimension + sizeof(long));
        if (needed > r.FileLength)
            throw new CorruptIndexException(r.Path, r.FileLength, $"the file is truncated: its header counts {h.Count} rows × {h.Dimension} dimensions ({needed} bytes of ids and vectors) but the file holds {r.FileLength} bytes");
        var ids = r.ReadArray<long>("IDS ", h.Count);
        var index = new FlatIndex(h.Dimension, h.Metric);
        index.AllocateExactly(ids.Length);
        r.ReadArrayInto("VECS", h.Count * h.Dimension, index._blocks);
        r.VerifyEnd();
        ids.CopyTo(index._ids, 0);
        for (int r0 = 0, m; r0 < ids.Length; r0 += m)
        {
            m = Math.Min(ids.Length - r0, index.RowsInBlockFrom(r0));
            Distance.Distances.SquaredNorms(index.RowRange(r0, m), h.Dimension, index._norms.AsSpan(r0, m));
        }
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
