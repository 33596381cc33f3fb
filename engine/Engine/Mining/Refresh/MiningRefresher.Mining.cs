namespace Engine.Mining.Refresh;

public sealed partial class MiningRefresher
{
    /// <summary>
    /// Mines <paramref name="input"/> in a background task, <see cref="MiningRefresherOptions.ChunkSize"/> anchors at a
    /// time. Each chunk uses the snapshot current when it starts (a snapshot swapped in meanwhile is used from the
    /// next chunk on); every row carries its snapshot number and staleness. The input is validated (and the
    /// staleness bound checked) before the task starts: those errors throw from this call.
    /// </summary>
    /// <param name="input">Anchors (vectors or corpus ids), positives and exclusions, as for <see cref="HardNegativeMiner"/>.</param>
    /// <param name="step">Training step of the call (staleness is measured from it); null = the latest step seen.
    /// Steps never go backwards.</param>
    /// <param name="cancellationToken">Checked between chunks: a chunk in progress finishes first.</param>
    /// <exception cref="ArgumentException">Bad input (wrong dimension, non-finite anchors, unknown ids, no positives) or a
    /// step before the latest one.</exception>
    /// <exception cref="StaleSnapshotException">The current snapshot holds vectors older than the staleness bound.</exception>
    /// <exception cref="InvalidOperationException">A background refresh failed (the cause is inside).</exception>
    /// <exception cref="ObjectDisposedException">The refresher is disposed (also thrown by the task at its next chunk
    /// when it is disposed while mining).</exception>
    public Task<RefreshedMining> MineAsync(MiningInput input, long? step = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ThrowIfUnusable();
        long now;
        lock (_live)
        {
            if (step < _step) throw new ArgumentException($"step {step} is before the latest step {_step}: steps only go forward.", nameof(step));
            now = step ?? _step;
        }
        var front = Acquire(now);
        try
        {
            input.Validate(front.Index);
        }
        finally
        {
            Release(front);
        }
        // Only a call that starts records its step (a rejected one changes nothing).
        lock (_live) _step = Math.Max(_step, now);
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<RefreshedMining>(cancellationToken);
        return Task.Run(() => Mine(input, now, cancellationToken), cancellationToken);
    }

    private RefreshedMining Mine(MiningInput input, long now, CancellationToken cancellationToken)
    {
        var report = new MiningReport(_options.Mining.Seed);
        var rows = new List<RefreshedRow>(input.Count);
        var used = new List<long>();
        int chunk = _options.ChunkSize;
        for (int start = 0; start < input.Count; start += chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int c = Math.Min(chunk, input.Count - start);
            var part = Slice(input, start, c);
            var options = _options.Mining with { ChunkSize = c, AnchorIdOffset = _options.Mining.AnchorIdOffset + start };
            var copy = Acquire(now);
            try
            {
                used.Add(copy.Number);
                bool corpusAnchors = input.CorpusAnchorIds is not null;
                foreach (var row in new HardNegativeMiner(copy.Index, options).Mine(part, report))
                    rows.Add(new RefreshedRow(row, copy.Number, now - OldestUsed(copy.EmbeddedAt, row, corpusAnchors)));
            }
            finally
            {
                Release(copy);
            }
        }
        return new RefreshedMining(now, rows, report, used);
    }

    // The front copy for a chunk at step `now`, counted as in use until Release.
    private Copy Acquire(long now)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var front = _front;
            if (_options.MaxStaleness is int bound && now - front.Oldest > bound)
            {
                long limit = now - bound, overdue = 0;
                foreach (long s in front.EmbeddedAt)
                    if (s < limit) overdue++;
                throw new StaleSnapshotException(
                    $"Snapshot {front.Number} holds {overdue} vectors older than MaxStaleness={bound} steps at step {now} (oldest from step {front.Oldest}): " +
                    "re-embed the Due(Overdue()) items, push them and refresh before mining.", front.Number, overdue);
            }
            front.Users++;
            return front;
        }
    }

    private void Release(Copy copy)
    {
        lock (_gate)
        {
            if (--copy.Users == 0) Monitor.PulseAll(_gate);
        }
    }

    private static long OldestUsed(long[] embeddedAt, MinedRow row, bool corpusAnchor)
    {
        long oldest = long.MaxValue;
        foreach (long p in row.Positives) oldest = Math.Min(oldest, embeddedAt[p]);
        foreach (long x in row.Negatives) oldest = Math.Min(oldest, embeddedAt[x]);
        if (corpusAnchor) oldest = Math.Min(oldest, embeddedAt[row.Anchor]);
        return oldest;
    }

    private static MiningInput Slice(MiningInput input, int start, int count)
    {
        if (start == 0 && count == input.Count) return input;
        var positives = new long[count][];
        for (int i = 0; i < count; i++) positives[i] = input.Positives[start + i];
        long[][]? exclusions = null;
        if (input.Exclusions is { } ex)
        {
            exclusions = new long[count][];
            for (int i = 0; i < count; i++) exclusions[i] = ex[start + i];
        }
        if (input.CorpusAnchorIds is { } anchors)
            return MiningInput.FromCorpusIds(anchors.AsSpan(start, count).ToArray(), positives, exclusions);
        int d = input.Dimension;
        return MiningInput.FromVectors(input.Vectors.AsSpan(start * d, count * d).ToArray(), d, positives, exclusions);
    }
}
