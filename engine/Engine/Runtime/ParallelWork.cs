using System.Runtime.ExceptionServices;

namespace Engine;

/// <summary>
/// The one place the engine runs loop bodies on several threads. A failing body surfaces as its own exception
/// (with its original stack), never as an <see cref="AggregateException"/>, so the exception a caller sees does not
/// depend on the thread count: a corrupt posting is a <see cref="CorruptIndexException"/> with 1 thread or 64.
/// </summary>
public static class ParallelWork
{
    /// <summary><see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/> on at most
    /// <paramref name="threads"/> threads (0 = all processors), rethrowing the first failure unwrapped.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is negative.</exception>
    public static void For(int fromInclusive, int toExclusive, int threads, Action<int> body)
    {
        try
        {
            Parallel.For(fromInclusive, toExclusive, Options(threads), body);
        }
        catch (AggregateException e)
        {
            throw Unwrap(e);
        }
    }

    /// <summary>The thread-local overload of <see cref="Parallel.For{TLocal}(int, int, ParallelOptions, Func{TLocal}, Func{int, ParallelLoopState, TLocal, TLocal}, Action{TLocal})"/>,
    /// rethrowing the first failure unwrapped.</summary>
    public static void For<TLocal>(int fromInclusive, int toExclusive, int threads, Func<TLocal> localInit,
        Func<int, ParallelLoopState, TLocal, TLocal> body, Action<TLocal> localFinally)
    {
        try
        {
            Parallel.For(fromInclusive, toExclusive, Options(threads), localInit, body, localFinally);
        }
        catch (AggregateException e)
        {
            throw Unwrap(e);
        }
    }

    /// <summary>
    /// Rethrows the first exception inside <paramref name="e"/> (flattened) with its original stack trace. Only an
    /// aggregate without inner exceptions is returned (for the caller to throw as is).
    /// </summary>
    public static Exception Unwrap(AggregateException e)
    {
        var inner = e.Flatten().InnerExceptions;
        if (inner.Count > 0) ExceptionDispatchInfo.Capture(inner[0]).Throw();
        return e;
    }

    /// <summary>Rethrows <paramref name="e"/> (caught on another thread) with its original stack trace; an
    /// <see cref="AggregateException"/> is unwrapped first.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void Rethrow(Exception e)
    {
        if (e is AggregateException a) throw Unwrap(a);
        ExceptionDispatchInfo.Capture(e).Throw();
    }

    // 0 = all processors; a negative count is a caller's mistake, never "all cores" (public APIs check it first with
    // their own parameter name; this is the backstop for every parallel loop).
    private static ParallelOptions Options(int threads)
    {
        SearchParameters.CheckThreads(threads, nameof(threads));
        return new() { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount };
    }
}
