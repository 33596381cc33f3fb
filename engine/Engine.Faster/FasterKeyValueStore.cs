using System.Collections.Concurrent;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// A byte-key, byte-value store over FASTER KV (<see cref="FasterKV{Key, Value}"/> of <see cref="SpanByte"/>), made
/// durable by explicit checkpoints: the state a call to <see cref="CheckpointAsync(byte[], CancellationToken)"/> captured is what
/// <see cref="Open"/> recovers; writes after it live in memory and in FASTER's log but are discarded by recovery
/// (FASTER's CPR recovery to a named checkpoint). Callers that need per-write durability pair it with a write-ahead log
/// and replay the log's tail after the checkpoint (as <c>Engine.Collections</c> does).
/// </summary>
/// <remarks>
/// Thread safety: reads and writes may run concurrently from any number of threads (a pool of FASTER sessions, one per
/// call). <see cref="CheckpointAsync(byte[], CancellationToken)"/> may run concurrently with them; the caller decides which writes it must cover.
/// Files in the directory: <c>kv.log*</c> (FASTER's hybrid log) and <c>checkpoints/</c> (index and log checkpoints,
/// one folder per token).
/// </remarks>
public sealed class FasterKeyValueStore : IDisposable
{
    /// <summary>The largest key + value, in bytes, an entry may have (a FASTER record must fit in one 4 MiB log page).</summary>
    public const int MaxEntryBytes = (1 << 22) - 4096;

    private readonly FasterKV<SpanByte, SpanByte> _store;
    private readonly IDevice _device;
    private readonly DeviceLogCommitCheckpointManager _checkpoints;
    private readonly ConcurrentBag<ClientSession<SpanByte, SpanByte, SpanByte, byte[], Empty, SpanByteFunctions_ByteArrayOutput<Empty>>> _sessions = new();
    private readonly SpanByteFunctions_ByteArrayOutput<Empty> _functions = new();
    private readonly string _directory;
    private readonly TaskCompletionSource<IOException> _fault = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;
    private volatile Task? _abandonedCheckpoint;
    private static readonly TimeSpan AbandonedCheckpointWait = TimeSpan.FromSeconds(30);
    private KvPageChecksums? _pageChecksums; // of the newest checkpoint taken or recovered: the next one hashes only what changed

    private FasterKeyValueStore(string directory, Guid? recoverFrom, long memoryBytes)
    {
        _directory = Path.GetFullPath(directory);
        Directory.CreateDirectory(_directory);
        _device = new ObservedDevice(Devices.CreateLogDevice(Path.Combine(_directory, "kv.log"), preallocateFile: false, deleteOnClose: false, recoverDevice: true), OnWriteError, completeFailedWrites: true);
        // removeOutdated: false — the manager's default deletes the previous checkpoint as soon as a new one commits,
        // before the caller can record the new token; a crash in between would leave no recoverable checkpoint named.
        // Checkpoints are deleted only through PurgeCheckpointsExcept.
        _checkpoints = new DeviceLogCommitCheckpointManager(new ObservedDeviceFactory(OnWriteError),
            new DefaultCheckpointNamingScheme(Path.Combine(_directory, "checkpoints")), removeOutdated: false);
        var settings = new FasterKVSettings<SpanByte, SpanByte>(null)
        {
            IndexSize = 1L << 22,
            LogDevice = _device,
            PageSize = 1L << 22, // a record must fit in a page: 4 MiB, the size the FASTER write-ahead log allows too
            MemorySize = Math.Max(1L << 24, memoryBytes),
            CheckpointManager = _checkpoints,
            RemoveOutdatedCheckpoints = false,
        };
        try
        {
            _store = new FasterKV<SpanByte, SpanByte>(settings);
            if (recoverFrom is Guid token)
            {
                // FASTER reads the log's pages with unchecked record lengths (damaged bytes crash the process): check
                // them first against the checkpoint's page checksums, where it has them; and before that the
                // checkpoint's own files, the metadata that names the range among them.
                var sums = KvPageChecksums.Read(_directory, token);
                sums?.VerifyFiles(_directory);
                if (MetadataOf(_checkpoints, token) is { } info)
                {
                    var (begin, end) = KvPageChecksums.RangeOf(info);
                    _pageChecksums = sums?.CheckRange(begin, end, KvPageChecksums.TailOf(info), KvPageChecksums.FileOf(_directory, token));
                    _pageChecksums?.VerifyLog(LogPrefix, _device.SegmentSize);
                    VerifiedLogBytes = _pageChecksums is null ? -1 : _pageChecksums.Tail - begin;
                }
                _store.Recover(token);
                RecoveredCookie = _store.RecoveredCommitCookie;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _store?.Dispose();
            _checkpoints.Dispose();
            _device.Dispose();
            if (e is CorruptIndexException) throw;
            throw new CorruptIndexException(_directory, 0, $"FASTER KV cannot recover checkpoint {recoverFrom}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    private string LogPrefix => Path.Combine(_directory, "kv.log");

    /// <summary>The cookie the recovered checkpoint was taken with (<see cref="CheckpointAsync(byte[], CancellationToken)"/>);
    /// null for a new store or a checkpoint taken without one.</summary>
    public byte[]? RecoveredCookie { get; }

    /// <summary>Bytes of the log that <see cref="Open"/> checked against the recovered checkpoint's page checksums before
    /// FASTER read them; -1 when the checkpoint has no checksum file (taken before they existed: the next checkpoint
    /// writes one), 0 for a new store.</summary>
    public long VerifiedLogBytes { get; }

    // The metadata FASTER wrote for a log checkpoint, parsed as its recovery does; null when it is missing or unreadable
    // (FASTER's recovery then fails with its own error).
    private static HybridLogRecoveryInfo? MetadataOf(DeviceLogCommitCheckpointManager checkpoints, Guid token) => MetadataAndCookie(checkpoints, token)?.Info;

    private static (HybridLogRecoveryInfo Info, byte[]? Cookie)? MetadataAndCookie(DeviceLogCommitCheckpointManager checkpoints, Guid token)
    {
        try
        {
            var bytes = checkpoints.GetLogCheckpointMetadata(token, null, false, -1);
            if (bytes is null) return null;
            using var reader = new StreamReader(new MemoryStream(bytes));
            var info = new HybridLogRecoveryInfo();
            info.Initialize(reader);
            string rest = reader.ReadToEnd();
            byte[]? cookie = null;
            if (rest.Length > 0)
            {
                try { cookie = Convert.FromBase64String(rest); }
                catch (FormatException) { }
            }
            return (info, cookie);
        }
        catch (Exception e) when (e is FasterException or IOException or FormatException or OverflowException or ArgumentException or IndexOutOfRangeException or NullReferenceException)
        {
            return null;
        }
    }

    /// <summary>A checkpoint on disk, as <see cref="ListCheckpoints"/> finds it without recovering it.</summary>
    /// <param name="Token">Its token.</param>
    /// <param name="Version">FASTER's checkpoint version (higher is newer).</param>
    /// <param name="Cookie">The cookie it was taken with (null: none).</param>
    /// <param name="Completed">Whether <see cref="CheckpointAsync(byte[], CancellationToken)"/> returned it: its page checksum
    /// file is written only after every write of the checkpoint succeeded, so a checkpoint without one was abandoned
    /// (a write failed) or taken before these files existed.</param>
    public sealed record StoreCheckpoint(Guid Token, long Version, byte[]? Cookie, bool Completed);

    /// <summary>
    /// The checkpoints of the store in <paramref name="directory"/> whose FASTER metadata is readable, newest first,
    /// without opening the store.
    /// </summary>
    /// <param name="directory">The store's directory (what <see cref="Open"/> takes).</param>
    public static IReadOnlyList<StoreCheckpoint> ListCheckpoints(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string dir = Path.GetFullPath(directory);
        if (!Directory.Exists(Path.Combine(dir, "checkpoints"))) return [];
        using var checkpoints = new DeviceLogCommitCheckpointManager(new LocalStorageNamedDeviceFactory(),
            new DefaultCheckpointNamingScheme(Path.Combine(dir, "checkpoints")), removeOutdated: false);
        var found = new List<StoreCheckpoint>();
        foreach (var token in checkpoints.GetLogCheckpointTokens().Distinct())
        {
            if (MetadataAndCookie(checkpoints, token) is not var (info, cookie)) continue;
            var (begin, end) = KvPageChecksums.RangeOf(info);
            bool completed;
            try { completed = KvPageChecksums.Read(dir, token, begin, end, KvPageChecksums.TailOf(info)) is not null; }
            catch (CorruptIndexException) { completed = false; }
            found.Add(new StoreCheckpoint(token, info.version, cookie, completed));
        }
        return found.OrderByDescending(c => c.Version).ToList();
    }

    /// <summary>
    /// Opens the store in <paramref name="directory"/>: recovered to checkpoint <paramref name="checkpoint"/>, or,
    /// when it is null, created empty (whatever the directory held is deleted first).
    /// </summary>
    /// <param name="directory">The store's directory.</param>
    /// <param name="checkpoint">The token <see cref="CheckpointAsync(byte[], CancellationToken)"/> returned, or null for a new store.</param>
    /// <param name="memoryBytes">Memory for FASTER's in-memory log (at least 16 MiB = 4 pages; older records page to disk).</param>
    /// <exception cref="CorruptIndexException">The checkpoint is missing or FASTER cannot recover it.</exception>
    public static FasterKeyValueStore Open(string directory, Guid? checkpoint, long memoryBytes = 1L << 28)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (checkpoint is null && Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        return new FasterKeyValueStore(directory, checkpoint, memoryBytes);
    }

    /// <summary>
    /// How many checkpoints (FASTER's log checkpoints, <c>checkpoints/cpr-checkpoints/&lt;token&gt;</c>) the store in
    /// <paramref name="directory"/> holds on disk, without opening it; 0 when the directory or the folder is missing.
    /// </summary>
    /// <param name="directory">The store's directory (what <see cref="Open"/> takes).</param>
    public static int CheckpointCountOnDisk(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string cpr = Path.Combine(Path.GetFullPath(directory), "checkpoints", "cpr-checkpoints");
        return Directory.Exists(cpr) ? Directory.GetDirectories(cpr).Count(d => Guid.TryParse(Path.GetFileName(d), out _)) : 0;
    }

    /// <summary>The checkpoint tokens present on disk.</summary>
    public IReadOnlyList<Guid> CheckpointTokens() => _checkpoints.GetLogCheckpointTokens().Distinct().ToList();

    /// <summary>Deletes every checkpoint except those in <paramref name="keep"/>.</summary>
    public void PurgeCheckpointsExcept(IReadOnlyCollection<Guid> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        foreach (var t in _checkpoints.GetLogCheckpointTokens().Concat(_checkpoints.GetIndexCheckpointTokens()).Distinct().ToList())
            if (!keep.Contains(t)) _checkpoints.Purge(t);
        string sums = Path.Combine(_directory, "checksums");
        if (!Directory.Exists(sums)) return;
        foreach (var f in Directory.GetFiles(sums))
        {
            string name = Path.GetFileName(f);
            if (name.EndsWith(".crc", StringComparison.Ordinal) && Guid.TryParse(name[..^4], out var t) && keep.Contains(t)) continue;
            try { File.Delete(f); }
            catch (IOException) { } // the next purge retries
            catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Reads the value of <paramref name="key"/>; null when absent.</summary>
    /// <exception cref="IOException">A write of the store failed earlier (<see cref="Fault"/>): pages it reported
    /// flushed may not be on disk, so it refuses reads too.</exception>
    public unsafe byte[]? Read(ReadOnlySpan<byte> key)
    {
        ThrowIfFaulted("The read");
        var s = Rent();
        try
        {
            fixed (byte* k = key)
            {
                var sk = SpanByte.FromPointer(k, key.Length);
                byte[] output = null!;
                var status = s.Read(ref sk, ref output);
                if (status.IsPending)
                {
                    s.CompletePendingWithOutputs(out var outputs, wait: true);
                    using (outputs)
                    {
                        while (outputs.Next())
                        {
                            status = outputs.Current.Status;
                            output = outputs.Current.Output;
                        }
                    }
                }
                // a flush that failed during the read was reported done to FASTER: the page it read may never have
                // been written, so a read that overlapped the fault is refused too
                ThrowIfFaulted("The read");
                return status.Found ? output : null;
            }
        }
        finally { Return(s); }
    }

    /// <summary>Inserts or replaces the value of <paramref name="key"/>.</summary>
    /// <exception cref="IOException">A write of the store failed earlier (<see cref="Fault"/>): it refuses writes.</exception>
    /// <exception cref="ArgumentException">Key and value together exceed <see cref="MaxEntryBytes"/>.</exception>
    public unsafe void Upsert(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if ((long)key.Length + value.Length > MaxEntryBytes)
            throw new ArgumentException($"An entry of {key.Length + (long)value.Length} bytes exceeds FASTER KV's limit of {MaxEntryBytes} bytes.", nameof(value));
        ThrowIfFaulted();
        var s = Rent();
        try
        {
            fixed (byte* k = key, v = value)
            {
                var sk = SpanByte.FromPointer(k, key.Length);
                var sv = SpanByte.FromPointer(v, value.Length);
                var status = s.Upsert(ref sk, ref sv);
                if (status.IsPending) s.CompletePending(wait: true);
            }
        }
        finally { Return(s); }
        ThrowIfFaulted(); // a flush failed while this write waited for log memory: it is not in a durable state
    }

    /// <summary>Deletes <paramref name="key"/> (absent keys are ignored).</summary>
    /// <exception cref="IOException">A write of the store failed earlier (<see cref="Fault"/>): it refuses writes.</exception>
    public unsafe void Delete(ReadOnlySpan<byte> key)
    {
        ThrowIfFaulted();
        var s = Rent();
        try
        {
            fixed (byte* k = key)
            {
                var sk = SpanByte.FromPointer(k, key.Length);
                var status = s.Delete(ref sk);
                if (status.IsPending) s.CompletePending(wait: true);
            }
        }
        finally { Return(s); }
        ThrowIfFaulted();
    }

    /// <summary>Calls <paramref name="visit"/> with every live (key, value) pair; the spans are valid only during the call.
    /// Writers must not run concurrently.</summary>
    public void Scan(Action<ReadOnlySpan<byte>, ReadOnlySpan<byte>> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        ThrowIfFaulted("The scan");
        var s = Rent();
        try
        {
            using var it = s.Iterate();
            while (it.GetNext(out _))
            {
                ref var key = ref it.GetKey();
                ref var value = ref it.GetValue();
                ThrowIfFaulted("The scan"); // as Read: nothing read after a fault is handed out
                visit(key.AsReadOnlySpan(), value.AsReadOnlySpan());
            }
        }
        finally { Return(s); }
    }

    /// <summary>
    /// Takes a full fold-over checkpoint (index and log) and returns its token once it is durable. Writes that
    /// completed before the call are in it.
    /// </summary>
    /// <remarks>
    /// FASTER KV does not report failed writes (a full disk): it logs them, finishes a checkpoint whose index or metadata
    /// write failed as if it were complete, and waits forever for a log flush that failed. The store therefore watches
    /// every write of its devices; the first failure faults it (<see cref="Fault"/>), and this call then throws at once,
    /// whether the failure came before it, during it (the FASTER checkpoint left running is abandoned) or in a part of
    /// the checkpoint FASTER ignores. The token of a checkpoint that throws is never returned, so no caller names it.
    /// </remarks>
    /// <exception cref="IOException">A write failed (the disk is full, or the device refused it): the store is faulted
    /// and refuses further writes; or FASTER could not start the checkpoint.</exception>
    public Task<Guid> CheckpointAsync(CancellationToken cancellationToken = default) => CheckpointAsync(null, cancellationToken);

    /// <summary>
    /// <see cref="CheckpointAsync(CancellationToken)"/> with a cookie (up to a few hundred bytes) that FASTER stores in
    /// the checkpoint's metadata: <see cref="RecoveredCookie"/> after recovering it, <see cref="ListCheckpoints"/> without.
    /// </summary>
    /// <remarks>
    /// After FASTER's checkpoint, the CRC-32C of each log page it covers (only pages new or changed since the previous
    /// checkpoint are read), of the last bytes it covers and of the checkpoint's own files (metadata and hash table) is
    /// written to <c>checksums/&lt;token&gt;.crc</c>; <see cref="Open"/> checks them before FASTER reads any of them. That file is written last, so its presence also says the checkpoint completed.
    /// </remarks>
    /// <param name="cookie">The caller's cookie (null: none).</param>
    /// <param name="cancellationToken">Cancels the wait for FASTER's checkpoint.</param>
    /// <exception cref="IOException">As <see cref="CheckpointAsync(CancellationToken)"/>, or the checksum file cannot be
    /// written (the store is not faulted: the checkpoint is simply not returned).</exception>
    public async Task<Guid> CheckpointAsync(byte[]? cookie, CancellationToken cancellationToken = default)
    {
        ThrowIfFaulted("The checkpoint");
        _store.CommitCookie = cookie is { Length: > 0 } ? cookie : null;
        var checkpoint = _store.TakeFullCheckpointAsync(CheckpointType.FoldOver, cancellationToken).AsTask();
        _abandonedCheckpoint = checkpoint; // until it completes, Dispose waits for it (a fault or a cancelled wait leaves it running)
        var first = await Task.WhenAny(checkpoint, _fault.Task).ConfigureAwait(false);
        if (first != checkpoint)
        {
            _ = checkpoint.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            throw Faulted("The checkpoint");
        }
        var (ok, token) = await checkpoint.ConfigureAwait(false);
        ThrowIfFaulted("The checkpoint"); // a failed index or metadata write: FASTER completed the checkpoint regardless
        if (!ok) throw new IOException($"FASTER KV in '{_directory}' could not take a checkpoint (another one is in progress).");
        var info = MetadataOf(_checkpoints, token)
            ?? throw new IOException($"FASTER KV in '{_directory}' took checkpoint {token} but its metadata cannot be read back.");
        var (begin, end) = KvPageChecksums.RangeOf(info);
        var sums = KvPageChecksums.Compute(token, begin, end, KvPageChecksums.TailOf(info), _pageChecksums, _directory, LogPrefix, _device.SegmentSize);
        sums.Write(_directory);
        _pageChecksums = sums;
        return token;
    }

    /// <summary>The first write failure of the store's devices (null while none failed). Once set, the store refuses
    /// writes, checkpoints, reads and scans (<see cref="IOException"/>): pages whose failed flush was reported done may
    /// not be on disk. Dispose it, free space and reopen it from its last checkpoint.</summary>
    public IOException? Fault => _fault.Task.IsCompleted ? _fault.Task.Result : null;

    private void OnWriteError(uint errorCode, string where)
    {
        if (_fault.Task.IsCompleted) return;
        var inner = new IOException($"FASTER device write failed with error code {errorCode} ({where}).", unchecked((int)errorCode));
        _fault.TrySetResult(new IOException(
            $"FASTER KV in '{_directory}' could not write to disk: the disk is full or the write failed{FreeSpace(_directory)}. " +
            "The store refuses further writes; writes acknowledged before its last checkpoint (and a write-ahead log replayed over it) are intact on reopen.", inner));
    }

    // ", N bytes free on its volume", when the volume can be asked.
    internal static string FreeSpace(string directory)
    {
        try { return $" ({new DriveInfo(directory).AvailableFreeSpace} bytes free on its volume)"; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return ""; }
    }

    private IOException Faulted(string operation)
    {
        var f = _fault.Task.Result;
        return new IOException($"{operation} failed. {f.Message}", f.InnerException);
    }

    private void ThrowIfFaulted(string operation = "The write")
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_fault.Task.IsCompleted) throw Faulted(operation);
    }

    private ClientSession<SpanByte, SpanByte, SpanByte, byte[], Empty, SpanByteFunctions_ByteArrayOutput<Empty>> Rent()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _sessions.TryTake(out var s) ? s : _store.For(_functions).NewSession<SpanByteFunctions_ByteArrayOutput<Empty>>();
    }

    private void Return(ClientSession<SpanByte, SpanByte, SpanByte, byte[], Empty, SpanByteFunctions_ByteArrayOutput<Empty>> s) => _sessions.Add(s);

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        while (_sessions.TryTake(out var s)) s.Dispose();
        // A checkpoint abandoned at a fault keeps running on FASTER's threads (the faulted devices report its writes
        // done, so it ends) and would write into checkpoints/ after Dispose returned: a reopen that clears the
        // directory meanwhile raced it ("Directory not empty"). With the sessions gone its state machine completes.
        if (_abandonedCheckpoint is { } pending)
            try { pending.Wait(AbandonedCheckpointWait); }
            catch (AggregateException) { } // its failure is the fault already reported
        _store.Dispose();
        _checkpoints.Dispose();
        _device.Dispose();
    }
}
