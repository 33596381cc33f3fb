namespace Engine.Storage.Wal;

/// <summary>
/// A write-ahead log held in memory (<see cref="MemoryIndexStorage"/>): records keep their addresses (the previous
/// record's address plus its length plus 8, as a record header would take) across a close and an open of the same
/// <see cref="State"/>; an open drops what was appended after the last commit, like a crash would.
/// </summary>
internal sealed class MemoryWriteAheadLog : IWriteAheadLog
{
    /// <summary>The log's contents, owned by the storage and shared by every log opened on it.</summary>
    internal sealed class State(string name)
    {
        public readonly string Name = name;
        public readonly List<(long Address, byte[] Record)> Records = new();
        public long Begin;
        public long Tail;
        public long Committed;
    }

    private readonly State _state;
    private bool _disposed;

    internal MemoryWriteAheadLog(State state)
    {
        _state = state;
        Recovery = WalRecoveryInfo.Fresh(state.Tail);
    }

    /// <summary>Opens <paramref name="state"/> at its last commit, dropping (and counting) later records.</summary>
    internal static MemoryWriteAheadLog Open(State state)
    {
        lock (state)
        {
            int torn = 0;
            long tornBytes = 0;
            while (state.Records.Count > 0 && state.Records[^1].Address >= state.Committed)
            {
                torn++;
                tornBytes += state.Records[^1].Record.Length + 8;
                state.Records.RemoveAt(state.Records.Count - 1);
            }
            state.Tail = state.Committed;
            return new MemoryWriteAheadLog(state) { Recovery = new WalRecoveryInfo(state.Committed, state.Committed, torn, tornBytes, 0) };
        }
    }

    /// <inheritdoc />
    public int MaxRecordSize => 64 << 20;

    /// <inheritdoc />
    public long TailAddress { get { lock (_state) return _state.Tail; } }

    /// <inheritdoc />
    public long BeginAddress { get { lock (_state) return _state.Begin; } }

    /// <inheritdoc />
    public WalRecoveryInfo Recovery { get; private init; }

    /// <inheritdoc />
    public long Append(ReadOnlySpan<byte> record)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (record.Length > MaxRecordSize) throw new ArgumentException($"A record of {record.Length} bytes exceeds the log's limit of {MaxRecordSize}.", nameof(record));
        lock (_state)
        {
            long address = _state.Tail;
            _state.Records.Add((address, record.ToArray()));
            _state.Tail = address + record.Length + 8;
            return address;
        }
    }

    /// <inheritdoc />
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_state) _state.Committed = _state.Tail;
    }

    /// <inheritdoc />
    public void Replay(long fromAddress, WalRecordHandler handler)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(handler);
        (long, byte[])[] records;
        lock (_state)
        {
            // as the file log: records the caller needs were truncated away
            if (fromAddress < _state.Begin)
                throw new CorruptIndexException(_state.Name, 0, $"log starts at address {_state.Begin} but replay needs records from {fromAddress}");
            records = _state.Records.Where(r => r.Address >= fromAddress && r.Address < _state.Committed).ToArray();
        }
        foreach (var (address, record) in records) handler(address, record);
    }

    /// <inheritdoc />
    public void Truncate(long untilAddress)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_state)
        {
            if (untilAddress <= _state.Begin) return;
            if (untilAddress > _state.Tail)
                throw new ArgumentOutOfRangeException(nameof(untilAddress), untilAddress, $"The log '{_state.Name}' ends at address {_state.Tail}.");
            _state.Records.RemoveAll(r => r.Address < untilAddress);
            _state.Begin = untilAddress;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _disposed = true;
}
