using System.Collections.Concurrent;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// An <see cref="IDevice"/> that forwards everything to FASTER's own device and reports every failed write (a
/// completion with a non-zero error code: ENOSPC, EIO, a file that cannot be created) to <c>onWriteError</c> before
/// FASTER's callback runs. FASTER KV only logs such errors (its index checkpoint and checkpoint metadata writes carry on
/// as if they had succeeded; a failed hybrid-log flush never completes, so a checkpoint waiting for it hangs), so the
/// store watches its devices itself.
/// </summary>
/// <remarks>With <c>completeFailedWrites</c> (the KV store's devices) a failed write is reported to FASTER as done
/// once <c>onWriteError</c> has faulted the owner: a failed flush otherwise never frees its pages, and a writer that is
/// waiting inside FASTER for log memory at that moment would wait forever. That is safe only because the owner
/// refuses every later call (reads included) once faulted and its state is recovered from its last good checkpoint
/// and the write-ahead log; the write-ahead log's own device keeps FASTER's error (its commits must fail).</remarks>
internal sealed class ObservedDevice : IDevice
{
    private readonly IDevice _inner;
    private readonly Action<uint, string> _onWriteError;
    private readonly WriteFaults.Budget? _faults;
    private readonly bool _completeFailedWrites;

    internal ObservedDevice(IDevice inner, Action<uint, string> onWriteError, bool completeFailedWrites = false)
    {
        _inner = inner;
        _onWriteError = onWriteError;
        _faults = WriteFaults.For(inner.FileName);
        _completeFailedWrites = completeFailedWrites;
    }

    public uint SectorSize => _inner.SectorSize;
    public string FileName => _inner.FileName;
    public long Capacity => _inner.Capacity;
    public long SegmentSize => _inner.SegmentSize;
    public int StartSegment => _inner.StartSegment;
    public int EndSegment => _inner.EndSegment;
    public int ThrottleLimit { get => _inner.ThrottleLimit; set => _inner.ThrottleLimit = value; }
    public void Initialize(long segmentSize, LightEpoch? epoch = null, bool omitSegmentIdFromFilename = false) => _inner.Initialize(segmentSize, epoch, omitSegmentIdFromFilename);
    public bool TryComplete() => _inner.TryComplete();
    public bool Throttle() => _inner.Throttle();

    public void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (_faults is not null && !_faults.TryTake(numBytesToWrite))
        {
            Fail(callback, context, Where(segmentId, destinationAddress, numBytesToWrite), numBytesToWrite);
            return;
        }
        _inner.WriteAsync(sourceAddress, segmentId, destinationAddress, numBytesToWrite, Observe(callback, segmentId, destinationAddress, numBytesToWrite), context);
    }

    public void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (_faults is not null && !_faults.TryTake(numBytesToWrite))
        {
            Fail(callback, context, Where(-1, alignedDestinationAddress, numBytesToWrite), numBytesToWrite);
            return;
        }
        _inner.WriteAsync(alignedSourceAddress, alignedDestinationAddress, numBytesToWrite, Observe(callback, -1, alignedDestinationAddress, numBytesToWrite), context);
    }

    // As FASTER's devices report an exception: error code uint.MaxValue, nothing written, on another thread.
    private void Fail(DeviceIOCompletionCallback callback, object context, string where, uint bytes) =>
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            _onWriteError(uint.MaxValue, where + " (injected fault)");
            if (_completeFailedWrites) callback(0, bytes, context);
            else callback(uint.MaxValue, 0, context);
        }, null);

    // The place of a write, formatted only when it failed (not on every page FASTER writes).
    private string Where(int segmentId, ulong offset, uint bytes) =>
        segmentId < 0 ? $"{_inner.FileName} offset {offset}, {bytes} bytes" : $"{_inner.FileName} segment {segmentId} offset {offset}, {bytes} bytes";

    private DeviceIOCompletionCallback Observe(DeviceIOCompletionCallback callback, int segmentId, ulong offset, uint bytes) => (errorCode, numBytes, context) =>
    {
        if (errorCode != 0)
        {
            _onWriteError(errorCode, Where(segmentId, offset, bytes));
            if (_completeFailedWrites)
            {
                callback(0, bytes, context); // the owner is faulted now: let FASTER free the pages (see remarks)
                return;
            }
        }
        callback(errorCode, numBytes, context);
    };

    public void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context) =>
        _inner.ReadAsync(segmentId, sourceAddress, destinationAddress, readLength, callback, context);

    public void ReadAsync(ulong alignedSourceAddress, IntPtr alignedDestinationAddress, uint aligned_read_length, DeviceIOCompletionCallback callback, object context) =>
        _inner.ReadAsync(alignedSourceAddress, alignedDestinationAddress, aligned_read_length, callback, context);

    public void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result) => _inner.TruncateUntilAddressAsync(toAddress, callback, result);
    public void TruncateUntilAddress(long toAddress) => _inner.TruncateUntilAddress(toAddress);
    public void TruncateUntilSegmentAsync(int toSegment, AsyncCallback callback, IAsyncResult result) => _inner.TruncateUntilSegmentAsync(toSegment, callback, result);
    public void TruncateUntilSegment(int toSegment) => _inner.TruncateUntilSegment(toSegment);
    public void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result) => _inner.RemoveSegmentAsync(segment, callback, result);
    public void RemoveSegment(int segment) => _inner.RemoveSegment(segment);
    public long GetFileSize(int segment) => _inner.GetFileSize(segment);
    public void Reset() => _inner.Reset();
    public void Dispose() => _inner.Dispose();
}

/// <summary>A named-device factory like FASTER's <see cref="LocalStorageNamedDeviceFactory"/> (checkpoint files)
/// whose devices are <see cref="ObservedDevice"/>s.</summary>
internal sealed class ObservedDeviceFactory : INamedDeviceFactory
{
    private readonly LocalStorageNamedDeviceFactory _inner = new();
    private readonly Action<uint, string> _onWriteError;

    private readonly bool _completeFailedWrites;

    internal ObservedDeviceFactory(Action<uint, string> onWriteError, bool completeFailedWrites = true)
    {
        _onWriteError = onWriteError;
        _completeFailedWrites = completeFailedWrites;
    }

    public void Initialize(string baseName) => _inner.Initialize(baseName);
    public IDevice Get(FileDescriptor fileInfo) => new ObservedDevice(_inner.Get(fileInfo), _onWriteError, _completeFailedWrites);
    public IEnumerable<FileDescriptor> ListContents(string path) => _inner.ListContents(path);
    public void Delete(FileDescriptor fileInfo) => _inner.Delete(fileInfo);
}

/// <summary>
/// Test hook: makes FASTER device writes under a directory fail (as a full disk does) once a byte budget is spent.
/// Keyed by directory so that tests running in parallel in their own directories do not see each other's faults.
/// </summary>
internal static class WriteFaults
{
    private static readonly ConcurrentDictionary<string, Budget> Budgets = new(StringComparer.Ordinal);

    internal sealed class Budget(long bytes)
    {
        private long _left = bytes;

        /// <summary>False once the budget is spent (and for every later write).</summary>
        internal bool TryTake(uint bytes) => Interlocked.Add(ref _left, -bytes) >= 0 || Fail();

        private bool Fail()
        {
            Interlocked.Exchange(ref _left, long.MinValue / 2);
            return false;
        }
    }

    /// <summary>Writes by devices opened from now on under <paramref name="directory"/> fail after
    /// <paramref name="bytes"/> bytes (all such devices together) until the result is disposed.</summary>
    internal static IDisposable FailWritesUnder(string directory, long bytes)
    {
        string key = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)) + Path.DirectorySeparatorChar;
        Budgets[key] = new Budget(bytes);
        return new Remover(key);
    }

    internal static Budget? For(string fileName)
    {
        if (Budgets.IsEmpty || string.IsNullOrEmpty(fileName)) return null;
        string full = Path.GetFullPath(fileName);
        foreach (var (dir, budget) in Budgets)
            if (full.StartsWith(dir, StringComparison.Ordinal)) return budget;
        return null;
    }

    private sealed class Remover(string key) : IDisposable
    {
        public void Dispose() => Budgets.TryRemove(key, out _);
    }

    private static readonly ConcurrentDictionary<string, byte> FailingFiles = new(StringComparer.Ordinal);

    /// <summary>Atomic small-file writes (<see cref="DurableFile"/>: a collection's manifest, the store's page checksum
    /// files) to a file named <paramref name="fileName"/> under <paramref name="directory"/> fail as on a full disk,
    /// leaving a torn temp file, until the result is disposed.</summary>
    internal static IDisposable FailFileWrites(string directory, string fileName)
    {
        string key = Path.Combine(Path.GetFullPath(directory), fileName);
        FailingFiles[key] = 0;
        return new FileRemover(key);
    }

    internal static bool ShouldFailFile(string path)
    {
        if (FailingFiles.IsEmpty) return false;
        string full = Path.GetFullPath(path);
        foreach (var key in FailingFiles.Keys)
            if (full == key || (full.StartsWith(Path.GetDirectoryName(key)! + Path.DirectorySeparatorChar, StringComparison.Ordinal) && Path.GetFileName(key) == "*"))
                return true;
        return false;
    }

    private sealed class FileRemover(string key) : IDisposable
    {
        public void Dispose() => FailingFiles.TryRemove(key, out _);
    }
}
