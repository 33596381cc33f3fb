using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Engine.Storage.Devices;
using Engine.Storage.Format;

namespace Engine.Storage.Postings;

/// <summary>
/// An append-only file of full-precision vectors addressed by offset: the refine file of an index whose postings
/// hold codes (one record per insert, read only for candidates that survive the estimate).
/// </summary>
/// <remarks>
/// <para>Record layout (little-endian, fixed size <see cref="RecordSize"/> = 24 + 4·d bytes):</para>
/// <code>
/// magic "VREC" u32 | crc32c u32 (of bytes 8 .. end) | id i64 | version u8 | reserved u8[3] | dimension i32 | f32[d]
/// </code>
/// <para>Recovery: the owner records a committed length with each checkpoint; opening with it cuts any tail written
/// after the checkpoint (a torn or unacknowledged record; the owner's write-ahead log re-appends what was
/// acknowledged). A read checks magic, dimension, id and version, and the first read of a record in the process also
/// its checksum and values (records are never rewritten in place: a bit per record remembers the check), so a
/// damaged, stale or misplaced record is reported as <see cref="CorruptIndexException"/> naming the device and
/// offset, never returned.</para>
/// <para>Reads: a device that can be memory-mapped (<see cref="IMappableDevice"/>, a file) is read in place through a
/// read-only mapping of its committed records, re-mapped as appends grow it (records past the mapping are read with
/// positional I/O); other devices are read into a buffer.</para>
/// <para>Thread safety: any number of concurrent reads; appends are serialised internally.</para>
/// </remarks>
public sealed class VectorRecordStore : IDisposable
{
    /// <summary>Record header size in bytes.</summary>
    public const int HeaderSize = 24;
    private const uint Magic = 0x43455256; // "VREC"

    private readonly IStorageDevice _device;
    private readonly object _writeGate = new();
    private readonly bool _ownsDevice;
    private long _appendOffset;
    // The current read mapping (null: none, or the device cannot map) and the ones it replaced, which concurrent
    // readers may still hold: all are unmapped on Dispose. Growth re-maps when the unmapped tail passes a quarter of
    // the mapping (and at least MinRemapBytes), so a store that grows to n bytes keeps O(log n) old mappings.
    private volatile DeviceMapping? _map;
    private readonly List<DeviceMapping> _retired = new();
    private const long MinRemapBytes = 4L << 20;
    // One bit per record: its checksum and values were checked by an earlier read.
    private readonly CheckedOnceBits _verified = new();

    /// <summary>
    /// Opens a store over <paramref name="device"/> whose first <paramref name="committedLength"/> bytes hold
    /// committed records; bytes past it are cut off and new records go after it (0 for a new store).
    /// </summary>
    /// <param name="device">The device (a file for a durable index).</param>
    /// <param name="dimension">Floats per vector, at least 1.</param>
    /// <param name="committedLength">Committed length: a whole number of records within the device.</param>
    /// <param name="ownsDevice">True to dispose the device with the store.</param>
    /// <exception cref="ArgumentOutOfRangeException">A dimension below 1 or a negative committed length.</exception>
    /// <exception cref="CorruptIndexException">The device is shorter than the committed length, or the committed
    /// length is not a whole number of records (the metadata and the file disagree).</exception>
    public VectorRecordStore(IStorageDevice device, int dimension, long committedLength, bool ownsDevice = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(committedLength);
        _device = device;
        _ownsDevice = ownsDevice;
        Dimension = dimension;
        RecordSize = checked(HeaderSize + dimension * 4);
        try
        {
            if (committedLength % RecordSize != 0)
                throw new CorruptIndexException(device.Name, committedLength,
                    $"the committed length {committedLength} is not a whole number of {RecordSize}-byte vector records");
            if (device.Length < committedLength)
                throw new CorruptIndexException(device.Name, device.Length,
                    $"the file is truncated: it holds {device.Length} bytes but {committedLength} were committed");
            if (device.Length > committedLength) device.SetLength(committedLength);
            _appendOffset = committedLength;
            Remap(committedLength);
        }
        catch when (ownsDevice)
        {
            device.Dispose();
            throw;
        }
    }

    // Called at open and under the write gate; maps [0, length) when the device can be mapped.
    private void Remap(long length)
    {
        long records = length / RecordSize;
        _verified.Reserve(records);
        if (_device is not IMappableDevice mappable || length == 0) return;
        var current = _map;
        if (current is not null && length - current.Length < Math.Max(MinRemapBytes, current.Length / 4)) return;
        var next = mappable.Map(length);
        if (current is not null) lock (_retired) _retired.Add(current);
        _map = next;
    }

    /// <summary>Floats per vector.</summary>
    public int Dimension { get; }

    /// <summary>Bytes of one record (header and vector).</summary>
    public int RecordSize { get; }

    /// <summary>Bytes written so far (the next record's offset).</summary>
    public long Length => Interlocked.Read(ref _appendOffset);

    /// <summary>The device (its name appears in corruption messages).</summary>
    public IStorageDevice Device => _device;

    /// <summary>Appends one record per row and writes their offsets to <paramref name="offsets"/>.</summary>
    /// <param name="ids">Ids, one per row (non-negative).</param>
    /// <param name="versions">Version byte per row (tells a re-inserted id's record from its older one).</param>
    /// <param name="vectors">Rows, ids.Length × <see cref="Dimension"/> floats.</param>
    /// <param name="offsets">Receives each record's offset (ids.Length entries).</param>
    /// <exception cref="ArgumentException">Lengths do not match, an id is negative, or a value is not finite.</exception>
    public void Append(ReadOnlySpan<long> ids, ReadOnlySpan<byte> versions, ReadOnlySpan<float> vectors, Span<long> offsets)
    {
        int n = ids.Length;
        int d = Dimension;
        if (versions.Length != n) throw new ArgumentException($"versions holds {versions.Length} entries for {n} ids.", nameof(versions));
        if (vectors.Length != (long)n * d) throw new ArgumentException($"vectors holds {vectors.Length} floats, expected {n} × {d}.", nameof(vectors));
        if (offsets.Length < n) throw new ArgumentException($"offsets holds {offsets.Length} entries for {n} ids.", nameof(offsets));
        if (n == 0) return;
        for (int i = 0; i < n; i++)
            if (ids[i] < 0) throw new ArgumentException($"id {ids[i]} at row {i} is negative.", nameof(ids));
        Guard.Finite(vectors, d, nameof(vectors));
        long total = checked((long)n * RecordSize);
        if (total > int.MaxValue) throw new ArgumentException($"{n} records of {RecordSize} bytes are too many for one append.", nameof(ids));
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)total);
        try
        {
            for (int i = 0; i < n; i++)
            {
                var r = buffer.AsSpan(i * RecordSize, RecordSize);
                BinaryPrimitives.WriteUInt32LittleEndian(r, Magic);
                BinaryPrimitives.WriteInt64LittleEndian(r[8..], ids[i]);
                r[16] = versions[i];
                r.Slice(17, 3).Clear();
                BinaryPrimitives.WriteInt32LittleEndian(r[20..], d);
                MemoryMarshal.AsBytes(vectors.Slice(i * d, d)).CopyTo(r[HeaderSize..]);
                BinaryPrimitives.WriteUInt32LittleEndian(r[4..], Crc32C.Compute(r[8..]));
            }
            lock (_writeGate)
            {
                long start = _appendOffset;
                _device.Write(start, buffer.AsSpan(0, (int)total));
                for (int i = 0; i < n; i++) offsets[i] = start + (long)i * RecordSize;
                Interlocked.Exchange(ref _appendOffset, start + total);
                Remap(start + total);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>Reads the record at <paramref name="offset"/>, which must hold <paramref name="id"/> at
    /// <paramref name="version"/>, into <paramref name="destination"/> (<see cref="Dimension"/> floats).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than the dimension.</exception>
    /// <exception cref="CorruptIndexException">The offset is not a record inside the file, or the record's magic,
    /// checksum, dimension, id or version is wrong, or a value is not finite.</exception>
    public void Read(long offset, long id, byte version, Span<float> destination)
    {
        int d = Dimension;
        if (destination.Length < d)
            throw new ArgumentException($"destination holds {destination.Length} floats but the dimension is {d}.", nameof(destination));
        long end = Length;
        if (offset < 0 || offset % RecordSize != 0 || offset > end - RecordSize)
            throw new CorruptIndexException(_device.Name, offset,
                $"offset {offset} of id {id} is not a {RecordSize}-byte vector record inside the file's {end} bytes");
        var map = _map;
        if (map is not null && offset <= map.Length - RecordSize)
        {
            Check(map.Read(offset, RecordSize), offset, id, version, destination);
            return;
        }
        byte[] buffer = ArrayPool<byte>.Shared.Rent(RecordSize);
        try
        {
            var r = buffer.AsSpan(0, RecordSize);
            _device.Read(offset, r);
            Check(r, offset, id, version, destination);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private void Check(ReadOnlySpan<byte> r, long offset, long id, byte version, Span<float> destination)
    {
        int d = Dimension;
        string? problem = null;
        long record = offset / RecordSize;
        bool known = _verified.Contains(record);
        if (BinaryPrimitives.ReadUInt32LittleEndian(r) != Magic) problem = "bad vector record magic";
        else if (!known && BinaryPrimitives.ReadUInt32LittleEndian(r[4..]) != Crc32C.Compute(r[8..])) problem = "vector record checksum mismatch";
        else if (BinaryPrimitives.ReadInt32LittleEndian(r[20..]) != d) problem = $"vector record has dimension {BinaryPrimitives.ReadInt32LittleEndian(r[20..])}, expected {d}";
        else if (BinaryPrimitives.ReadInt64LittleEndian(r[8..]) != id || r[16] != version)
            problem = $"vector record holds id {BinaryPrimitives.ReadInt64LittleEndian(r[8..])} version {r[16]}, expected id {id} version {version}";
        if (problem is not null) throw new CorruptIndexException(_device.Name, offset, problem);
        var values = MemoryMarshal.Cast<byte, float>(r[HeaderSize..]);
        if (!known)
        {
            for (int j = 0; j < d; j++)
                if (!float.IsFinite(values[j]))
                    throw new CorruptIndexException(_device.Name, offset, $"vector record of id {id} holds a non-finite value at component {j}");
            _verified.Add(record);
        }
        values.CopyTo(destination);
    }

    /// <summary>Makes every appended record durable (call before committing <see cref="Length"/> in metadata).</summary>
    public void Flush() => _device.Flush();

    /// <inheritdoc />
    public void Dispose()
    {
        _map?.Dispose();
        _map = null;
        lock (_retired)
        {
            foreach (var m in _retired) m.Dispose();
            _retired.Clear();
        }
        if (_ownsDevice) _device.Dispose();
    }
}
