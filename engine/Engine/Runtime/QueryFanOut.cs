namespace Engine.Runtime;

/// <summary>The work of one chunk of a query batch, given the scratch of the worker that runs it.</summary>
/// <typeparam name="TScratch">The index's scratch type.</typeparam>
internal interface IQueryChunk<in TScratch>
{
    /// <summary>Answers queries [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) of the
    /// batch (chunk number <paramref name="chunk"/>), writing only their rows of the output.</summary>
    void Run(int chunk, int first, int count, TScratch scratch);
}

/// <summary>The work of one chunk of a query batch that needs no pooled scratch.</summary>
internal interface IQueryChunk
{
    /// <summary>Answers queries [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) of the batch.</summary>
    void Run(int first, int count);
}

/// <summary>
/// The one query fan-out of the engine's searches: a batch of nq queries is cut into chunks of a fixed size (the
/// index's choice: a chunk is what its kernels batch, such as one coarse GEMM), and the chunks are handed out to at
/// most <c>threads</c> workers, each renting one scratch object from the index's <see cref="ScratchPool{T}"/> for all the
/// chunks it runs.
/// </summary>
/// <remarks>
/// <para>Determinism: chunk boundaries depend only on nq and the chunk size the caller passes, every chunk writes
/// only its own output rows, and nothing is shared between chunks but read-only index state; so which worker runs a
/// chunk (and how many workers there are) does not change any result.</para>
/// <para>One worker (threads = 1, or a single chunk) runs every chunk in order on the calling thread with one
/// rented scratch and allocates nothing. Several workers go through <see cref="ParallelWork"/>: a failing chunk's
/// exception surfaces as itself (never an <see cref="AggregateException"/>), and the scratch objects of all workers
/// go back to the pool, also after a failure. The body is a struct (a type parameter), so the call is
/// specialised for it and nothing is boxed.</para>
/// <para>No cancellation: <see cref="IVectorIndex.Search"/> takes no token.</para>
/// </remarks>
internal static class QueryFanOut
{
    /// <summary>Number of chunks of <paramref name="chunk"/> queries in a batch of <paramref name="nq"/>.</summary>
    public static int Chunks(int nq, int chunk) => (int)(((long)nq + chunk - 1) / chunk);

    /// <summary>Workers that <see cref="Run{TScratch, TBody}"/> uses for <paramref name="chunks"/> chunks on at most
    /// <paramref name="threads"/> threads (0 = all processors).</summary>
    public static int Workers(int chunks, int threads) =>
        Math.Max(1, Math.Min(threads > 0 ? threads : Environment.ProcessorCount, chunks));

    /// <summary>Runs <paramref name="body"/> over the chunks of a batch of <paramref name="nq"/> queries.</summary>
    /// <param name="nq">Queries in the batch (0 runs nothing).</param>
    /// <param name="chunk">Queries per chunk, at least 1; the last chunk may be shorter.</param>
    /// <param name="threads">Most workers (0 = all processors).</param>
    /// <param name="pool">Where each worker rents its scratch.</param>
    /// <param name="body">The chunk's work.</param>
    /// <exception cref="ArgumentOutOfRangeException">Negative <paramref name="nq"/> or threads, or <paramref name="chunk"/> below 1.</exception>
    public static void Run<TScratch, TBody>(int nq, int chunk, int threads, ScratchPool<TScratch> pool, TBody body)
        where TScratch : class
        where TBody : struct, IQueryChunk<TScratch>
    {
        int chunks = Check(nq, chunk, threads);
        if (chunks == 0) return;
        if (Workers(chunks, threads) == 1)
        {
            var s = pool.Rent();
            try
            {
                for (int c = 0; c < chunks; c++)
                {
                    int first = c * chunk;
                    body.Run(c, first, Math.Min(chunk, nq - first), s);
                }
            }
            finally { pool.Return(s); }
            return;
        }
        RunParallel(nq, chunk, chunks, Workers(chunks, threads), pool, body);
    }

    /// <summary>Runs <paramref name="body"/> over the chunks of a batch of <paramref name="nq"/> queries (no scratch).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative <paramref name="nq"/> or threads, or <paramref name="chunk"/> below 1.</exception>
    public static void Run<TBody>(int nq, int chunk, int threads, TBody body) where TBody : struct, IQueryChunk
    {
        int chunks = Check(nq, chunk, threads);
        if (chunks == 0) return;
        if (Workers(chunks, threads) == 1)
        {
            for (int first = 0; first < nq; first += chunk) body.Run(first, Math.Min(chunk, nq - first));
            return;
        }
        RunParallel(nq, chunk, chunks, Workers(chunks, threads), body);
    }

    private static int Check(int nq, int chunk, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nq);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 1);
        SearchParameters.CheckThreads(threads, nameof(threads));
        return Chunks(nq, chunk);
    }

    // Separate methods: their closures are allocated only when a batch really runs on several workers.
    private static void RunParallel<TScratch, TBody>(int nq, int chunk, int chunks, int workers, ScratchPool<TScratch> pool, TBody body)
        where TScratch : class
        where TBody : struct, IQueryChunk<TScratch> =>
        ParallelWork.For(0, chunks, workers, pool.RentFunc,
            (c, _, s) =>
            {
                int first = c * chunk;
                body.Run(c, first, Math.Min(chunk, nq - first), s);
                return s;
            },
            pool.ReturnAction);

    private static void RunParallel<TBody>(int nq, int chunk, int chunks, int workers, TBody body) where TBody : struct, IQueryChunk =>
        ParallelWork.For(0, chunks, workers, c =>
        {
            int first = c * chunk;
            body.Run(first, Math.Min(chunk, nq - first));
        });
}
