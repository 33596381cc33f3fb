namespace Engine.Storage.Devices;

/// <summary>
/// A flat, byte-addressed storage device (FASTER's <c>IDevice</c> in spirit): a file, memory, or a wrapper
/// that injects latency or faults. Storage code (posting store, logs) talks only to this interface, so the
/// same code runs over every device in the test matrix.
/// </summary>
/// <remarks>
/// Thread safety: reads may run concurrently with each other and with writes to other ranges. Callers
/// serialise writes to the same range. Offsets and lengths need not be aligned, but the posting store keeps
/// them multiples of <see cref="SectorSize"/> so a file device can serve them with aligned I/O.
/// </remarks>
public interface IStorageDevice : IDisposable
{
    /// <summary>A name for messages (the file path for file devices).</summary>
    string Name { get; }

    /// <summary>Natural I/O unit in bytes (4096 for files).</summary>
    int SectorSize { get; }

    /// <summary>Current length in bytes.</summary>
    long Length { get; }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes at <paramref name="offset"/>.</summary>
    /// <exception cref="CorruptIndexException">The range lies beyond the end of the device.</exception>
    void Read(long offset, Span<byte> destination);

    /// <summary>Asynchronous form of <see cref="Read"/>; used to issue several reads at once.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>Writes <paramref name="source"/> at <paramref name="offset"/>, growing the device if needed.</summary>
    void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Makes every completed write durable (fsync for files).</summary>
    void Flush();

    /// <summary>Truncates or extends the device.</summary>
    void SetLength(long length);
}
