using Engine.Quantization;
using Engine.Storage.Format;
using Engine.Storage.Postings;
using K4os.Compression.LZ4;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex : IVerifiableIndex
{
    private string MetaName => _storage is null ? "(in-memory SPANN index)" : _storage.PathOf(MetaFileName);

    /// <inheritdoc />
    /// <remarks>
    /// Waits for background maintenance and blocks writers while it runs. Reads every posting block from the device
    /// (not the cache) and checks its magic, lengths, checksum, owner (the posting key) and, when the table records it,
    /// that it is the very block the table references (a stale block of the same posting is reported); decodes it and
    /// checks its entry count against the table, every id (non-negative, known to the id table) and vector (finite);
    /// checks every head (finite) and that every live id's posting holds its current copy (id and version). Coded
    /// postings: a block's code size must be the codec's, and every live id's refine record is read and checked.
    /// Problems in blocks name the posting file and the block's offset; problems in the tables name the metadata file.
    /// </remarks>
    public VerifyReport Verify()
    {
        ThrowIfDisposed();
        var report = new VerifyReport(_storage?.Location ?? _store.Device.Name);
        try { WaitForMaintenance(); }
        catch (CorruptIndexException e) { report.Add(e); } // a split or merge hit damage: listed, and the check goes on
        lock (_writerGate)
        {
            _lock.EnterRead();
            try { VerifyLocked(report); }
            finally { _lock.ExitRead(); }
        }
        return report;
    }

    private void VerifyLocked(VerifyReport report)
    {
        string blocks = _store.Device.Name;
        var head = new float[Dimension];
        var current = new HashSet<(long Id, int Posting)>();
        for (int p = 0; p < _postings.Count; p++)
        {
            var info = _postings[p];
            if (!info.Exists)
            {
                if (!info.Location.IsEmpty) report.Add(MetaName, -1, $"deleted posting {p} still references a block at offset {info.Location.Offset}");
                continue;
            }
            HeadVector(p, head);
            if (!AllFinite(head)) report.Add(MetaName, -1, $"head of posting {p} is not finite");
            report.PartsChecked++;
            if (info.Location.IsEmpty)
            {
                if (info.Entries != 0) report.Add(MetaName, -1, $"posting {p} records {info.Entries} entries but no block");
                continue;
            }
            try
            {
                // The block as the device holds it (not the cache or the mapping), checked by the one payload parser.
                _writeList.Acquire(_store.ReadFromDevice(info.Location, p), info.Location.Offset, Locator);
                VerifyPosting(report, p, info, PostingView.Of(_writeList, _codeLayout), current);
            }
            catch (CorruptIndexException e) { report.Add(e); }
            finally { _writeList.Release(); }
        }
        long live = 0;
        foreach (var (id, e) in _idMap)
        {
            if (e.Posting < 0) continue;
            live++;
            if (e.Posting >= _postings.Count || !current.Contains((id, e.Posting)))
            {
                long at = e.Posting < _postings.Count ? _postings[e.Posting].Location.Offset : -1;
                report.Add(blocks, at, $"id {id} is recorded in posting {e.Posting} but that posting does not hold its current copy (version {e.Version})");
            }
        }
        if (live != _live) report.Add(MetaName, -1, $"the id table holds {live} live ids but the index counts {_live}");
    }

    private void VerifyPosting(VerifyReport report, int p, PostingInfo info, PostingView view, HashSet<(long, int)> current)
    {
        string blocks = _store.Device.Name;
        long at = info.Location.Offset;
        var refineScratch = _codec is null ? [] : new float[Dimension];
        if (view.Count != info.Entries)
            report.Add(blocks, at, $"posting {p} holds {view.Count} entries but the posting table records {info.Entries}");
        for (int i = 0; i < view.Count; i++, report.VectorsChecked++)
        {
            long id = view.Ids[i];
            if (id < 0 || !_idMap.TryGetValue(id, out var e))
            {
                report.Add(blocks, at, $"posting {p} entry {i} holds id {id}, which the id table does not know");
                continue;
            }
            if (_codec is null && !AllFinite(view.Vectors.Slice(i * Dimension, Dimension)))
                report.Add(blocks, at, $"posting {p} entry {i} (id {id}) holds a vector that is not finite");
            if (e.Posting == p && e.Version == view.Versions[i])
            {
                current.Add((id, p));
                // Coded postings: the current copy's refine record (offset, checksum, id, version, finite values).
                if (_codec is not null)
                {
                    try { _refine!.Read(view.Offsets[i], id, e.Version, refineScratch); }
                    catch (CorruptIndexException x) { report.Add(x); }
                }
            }
        }
    }

    private static bool AllFinite(ReadOnlySpan<float> v)
    {
        foreach (float f in v) if (!float.IsFinite(f)) return false;
        return true;
    }

    // Section PCRC of the metadata: each posting's block checksum (PostingLocation.Checksum), -1 when unknown.
    private static long[] BlockChecksums(PostingLocation[] locations) =>
        locations.Select(l => l.Checksum is { } c ? (long)c : -1L).ToArray();

    private static uint? ChecksumAt(long[]? checksums, int p) => checksums is not null && checksums[p] >= 0 ? (uint)checksums[p] : null;

    /// <summary>
    /// Open's cheap structural check of the posting table and heads read from the metadata: flags, counts, that a
    /// posting with entries has a block and one without has none, that a block's size fits its entry count, that
    /// blocks are page aligned, do not overlap and lie inside the posting file, and that the heads are finite. Damage
    /// the metadata's checksums vouch for is blamed on the posting file (e.g. a truncated one).
    /// </summary>
    private static void CheckPostingTable(IndexFileReader r, PostingStore store, long[] offsets, int[] pages, int[] live,
        byte[] exists, int[] entries, long[]? checksums, float[] heads, int dimension, CodeLayout? codes)
    {
        string meta = r.Path, postings = store.Device.Name;
        long fileLength = store.Device.Length;
        int page = store.PageSize;
        var used = new List<(long Start, long End, int Posting)>();
        for (int p = 0; p < offsets.Length; p++)
        {
            bool ex = exists[p] == 1;
            if (exists[p] > 1 || pages[p] < 0 || offsets[p] < 0 || offsets[p] % page != 0 || live[p] < 0 || entries[p] < 0
                || (!ex && (pages[p] != 0 || entries[p] != 0)) || (checksums is not null && checksums[p] is < -1 or > uint.MaxValue))
                throw new CorruptIndexException(meta, r.PayloadOffset("POFF") + p * 8L, $"posting table entry {p} is impossible (offset {offsets[p]}, {pages[p]} pages, {entries[p]} entries, exists {exists[p]})");
            if (!ex) continue;
            if ((entries[p] > 0) != (pages[p] > 0))
                throw new CorruptIndexException(meta, r.PayloadOffset("PPAG") + p * 4L, $"posting {p} records {entries[p]} entries in {pages[p]} pages");
            if (pages[p] == 0) continue;
            long raw = PostingCodec.Size(entries[p], dimension, codes);
            long maxBlock = (PostingStore.HeaderSize + Math.Max(LZ4Codec.MaximumOutputSize((int)Math.Min(raw, int.MaxValue / 2)), raw) + page - 1) / page * page;
            long bytes = (long)pages[p] * page;
            if (bytes > maxBlock)
                throw new CorruptIndexException(meta, r.PayloadOffset("PPAG") + p * 4L, $"posting {p} records {pages[p]} pages, more than a block of {entries[p]} entries can take");
            long end = offsets[p] + bytes;
            if (end > fileLength)
                throw new CorruptIndexException(postings, fileLength, $"the posting file is {fileLength} bytes but posting {p}'s block at offset {offsets[p]} ends at {end}: the file is truncated");
            used.Add((offsets[p], end, p));
        }
        used.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (int i = 1; i < used.Count; i++)
            if (used[i].Start < used[i - 1].End)
                throw new CorruptIndexException(meta, r.PayloadOffset("POFF") + used[i].Posting * 8L, $"the blocks of postings {used[i - 1].Posting} and {used[i].Posting} overlap");
        for (int p = 0; p < offsets.Length; p++)
            if (exists[p] == 1 && !AllFinite(heads.AsSpan(p * dimension, dimension)))
                throw new CorruptIndexException(meta, r.PayloadOffset("HEAD") + (long)p * dimension * sizeof(float), $"head of posting {p} is not finite");
    }
}
