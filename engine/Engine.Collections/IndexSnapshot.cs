using System.Globalization;
using System.Text.Json;
using Engine.Index;
using Engine.Storage.Format;

namespace Engine.Collections;

/// <summary>
/// Index snapshots of a collection: each vector field's index, the filter columns and the next internal id, as they
/// were when the log's tail was at one address. A snapshot lives in <c>snapshots/&lt;address, 16 hex digits&gt;/</c>:
/// <c>state.snap</c> (an index-file container: the stamp and schema as JSON, the live bitset and columns, the staged
/// ids) and one <c>vector-&lt;i&gt;.idx</c> per vector field (the index's own <see cref="IVectorIndex.Save"/> format).
/// Every file is checksummed by its container; the directory is written under a temporary name and renamed into place,
/// so a snapshot directory is complete or absent.
/// </summary>
internal static class IndexSnapshot
{
    public const string Directory = "snapshots";
    private const string StateFile = "state.snap", FileKind = "collection-snapshot", TempPrefix = "tmp-";
    private const int FormatVersion = 1;

    /// <summary>The stamp and layout of one snapshot (JSON in the state file's SNAP section).</summary>
    private sealed record Stamp(int Version, long LogAddress, long NextId, long LiveCount, string Schema, SlotStamp[] Vectors);

    private sealed record SlotStamp(string Name, string Spec, bool Staging, long Count, string File);

    /// <summary>A loaded snapshot: its log address, next id and columns (the slots were restored in place).</summary>
    public sealed record Loaded(long LogAddress, long NextId, Columns Columns);

    private static string NameOf(long address) => address.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>Whether a snapshot of these slots can be written (SPANN indexes are directories with their own log: no).</summary>
    public static string? Unsupported(VectorSlot[] slots) =>
        slots.FirstOrDefault(s => !s.CanSnapshot) is { } s
            ? $"vector '{s.Field.Name}' uses a SPANN index, which is not snapshotted (it is rebuilt on open)"
            : null;

    /// <summary>
    /// Writes a snapshot stamped with <paramref name="logAddress"/> (the state must be exactly the log's effect up to
    /// there) and makes it the newest; older snapshots are deleted afterwards by <see cref="PurgeExcept"/>.
    /// </summary>
    public static void Write(string collectionDir, long logAddress, long nextId, CollectionSchema schema, Columns columns, VectorSlot[] slots)
    {
        string root = Path.Combine(collectionDir, Directory);
        System.IO.Directory.CreateDirectory(root);
        string final = Path.Combine(root, NameOf(logAddress));
        string temp = Path.Combine(root, TempPrefix + NameOf(logAddress) + "-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(temp);
        try
        {
            var slotStamps = new SlotStamp[slots.Length];
            for (int i = 0; i < slots.Length; i++)
            {
                string file = $"vector-{i}.idx";
                slots[i].Active.Save(Path.Combine(temp, file));
                slotStamps[i] = new SlotStamp(slots[i].Field.Name, slots[i].Field.IndexSpec, slots[i].IsStaging, slots[i].Active.Count, file);
            }
            var stamp = new Stamp(FormatVersion, logAddress, nextId, columns.Count, schema.ToJson(), slotStamps);
            using (var w = new IndexFileWriter(Path.Combine(temp, StateFile), new IndexFileHeader(FileKind, "collection snapshot", Metric.L2, 1, columns.Count, IndexFile.FormatVersion)))
            {
                w.WriteString("SNAP", JsonSerializer.Serialize(stamp));
                var buffer = new MemoryStream();
                using (var bw = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
                {
                    columns.Write(bw);
                    foreach (var s in slots) Columns.WriteArray<long>(bw, s.StagedIds.Order().ToArray());
                }
                w.WriteSection("COLS", buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
                w.Commit();
            }
            if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, recursive: true);
            System.IO.Directory.Move(temp, final);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Deletes every snapshot but the one at <paramref name="keep"/>, and unfinished ones.</summary>
    public static void PurgeExcept(string collectionDir, long keep)
    {
        string root = Path.Combine(collectionDir, Directory);
        if (!System.IO.Directory.Exists(root)) return;
        foreach (var d in System.IO.Directory.GetDirectories(root))
            if (Path.GetFileName(d) != NameOf(keep)) TryDelete(d);
    }

    /// <summary>Deletes every snapshot (a collection created anew).</summary>
    public static void DeleteAll(string collectionDir) => TryDelete(Path.Combine(collectionDir, Directory));

    private static void TryDelete(string dir)
    {
        try { if (System.IO.Directory.Exists(dir)) System.IO.Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Loads the newest snapshot whose address lies in [<paramref name="minAddress"/>, <paramref name="maxAddress"/>]
    /// (the log from its address onwards must still be replayed) into <paramref name="slots"/>. Returns null with the
    /// reason when there is none usable; a damaged or foreign snapshot is a reason, never an exception.
    /// </summary>
    public static Loaded? TryLoad(string collectionDir, CollectionSchema schema, VectorSlot[] slots, long minAddress, long maxAddress, out string? reason)
    {
        string root = Path.Combine(collectionDir, Directory);
        var candidates = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => (Dir: d, Ok: long.TryParse(Path.GetFileName(d), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long a) && Path.GetFileName(d).Length == 16, Address: a))
                .Where(c => c.Ok).OrderByDescending(c => c.Address).ToList()
            : [];
        if (candidates.Count == 0)
        {
            reason = "no index snapshot";
            return null;
        }
        var reasons = new List<string>();
        foreach (var (dir, _, address) in candidates)
        {
            if (address < minAddress || address > maxAddress)
            {
                reasons.Add($"snapshot {Path.GetFileName(dir)} is at log address {address}, outside the recovered range {minAddress}..{maxAddress}");
                continue;
            }
            try
            {
                var loaded = Load(dir, address, schema, slots);
                reason = null;
                return loaded;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or JsonException or UnauthorizedAccessException or ArgumentException or EndOfStreamException)
            {
                reasons.Add($"snapshot {Path.GetFileName(dir)} rejected: {e.Message}");
            }
        }
        reason = string.Join("; ", reasons);
        return null;
    }

    private static Loaded Load(string dir, long address, CollectionSchema schema, VectorSlot[] slots)
    {
        string statePath = Path.Combine(dir, StateFile);
        Stamp stamp;
        Columns columns;
        long[][] staged;
        using (var r = new IndexFileReader(statePath, FileKind))
        {
            stamp = JsonSerializer.Deserialize<Stamp>(r.ReadString("SNAP")) ?? throw new InvalidDataException($"'{statePath}' holds no stamp.");
            if (stamp.Version != FormatVersion) throw new InvalidDataException($"'{statePath}' has snapshot format {stamp.Version}; this build reads {FormatVersion}.");
            if (stamp.Schema != schema.ToJson() || stamp.Vectors is null || stamp.Vectors.Length != slots.Length)
                throw new InvalidDataException($"'{statePath}' was taken for a different schema than the collection's.");
            if (stamp.LogAddress != address) throw new InvalidDataException($"'{statePath}' is stamped with log address {stamp.LogAddress} but its directory names {address}.");
            var body = new MemoryStream(r.ReadSection("COLS"), writable: false);
            using var br = new BinaryReader(body);
            columns = Columns.Read(schema, br, statePath);
            staged = slots.Select(s => ReadStaged(br, statePath)).ToArray();
            if (body.Position != body.Length) throw new InvalidDataException($"'{statePath}' has {body.Length - body.Position} unread bytes in its columns section.");
            r.VerifyEnd();
        }
        if (columns.Count != stamp.LiveCount) throw new InvalidDataException($"'{statePath}' holds {columns.Count} live records but is stamped with {stamp.LiveCount}.");
        if (stamp.NextId < 0 || columns.LiveIds().LastOrDefault(-1) >= stamp.NextId) throw new InvalidDataException($"'{statePath}' has next id {stamp.NextId} below a live id.");
        for (int i = 0; i < slots.Length; i++)
        {
            var s = stamp.Vectors[i];
            if (s.Name != slots[i].Field.Name || s.Spec != slots[i].Field.IndexSpec)
                throw new InvalidDataException($"'{statePath}' holds vector '{s.Name}' ({s.Spec}) where the collection has '{slots[i].Field.Name}' ({slots[i].Field.IndexSpec}).");
            if (s.File != $"vector-{i}.idx") throw new InvalidDataException($"'{statePath}' names index file '{s.File}' for vector '{s.Name}'.");
            var index = IndexFactory.Load(Path.Combine(dir, s.File), mapped: false);
            try
            {
                if (index.Count != s.Count || index.Count != columns.Count)
                    throw new InvalidDataException($"vector '{s.Name}': the snapshot's index holds {index.Count} vectors, the stamp {s.Count}, the columns {columns.Count} records.");
                slots[i].Restore(index, s.Staging, staged[i]);
            }
            catch
            {
                index.Dispose();
                throw;
            }
        }
        return new Loaded(address, stamp.NextId, columns);
    }

    private static long[] ReadStaged(BinaryReader r, string source)
    {
        int n = r.ReadInt32();
        if (n < 0 || (long)n * 8 > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"'{source}' holds a staged-id list of {n} entries.");
        r.BaseStream.Position -= 4;
        return Columns.ReadArray<long>(r, n, source, "staged ids");
    }
}
