using System.Runtime.InteropServices;
using Engine.Quantization;
using Engine.Storage.Format;

namespace Engine.Index.Ivf;

public sealed partial class IvfIndex : IVerifiableIndex
{
    // Where the index was loaded from and where its id, code and refine sections start there (for problem reports).
    private string? _source;
    private long _idsAt = -1, _codesAt = -1, _refineAt = -1;

    private string SourceName => _source ?? $"(in-memory {Description} index)";

    /// <inheritdoc />
    /// <remarks>
    /// Checks the centroids, PQ codebooks, front transform (OPQ rotation) and SQ8 range (finite), every list (codes and refine codes
    /// cover its rows) and every vector: its id (non-negative, unique, and the id map points at its list and row), its
    /// stored floats for <c>Flat</c> lists and its refine code (decoded, finite). Offsets are those of the section
    /// layout <see cref="Save"/> writes, which is the loaded file's while the index is unchanged.
    /// </remarks>
    public VerifyReport Verify()
    {
        var report = new VerifyReport(SourceName);
        _lock.EnterRead();
        try
        {
            string? bad = FirstNonFinite();
            if (bad is not null) report.Add(SourceName, -1, bad);
            int d = Dimension, rs = _refine?.CodeSize ?? 0;
            var x = new float[d];
            var code = new byte[_codec.CodeSize];
            var seen = new HashSet<long>();
            long row = 0, codePos = 0, total = 0;
            for (int li = 0; li < _lists.Count; li++)
            {
                var list = _lists[li];
                int c = list.Count, cbytes = CodeBytes(c);
                if (list.Codes.Length < cbytes || list.Refine.Length < (long)c * rs || list.Ids.Length != c)
                    report.Add(SourceName, At(_codesAt, codePos), $"list {li} holds {c} rows but only {list.Codes.Length} code bytes (needs {cbytes}) or {list.Refine.Length} refine bytes");
                else
                {
                    for (int off = 0; off < c; off++, report.VectorsChecked++)
                        VerifyRow(report, li, off, row + off, x, code, codePos, seen);
                }
                report.PartsChecked++;
                row += c;
                codePos += cbytes;
                total += c;
            }
            long second = _spillMap?.Count ?? 0;
            if (total != _count + second || _directMap.Count != _count)
                report.Add(SourceName, -1, $"the lists hold {total} rows and the id maps {_directMap.Count} ids and {second} second copies, but the index counts {_count}");
        }
        finally { _lock.ExitRead(); }
        return report;
    }

    private void VerifyRow(VerifyReport report, int li, int off, long row, float[] x, byte[] code, long listCodesAt, HashSet<long> seen)
    {
        var list = _lists[li];
        long id = list.Ids[off];
        // seen holds ids met as first copies; a SOAR second copy is where the spill map says.
        bool placed = id >= 0 && (_directMap.TryGetValue(id, out long at) && at == Pack(li, off)
            ? seen.Add(id)
            : _spillMap is not null && _spillMap.TryGetValue(id, out long second) && second == Pack(li, off));
        if (!placed)
            report.Add(SourceName, At(_idsAt, row * sizeof(long)), $"id {id} at row {off} of list {li} is negative, duplicated or not where the id map says");
        if (FlatLists) // Flat lists: the stored row itself
        {
            int size = _codec.CodeSize;
            var v = MemoryMarshal.Cast<byte, float>(list.Codes.Slice(off * size, size));
            if (!AllFinite(v))
                report.Add(SourceName, At(_codesAt, row * size), $"stored vector at row {off} of list {li} (id {id}) is not finite");
        }
        if (_rabitq is not null) // RaBitQ codes: the three factors every estimate multiplies by
        {
            _lists.Layout.Read(list.Codes, off, code);
            var (add, mul, err) = RaBitQCodec.Factors(code);
            if (!float.IsFinite(add) || !float.IsFinite(mul) || !float.IsFinite(err) || err < 0)
                report.Add(SourceName, At(_codesAt, listCodesAt), $"RaBitQ factors of row {off} of list {li} (id {id}) are not finite or the error factor is negative (the offset is where the list's codes start)");
        }
        if (_refine is { } refine)
        {
            refine.Decode(list.Refine.Slice(off * refine.CodeSize, refine.CodeSize), x);
            if (!AllFinite(x))
                report.Add(SourceName, At(_refineAt, row * refine.CodeSize), $"refine vector at row {off} of list {li} (id {id}) is not finite");
        }
    }

    private static long At(long sectionAt, long offset) => sectionAt < 0 ? -1 : sectionAt + offset;

    private static bool AllFinite(ReadOnlySpan<float> v)
    {
        foreach (float f in v) if (!float.IsFinite(f)) return false;
        return true;
    }

    // The trained parameters that every distance depends on: centroids (and their norms), PQ codebooks, front transform,
    // SQ8 range. Returns what is wrong, or null.
    private string? FirstNonFinite()
    {
        int d = Dimension;
        for (int c = 0; c < _lists.Count; c++)
            if (!AllFinite(_quantizer.Centroid(c)) || (ReferenceEquals(_quantizer, _flatQuantizer) && !float.IsFinite(_flatQuantizer.Norms[c])))
                return $"centroid {c} is not finite or its squared norm overflows";
        if (_pq is not null && !AllFinite(_pq.Codebooks)) return "a PQ codebook entry is not finite";
        if (_transform is ILearnedTransform learned && !AllFinite(learned.Parameters)) return "a front transform (OPQ rotation) parameter is not finite";
        if (_refine?.Range is var (min, step) && (!AllFinite(min) || !AllFinite(step))) return "the SQ8 refine range is not finite";
        return null;
    }

    // Load's cheap structural checks, after the sections are read: finite trained parameters (naming the section),
    // and (layout 2) each list's ids against the per-list checksum, which catches list sizes shifted between lists.
    private unsafe void CheckLoaded(IndexFileReader r, int[] counts, long* ids, uint[]? listCrcs)
    {
        string? bad = FirstNonFinite();
        if (bad is not null)
        {
            string tag = bad.StartsWith("centroid", StringComparison.Ordinal) ? "CENT" : bad.Contains("front transform", StringComparison.Ordinal) ? "ROT "
                : bad.Contains("PQ", StringComparison.Ordinal) ? "PQCB"
                : "SQRG";
            long at = r.PayloadOffset(tag);
            if (tag == "CENT" && int.TryParse(bad.AsSpan(9, bad.IndexOf(' ', 9) - 9), out int c)) at += (long)c * Dimension * sizeof(float);
            throw new CorruptIndexException(r.Path, at, bad);
        }
        (_source, _idsAt, _codesAt, _refineAt) = (r.Path, r.PayloadOffset("IDS "), r.PayloadOffset("CODE"), r.PayloadOffset("RFNE"));
        if (listCrcs is null) return;
        long row = 0;
        for (int li = 0; li < counts.Length; li++)
        {
            uint crc = Crc32C.Compute(new ReadOnlySpan<byte>(ids + row, counts[li] * sizeof(long)));
            if (crc != listCrcs[li])
                throw new CorruptIndexException(r.Path, r.PayloadOffset("LCNT") + (long)li * sizeof(int),
                    $"list {li}: its size {counts[li]} does not match its ids (per-list checksum mismatch); the list sizes are damaged");
            row += counts[li];
        }
    }

    // Per-list checksums of the ids that layout 2 saves in section LCRC.
    private uint[] ListChecksums() => _lists.Select(l => Crc32C.Compute(MemoryMarshal.AsBytes(l.Ids))).ToArray();
}
