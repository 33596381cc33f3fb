using Engine.Quantization;
using Engine.Storage.Format;

namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex
{
    internal const string FileKind = "hnsw";

    /// <summary>Version of the HNSW section layout inside the container (bumped on any layout change).</summary>
    internal const int LayoutVersion = 1;

    /// <inheritdoc />
    /// <remarks>Sections: HVER (layout version and build settings: M, efConstruction, storage, seed, selection
    /// options, default ef, slot count, entry point, top level), SQRG (SQ8 range), IDS and ATTR (per slot), STAT (live /
    /// deleted / free per slot), LVLS (level per slot, -1 free), LNK0 (level-0 links, 1 + 2M ints per slot), LNKU
    /// (upper links of every node with level ≥ 1, slot order, level × (1 + M) ints each), VECS (rows). Deleted nodes
    /// are saved as they are (still walked through, never returned). The header's description is the composition
    /// string and its count the live count. Waits for a running mutation; searches continue.</remarks>
    public void Save(string path)
    {
        lock (_writer)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            int slots = _slots;
            long entry = Volatile.Read(ref _entry);
            using var w = new IndexFileWriter(path, new IndexFileHeader(FileKind, Description, Metric, Dimension, _count, IndexFile.FormatVersion));
            w.WriteArray<int>("HVER", [LayoutVersion, Spec.M, Spec.EfConstruction, (int)Spec.Storage, Seed, (int)Selection,
                KeepPrunedConnections ? 1 : 0, ExtendCandidates ? 1 : 0, _defaultEf, slots, EntryNode(entry), EntryLevel(entry)]);
            var (min, step) = _vectors.Codec.Range;
            w.WriteArray<float>("SQRG", [.. min, .. step]);
            w.WriteArray<long>("IDS ", _ids.AsSpan(0, slots));
            if (_attrs is not null) w.WriteArray<double>("ATTR", _attrs.AsSpan(0, slots));
            else
            {
                var none = new double[slots];
                Array.Fill(none, double.NaN);
                w.WriteArray<double>("ATTR", none);
            }
            w.WriteArray<byte>("STAT", _state.AsSpan(0, slots));
            w.WriteArray<int>("LVLS", _levels.AsSpan(0, slots));
            w.WriteArray<int>("LNK0", _links0.AsSpan(0, slots * _stride0));
            long upper = 0;
            for (int i = 0; i < slots; i++) upper += _upper[i]?.Length ?? 0;
            w.BeginSection("LNKU", upper * sizeof(int));
            for (int i = 0; i < slots; i++)
                if (_upper[i] is { } u) w.WritePayload(System.Runtime.InteropServices.MemoryMarshal.AsBytes(u.AsSpan()));
            w.EndSection();
            long vecBytes = (long)slots * _vectors.RowBytes;
            w.BeginSection("VECS", vecBytes);
            for (long at = 0; at < vecBytes; at += 1 << 30) w.WritePayload(_vectors.Bytes(at, (int)Math.Min(1 << 30, vecBytes - at)));
            w.EndSection();
            w.Commit();
        }
    }

    /// <summary>Loads an index written by <see cref="Save"/>, verifying every checksum and every link.</summary>
    /// <param name="path">The file.</param>
    /// <param name="mapped">Read the vectors in place from a read-only memory mapping of the file (no copy; the
    /// index owns the mapping until <see cref="Dispose"/> or until the first insert copies them to the heap). The
    /// graph (links, ids, levels) is always copied and validated. The file must not be modified in place while
    /// mapped; replacing it by rename (as <see cref="Save"/> does) is safe. Files of container version 1 (unaligned
    /// sections) are always copied.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="CorruptIndexException">Truncated, corrupted or inconsistent file (names the offset): bad
    /// checksums, a link outside the slots or to a free slot, impossible levels, counts or ids.</exception>
    /// <exception cref="IndexFormatException">Another index kind, composition or layout version.</exception>
    public static HnswIndex Load(string path, bool mapped = false)
    {
        using var r = new IndexFileReader(path, FileKind, mapped: true);
        var h = r.Header;
        HnswSpec spec;
        try { spec = HnswSpec.Parse(h.Description); }
        catch (ArgumentException e) { throw new IndexFormatException(r.Path, $"unsupported composition '{h.Description}': {e.Message}"); }
        long at = r.Position;
        var v = r.ReadArray<int>("HVER", 12);
        if (v[0] != LayoutVersion)
            throw new IndexFormatException(r.Path, $"HNSW layout version {v[0]} is not supported (this build reads version {LayoutVersion}).");
        if (v[1] != spec.M || v[2] != spec.EfConstruction || v[3] != (int)spec.Storage || v[5] is < 0 or > 1 || v[6] is < 0 or > 1
            || v[7] is < 0 or > 1 || v[8] < 1 || v[8] > HnswSearchParameters.MaxEf || v[9] < 0)
            throw new CorruptIndexException(r.Path, at, $"settings [{string.Join(", ", v)}] do not match the composition '{h.Description}' or are out of range");
        var index = new HnswIndex(spec, h.Dimension, h.Metric)
        {
            Seed = v[4],
            Selection = (NeighborSelection)v[5],
            KeepPrunedConnections = v[6] == 1,
            ExtendCandidates = v[7] == 1,
            DefaultEf = v[8],
        };
        try
        {
            index.ReadBody(r, v[9], v[10], v[11], mapped);
            index._source = r.Path;
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    private unsafe void ReadBody(IndexFileReader r, int slots, int entryNode, int entryLevel, bool mapped)
    {
        int d = Dimension;
        long at = r.Position;
        var sq = r.ReadArray<float>("SQRG");
        if (Spec.Storage == VectorEncoding.SQ8 && sq.Length == 2 * d) _vectors.Codec.SetRange(sq[..d], sq[d..]);
        else if (sq.Length != 0) throw new CorruptIndexException(r.Path, at, $"SQ8 range holds {sq.Length} floats, expected {(Spec.Storage == VectorEncoding.SQ8 ? 2 * d : 0)}");
        if ((long)slots * _stride0 > Array.MaxLength) throw new CorruptIndexException(r.Path, 0, $"impossible slot count {slots}");
        long idsAt = Payload(r);
        _ids = r.ReadArray<long>("IDS ", slots);
        var attrs = r.ReadArray<double>("ATTR", slots);
        _attrs = Array.TrueForAll(attrs, double.IsNaN) ? null : attrs;
        long stateAt = Payload(r);
        _state = r.ReadArray<byte>("STAT", slots);
        long levelsAt = Payload(r);
        _levels = r.ReadArray<int>("LVLS", slots);
        long links0At = Payload(r);
        _links0 = r.ReadArray<int>("LNK0", (long)slots * _stride0);
        long upperAt = Payload(r);
        long upperInts = 0;
        for (int i = 0; i < slots; i++)
        {
            int level = _levels[i];
            bool free = _state[i] == Free;
            if (_state[i] > Free || (free ? level != -1 : level < 0 || level > MaxLevel))
                throw new CorruptIndexException(r.Path, levelsAt + i * 4L, $"slot {i} has state {_state[i]} and level {level}");
            if (level > 0) upperInts += level * (1L + _m);
        }
        var upper = r.ReadArray<int>("LNKU", upperInts);
        var vecs = r.MapSection("VECS", (long)slots * _vectors.RowBytes);
        r.VerifyEnd();

        _upper = new int[]?[slots];
        long pos = 0;
        for (int i = 0; i < slots; i++)
        {
            int level = _levels[i];
            if (level <= 0) continue;
            _upper[i] = upper.AsSpan((int)pos, level * (1 + _m)).ToArray();
            pos += level * (1 + _m);
        }
        int live = 0, dead = 0;
        for (int i = 0; i < slots; i++)
        {
            if (_state[i] == Free)
            {
                if (_links0[i * _stride0] != 0) throw new CorruptIndexException(r.Path, links0At + (long)i * _stride0 * 4, $"free slot {i} has links");
                continue;
            }
            if (_state[i] == Live)
            {
                if (_ids[i] < 0 || !_nodeOf.TryAdd(_ids[i], i))
                    throw new CorruptIndexException(r.Path, idsAt + i * 8L, $"id {_ids[i]} of slot {i} is negative or duplicated");
                live++;
            }
            else dead++;
            for (int l = 0; l <= _levels[i]; l++)
            {
                var list = Links(i, l);
                long listAt = l == 0 ? links0At + (long)i * _stride0 * 4 : upperAt + (UpperOffset(i) + (l - 1) * (1L + _m)) * 4;
                if (list[0] < 0 || list[0] > list.Length - 1)
                    throw new CorruptIndexException(r.Path, listAt, $"slot {i} level {l} has {list[0]} links (at most {list.Length - 1})");
                for (int j = 1; j <= list[0]; j++)
                {
                    int nb = list[j];
                    if ((uint)nb >= (uint)slots || nb == i || _state[nb] == Free || _levels[nb] < l)
                        throw new CorruptIndexException(r.Path, listAt + j * 4L, $"slot {i} level {l} links to {nb}, which is not a node of that level (slots: {slots})");
                }
            }
        }
        if (live != r.Header.Count) throw new CorruptIndexException(r.Path, idsAt, $"{live} live nodes, header says {r.Header.Count}");
        bool empty = live + dead == 0;
        if (empty ? entryNode != -1 : (uint)entryNode >= (uint)slots || _state[entryNode] == Free || _levels[entryNode] != entryLevel)
            throw new CorruptIndexException(r.Path, 0, $"entry point {entryNode} at level {entryLevel} is not a node of that level");
        for (int i = 0; i < slots; i++)
            if (_levels[i] > entryLevel) throw new CorruptIndexException(r.Path, levelsAt + i * 4L, $"slot {i} has level {_levels[i]} above the entry point's {entryLevel}");
        int element = Spec.Storage switch { VectorEncoding.Flat => sizeof(float), VectorEncoding.F16 => 2, _ => 1 };
        if (mapped && slots > 0 && vecs.IsAligned(element))
        {
            _vectors.MapTo(vecs.Pointer, slots);
            _mapping = r.DetachMapping();
        }
        else _vectors.CopyFrom(vecs.Pointer, slots);
        for (int i = slots - 1; i >= 0; i--) if (_state[i] == Free) _free.Add(i);
        _slots = slots;
        _count = live;
        _tombstones = dead;
        _entry = empty ? EmptyEntry : PackEntry(entryNode, entryLevel);
    }

    // Where the payload of the next section starts (for offsets in error messages).
    private static long Payload(IndexFileReader r) => r.Position + 12 + IndexFile.Padding(r.Position + 12, r.Header.FormatVersion);

    private long UpperOffset(int node)
    {
        long off = 0;
        for (int i = 0; i < node; i++) if (_levels[i] > 0) off += _levels[i] * (1L + _m);
        return off;
    }
}
