namespace Engine.Mining.Refresh;

/// <summary>
/// A hard-negative miner that a training loop holds open while the encoder changes: ANCE's asynchronous index
/// refresh as an API (the C# counterpart of <c>minedex.Refresher</c>).
/// </summary>
/// <remarks>
/// <para>Protocol (one trainer, any number of concurrent mining calls):</para>
/// <list type="number">
/// <item>The constructor takes the corpus vectors of <see cref="MiningRefresherOptions.InitialStep"/>; corpus ids are
/// row numbers 0..n−1.</item>
/// <item>Every N steps the trainer asks <see cref="Due"/> for the ids whose vectors are oldest, re-embeds them and
/// calls <see cref="Push"/>. Pushes go to the live table only; no snapshot ever changes under a miner.</item>
/// <item><see cref="RequestRefresh"/> (or <c>Push(..., refresh: true)</c>) brings the spare index up to date in a
/// background thread, by upserting in place (<see cref="IVectorIndex.Remove"/> then
/// <see cref="IVectorIndex.Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/>) only the ids changed since that copy
/// was last current, and swaps it in atomically (a reference swap). <see cref="RefreshAsync"/> waits for it.</item>
/// <item><see cref="MineAsync"/> mines in a background task, chunk by chunk; each chunk takes the snapshot current
/// when it starts and keeps it to its end. Every row says which snapshot it came from and how stale its vectors
/// were.</item>
/// </list>
/// <para>Design: two indexes (front and back, a left-right scheme). Miners only use the front; the background
/// refresh writes only the back and waits, before writing it, until the chunks still running on it (they began
/// before the previous swap) have finished: at most one chunk per mining call in flight. A mining call therefore
/// never waits for a refresh; a refresh waits for at most one chunk. Memory: the live table (n × d floats) plus two
/// indexes. Each id's embedding step is kept per copy, so staleness is exact.</para>
/// <para>Errors: a failure in the background refresh leaves the front (and mining) untouched, marks the back
/// copy for a full rebuild from the live table at the next refresh, and is thrown (as an
/// <see cref="InvalidOperationException"/> with the cause inside) by the <see cref="RefreshAsync"/> calls waiting
/// for it, or else by the next call of <see cref="Push"/>, <see cref="RequestRefresh"/>, <see cref="RefreshAsync"/>,
/// <see cref="MineAsync"/>, <see cref="Due"/> or <see cref="Overdue"/>. It is never swallowed.</para>
/// </remarks>
public sealed partial class MiningRefresher : IDisposable, IAsyncDisposable
{
    private readonly Func<int, IVectorIndex> _createIndex;
    private readonly MiningRefresherOptions _options;
    private readonly int _n, _d;

    // Live table (guarded by _live): the latest pushed vector of every id, its embedding step and the push
    // sequence number that last changed it.
    private readonly object _live = new();
    private readonly float[] _vectors;
    private readonly long[] _embeddedAt;
    private readonly long[] _changedAt;
    private long _sequence, _step;

    // Snapshot state (guarded by _gate).
    private readonly object _gate = new();
    private Copy _front, _back;
    private long _numbers = 1, _requested;
    private Task? _worker;
    private Exception? _error;
    private readonly List<Waiter> _waiters = [];
    private bool _disposed;
    private RefresherStatistics _statistics = new(0, 0, 0, TimeSpan.Zero);

    /// <summary>Builds the first snapshot (two index copies) from the corpus vectors.</summary>
    /// <param name="corpus">n × <paramref name="dimension"/> row-major corpus vectors at the initial step; ids are row numbers.</param>
    /// <param name="dimension">Vector dimension.</param>
    /// <param name="createIndex">Creates an empty index of a dimension (called twice now, and again, on the background thread, only to rebuild a
    /// copy after a failed refresh). Untrained indexes are trained on the current corpus vectors. The index must
    /// support <see cref="IVectorIndex.Remove"/> and <see cref="IVectorIndex.Add(ReadOnlySpan{float}, ReadOnlySpan{long})"/> of an id
    /// it held (an upsert).</param>
    /// <param name="options">Options (null = defaults).</param>
    /// <exception cref="ArgumentException">Empty corpus, rows not of <paramref name="dimension"/> floats, non-finite
    /// values, or a bad option.</exception>
    /// <exception cref="InvalidOperationException">The factory returned null or an index of another dimension.</exception>
    /// <exception cref="NotSupportedException">The index cannot be updated in place.</exception>
    public MiningRefresher(float[] corpus, int dimension, Func<int, IVectorIndex> createIndex, MiningRefresherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(createIndex);
        options ??= new MiningRefresherOptions();
        options.Validate();
        int n = Guard.Rows(corpus, dimension, nameof(corpus));
        if (n == 0) throw new ArgumentException("corpus is empty: a refresher needs a corpus.", nameof(corpus));
        Guard.Finite(corpus, dimension, nameof(corpus));
        _createIndex = createIndex;
        _options = options;
        _n = n;
        _d = dimension;
        _vectors = (float[])corpus.Clone();
        _embeddedAt = new long[n];
        Array.Fill(_embeddedAt, options.InitialStep);
        _changedAt = new long[n];
        _step = options.InitialStep;
        _front = BuildCopy(probe: true);
        try
        {
            _back = BuildCopy(probe: true);
        }
        catch
        {
            _front.Index.Dispose();
            throw;
        }
        _front.Number = 1;
    }

    /// <summary>Number of corpus items (ids are 0..Count−1).</summary>
    public int Count => _n;

    /// <summary>Vector dimension.</summary>
    public int Dimension => _d;

    /// <summary>The options.</summary>
    public MiningRefresherOptions Options => _options;

    /// <summary>The latest training step seen (by <see cref="Push"/> or <see cref="MineAsync"/>).</summary>
    public long Step
    {
        get { lock (_live) return _step; }
    }

    /// <summary>The snapshot a mining chunk starting now would use.</summary>
    public RefresherSnapshot Current
    {
        get { lock (_gate) return _front.Describe(); }
    }

    /// <summary>What the background refreshes did so far (the cost of keeping snapshots fresh).</summary>
    public RefresherStatistics Statistics
    {
        get { lock (_gate) return _statistics; }
    }

    /// <summary>True while a background refresh is running or queued.</summary>
    public bool IsRefreshing
    {
        get { lock (_gate) return _worker is not null; }
    }

    /// <summary>
    /// The <paramref name="count"/> corpus ids whose live vectors are oldest (oldest first, ties by id): re-embed
    /// these next. Pushing them keeps every vector within the staleness bound.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> outside 0..<see cref="Count"/>.</exception>
    public long[] Due(int count)
    {
        ThrowIfUnusable();
        if (count < 0 || count > _n)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count must be in 0..{_n} (the corpus size).");
        if (count == 0) return [];
        long[] steps;
        lock (_live) steps = (long[])_embeddedAt.Clone();
        return OldestFirst(steps, count);
    }

    /// <summary>How many live vectors are older than the staleness bound at <paramref name="step"/> (the latest step
    /// when null); 0 when unbounded. Push <c>Due(Overdue(step))</c> and refresh to mine at that step.</summary>
    public int Overdue(long? step = null)
    {
        ThrowIfUnusable();
        if (_options.MaxStaleness is not int bound) return 0;
        lock (_live)
        {
            long limit = (step ?? _step) - bound;
            int overdue = 0;
            foreach (long s in _embeddedAt)
                if (s < limit) overdue++;
            return overdue;
        }
    }

    /// <summary>
    /// Stores re-embedded <paramref name="vectors"/> of corpus <paramref name="ids"/> computed at training
    /// <paramref name="step"/> (an upsert into the live table; snapshots are untouched). With
    /// <paramref name="refresh"/> a background refresh is requested afterwards (<see cref="RequestRefresh"/>).
    /// </summary>
    /// <param name="ids">Corpus ids (0..Count−1), each at most once.</param>
    /// <param name="vectors">ids.Length × Dimension row-major vectors.</param>
    /// <param name="step">Training step of the vectors; steps never go backwards.</param>
    /// <param name="refresh">Start a background refresh after the push.</param>
    /// <exception cref="ArgumentException">Wrong dimension or count, non-finite values, an unknown or repeated id,
    /// or a step before the latest one. Nothing is stored then.</exception>
    /// <exception cref="InvalidOperationException">A background refresh failed (the cause is inside).</exception>
    /// <exception cref="ObjectDisposedException">The refresher is disposed.</exception>
    public void Push(ReadOnlySpan<long> ids, ReadOnlySpan<float> vectors, long step, bool refresh = false)
    {
        ThrowIfUnusable();
        int rows = Guard.Rows(vectors, _d, nameof(vectors));
        if (rows != ids.Length)
            throw new ArgumentException($"Got {ids.Length} ids but {rows} vectors of dimension {_d}: there must be one vector per id.", nameof(vectors));
        Guard.Finite(vectors, _d, nameof(vectors));
        var seen = new HashSet<long>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0 || ids[i] >= _n)
                throw new ArgumentException($"ids[{i}] = {ids[i]} is not a corpus id (0..{_n - 1}).", nameof(ids));
            if (!seen.Add(ids[i]))
                throw new ArgumentException($"ids holds {ids[i]} twice: push each corpus item once per call.", nameof(ids));
        }
        lock (_live)
        {
            if (step < _step)
                throw new ArgumentException($"step {step} is before the latest step {_step}: steps only go forward.", nameof(step));
            _step = step;
            if (ids.Length > 0)
            {
                long seq = ++_sequence;
                for (int i = 0; i < ids.Length; i++)
                {
                    long id = ids[i];
                    vectors.Slice(i * _d, _d).CopyTo(_vectors.AsSpan(checked((int)(id * _d)), _d));
                    _embeddedAt[id] = step;
                    _changedAt[id] = seq;
                }
            }
        }
        if (refresh) RequestRefresh();
    }

    /// <summary>Starts (or queues) a background refresh that brings every push made so far into a new snapshot; returns
    /// at once. A refresh requested while one runs is folded into it or run right after it.</summary>
    /// <exception cref="InvalidOperationException">A background refresh failed (the cause is inside).</exception>
    /// <exception cref="ObjectDisposedException">The refresher is disposed.</exception>
    public void RequestRefresh()
    {
        ThrowIfUnusable();
        long target;
        lock (_live) target = _sequence;
        lock (_gate) Request(target);
    }

    /// <summary>
    /// Requests a refresh and waits until every push made before this call is in the current snapshot; returns that
    /// snapshot. Cancelling stops the wait, not the refresh.
    /// </summary>
    /// <exception cref="InvalidOperationException">The background refresh failed (the cause is inside).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The refresher is disposed.</exception>
    public Task<RefresherSnapshot> RefreshAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<RefresherSnapshot>(cancellationToken);
        long target;
        lock (_live) target = _sequence;
        Waiter waiter;
        lock (_gate)
        {
            if (_front.Applied >= target) return Task.FromResult(_front.Describe());
            waiter = new Waiter(target);
            _waiters.Add(waiter);
            Request(target);
        }
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(() =>
            {
                lock (_gate) _waiters.Remove(waiter);
                waiter.Completion.TrySetCanceled(cancellationToken);
            });
            waiter.Completion.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        }
        return waiter.Completion.Task;
    }

    /// <summary>Waits for the background refresh, waits for mining chunks in flight, and frees both indexes.
    /// Mining calls still running fail with <see cref="ObjectDisposedException"/> at their next chunk;
    /// <see cref="RefreshAsync"/> calls waiting fail the same way.</summary>
    public void Dispose()
    {
        Task? worker;
        List<Waiter> waiters;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            worker = _worker;
            waiters = [.. _waiters];
            _waiters.Clear();
            Monitor.PulseAll(_gate);
        }
        worker?.Wait(); // the worker catches everything it throws; Wait only returns
        lock (_gate)
        {
            while (_front.Users > 0 || _back.Users > 0) Monitor.Wait(_gate);
        }
        _front.Index.Dispose();
        _back.Index.Dispose();
        foreach (var w in waiters) w.Completion.TrySetException(new ObjectDisposedException(nameof(MiningRefresher)));
    }

    /// <summary><see cref="Dispose"/> without blocking the caller's thread.</summary>
    public ValueTask DisposeAsync() => new(Task.Run(Dispose));

    // The k oldest of `steps` (oldest first, ties by id) in O(n + k log k): find the threshold step by the counts of
    // distinct steps, then sort only the ids at or below it.
    private static long[] OldestFirst(long[] steps, int count)
    {
        var counts = new Dictionary<long, int>();
        foreach (long s in steps) counts[s] = counts.GetValueOrDefault(s) + 1;
        var distinct = counts.Keys.ToArray();
        Array.Sort(distinct);
        long threshold = distinct[^1];
        int below = 0;
        foreach (long s in distinct)
        {
            if (below + counts[s] >= count) { threshold = s; break; }
            below += counts[s];
        }
        var picked = new List<(long Step, long Id)>(count + 16);
        int atThreshold = count - below;
        for (int i = 0; i < steps.Length; i++)
        {
            if (steps[i] < threshold) picked.Add((steps[i], i));
            else if (steps[i] == threshold && atThreshold > 0) { picked.Add((steps[i], i)); atThreshold--; }
        }
        picked.Sort();
        var ids = new long[count];
        for (int i = 0; i < count; i++) ids[i] = picked[i].Id;
        return ids;
    }

    private void ThrowIfUnusable()
    {
        Exception? error;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            error = _error;
            _error = null;
        }
        if (error is not null) throw Failed(error);
    }

    private static InvalidOperationException Failed(Exception cause) =>
        new($"A background refresh failed: {cause.Message} The snapshot in use is unchanged; the failed index copy is rebuilt from the pushed vectors at the next refresh.", cause);

    private sealed class Waiter(long target)
    {
        public long Target { get; } = target;
        public TaskCompletionSource<RefresherSnapshot> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
