namespace Engine.Storage.Devices;

/// <summary>
/// Wraps a device and injects faults for tests (FASTER's <c>SimulatedFlakyDevice</c>): failed reads, failed
/// writes, bit flips in data returned by reads, and torn writes (only a prefix of a write lands, then the
/// device fails). Faults are drawn from a seeded generator so a failing test replays exactly.
/// </summary>
public sealed class FaultInjectingDevice : IStorageDevice
{
    private readonly IStorageDevice _inner;
    private readonly Random _random;
    private readonly object _gate = new();

    /// <summary>Wraps <paramref name="inner"/>; faults are chosen with a generator seeded by <paramref name="seed"/>.</summary>
    public FaultInjectingDevice(IStorageDevice inner, int seed = 1)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _random = new Random(seed);
    }

    /// <summary>Probability (0..1) that a read throws <see cref="IOException"/>.</summary>
    public double ReadFailureRate { get; set; }

    /// <summary>Probability (0..1) that a read returns data with one bit flipped.</summary>
    public double BitFlipRate { get; set; }

    /// <summary>Probability (0..1) that a write throws <see cref="IOException"/> without writing anything.</summary>
    public double WriteFailureRate { get; set; }

    /// <summary>When set, the write that would take the device past this many written bytes lands only
    /// partly (torn) and throws; every later write throws too, as after a power cut.</summary>
    public long? FailAfterBytesWritten { get; set; }

    /// <summary>Bytes written so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Number of faults injected so far.</summary>
    public int FaultsInjected { get; private set; }

    /// <inheritdoc />
    public string Name => _inner.Name;

    /// <inheritdoc />
    public int SectorSize => _inner.SectorSize;

    /// <inheritdoc />
    public long Length => _inner.Length;

    private bool Draw(double rate)
    {
        if (rate <= 0) return false;
        lock (_gate)
        {
            if (_random.NextDouble() >= rate) return false;
            FaultsInjected++;
            return true;
        }
    }

    private void AfterRead(long offset, Span<byte> data)
    {
        if (data.Length > 0 && Draw(BitFlipRate))
        {
            int at;
            lock (_gate) at = _random.Next(data.Length * 8);
            data[at >> 3] ^= (byte)(1 << (at & 7));
        }
    }

    /// <inheritdoc />
    public void Read(long offset, Span<byte> destination)
    {
        if (Draw(ReadFailureRate)) throw new IOException($"Injected read failure on '{Name}' at offset {offset}.");
        _inner.Read(offset, destination);
        AfterRead(offset, destination);
    }

    /// <inheritdoc />
    public async ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (Draw(ReadFailureRate)) throw new IOException($"Injected read failure on '{Name}' at offset {offset}.");
        await _inner.ReadAsync(offset, destination, cancellationToken).ConfigureAwait(false);
        AfterRead(offset, destination.Span);
    }

    /// <inheritdoc />
    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        if (Draw(WriteFailureRate)) throw new IOException($"Injected write failure on '{Name}' at offset {offset}.");
        if (FailAfterBytesWritten is long limit && BytesWritten + source.Length > limit)
        {
            int keep = (int)Math.Max(0, limit - BytesWritten);
            if (keep > 0) _inner.Write(offset, source[..keep]);
            BytesWritten += keep;
            lock (_gate) FaultsInjected++;
            throw new IOException($"Injected torn write on '{Name}' at offset {offset}: {keep} of {source.Length} bytes landed.");
        }
        _inner.Write(offset, source);
        BytesWritten += source.Length;
    }

    /// <inheritdoc />
    public void Flush() => _inner.Flush();

    /// <inheritdoc />
    public void SetLength(long length) => _inner.SetLength(length);

    /// <inheritdoc />
    public void Dispose() => _inner.Dispose();
}
