using Engine.Storage.Wal;

namespace Engine.Index.Spann;

public sealed partial class SpannIndex
{
    private const string WalDirectoryName = "wal";
    private const long NoLogCode = -1; // metadata of a saved copy: no log yet, open creates one
    private IWriteAheadLogProvider? _logProvider;

    /// <summary>What the last <see cref="Open(string, SpannOpenOptions?)"/> found in the write-ahead log; null for an
    /// index that was created (or is in memory).</summary>
    public SpannRecoveryReport? Recovery { get; private set; }

    /// <summary>Kind of the write-ahead log (<c>file</c>, <c>faster</c>); null for an in-memory index.</summary>
    public string? LogKind => _logProvider?.Kind;

    // The log kind as the metadata stores it (STAT[4]); old metadata without it means the file log.
    private static long LogKindCode(string kind) => kind switch
    {
        FileWriteAheadLogProvider.KindName => 0,
        WriteAheadLogs.FasterKind => 1,
        _ => throw new NotSupportedException($"A SPANN index cannot record the write-ahead log kind '{kind}' (supported: file, faster)."),
    };

    private static string? LogKindOf(long code, string meta) => code switch
    {
        0 => FileWriteAheadLogProvider.KindName,
        1 => WriteAheadLogs.FasterKind,
        NoLogCode => null,
        _ => throw new CorruptIndexException(meta, 0, $"unknown write-ahead log kind code {code}"),
    };

    /// <summary>
    /// Opens the index's log and replays it after the checkpoint, refusing (unless the loss is accepted) a log that
    /// cannot give back every acknowledged write.
    /// </summary>
    private void OpenLog(string meta, string? kind, SpannOpenOptions options)
    {
        var storage = _storage!;
        string walDir = storage.PathOf(WalDirectoryName);
        if (kind is null)
        {
            _logProvider = options.Log ?? WriteAheadLogs.Default;
            _wal = storage.CreateLog(_logProvider, WalDirectoryName);
            lock (_writerGate) CheckpointLocked();
            Recovery = new SpannRecoveryReport { LogKind = _logProvider.Kind, ReplayFrom = _replayFrom };
            return;
        }
        var provider = options.Log ?? WriteAheadLogs.Find(kind)
            ?? throw new IndexFormatException(meta, $"the index logs its writes with the '{kind}' write-ahead log, which this process cannot open " +
                                                    $"(available: {string.Join(", ", WriteAheadLogs.Available)}); open it where Engine.Faster is deployed " +
                                                    "(the .NET library or the engine CLI).");
        if (provider.Kind != kind)
            throw new ArgumentException($"The index in '{storage.Location}' uses the '{kind}' write-ahead log, but SpannOpenOptions.Log is a '{provider.Kind}' log.", nameof(options));
        _logProvider = provider;
        string logFile = storage.LogFile(provider, WalDirectoryName);
        string? problem = null;
        CorruptIndexException? cause = null;
        try { _wal = storage.OpenLog(provider, WalDirectoryName, options.AcceptLogLoss); }
        catch (CorruptIndexException e)
        {
            (problem, cause, logFile) = (e.Problem, e, e.FilePath);
        }
        if (_wal is not null)
        {
            // Address 0 in a FASTER index means "from its first record" (metadata written before the log held anything).
            bool fromStart = _replayFrom == 0 && kind == WriteAheadLogs.FasterKind;
            if (_wal.BeginAddress > _replayFrom && !fromStart)
                problem = $"the log holds addresses {_wal.BeginAddress} to {_wal.TailAddress}: it starts after the checkpoint's replay address {_replayFrom}, so the records in between are gone";
            else if (_wal.TailAddress < _replayFrom)
                problem = $"the log holds addresses {_wal.BeginAddress} to {_wal.TailAddress}: it ends before the checkpoint's replay address {_replayFrom}, so it is not the log this checkpoint was written with";
        }
        if (problem is not null && !options.AcceptLogLoss)
        {
            _wal?.Dispose();
            _wal = null;
            throw new CorruptIndexException(logFile, cause?.Offset ?? 0,
                $"{problem}. The checkpoint '{meta}' needs the log's records from address {_replayFrom}; writes acknowledged after that checkpoint " +
                $"cannot be recovered from this log. To recover: restore the '{walDir}' directory from a backup, or open with " +
                "SpannOpenOptions.AcceptLogLoss = true (engine: --accept-log-loss), which keeps the checkpoint and what the log still holds, " +
                "moves the log aside and starts a new one", cause);
        }
        long replayed = 0;
        var report = new SpannRecoveryReport { LogKind = kind, ReplayFrom = _replayFrom };
        if (problem is null)
        {
            var wal = _wal!;
            lock (_writerGate) wal.Replay(_replayFrom, (address, rec) => { ReplayRecord(address, rec, logFile); replayed++; });
            var r = wal.Recovery;
            report = report with { RecordsReplayed = replayed, TornRecordsDropped = r.TornRecords, TornBytesDropped = r.TornBytes };
            if (r.LostBytes > 0)
                problem = $"the log lacks {r.LostBytes} bytes of committed records: its intact records end at address {r.ValidEndAddress} but its last commit covers up to address {r.CommittedAddress}";
        }
        if (problem is null)
        {
            Recovery = report;
            return;
        }
        // The loss is accepted: keep the checkpoint and the replayed prefix, set the old log aside, start a new one
        // and checkpoint at once so the metadata and the new log agree.
        _wal?.Dispose();
        _wal = null;
        string? aside = storage.MoveLogAside(WalDirectoryName);
        _wal = storage.CreateLog(provider, WalDirectoryName);
        lock (_writerGate) CheckpointLocked();
        Recovery = report with { LogLossAccepted = true, Loss = problem + (replayed > 0 ? $" ({replayed} record(s) before the gap were replayed)" : ""), LostLogMovedTo = aside };
    }
}
