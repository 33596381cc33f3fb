using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Engine.Native;

/// <summary>What an <c>engine_index*</c> points at: the index plus the next automatic id.</summary>
internal sealed class IndexHandle(IVectorIndex index)
{
    private long _nextId = index.Count;
    private readonly object _idLock = new();

    /// <summary>The wrapped index.</summary>
    public IVectorIndex Index { get; } = index;

    /// <summary>
    /// Adds <paramref name="rows"/> under the next <paramref name="n"/> automatic ids and returns the first. The ids are
    /// taken only when the add succeeds: a rejected add (bad values, an untrained index) leaves the next id where it
    /// was, so automatic ids keep matching row numbers. Automatic adds through one handle run one at a time.
    /// </summary>
    public long AddWithAutoIds(ReadOnlySpan<float> rows, long n)
    {
        lock (_idLock)
        {
            long first = _nextId;
            var auto = new long[n];
            for (int i = 0; i < auto.Length; i++) auto[i] = first + i;
            Index.Add(rows, auto);
            _nextId = first + n;
            return first;
        }
    }

    /// <summary>Keeps automatic ids above every explicit id added through this handle.</summary>
    public void NoteIds(ReadOnlySpan<long> ids)
    {
        long max = -1;
        foreach (long id in ids) max = Math.Max(max, id);
        lock (_idLock) _nextId = Math.Max(_nextId, max + 1);
    }
}

/// <summary>
/// Opaque handles handed to C: a <see cref="GCHandle"/> per object, registered in a live set so that null,
/// freed or foreign pointers are reported as <see cref="NativeStatus.InvalidHandle"/> instead of crashing.
/// </summary>
internal static class NativeHandles
{
    private static readonly ConcurrentDictionary<nint, byte> s_live = new();

    /// <summary>Pins nothing; allocates a normal GC handle for <paramref name="target"/> and returns its pointer.</summary>
    public static nint Create(object target)
    {
        nint p = GCHandle.ToIntPtr(GCHandle.Alloc(target));
        s_live[p] = 0;
        return p;
    }

    /// <summary>Resolves a handle pointer to its object of type <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidHandleException">The pointer is null, freed, foreign or of another kind.</exception>
    public static T Get<T>(nint p, string what) where T : class
    {
        if (p == 0 || !s_live.ContainsKey(p))
            throw new InvalidHandleException($"Invalid {what} handle: null, already freed, or not created by this library.");
        return GCHandle.FromIntPtr(p).Target as T
            ?? throw new InvalidHandleException($"Invalid {what} handle: it points at another kind of object.");
    }

    /// <summary>Unregisters and frees a handle; returns its object, or null when the pointer was not live.</summary>
    public static object? Free(nint p)
    {
        if (p == 0 || !s_live.TryRemove(p, out _)) return null;
        var h = GCHandle.FromIntPtr(p);
        object? target = h.Target;
        h.Free();
        return target;
    }
}

/// <summary>A handle passed from C is not a live handle of the expected kind.</summary>
internal sealed class InvalidHandleException(string message) : Exception(message);
