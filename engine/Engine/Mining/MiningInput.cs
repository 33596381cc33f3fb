namespace Engine.Mining;

/// <summary>
/// What to mine for: anchors (external vectors, or ids of corpus items), the positive corpus ids of each anchor
/// (one or many) and optional extra ids to exclude per anchor.
/// </summary>
/// <remarks>
/// External anchors get ids 0..n−1 (their row numbers) in the output; corpus anchors keep their corpus id and never
/// receive themselves as a negative. Vectors of corpus anchors come from <see cref="IVectorIndex.TryReconstruct"/>.
/// </remarks>
public sealed class MiningInput
{
    private MiningInput(float[]? vectors, int dimension, long[]? corpusIds, IReadOnlyList<long[]> positives,
        IReadOnlyList<long[]>? exclusions)
    {
        Vectors = vectors;
        Dimension = dimension;
        CorpusAnchorIds = corpusIds;
        Positives = positives;
        Exclusions = exclusions;
        Count = vectors is not null ? vectors.Length / Math.Max(1, dimension) : corpusIds!.Length;
    }

    /// <summary>External anchor vectors (Count × Dimension row-major), or null for corpus anchors.</summary>
    public float[]? Vectors { get; }

    /// <summary>Dimension of <see cref="Vectors"/> (0 for corpus anchors).</summary>
    public int Dimension { get; }

    /// <summary>Corpus ids of the anchors when the anchors are corpus items, else null.</summary>
    public long[]? CorpusAnchorIds { get; }

    /// <summary>Positive corpus ids per anchor (at least one each).</summary>
    public IReadOnlyList<long[]> Positives { get; }

    /// <summary>Extra ids never to hand out as negatives, per anchor (null = none).</summary>
    public IReadOnlyList<long[]>? Exclusions { get; }

    /// <summary>Number of anchors.</summary>
    public int Count { get; }

    /// <summary>Anchors given as vectors (count × dimension, row-major); anchor i gets id i.</summary>
    /// <exception cref="ArgumentException">Lengths do not match or the dimension is not positive.</exception>
    public static MiningInput FromVectors(float[] vectors, int dimension, IReadOnlyList<long[]> positives,
        IReadOnlyList<long[]>? exclusions = null)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        ArgumentNullException.ThrowIfNull(positives);
        int n = Guard.Rows(vectors, dimension, nameof(vectors));
        CheckCounts(n, positives, exclusions);
        return new MiningInput(vectors, dimension, null, positives, exclusions);
    }

    /// <summary>Anchors that are corpus items, given by id; each anchor excludes itself.</summary>
    /// <exception cref="ArgumentException">Lengths do not match.</exception>
    public static MiningInput FromCorpusIds(long[] anchorIds, IReadOnlyList<long[]> positives,
        IReadOnlyList<long[]>? exclusions = null)
    {
        ArgumentNullException.ThrowIfNull(anchorIds);
        ArgumentNullException.ThrowIfNull(positives);
        CheckCounts(anchorIds.Length, positives, exclusions);
        return new MiningInput(null, 0, anchorIds, positives, exclusions);
    }

    /// <summary>The id anchor <paramref name="i"/> carries in the output: its corpus id, or
    /// <paramref name="vectorOffset"/> + i for vector anchors (<see cref="MiningOptions.AnchorIdOffset"/>).</summary>
    public long AnchorId(int i, long vectorOffset = 0) => CorpusAnchorIds is not null ? CorpusAnchorIds[i] : vectorOffset + i;

    /// <summary>Number of ids excluded for anchor i (itself, positives, extra).</summary>
    internal int ExcludedCount(int i) =>
        (CorpusAnchorIds is not null ? 1 : 0) + Positives[i].Length + (Exclusions?[i].Length ?? 0);

    /// <summary>
    /// Validates the input against the index before any mining work: dimensions, finite values, anchors and
    /// positives present in the index.
    /// </summary>
    /// <exception cref="ArgumentException">The first problem found, naming the anchor and id.</exception>
    public void Validate(IVectorIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        int d = index.Dimension;
        var scratch = new float[d];
        if (Vectors is not null)
        {
            if (Dimension != d)
                throw new ArgumentException($"Anchors have dimension {Dimension} but the index has dimension {d}.", "anchors");
            Guard.Finite(Vectors, d, "anchors");
        }
        else
        {
            for (int i = 0; i < Count; i++)
                if (!index.TryReconstruct(CorpusAnchorIds![i], scratch))
                    throw new ArgumentException($"Anchor {i} has corpus id {CorpusAnchorIds[i]}, which is not in the index.", "anchors");
        }
        for (int i = 0; i < Count; i++)
        {
            var pos = Positives[i] ?? throw new ArgumentException($"Anchor {i} has a null positive list.", "positives");
            if (pos.Length == 0) throw new ArgumentException($"Anchor {i} has no positives; every anchor needs at least one.", "positives");
            foreach (long p in pos)
                if (p < 0 || !index.TryReconstruct(p, scratch))
                    throw new ArgumentException($"Positive id {p} of anchor {i} is out of range: it is not in the index ({index.Count} vectors).", "positives");
        }
    }

    private static void CheckCounts(int n, IReadOnlyList<long[]> positives, IReadOnlyList<long[]>? exclusions)
    {
        if (positives.Count != n)
            throw new ArgumentException($"Got {n} anchors but {positives.Count} positive lists: there must be one list per anchor.", nameof(positives));
        if (exclusions is not null && exclusions.Count != n)
            throw new ArgumentException($"Got {n} anchors but {exclusions.Count} exclusion lists.", nameof(exclusions));
    }
}
