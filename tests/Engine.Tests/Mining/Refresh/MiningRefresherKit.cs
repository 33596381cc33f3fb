using Engine.Index;
using Engine.Tests.Support;
using Engine.Mining;

namespace Engine.Tests.Mining.Refresh;

/// <summary>Seeded data and instrumented indexes for the MiningRefresher tests.</summary>
internal static class MiningRefresherKit
{
    /// <summary>The vector of corpus item <paramref name="id"/> as embedded at <paramref name="step"/>: a seeded
    /// Gaussian, distinct for every (id, step), so a score tells which version of an item an index held.</summary>
    public static float[] Vector(long id, long step, int d)
    {
        // SplitMix64 on (id, step): seeded System.Random gives correlated streams for nearby seeds.
        ulong state = unchecked((ulong)id * 0x9E3779B97F4A7C15UL ^ (ulong)step * 0xC2B2AE3D27D4EB4FUL ^ 0x165667B19E3779F9UL);
        var v = new float[d];
        for (int j = 0; j < d; j++)
        {
            ulong z = unchecked(state += 0x9E3779B97F4A7C15UL);
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            z ^= z >> 31;
            v[j] = (float)((z >> 11) * (1.0 / (1UL << 53)) * 2 - 1);
        }
        return v;
    }

    public static float[] Vectors(IReadOnlyList<long> ids, long step, int d)
    {
        var x = new float[ids.Count * d];
        for (int i = 0; i < ids.Count; i++) Vector(ids[i], step, d).CopyTo(x, i * d);
        return x;
    }

    public static float[] Corpus(int n, int d) => Vectors(Enumerable.Range(0, n).Select(i => (long)i).ToArray(), 0, d);

    /// <summary>External anchors with one positive each (anchor i → corpus id (i * 7) % n).</summary>
    public static MiningInput Anchors(int count, int n, int d, int seed)
    {
        var q = TestData.Gaussian(count, d, seed);
        var positives = new long[count][];
        for (int i = 0; i < count; i++) positives[i] = [(i * 7L) % n];
        return MiningInput.FromVectors(q, d, positives);
    }

    public static MiningOptions TestMining => new() { NumNegatives = 5, RangeMax = 30, Threads = 1 };

    public static Func<int, IVectorIndex> Factory(string spec) => dim => IndexFactory.Create(spec, dim, Metric.InnerProduct);

    /// <summary>Awaits with a generous bound, so a bug shows as a failure rather than a hung test run.</summary>
    public static async Task<T> Within<T>(Task<T> task) => await task.WaitAsync(TimeSpan.FromSeconds(60));

    public static async Task Within(Task task) => await task.WaitAsync(TimeSpan.FromSeconds(60));
}

/// <summary>Hooks shared by every <see cref="HookedIndex"/> a factory made.</summary>
internal sealed class IndexHooks
{
    public volatile bool FailAdds;
    public volatile bool FailSearches;
    public volatile bool RemoveUnsupported;
    private int _blockNextSearch;
    public readonly ManualResetEventSlim SearchEntered = new(false);
    public readonly ManualResetEventSlim SearchRelease = new(false);
    public readonly List<HookedIndex> Made = [];

    /// <summary>The next Search call (by any copy) signals <see cref="SearchEntered"/> and waits for <see cref="SearchRelease"/>.</summary>
    public void BlockNextSearch()
    {
        SearchEntered.Reset();
        SearchRelease.Reset();
        Volatile.Write(ref _blockNextSearch, 1);
    }

    public bool TakeBlock() => Interlocked.Exchange(ref _blockNextSearch, 0) == 1;

    public Func<int, IVectorIndex> Factory(string spec = "Flat") => dim =>
    {
        var index = new HookedIndex(IndexFactory.Create(spec, dim, Metric.InnerProduct), this);
        lock (Made) Made.Add(index);
        return index;
    };
}

/// <summary>An index that forwards to a real one, with injected failures and a search gate.</summary>
internal sealed class HookedIndex(IVectorIndex inner, IndexHooks hooks) : IVectorIndex
{
    public int Dimension => inner.Dimension;
    public Metric Metric => inner.Metric;
    public long Count => inner.Count;
    public bool IsTrained => inner.IsTrained;
    public string Description => "Hooked(" + inner.Description + ")";
    public long MemoryBytes => inner.MemoryBytes;
    public bool Disposed { get; private set; }
    public void Train(ReadOnlySpan<float> vectors) => inner.Train(vectors);

    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        if (hooks.FailAdds) throw new IOException("injected: the device is full");
        inner.Add(vectors, ids);
    }

    public void Search(ReadOnlySpan<float> queries, int k, Span<float> distances, Span<long> labels, SearchParameters? parameters = null)
    {
        if (hooks.FailSearches) throw new IOException("injected: search failed");
        if (hooks.TakeBlock())
        {
            hooks.SearchEntered.Set();
            if (!hooks.SearchRelease.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("the test never released the search");
        }
        inner.Search(queries, k, distances, labels, parameters);
    }

    public int Remove(ReadOnlySpan<long> ids) =>
        hooks.RemoveUnsupported ? throw new NotSupportedException("this index is read-only") : inner.Remove(ids);

    public bool TryReconstruct(long id, Span<float> destination) => inner.TryReconstruct(id, destination);
    public void Save(string path) => inner.Save(path);

    public void Dispose()
    {
        Disposed = true;
        inner.Dispose();
    }
}
