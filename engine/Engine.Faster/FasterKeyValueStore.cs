using System.Collections.Concurrent;
using FASTER.core;

namespace Engine.Faster;

/// <summary>
/// A byte-key, byte-value store over FASTER KV (<see cref="FasterKV{Key, Value}"/> of <see cref="SpanByte"/>), made
/// durable by explicit checkpoints: the state a call to <see cref="CheckpointAsync"/> captured is what
/// <see cref="Open"/> recovers; writes after it live in memory and in FASTER's log but are discarded by recovery
/// (FASTER's CPR recovery to a named checkpoint). Callers that need per-write durability pair it with a write-ahead log
/// and replay the log's tail after the checkpoint (as <c>Engine.Collections</c> does).
/// </summary>
/// <remarks>
/// Thread safety: reads and writes may run concurrently from any number of threads (a pool of FASTER sessions, one per
/// call). <see cref="CheckpointAsync"/> may run concurrently with them; the caller decides which writes it must cover.
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
    private int _disposed;

    private FasterKeyValueStore(string directory, Guid? recoverFrom, long memoryBytes)
    {
        _directory = Path.GetFullPath(directory);
        Directory.CreateDirectory(_directory);
        _device = Devices.CreateLogDevice(Path.Combine(_directory, "kv.log"), preallocateFile: false, deleteOnClose: false, recoverDevice: true);
        // removeOutdated: false — the manager's default deletes the previous checkpoint as soon as a new one commits,
        // before the caller can record the new token; a crash in between would leave no recoverable checkpoint named.
        // Checkpoints are deleted only through PurgeCheckpointsExcept.
        _checkpoints = new DeviceLogCommitCheckpointManager(new LocalStorageNamedDeviceFactory(),
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
            if (recoverFrom is Guid token) _store.Recover(token);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _store?.Dispose();
            _checkpoints.Dispose();
            _device.Dispose();
            throw new CorruptIndexException(_directory, 0, $"FASTER KV cannot recover checkpoint {recoverFrom}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Opens the store in <paramref name="directory"/>: recovered to checkpoint <paramref name="checkpoint"/>, or,
    /// when it is null, created empty (whatever the directory held is deleted first).
    /// </summary>
    /// <param name="directory">The store's directory.</param>
    /// <param name="checkpoint">The token <see cref="CheckpointAsync"/> returned, or null for a new store.</param>
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
    }

    /// <summary>Reads the value of <paramref name="key"/>; null when absent.</summary>
    public unsafe byte[]? Read(ReadOnlySpan<byte> key)
    {
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
                return status.Found ? output : null;
            }
        }
        finally { Return(s); }
    }

    /// <summary>Inserts or replaces the value of <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">Key and value together exceed <see cref="MaxEntryBytes"/>.</exception>
    public unsafe void Upsert(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if ((long)key.Length + value.Length > MaxEntryBytes)
            throw new ArgumentException($"An entry of {key.Length + (long)value.Length} bytes exceeds FASTER KV's limit of {MaxEntryBytes} bytes.", nameof(value));
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
    }

    /// <summary>Deletes <paramref name="key"/> (absent keys are ignored).</summary>
    public unsafe void Delete(ReadOnlySpan<byte> key)
    {
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
    }

    /// <summary>Calls <paramref name="visit"/> with every live (key, value) pair; the spans are valid only during the call.
    /// Writers must not run concurrently.</summary>
    public void Scan(Action<ReadOnlySpan<byte>, ReadOnlySpan<byte>> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        var s = Rent();
        try
        {
            using var it = s.Iterate();
            while (it.GetNext(out _))
            {
                ref var key = ref it.GetKey();
                ref var value = ref it.GetValue();
                visit(key.AsReadOnlySpan(), value.AsReadOnlySpan());
            }
        }
        finally { Return(s); }
    }

    /// <summary>
    /// Takes a full fold-over checkpoint (index and log) and returns its token once it is durable. Writes that
    /// completed before the call are in it.
    /// </summary>
    /// <exception cref="IOException">FASTER could not start or finish the checkpoint.</exception>
    public async Task<Guid> CheckpointAsync(CancellationToken cancellationToken = default)
    {
        var (ok, token) = await _store.TakeFullCheckpointAsync(CheckpointType.FoldOver, cancellationToken).ConfigureAwait(false);
        if (!ok) throw new IOException($"FASTER KV in '{_directory}' could not take a checkpoint (another one is in progress).");
        return token;
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
        _store.Dispose();
        _checkpoints.Dispose();
        _device.Dispose();
    }
}
