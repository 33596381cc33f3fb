using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Engine.Storage.Devices;
using Engine.Storage.Format;

namespace Engine.Distributed;

/// <summary>
/// The raw vectors of one shard replica by id, in a slot file on the replica's disk: the source the index is built
/// from, what catch-up copies to a peer and what reconstruction returns (exact even when the index keeps lossy codes).
/// Only the id → slot map is in memory (about 24 bytes per vector); the vectors stay in the file (the OS page cache
/// keeps what is read often).
/// </summary>
/// <remarks>
/// <para>A slot is <c>[id: i64][vector: d × f32][crc32c of both: u32]</c>, padded to 8 bytes; a read checks the id and
/// the checksum, so a damaged or misplaced slot is a <see cref="CorruptIndexException"/> naming the file and offset,
/// never a wrong vector. Slots of deleted ids are reused.</para>
/// <para>Durability is the owner's (<see cref="ShardStore"/>): it replays its log over the map of its last snapshot.
/// Every slot written after that snapshot belongs to a write in the log (an upsert writes only its own id's slot, and
/// a slot is reused only after the delete that freed it), so replaying the log in order rewrites every slot the
/// snapshot's map could see changed; <see cref="Flush"/> before a snapshot makes the slots it maps durable.</para>
/// <para>Not thread-safe: the owning grain reads and writes it on its turns, one at a time.</para>
/// </remarks>
internal sealed class VectorStore : IDisposable
{
    private readonly Dictionary<long, int> _slots = [];
    private readonly Stack<int> _free = new();
    private readonly IStorageDevice _device;
    private readonly int _slotBytes;
    private byte[] _buffer = [];
    private int _used;

    /// <summary>Opens (or creates) the slot file at <paramref name="path"/>; the map starts empty (see <see cref="Restore"/>).</summary>
    public VectorStore(string path, int dimension)
    {
        Dimension = dimension;
        _slotBytes = SlotBytes(dimension);
        _device = new FileDevice(path);
    }

    /// <summary>Bytes of one slot for dimension <paramref name="dimension"/>.</summary>
    public static int SlotBytes(int dimension) => (8 + dimension * 4 + 4 + 7) & ~7;

    public int Dimension { get; }

    public int Count => _slots.Count;

    /// <summary>Slots in use or freed (the file's high-water mark).</summary>
    public int UsedSlots => _used;

    /// <summary>The file.</summary>
    public string Path => _device.Name;

    public bool Contains(long id) => _slots.ContainsKey(id);

    /// <summary>Resident bytes: the id → slot map and free list (the vectors are in the file).</summary>
    public long MemoryBytes => _slots.Count * 24L + _free.Count * 4L;

    /// <summary>Replaces the map with a snapshot's: <paramref name="ids"/>[i] in slot <paramref name="slots"/>[i], slots
    /// below <paramref name="used"/> that no id holds are free.</summary>
    /// <exception cref="CorruptIndexException">A slot out of range or mapped twice, or an id twice.</exception>
    public void Restore(ReadOnlySpan<long> ids, ReadOnlySpan<int> slots, int used, string snapshotPath)
    {
        _slots.Clear();
        _free.Clear();
        if (ids.Length != slots.Length || used < ids.Length)
            throw new CorruptIndexException(snapshotPath, 0, $"the snapshot maps {ids.Length} ids to {slots.Length} slots of {used}");
        var taken = new bool[used];
        for (int i = 0; i < ids.Length; i++)
        {
            int s = slots[i];
            if ((uint)s >= (uint)used || taken[s] || !_slots.TryAdd(ids[i], s))
                throw new CorruptIndexException(snapshotPath, 0, $"the snapshot maps id {ids[i]} to slot {s}, which is out of range or taken");
            taken[s] = true;
        }
        for (int s = used - 1; s >= 0; s--) if (!taken[s]) _free.Push(s);
        _used = used;
    }

    /// <summary>Every live id, ascending, and its slot (what a snapshot records).</summary>
    public (long[] Ids, int[] Slots) Map()
    {
        var ids = SortedIds();
        var slots = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) slots[i] = _slots[ids[i]];
        return (ids, slots);
    }

    /// <summary>Copies the vector of <paramref name="id"/> into <paramref name="destination"/>; false when absent.</summary>
    /// <exception cref="CorruptIndexException">The slot does not hold this id or fails its checksum.</exception>
    public bool Get(long id, Span<float> destination)
    {
        if (!_slots.TryGetValue(id, out int slot)) return false;
        var buffer = Buffer(1);
        long offset = (long)slot * _slotBytes;
        _device.Read(offset, buffer);
        Decode(buffer, id, offset, destination);
        return true;
    }

    /// <summary>Upserts n = <paramref name="ids"/>.Length rows (n × d); runs of consecutive slots are written at once.</summary>
    public void SetMany(ReadOnlySpan<long> ids, ReadOnlySpan<float> vectors)
    {
        int d = Dimension;
        // Assign every slot first (a repeated id keeps its one slot: the last row wins).
        var slots = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            if (!_slots.TryGetValue(ids[i], out int slot))
            {
                slot = _free.Count > 0 ? _free.Pop() : _used++;
                _slots[ids[i]] = slot;
            }
            slots[i] = slot;
        }
        const int maxRun = 256;
        int start = 0;
        while (start < ids.Length)
        {
            int run = 1;
            while (start + run < ids.Length && run < maxRun && slots[start + run] == slots[start] + run) run++;
            var buffer = Buffer(run);
            for (int j = 0; j < run; j++)
                Encode(buffer.Slice(j * _slotBytes, _slotBytes), ids[start + j], vectors.Slice((start + j) * d, d));
            _device.Write((long)slots[start] * _slotBytes, buffer);
            start += run;
        }
    }

    public bool Remove(long id)
    {
        if (!_slots.Remove(id, out int slot)) return false;
        _free.Push(slot);
        return true;
    }

    /// <summary>Every live id, ascending (the order indexes are built in, so replicas build the same index).</summary>
    public long[] SortedIds()
    {
        var ids = _slots.Keys.ToArray();
        Array.Sort(ids);
        return ids;
    }

    /// <summary>Copies the vectors of <paramref name="ids"/> (all present) into a new n × d array.</summary>
    /// <exception cref="KeyNotFoundException">An id is not stored.</exception>
    public float[] Gather(ReadOnlySpan<long> ids)
    {
        var rows = new float[(long)ids.Length * Dimension];
        for (int i = 0; i < ids.Length; i++)
            if (!Get(ids[i], rows.AsSpan(i * Dimension, Dimension)))
                throw new KeyNotFoundException($"Vector {ids[i]} is not stored in '{Path}'.");
        return rows;
    }

    /// <summary>Makes every slot written so far durable (fsync).</summary>
    public void Flush() => _device.Flush();

    public void Dispose() => _device.Dispose();

    private Span<byte> Buffer(int slots)
    {
        int bytes = slots * _slotBytes;
        if (_buffer.Length < bytes) _buffer = new byte[bytes];
        return _buffer.AsSpan(0, bytes);
    }

    private void Encode(Span<byte> slot, long id, ReadOnlySpan<float> vector)
    {
        int vectorBytes = Dimension * 4;
        BinaryPrimitives.WriteInt64LittleEndian(slot, id);
        MemoryMarshal.AsBytes(vector).CopyTo(slot.Slice(8, vectorBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(slot[(8 + vectorBytes)..], Crc32C.Compute(slot[..(8 + vectorBytes)]));
        slot[(12 + vectorBytes)..].Clear();
    }

    private void Decode(ReadOnlySpan<byte> slot, long id, long offset, Span<float> destination)
    {
        int vectorBytes = Dimension * 4;
        long stored = BinaryPrimitives.ReadInt64LittleEndian(slot);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(slot[(8 + vectorBytes)..]);
        if (crc != Crc32C.Compute(slot[..(8 + vectorBytes)]))
            throw new CorruptIndexException(Path, offset, $"the slot of vector {id} fails its checksum");
        if (stored != id)
            throw new CorruptIndexException(Path, offset, $"the slot of vector {id} holds vector {stored}");
        MemoryMarshal.Cast<byte, float>(slot.Slice(8, vectorBytes)).CopyTo(destination);
    }
}
