using Engine.Quantization;
using Engine.Storage.Format;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    internal const string FileKind = "ivf";

    /// <summary>Version of the IVF section layout inside the container (bumped on any layout change).</summary>
    internal const int LayoutVersion = 1;

    /// <inheritdoc />
    /// <remarks>Sections: IVER (layout version, trained flag), ROT (OPQ), CENT, PQCB, SQRG (SQ8 range), LCNT (list sizes),
    /// then ids, attributes, codes and refine codes of all lists concatenated. The composition string is the header's
    /// description.</remarks>
    public void Save(string path)
    {
        _lock.EnterReadLock();
        try
        {
            using var w = new IndexFileWriter(path, new IndexFileHeader(FileKind, Description, Metric, Dimension, _count, IndexFile.FormatVersion));
            w.WriteArray<int>("IVER", [LayoutVersion, _trained ? 1 : 0, _defaultProbes]);
            w.WriteArray<float>("ROT ", _opq is null ? [] : _opq.Matrix);
            w.WriteArray<float>("CENT", _centroids);
            w.WriteArray<float>("PQCB", _pq is null ? [] : _pq.Codebooks);
            var (min, step) = _refine?.Range ?? ([], []);
            w.WriteArray<float>("SQRG", [.. min, .. step]);
            w.WriteArray<int>("LCNT", _lists.Select(l => l.Count).ToArray());
            w.WriteArray<long>("IDS ", _lists.SelectMany(l => l.Ids.Take(l.Count)).ToArray());
            w.WriteArray<double>("ATTR", _lists.SelectMany(l => l.Attributes.Take(l.Count)).ToArray());
            w.WriteArray<byte>("CODE", _lists.SelectMany(l => l.Codes.Take(CodeBytes(l.Count))).ToArray());
            int rs = _refine?.CodeSize ?? 0;
            w.WriteArray<byte>("RFNE", _lists.SelectMany(l => l.Refine.Take(l.Count * rs)).ToArray());
            w.Commit();
        }
        finally { _lock.ExitReadLock(); }
    }

    private int CodeBytes(int rows) => Spec.Encoding == IvfListEncoding.PQFastScan
        ? checked((rows + 31) / 32 * PQ4FastScan.BlockBytes(_pq!.M))
        : checked(rows * CodeSize);

    /// <summary>Loads an index written by <see cref="Save"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedSpec">When given, the file must hold exactly this composition string.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorruptIndexException">Truncated, corrupted or inconsistent file (names the offset).</exception>
    /// <exception cref="IndexFormatException">Another index kind, spec or layout version.</exception>
    public static IvfIndex Load(string path, string? expectedSpec = null)
    {
        using var r = new IndexFileReader(path, FileKind);
        var h = r.Header;
        if (expectedSpec is not null && h.Description != expectedSpec)
            throw new IndexFormatException(r.Path, $"the file holds a '{h.Description}' index, not '{expectedSpec}'.");
        IvfSpec spec;
        try { spec = IvfSpec.Parse(h.Description); spec.Validate(h.Dimension); }
        catch (ArgumentException e) { throw new IndexFormatException(r.Path, $"unsupported composition '{h.Description}': {e.Message}"); }
        var ver = r.ReadArray<int>("IVER", 3);
        if (ver[0] != LayoutVersion)
            throw new IndexFormatException(r.Path, $"IVF layout version {ver[0]} is not supported (this build reads version {LayoutVersion}).");
        var index = new IvfIndex(spec, h.Dimension, h.Metric);
        int d = h.Dimension;
        var rot = r.ReadArray<float>("ROT ", index._opq is null ? 0 : (long)d * d);
        index._opq?.SetMatrix(rot);
        index._centroids = r.ReadArray<float>("CENT", (long)spec.Lists * d);
        Distance.Distances.SquaredNorms(index._centroids, d, index._centroidNorms);
        var cb = r.ReadArray<float>("PQCB", index._pq?.Codebooks.Length ?? 0);
        if (index._pq is not null && ver[1] == 1) index._pq.SetCodebooks(cb);
        var sq = r.ReadArray<float>("SQRG");
        if (sq.Length == 2 * d && index._refine is not null) index._refine.SetRange(sq[..d], sq[d..]);
        else if (sq.Length != 0) throw new CorruptIndexException(r.Path, 0, $"SQ8 range holds {sq.Length} floats, expected {2 * d}");
        var counts = r.ReadArray<int>("LCNT", spec.Lists);
        long total = 0;
        foreach (int c in counts)
        {
            if (c < 0) throw new CorruptIndexException(r.Path, 0, $"negative list size {c}");
            total += c;
        }
        if (total != h.Count) throw new CorruptIndexException(r.Path, 0, $"list sizes add up to {total}, header says {h.Count}");
        var ids = r.ReadArray<long>("IDS ", total);
        var attrs = r.ReadArray<double>("ATTR", total);
        long codeTotal = counts.Sum(c => (long)index.CodeBytes(c));
        var codes = r.ReadArray<byte>("CODE", codeTotal);
        int rs = index._refine?.CodeSize ?? 0;
        var refine = r.ReadArray<byte>("RFNE", total * rs);
        r.VerifyEnd();

        long idPos = 0, codePos = 0;
        int blockBytes = spec.Encoding == IvfListEncoding.PQFastScan ? PQ4FastScan.BlockBytes(spec.SubQuantizers) : 0;
        for (int li = 0; li < spec.Lists; li++)
        {
            var list = index._lists[li];
            int c = counts[li], cbytes = index.CodeBytes(c);
            list.EnsureCapacity(c, index.CodeSize, blockBytes, rs);
            ids.AsSpan((int)idPos, c).CopyTo(list.Ids);
            attrs.AsSpan((int)idPos, c).CopyTo(list.Attributes);
            codes.AsSpan((int)codePos, cbytes).CopyTo(list.Codes);
            refine.AsSpan((int)(idPos * rs), c * rs).CopyTo(list.Refine);
            for (int off = 0; off < c; off++)
            {
                long id = list.Ids[off];
                if (id < 0 || !index._directMap.TryAdd(id, Pack(li, off)))
                    throw new CorruptIndexException(r.Path, 0, $"id {id} in list {li} is negative or duplicated");
            }
            list.Count = c;
            idPos += c;
            codePos += cbytes;
        }
        index._count = total;
        index._trained = ver[1] == 1;
        index._centroidsSupplied = true;
        if (ver[2] >= 1 && ver[2] <= spec.Lists) index._defaultProbes = ver[2];
        if (index._trained) index.BuildTerm2();
        return index;
    }
}
