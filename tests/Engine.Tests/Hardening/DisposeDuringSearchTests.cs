using Engine.Index;
using Engine.Tests.Ivf;

namespace Engine.Tests.Hardening;

/// <summary>
/// Disposing an index while other threads search it (every index type that shares <c>IndexLock</c>): searches in flight
/// finish, later ones, also those already waiting for the lock, fail with <see cref="ObjectDisposedException"/>, and
/// <c>Dispose</c> itself does not throw (it used to throw SynchronizationLockException when searches were waiting).
/// </summary>
public class DisposeDuringSearchTests
{
    [Theory]
    [InlineData("Flat")]
    [InlineData("HNSW16")]
    [InlineData("IVF16,PQ8x4fs,RFlat")]
    public void DisposeDuringSearches_EndsThemWithObjectDisposedException(string spec)
    {
        const int d = 16, n = 3000;
        var data = IvfTestData.Clustered(n, d, 20, seed: 61);
        var queries = IvfTestData.Clustered(100, d, 20, seed: 62);
        for (int round = 0; round < 4; round++)
        {
            var index = IndexFactory.Create(spec, d, Metric.L2);
            if (!index.IsTrained) index.Train(data);
            index.Add(data, IvfTestData.Ids(n));
            SearchWhileDisposing(index, () =>
            {
                var dd = new float[100 * 5]; var ll = new long[100 * 5];
                return () => index.Search(queries, 5, dd, ll, new SearchParameters { Threads = 1 });
            }, 3 + 5 * round);
            index.Dispose(); // idempotent
            Assert.Throws<ObjectDisposedException>(() => { index.Search(queries.AsSpan(0, d), 1, new float[1], new long[1]); });
        }
    }

    /// <summary>
    /// Two threads each make a search with <paramref name="newSearch"/> (its own buffers) and run it in a loop while this
    /// thread disposes <paramref name="index"/> after <paramref name="delayMs"/>: the searches must end within a
    /// minute, by finishing or with ObjectDisposedException, nothing else.
    /// </summary>
    internal static void SearchWhileDisposing(IDisposable index, Func<Action> newSearch, int delayMs)
    {
        var started = new CountdownEvent(2);
        var unexpected = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var searchers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            var search = newSearch();
            started.Signal();
            try
            {
                for (int i = 0; i < 100_000; i++) search();
            }
            catch (ObjectDisposedException) { }
            catch (Exception e) { unexpected.Add(e); }
        })).ToArray();
        foreach (var t in searchers) t.Start();
        started.Wait();
        Thread.Sleep(delayMs);
        index.Dispose();
        foreach (var t in searchers) Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a search did not end after Dispose");
        Assert.Empty(unexpected);
    }
}
