namespace Engine.Index;

/// <summary>
/// The reader-writer lock of an index that can be disposed while other threads use it: <see cref="Close"/> releases the
/// index's resources under the write lock (readers and writers in flight finish first), and every later
/// <see cref="EnterRead"/> / <see cref="EnterWrite"/>, also by a thread that was already waiting for the lock, throws
/// <see cref="ObjectDisposedException"/>. The underlying <see cref="ReaderWriterLockSlim"/> is never disposed: disposing
/// one that has waiters throws <see cref="SynchronizationLockException"/> (what disposing an index during searches used
/// to do); it holds nothing the GC does not reclaim.
/// <para>The read lock is re-entrant: an <see cref="IIdFilter"/> called inside a search may search the same index again
/// on the same thread (a recursive read is granted even while a writer waits, so it cannot deadlock behind one). Taking
/// the write lock while holding the read lock (a filter that mutates the index it filters) throws
/// <see cref="LockRecursionException"/>.</para>
/// </summary>
internal sealed class IndexLock(string objectName)
{
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.SupportsRecursion);
    private volatile bool _closed;

    /// <summary>True once <see cref="Close"/> ran.</summary>
    public bool IsClosed => _closed;

    /// <summary>Takes the read lock.</summary>
    /// <exception cref="ObjectDisposedException">The index was disposed.</exception>
    public void EnterRead()
    {
        _lock.EnterReadLock();
        if (!_closed) return;
        _lock.ExitReadLock();
        throw new ObjectDisposedException(objectName);
    }

    /// <summary>Releases the read lock.</summary>
    public void ExitRead() => _lock.ExitReadLock();

    /// <summary>Takes the write lock.</summary>
    /// <exception cref="ObjectDisposedException">The index was disposed.</exception>
    public void EnterWrite()
    {
        _lock.EnterWriteLock();
        if (!_closed) return;
        _lock.ExitWriteLock();
        throw new ObjectDisposedException(objectName);
    }

    /// <summary>Releases the write lock.</summary>
    public void ExitWrite() => _lock.ExitWriteLock();

    /// <summary>Runs <paramref name="release"/> once, under the write lock, and closes the lock; later calls do nothing.</summary>
    public void Close(Action release)
    {
        _lock.EnterWriteLock();
        try
        {
            if (_closed) return;
            _closed = true;
            release();
        }
        finally { _lock.ExitWriteLock(); }
    }
}
