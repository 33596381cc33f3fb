namespace Engine;

/// <summary>
/// Per-call search options. Never global state: each call passes its own (faiss <c>SearchParameters</c>).
/// Index families derive from this to add their knobs (probes, refine factor, ...).
/// </summary>
public class SearchParameters
{
    /// <summary>
    /// Worker threads for this call: 0 (the default) means <see cref="Environment.ProcessorCount"/>, n &gt; 0 at most
    /// n threads. Negative values are rejected by <see cref="Validate"/> (<see cref="ArgumentOutOfRangeException"/>).
    /// The results and the exceptions a search throws do not depend on it.
    /// </summary>
    public int Threads { get; init; }

    /// <summary>Optional filter: only ids it allows are returned.</summary>
    public IIdFilter? Filter { get; init; }

    /// <summary>When set, the search adds its counters here (thread-safe accumulation).</summary>
    public SearchStats? Stats { get; init; }

    /// <summary>
    /// The index family whose knobs these parameters carry (<c>"IVF"</c>, <c>"HNSW"</c>, <c>"SPANN"</c>), or null for
    /// the plain parameters every index takes. An index rejects parameters of another family rather than silently
    /// ignoring their knobs (<see cref="CheckFamily"/>).
    /// </summary>
    public virtual string? IndexFamily => null;

    /// <summary>
    /// Rejects <paramref name="parameters"/> that belong to another index family than <paramref name="family"/>
    /// (null: an index without a family of its own, which takes only plain <see cref="SearchParameters"/>).
    /// </summary>
    /// <param name="parameters">The call's parameters (null passes).</param>
    /// <param name="family">The family of the index being searched, or null.</param>
    /// <param name="index">The index being searched (its description names it in the message; read only on failure,
    /// so the check allocates nothing).</param>
    /// <exception cref="ArgumentException">The parameters carry another family's knobs.</exception>
    public static void CheckFamily(SearchParameters? parameters, string? family, IVectorIndex index)
    {
        string? got = parameters?.IndexFamily;
        if (got is null || got == family) return;
        string takes = family is null ? "plain SearchParameters" : $"SearchParameters or the {family} family's parameters";
        throw new ArgumentException(
            $"A '{index.Description}' index cannot use {parameters!.GetType().Name} (knobs of the {got} family, which it would ignore); it takes {takes}.",
            nameof(parameters));
    }

    /// <summary>Resolved thread count (at least 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="Threads"/> is negative.</exception>
    public int ResolveThreads()
    {
        CheckThreads(Threads);
        return Threads > 0 ? Threads : Environment.ProcessorCount;
    }

    /// <summary>
    /// Checks every knob against its allowed range (the index checks the limits that depend on it, such as a
    /// probe count above the IVF list count). Every index calls it before searching.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A knob is out of range; the exception names it and the range.</exception>
    public virtual void Validate() => CheckThreads(Threads);

    /// <summary>Rejects a negative thread count (0 = all processors).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is negative.</exception>
    public static void CheckThreads(int threads, string paramName = nameof(Threads))
    {
        if (threads < 0)
            throw new ArgumentOutOfRangeException(paramName, threads, $"{paramName} must be >= 0 (0 = all processors), got {threads}.");
    }
}

/// <summary>Decides which ids a search may return.</summary>
/// <remarks>A filter may read the index it filters (search it, reconstruct vectors) when the outer search runs on one
/// thread (<see cref="SearchParameters.Threads"/> = 1): the index's read lock is re-entrant on that thread. With more
/// threads the filter runs on worker threads that do not hold the lock, and a writer waiting for the index (an add, a
/// remove) blocks their nested reads while it waits for the outer search: a deadlock. A filter must never write to
/// the index it filters.</remarks>
public interface IIdFilter
{
    /// <summary>True when <paramref name="id"/> may appear in results.</summary>
    bool IsAllowed(long id);

    /// <summary>
    /// An estimate of the fraction of the corpus the filter allows (0..1), or a negative number when unknown.
    /// Indexes use it to switch to exact search over the allowed set when that is cheaper.
    /// </summary>
    double EstimatedSelectivity(long corpusCount) => -1;
}

/// <summary>Allows exactly the ids in a set (an allow-list).</summary>
public sealed class IdAllowListFilter : IIdFilter
{
    private readonly HashSet<long> _ids;

    /// <summary>Creates the filter from the allowed ids.</summary>
    public IdAllowListFilter(IEnumerable<long> ids) => _ids = new HashSet<long>(ids);

    /// <summary>The allowed ids.</summary>
    public IReadOnlyCollection<long> Ids => _ids;

    /// <inheritdoc />
    public bool IsAllowed(long id) => _ids.Contains(id);

    /// <inheritdoc />
    public double EstimatedSelectivity(long corpusCount) =>
        corpusCount <= 0 ? 0 : Math.Min(1.0, _ids.Count / (double)corpusCount);
}

/// <summary>Counters a search adds to. Safe to share between threads of one call.</summary>
public sealed class SearchStats
{
    private long _queries, _distances, _listsProbed, _codesScanned, _refined, _bytesRead, _postingsRead, _cacheHits;
    private int _exactFallbacks;

    /// <summary>Queries answered.</summary>
    public long Queries => Interlocked.Read(ref _queries);
    /// <summary>Full-precision distances computed.</summary>
    public long DistancesComputed => Interlocked.Read(ref _distances);
    /// <summary>Inverted lists / postings probed.</summary>
    public long ListsProbed => Interlocked.Read(ref _listsProbed);
    /// <summary>Compressed codes scanned.</summary>
    public long CodesScanned => Interlocked.Read(ref _codesScanned);
    /// <summary>Candidates re-ranked with stored vectors.</summary>
    public long Refined => Interlocked.Read(ref _refined);
    /// <summary>Bytes read from storage (disk indexes).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);
    /// <summary>Postings read from storage (disk indexes).</summary>
    public long PostingsRead => Interlocked.Read(ref _postingsRead);
    /// <summary>Postings served from the read cache (disk indexes).</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);
    /// <summary>Calls that switched to exact search over a filter's allowed set.</summary>
    public int ExactFallbacks => Volatile.Read(ref _exactFallbacks);

    /// <summary>Adds counters (called by indexes).</summary>
    public void Add(long queries = 0, long distances = 0, long listsProbed = 0, long codesScanned = 0,
        long refined = 0, long bytesRead = 0, long postingsRead = 0, long cacheHits = 0)
    {
        if (queries != 0) Interlocked.Add(ref _queries, queries);
        if (distances != 0) Interlocked.Add(ref _distances, distances);
        if (listsProbed != 0) Interlocked.Add(ref _listsProbed, listsProbed);
        if (codesScanned != 0) Interlocked.Add(ref _codesScanned, codesScanned);
        if (refined != 0) Interlocked.Add(ref _refined, refined);
        if (bytesRead != 0) Interlocked.Add(ref _bytesRead, bytesRead);
        if (postingsRead != 0) Interlocked.Add(ref _postingsRead, postingsRead);
        if (cacheHits != 0) Interlocked.Add(ref _cacheHits, cacheHits);
    }

    /// <summary>Records that a call answered by exact search over a filter's allowed set.</summary>
    public void AddExactFallback() => Interlocked.Increment(ref _exactFallbacks);
}
