namespace Engine.Runtime;

/// <summary>
/// The one pool of per-thread search scratch (usearch's <c>contexts_</c>, SPTAG's <c>ExtraWorkSpace</c>, Lance's
/// <c>QueryScratchPool</c>): an index keeps one, a search rents one scratch object per worker for a whole batch or
/// chunk of queries and returns it when done. What a scratch holds stays the index's own (<typeparamref name="T"/>);
/// only the pooling is shared.
/// </summary>
/// <remarks>
/// <para>Rented per call, never per thread (<c>[ThreadStatic]</c>): a search whose <see cref="IIdFilter"/> searches
/// the same index again on the same thread rents a second scratch instead of overwriting the one still in use.</para>
/// <para>Bounded and lock-free: a fixed array of slots taken and filled with one compare-and-swap each; renting from
/// an empty pool creates a new object, returning to a full one drops it (the GC reclaims it). Each thread starts
/// its scan at a slot of its own, so a thread usually gets back the scratch it returned (still warm in its cache) and
/// concurrent renters rarely touch the same slot. The steady path allocates nothing.</para>
/// </remarks>
/// <typeparam name="T">The scratch type.</typeparam>
internal sealed class ScratchPool<T> where T : class
{
    private readonly T?[] _items;
    private readonly Func<T> _create;

    /// <summary>Creates an empty pool.</summary>
    /// <param name="create">Makes a new scratch object when the pool is empty.</param>
    /// <param name="capacity">Most objects kept; 0 for twice the processor count (at least 4).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is negative.</exception>
    public ScratchPool(Func<T> create, int capacity = 0)
    {
        ArgumentNullException.ThrowIfNull(create);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _create = create;
        _items = new T?[capacity > 0 ? capacity : Math.Max(4, 2 * Environment.ProcessorCount)];
        RentFunc = Rent;
        ReturnAction = Return;
    }

    /// <summary><see cref="Rent"/> as a delegate made once (a thread-local initialiser of <see cref="ParallelWork"/> loops
    /// without allocating a delegate per call).</summary>
    public Func<T> RentFunc { get; }

    /// <summary><see cref="Return"/> as a delegate made once.</summary>
    public Action<T> ReturnAction { get; }

    /// <summary>Most objects the pool keeps.</summary>
    public int Capacity => _items.Length;

    /// <summary>A pooled object, or a new one when none is free. The caller owns it until <see cref="Return"/>.</summary>
    public T Rent()
    {
        var items = _items;
        int n = items.Length, j = Start(n);
        for (int i = 0; i < n; i++)
        {
            var item = Volatile.Read(ref items[j]);
            if (item is not null && ReferenceEquals(Interlocked.CompareExchange(ref items[j], null, item), item)) return item;
            if (++j == n) j = 0;
        }
        return _create();
    }

    /// <summary>Gives <paramref name="item"/> back (it must not be used afterwards); dropped when the pool is full.</summary>
    public void Return(T item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var items = _items;
        int n = items.Length, j = Start(n);
        for (int i = 0; i < n; i++)
        {
            if (Volatile.Read(ref items[j]) is null && Interlocked.CompareExchange(ref items[j], item, null) is null) return;
            if (++j == n) j = 0;
        }
    }

    /// <summary>Drops every pooled object (objects rented now are still returned later): for scratch that holds state
    /// derived from the index (an IVF list scanner holds the residual tables), called when that state changes.</summary>
    public void Clear()
    {
        for (int i = 0; i < _items.Length; i++) Volatile.Write(ref _items[i], null);
    }

    /// <summary>Objects in the pool now (a snapshot; for tests).</summary>
    internal int Pooled
    {
        get
        {
            int c = 0;
            for (int i = 0; i < _items.Length; i++) if (Volatile.Read(ref _items[i]) is not null) c++;
            return c;
        }
    }

    // The calling thread's first slot: threads spread over the slots, and one thread comes back to the same slot.
    private static int Start(int n) => (int)((uint)Environment.CurrentManagedThreadId % (uint)n);
}
