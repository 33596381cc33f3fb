using System.Collections.Concurrent;

namespace Engine.Native;

/// <summary>What an <c>engine_index*</c> points at: the index plus the next automatic id.</summary>
internal sealed class IndexHandle(IVectorIndex index)
{
    private readonly AutoIds _ids = new(index.Count);

    /// <summary>The wrapped index.</summary>
    public IVectorIndex Index { get; } = index;

    /// <summary>
    /// Adds <paramref name="rows"/> under the next <paramref name="n"/> automatic ids and returns the first. The ids are
    /// taken only when the add succeeds: a rejected add (bad values, an untrained index) leaves the next id where it
    /// was, so automatic ids keep matching row numbers. Automatic adds through one handle run one at a time.
    /// </summary>
    /// <exception cref="InvalidOperationException">Fewer than <paramref name="n"/> ids (for n = 0: no id) are left below 2^63.</exception>
    public long AddWithAutoIds(ReadOnlySpan<float> rows, long n)
    {
        lock (_ids)
        {
            long first = _ids.Next(n);
            var auto = new long[n];
            for (int i = 0; i < auto.Length; i++) auto[i] = first + i;
            Index.Add(rows, auto);
            _ids.Taken(first, n);
            return first;
        }
    }

    /// <summary>Keeps automatic ids above every explicit id added through this handle.</summary>
    public void NoteIds(ReadOnlySpan<long> ids)
    {
        lock (_ids) _ids.Note(ids);
    }
}

/// <summary>
/// The automatic-id counter of a handle: the largest id taken so far (explicit or automatic). Not thread-safe; the
/// handle locks it. Kept as the largest id taken, not the next one, so that an explicit id of 2^63 − 1 is
/// representable: automatic ids after it are refused (<see cref="InvalidOperationException"/>, status 5) instead of
/// wrapping to negative ids or silently restarting below it.
/// </summary>
internal sealed class AutoIds(long count)
{
    private long _largest = count - 1;

    /// <summary>
    /// The first of <paramref name="n"/> consecutive ids after the largest taken. For n = 0 (an empty add) it is the id
    /// the next automatic add would start at, so it needs one id to be left too: once the largest id is 2^63 − 1 there
    /// is no next id to report, and an empty automatic add is refused like any other (it used to wrap to −2^63).
    /// </summary>
    /// <exception cref="InvalidOperationException">The ids would pass 2^63 − 1 (for n = 0: no id is left at all).</exception>
    public long Next(long n)
    {
        if (_largest > long.MaxValue - Math.Max(n, 1))
            throw new InvalidOperationException(n == 0
                ? $"No automatic ids are left after the largest id added through this handle ({_largest}, the largest possible id): even an empty add has no next id to report in first_id; pass explicit ids."
                : $"{n} automatic id(s) after the largest id added through this handle ({_largest}) would pass the largest possible id ({long.MaxValue}): no automatic ids are left; pass explicit ids.");
        return _largest + 1;
    }

    /// <summary>Records that <paramref name="n"/> ids from <paramref name="first"/> were added.</summary>
    public void Taken(long first, long n)
    {
        if (n > 0) _largest = Math.Max(_largest, first + n - 1);
    }

    /// <summary>Records explicit ids.</summary>
    public void Note(ReadOnlySpan<long> ids)
    {
        foreach (long id in ids) _largest = Math.Max(_largest, id);
    }
}

/// <summary>
/// Opaque handles handed to C: a number from a process-wide counter per object, registered in a live table, so that
/// null, freed, foreign or wrong-kind pointers are reported as <see cref="NativeStatus.InvalidHandle"/> instead of
/// crashing. A handle value is never handed out twice, so a stale pointer (freed, then used or freed again after other
/// objects were created) can never reach a newer object (a <see cref="System.Runtime.InteropServices.GCHandle"/>
/// address, which this used before, is reused as soon as it is freed). Lookup and removal are single atomic operations
/// on the table, so a free racing with a use on another thread either comes first (the use gets InvalidHandle) or
/// second (the use keeps its object; the index's own lock orders it against the dispose).
/// </summary>
internal static class NativeHandles
{
    // Handle values are multiples of 16 from 64 KiB up (they look like aligned addresses and stay clear of small
    // integers passed by mistake); 2^63 / 16 values never run out in a process's lifetime.
    private const long First = 0x10000, Step = 16;
    private static readonly ConcurrentDictionary<nint, object> s_live = new();
    private static long s_last = First - Step;

    /// <summary>Registers <paramref name="target"/> under a new, never reused handle value and returns it.</summary>
    public static nint Create(object target)
    {
        nint p = (nint)Interlocked.Add(ref s_last, Step);
        s_live[p] = target;
        return p;
    }

    /// <summary>Resolves a handle pointer to its object of type <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidHandleException">The pointer is null, freed, foreign or of another kind.</exception>
    public static T Get<T>(nint p, string what) where T : class
    {
        if (p == 0 || !s_live.TryGetValue(p, out object? target))
            throw new InvalidHandleException($"Invalid {what} handle: null, already freed, or not created by this library.");
        return target as T
            ?? throw new InvalidHandleException($"Invalid {what} handle: it points at another kind of object ({Kind(target)}).");
    }

    /// <summary>
    /// Unregisters a live handle of kind <typeparamref name="T"/> and returns its object (the caller releases it).
    /// A handle of another kind is refused and stays live, so freeing it through the wrong function destroys nothing.
    /// </summary>
    /// <exception cref="InvalidHandleException">The pointer is null, freed, foreign or of another kind.</exception>
    public static T Free<T>(nint p, string what) where T : class
    {
        T h = Get<T>(p, what);
        // The value of a key never changes (values are not reused), so removing the key removes exactly h; losing the
        // race to another free of the same handle is a double free.
        if (!s_live.TryRemove(p, out _))
            throw new InvalidHandleException($"Invalid {what} handle: null, already freed, or not created by this library.");
        return h;
    }

    private static string Kind(object target) => target switch
    {
        IndexHandle => "an engine_index",
        MultiVectorHandle => "an engine_mv_index",
        RangeSearchResult => "an engine_range_result",
        Engine.Mining.Evaluation.CalibratedCutoff => "an engine_cutoff",
        _ => target.GetType().Name,
    };
}

/// <summary>A handle passed from C is not a live handle of the expected kind.</summary>
internal sealed class InvalidHandleException(string message) : Exception(message);
