namespace Engine.Mining.Refresh;

/// <summary>Options of <see cref="MiningRefresher"/>; <see cref="Validate"/> names the first bad value.</summary>
public sealed record MiningRefresherOptions
{
    /// <summary>The miner's options for every mining call (negatives, window, filters, seed, threads).</summary>
    /// <remarks><see cref="MiningOptions.ChunkSize"/> is replaced by <see cref="ChunkSize"/> and
    /// <see cref="MiningOptions.AnchorIdOffset"/> is kept (vector anchors are numbered from it across chunks).</remarks>
    public MiningOptions Mining { get; init; } = new();

    /// <summary>Anchors per chunk. Every chunk runs on one snapshot; a snapshot swapped in while a chunk runs is
    /// used from the next chunk on, so a swap waits for at most one chunk of each mining call in flight.</summary>
    public int ChunkSize { get; init; } = 256;

    /// <summary>Largest allowed age in training steps of any vector a mining call uses (null = unbounded). Mining
    /// on a snapshot that holds an older vector throws <see cref="StaleSnapshotException"/>.</summary>
    public int? MaxStaleness { get; init; }

    /// <summary>Training step at which the initial corpus vectors were embedded.</summary>
    public long InitialStep { get; init; }

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentOutOfRangeException">ChunkSize &lt; 1 or MaxStaleness &lt; 0, or a bad mining option.</exception>
    /// <exception cref="ArgumentException">Mining options that contradict each other.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Mining, nameof(Mining));
        Mining.Validate();
        if (ChunkSize < 1) throw new ArgumentOutOfRangeException(nameof(ChunkSize), ChunkSize, $"ChunkSize must be at least 1 anchor (got {ChunkSize}).");
        if (MaxStaleness is < 0)
            throw new ArgumentOutOfRangeException(nameof(MaxStaleness), MaxStaleness, $"MaxStaleness must be null (unbounded) or >= 0 steps (got {MaxStaleness}).");
    }
}
