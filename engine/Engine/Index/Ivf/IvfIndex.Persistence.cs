using System.Runtime.InteropServices;
using Engine.Index.Lists;
using Engine.Quantization;
using Engine.Storage.Format;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex
{
    internal const string FileKind = "ivf";

    /// <summary>Version of the IVF section layout inside the container (bumped on any layout change). Version 2 adds
    /// section LCRC (a CRC32C of each list's ids) after RFNE; version 1 files are still read.</summary>
    internal const int LayoutVersion = 2;

    /// <summary>Layout version of files with RaBitQ lists: version 2 plus section <c>RBQ </c> (bits, rotation seed,
    /// rotation rounds) right after IVER. Other encodings keep writing version 2.</summary>
    internal const int RaBitQLayoutVersion = 3;

    /// <summary>Layout version of files with binary lists (<c>BIN{b}</c>): version 2 plus section <c>BINP</c> (the
    /// codec's d means then b × d stage scales, stage-major (b scales in files written before per-dimension scales); empty while untrained) right after IVER.</summary>
    internal const int BinaryLayoutVersion = 4;

    // The layout version a file of this encoding must carry (Save writes it from the codec it holds).
    private static int LayoutVersionOf(IvfListEncoding encoding) => encoding switch
    {
        IvfListEncoding.RaBitQ or IvfListEncoding.RaBitQFastScan => RaBitQLayoutVersion,
        IvfListEncoding.Binary => BinaryLayoutVersion,
        _ => LayoutVersion,
    };

    /// <inheritdoc />
    /// <remarks>Sections: IVER (layout version, trained flag), ROT (the front transform's learnt parameters: the OPQ
    /// rotation, d × d; empty without one), CENT, PQCB, ANIS (the anisotropic threshold of
    /// the PQ codes, only when above 0), SQRG (SQ8 range), LCNT (list sizes),
    /// then ids, attributes, codes and refine codes of all lists concatenated, each streamed list by list (no copy of
    /// the whole index in memory). The composition string is the header's description. Saving over the file a mapped
    /// index was loaded from is safe: the new file is written beside it and renamed into place, and the mapping keeps
    /// the old file's pages.</remarks>
    public void Save(string path)
    {
        _lock.EnterRead();
        try
        {
            using var w = new IndexFileWriter(path, new IndexFileHeader(FileKind, Description, Metric, Dimension, _count, IndexFile.FormatVersion));
            w.WriteArray<int>("IVER", [_rabitq is not null ? RaBitQLayoutVersion : _binary is not null ? BinaryLayoutVersion : LayoutVersion, _trained ? 1 : 0, _defaultProbes]);
            if (_rabitq is not null)
                w.WriteArray<int>("RBQ ", [_rabitq.Bits, _rabitq.Rotation?.Seed ?? 0, _rabitq.Rotation?.Rounds ?? HadamardRotation.DefaultRounds]);
            if (_binary is not null)
                w.WriteArray<float>("BINP", _binary.IsTrained ? [.. _binary.Parameters.Mean, .. _binary.Parameters.Scales] : []);
            w.WriteArray<float>("ROT ", _transform is ILearnedTransform learned ? learned.Parameters : []);
            w.WriteArray<float>("CENT", CentroidArray());
            w.WriteArray<float>("PQCB", _pq is null ? [] : _pq.Codebooks);
            if (_pq is { AnisotropicThreshold: > 0 }) w.WriteArray<double>("ANIS", [_pq.AnisotropicThreshold]); // absent: plain codes
            var (min, step) = _refine?.Range ?? ([], []);
            w.WriteArray<float>("SQRG", [.. min, .. step]);
            w.WriteArray<int>("LCNT", _lists.Select(l => l.Count).ToArray());
            long rows = _lists.Sum(l => (long)l.Count);
            int rs = _refine?.CodeSize ?? 0;
            WriteLists(w, "IDS ", rows * sizeof(long), l => MemoryMarshal.AsBytes(l.Ids));
            WriteLists(w, "ATTR", rows * sizeof(double), l => MemoryMarshal.AsBytes(l.Attributes));
            WriteLists(w, "CODE", _lists.Sum(l => (long)CodeBytes(l.Count)), l => l.Codes[..CodeBytes(l.Count)]);
            WriteLists(w, "RFNE", rows * rs, l => l.Refine[..(l.Count * rs)]);
            w.WriteArray<uint>("LCRC", ListChecksums());
            w.Commit();
        }
        finally { _lock.ExitRead(); }
    }

    private delegate ReadOnlySpan<byte> ListBytes(InvertedList list);

    // One section holding a piece of every list, in list order, written straight from the lists.
    private void WriteLists(IndexFileWriter w, string tag, long bytes, ListBytes piece)
    {
        w.BeginSection(tag, bytes);
        foreach (var list in _lists) w.WritePayload(piece(list));
        w.EndSection();
    }

    private int CodeBytes(int rows) => _lists.CodeBytes(rows);

    // The coarse centroids as one nlist × d array (the flat quantizer's own; any other quantizer's read back).
    internal float[] CentroidArray()
    {
        if (ReferenceEquals(_quantizer, _flatQuantizer)) return _flatQuantizer.Centroids;
        var all = new float[(long)ListCount * Dimension];
        for (int c = 0; c < ListCount; c++) _quantizer.Centroid(c).CopyTo(all.AsSpan(c * Dimension, Dimension));
        return all;
    }

    /// <summary>Loads an index written by <see cref="Save"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expectedSpec">When given, the file must hold exactly this composition string.</param>
    /// <param name="mapped">
    /// Keep the lists' ids, attributes, codes and refine codes in a read-only memory mapping of the file instead of
    /// copying them to the heap. The index owns the mapping and releases it on <see cref="Dispose"/>; a list that is
    /// mutated (add, remove, upsert) is first copied to the heap, so nothing is ever written to the file. The file
    /// must not be modified in place (truncated, rewritten) while mapped; replacing it by rename (as
    /// <see cref="Save"/> does) is safe. Files of container version 1 (unaligned sections) are always copied.
    /// </param>
    /// <remarks>Both modes verify every checksum with one sequential pass over the file before returning.</remarks>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorruptIndexException">Truncated, corrupted or inconsistent file (names the offset).</exception>
    /// <exception cref="IndexFormatException">Another index kind, spec or layout version.</exception>
    public static IvfIndex Load(string path, string? expectedSpec = null, bool mapped = false)
    {
        using var r = new IndexFileReader(path, FileKind, mapped: true);
        var h = r.Header;
        if (expectedSpec is not null && h.Description != expectedSpec)
            throw new IndexFormatException(r.Path, $"the file holds a '{h.Description}' index, not '{expectedSpec}'.");
        IvfSpec spec;
        try { spec = IvfSpec.Parse(h.Description); spec.Validate(h.Dimension); }
        catch (ArgumentException e) { throw new IndexFormatException(r.Path, $"unsupported composition '{h.Description}': {e.Message}"); }
        var ver = r.ReadArray<int>("IVER", 3);
        if (ver[0] is < 1 or > BinaryLayoutVersion)
            throw new IndexFormatException(r.Path, $"IVF layout version {ver[0]} is not supported (this build reads versions 1 to {BinaryLayoutVersion}).");
        int expected = LayoutVersionOf(spec.Encoding);
        if (expected == LayoutVersion ? ver[0] > LayoutVersion : ver[0] != expected)
            throw new IndexFormatException(r.Path, $"IVF layout version {ver[0]} does not fit a '{h.Description}' index (RaBitQ lists are written with version {RaBitQLayoutVersion}, binary lists with {BinaryLayoutVersion}, others with 1 or 2).");
        var index = new IvfIndex(spec, h.Dimension, h.Metric);
        try
        {
            index.ReadBody(r, ver, mapped);
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    private unsafe void ReadBody(IndexFileReader r, int[] ver, bool mapped)
    {
        var h = r.Header;
        int d = h.Dimension;
        if (_rabitq is not null) ReadRaBitQ(r, trained: ver[1] == 1);
        if (_binary is not null) ReadBinary(r, trained: ver[1] == 1);
        ReadTransform(r, trained: ver[1] == 1);
        var centroids = r.ReadArray<float>("CENT", (long)Spec.Lists * d);
        _flatQuantizer.SetCentroids(centroids);
        var cb = r.ReadArray<float>("PQCB", _pq?.Codebooks.Length ?? 0);
        if (_pq is not null && ver[1] == 1) _pq.SetCodebooks(cb);
        if (r.PeekTag() == "ANIS") ReadAnisotropic(r);
        else if (_pq is not null && ver[1] == 1)
        {
            if (Spec.AnisotropicThreshold > 0)
                throw new CorruptIndexException(r.Path, r.Position, $"the spec '{Description}' sets an anisotropic threshold but the file has no ANIS section");
            _pq.AnisotropicThreshold = 0; // trained without the section (or written before it existed): plain codes
        }
        long sqAt = r.Position;
        var sq = r.ReadArray<float>("SQRG");
        if (sq.Length == 2 * d && _refine is not null) _refine.SetRange(sq[..d], sq[d..]);
        else if (sq.Length != 0) throw new CorruptIndexException(r.Path, sqAt, $"SQ8 range holds {sq.Length} floats, expected {2 * d}");
        long countsAt = r.Position;
        var counts = r.ReadArray<int>("LCNT", Spec.Lists);
        long total = 0;
        foreach (int c in counts)
        {
            if (c < 0) throw new CorruptIndexException(r.Path, countsAt, $"negative list size {c}");
            total += c;
        }
        // SOAR files hold up to two rows per vector; the header counts vectors.
        if (_spillMap is null ? total != h.Count : total < h.Count || total > 2 * h.Count)
            throw new CorruptIndexException(r.Path, countsAt, _spillMap is null
                ? $"list sizes add up to {total}, header says {h.Count}"
                : $"list sizes add up to {total} rows, but a SOAR index of {h.Count} vectors holds {h.Count} to {2 * h.Count}");
        int rs = _refine?.CodeSize ?? 0;
        var ids = r.MapSection("IDS ", checked(total * sizeof(long)));
        var attrs = r.MapSection("ATTR", checked(total * sizeof(double)));
        var codes = r.MapSection("CODE", counts.Sum(c => (long)CodeBytes(c)));
        var refine = r.MapSection("RFNE", checked(total * rs));
        var listCrcs = ver[0] >= 2 ? r.ReadArray<uint>("LCRC", Spec.Lists) : null;
        r.VerifyEnd();
        CheckLoaded(r, counts, (long*)ids.Pointer, listCrcs);

        // Typed views need aligned sections (container version 2 aligns every payload to 64 bytes).
        bool keep = mapped && ids.IsAligned(sizeof(long)) && attrs.IsAligned(sizeof(double)) && codes.IsAligned(sizeof(float)) && refine.IsAligned(sizeof(float));
        long idPos = 0, codePos = 0;
        var idView = (long*)ids.Pointer;
        for (int li = 0; li < Spec.Lists; li++)
        {
            int c = counts[li], cbytes = CodeBytes(c);
            for (int off = 0; off < c; off++)
            {
                long id = System.Runtime.CompilerServices.Unsafe.ReadUnaligned<long>(idView + idPos + off);
                // A SOAR index holds each id at most twice, in two lists; the first seen is its first copy.
                if (id < 0 || !(_directMap.TryAdd(id, Pack(li, off))
                                || (_spillMap is not null && Unpack(_directMap[id]).List != li && _spillMap.TryAdd(id, Pack(li, off)))))
                    throw new CorruptIndexException(r.Path, ids.Offset + (idPos + off) * sizeof(long),
                        _spillMap is null ? $"id {id} in list {li} is negative or duplicated" : $"id {id} in list {li} is negative, or held a third time or twice in one list");
            }
            _lists.Map(li, c, idView + idPos, (double*)attrs.Pointer + idPos, codes.Pointer + codePos, cbytes, refine.Pointer + idPos * rs, c * rs);
            if (!keep) _lists.Writable(li, c); // heap mode: one copy, straight from the mapping into the list
            idPos += c;
            codePos += cbytes;
        }
        if (keep) _mapping = r.DetachMapping();
        if (_directMap.Count != h.Count)
            throw new CorruptIndexException(r.Path, countsAt, $"the lists hold {_directMap.Count} distinct ids, header says {h.Count}");
        _count = h.Count;
        _trained = ver[1] == 1;
        // An untrained index wrote the centroids it had: zeros unless UseCentroids supplied some. Only supplied
        // (or trained) ones are kept by a later Train; zeros are trained by k-means (they used to be kept: every
        // vector went to list 0).
        _centroidsSupplied = _trained || centroids.AsSpan().ContainsAnyExcept(0f);
        if (ver[2] >= 1 && ver[2] <= Spec.Lists) _defaultProbes = ver[2];
        if (Spec.CoarseHnswM > 0) SetQuantizer(ServingQuantizer());
        if (_trained) BuildTerm2();
    }

    // Section ROT : the front transform's parameters (OPQ: R, d × d; an untrained index wrote the identity), installed
    // when the index is trained. A rotation that is not finite or not orthogonal is damage, not a bad argument.
    private void ReadTransform(IndexFileReader r, bool trained)
    {
        var learned = _transform as ILearnedTransform;
        var p = r.ReadArray<float>("ROT ", learned?.Parameters.Length ?? 0);
        if (learned is null || !trained) return;
        try { learned.SetParameters(p); }
        catch (ArgumentException e)
        {
            throw new CorruptIndexException(r.Path, r.PayloadOffset("ROT "), $"the front transform of '{Description}' (section ROT ) is damaged: {Guard.MessageWithoutParameter(e)}", e);
        }
    }

    // Section BINP: the binary codec's d means and b × d stage scales (present exactly when the index is trained;
    // files written before per-dimension scales hold b scales, one per stage, and still load).
    private void ReadBinary(IndexFileReader r, bool trained)
    {
        long at = r.Position;
        var p = r.ReadArray<float>("BINP");
        int d = Dimension, b = _binary!.Bits;
        if (trained ? p.Length != d + b * d && p.Length != d + b : p.Length != 0)
            throw new CorruptIndexException(r.Path, at, $"section BINP holds {p.Length} floats; a {(trained ? "trained" : "untrained")} '{Description}' index has {(trained ? $"d + b×d = {d + b * d} (or d + b = {d + b})" : "0")}.");
        if (!trained) return;
        try { _binary!.SetParameters(p[..Dimension], p[Dimension..]); }
        catch (ArgumentException e) { throw new CorruptIndexException(r.Path, at, $"bad binary codec parameters: {e.Message}", e); }
    }

    // Section ANIS (optional, after PQCB): the anisotropic threshold the PQ codes were encoded with, when above 0.
    private void ReadAnisotropic(IndexFileReader r)
    {
        long at = r.Position;
        var t = r.ReadArray<double>("ANIS");
        if (_pq is null || t.Length != 1 || !(t[0] > 0 && t[0] < 1))
            throw new CorruptIndexException(r.Path, at, $"section ANIS holds {(t.Length == 1 ? t[0].ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{t.Length} values")}; a PQ index keeps one threshold in (0, 1) there");
        if (Spec.AnisotropicThreshold is { } spec && spec != t[0])
            throw new CorruptIndexException(r.Path, at, $"section ANIS says threshold {t[0].ToString(System.Globalization.CultureInfo.InvariantCulture)}, the spec '{Description}' {spec.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        _pq.AnisotropicThreshold = t[0];
    }

    // Section RBQ : bits (must match the spec), rotation seed and rounds (installed when the index is trained).
    private void ReadRaBitQ(IndexFileReader r, bool trained)
    {
        long at = r.Position;
        var p = r.ReadArray<int>("RBQ ", 3);
        if (p[0] != _rabitq!.Bits)
            throw new CorruptIndexException(r.Path, at, $"RaBitQ section says {p[0]} bits per dimension, the spec '{Description}' {_rabitq.Bits}");
        if (p[2] < 1 || p[2] > 16)
            throw new CorruptIndexException(r.Path, at, $"RaBitQ rotation rounds {p[2]} out of range 1..16");
        if (trained) _rabitq.UseRotationSeed(p[1], p[2]);
    }
}
