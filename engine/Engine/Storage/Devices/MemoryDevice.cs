namespace Engine.Storage.Devices;

/// <summary>
/// A device held in memory, with an optional per-read latency to imitate a disk (FASTER's
/// <c>LocalMemoryDevice(latencyMs)</c>). Used by tests and benchmarks of the I/O path.
/// </summary>
public sealed class MemoryDevice : IStorageDevice
{
    private readonly object _gate = new();
    private byte[] _data = [];
    private long _length;

    /// <summary>Creates an empty device; every read waits <paramref name="readLatency"/> (default none).</summary>
    public MemoryDevice(string name = "memory", TimeSpan readLatency = default, int sectorSize = 4096)
    {
        if (readLatency < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(readLatency), "Latency cannot be negative.");
        Name = name;
        ReadLatency = readLatency;
        SectorSize = sectorSize;
    }

    /// <summary>Latency added to every read.</summary>
    public TimeSpan ReadLatency { get; }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int SectorSize { get; }

    /// <inheritdoc />
    public long Length { get { lock (_gate) return _length; } }

    /// <summary>A copy of the device contents (tests corrupt and restore it).</summary>
    public byte[] Snapshot() { lock (_gate) return _data.AsSpan(0, (int)_length).ToArray(); }

    /// <inheritdoc />
    public void Read(long offset, Span<byte> destination)
    {
        if (ReadLatency > TimeSpan.Zero) Thread.Sleep(ReadLatency);
        Copy(offset, destination);
    }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (ReadLatency > TimeSpan.Zero) await Task.Delay(ReadLatency, cancellationToken).ConfigureAwait(false);
        Copy(offset, destination.Span);
    }

    private void Copy(long offset, Span<byte> destination)
    {
        lock (_gate)
        {
            if (offset < 0 || offset + destination.Length > _length)
                throw new CorruptIndexException(Name, Math.Max(0, Math.Min(offset, _length)), $"read of {destination.Length} bytes at offset {offset} is beyond the end ({_length} bytes)");
            _data.AsSpan((int)offset, destination.Length).CopyTo(destination);
        }
    }

    /// <inheritdoc />
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        lock (_gate)
        {
            long end = checked(offset + source.Length);
            Grow(end);
            source.CopyTo(_data.AsSpan((int)offset));
            if (end > _length) _length = end;
        }
    }

    private void Grow(long end)
    {
        if (end > Array.MaxLength) throw new IOException($"Memory device '{Name}' cannot hold {end} bytes.");
        if (end > _data.Length) Array.Resize(ref _data, (int)Math.Min(Array.MaxLength, Math.Max(end, 2L * _data.Length)));
    }

    /// <inheritdoc />
    public void Flush() { }

    /// <inheritdoc />
    public void SetLength(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        lock (_gate)
        {
            Grow(length);
            if (length > _length) _data.AsSpan((int)_length, (int)(length - _length)).Clear();
            _length = length;
        }
    }

    /// <inheritdoc />
    public void Dispose() { }
}
