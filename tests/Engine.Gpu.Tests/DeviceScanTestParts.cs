using Engine.Index;
using Engine.Index.Ivf;

namespace Engine.Gpu.Tests;

/// <summary>A device scan provider that counts the uploads and launches of the one it wraps.</summary>
internal sealed class CountingProvider(IIvfDeviceScanProvider inner) : IIvfDeviceScanProvider
{
    private int _uploads, _launches;

    public int Uploads => Volatile.Read(ref _uploads);

    public int Launches => Volatile.Read(ref _launches);

    public string Name => inner.Name;

    public IIvfDeviceLists Upload(IvfDeviceRows rows)
    {
        Interlocked.Increment(ref _uploads);
        return new Lists(this, inner.Upload(rows));
    }

    private sealed class Lists(CountingProvider owner, IIvfDeviceLists lists) : IIvfDeviceLists
    {
        public long DeviceBytes => lists.DeviceBytes;

        public void Scan(IvfDeviceBatch batch, int k, Span<float> keys, Span<long> rows)
        {
            Interlocked.Increment(ref owner._launches);
            lists.Scan(batch, k, keys, rows);
        }

        public void Dispose() => lists.Dispose();
    }
}

/// <summary>A provider whose lists report (through <c>onDisposedScan</c>) any launch after they were disposed.</summary>
internal sealed class DisposeCheckingProvider(IIvfDeviceScanProvider inner, Action onDisposedScan) : IIvfDeviceScanProvider
{
    public string Name => inner.Name;

    public IIvfDeviceLists Upload(IvfDeviceRows rows) => new Lists(inner.Upload(rows), onDisposedScan);

    private sealed class Lists(IIvfDeviceLists lists, Action onDisposedScan) : IIvfDeviceLists
    {
        private volatile bool _disposed;

        public long DeviceBytes => lists.DeviceBytes;

        public void Scan(IvfDeviceBatch batch, int k, Span<float> keys, Span<long> rows)
        {
            if (_disposed) onDisposedScan();
            lists.Scan(batch, k, keys, rows);
            if (_disposed) onDisposedScan(); // disposed while the launch ran
        }

        public void Dispose()
        {
            _disposed = true;
            lists.Dispose();
        }
    }
}

/// <summary>Allows odd ids only.</summary>
internal sealed class OddIds : IIdFilter
{
    public bool IsAllowed(long id) => id % 2 == 1;
}
