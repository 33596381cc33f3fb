using System.Collections.Concurrent;
using Engine.Runtime;

namespace Engine.Tests.Runtime;

/// <summary>The shared scratch pool: reuse, bounds, clearing, and one owner per object at a time.</summary>
public class ScratchPoolTests
{
    private sealed class Box
    {
        public int Owners;
    }

    [Fact]
    public void Rent_ReusesWhatWasReturned_AndCreatesOnlyWhenEmpty()
    {
        int created = 0;
        var pool = new ScratchPool<Box>(() => { created++; return new Box(); }, capacity: 4);
        var a = pool.Rent();
        pool.Return(a);
        Assert.Same(a, pool.Rent()); // one thread gets its own object back
        var b = pool.Rent();         // a is out: a second renter gets another object
        Assert.NotSame(a, b);
        Assert.Equal(2, created);
        pool.Return(a);
        pool.Return(b);
        Assert.Equal(2, pool.Pooled);
        pool.Rent();
        pool.Rent();
        Assert.Equal(2, created);
        Assert.Equal(0, pool.Pooled);
    }

    [Fact]
    public void Return_ToAFullPool_DropsTheObject()
    {
        var pool = new ScratchPool<Box>(() => new Box(), capacity: 3);
        var rented = Enumerable.Range(0, 5).Select(_ => pool.Rent()).ToArray();
        Assert.Equal(5, rented.Distinct().Count());
        foreach (var r in rented) pool.Return(r);
        Assert.Equal(3, pool.Pooled);
        Assert.Equal(3, pool.Capacity);
    }

    [Fact]
    public void Clear_EmptiesThePool()
    {
        int created = 0;
        var pool = new ScratchPool<Box>(() => { created++; return new Box(); }, capacity: 4);
        var a = pool.Rent();
        pool.Return(a);
        pool.Clear();
        Assert.Equal(0, pool.Pooled);
        Assert.NotSame(a, pool.Rent());
        Assert.Equal(2, created);
    }

    [Fact]
    public void BadArguments_AreRejected()
    {
        Assert.Throws<ArgumentNullException>(() => new ScratchPool<Box>(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ScratchPool<Box>(() => new Box(), capacity: -1));
        Assert.Throws<ArgumentNullException>(() => new ScratchPool<Box>(() => new Box()).Return(null!));
        Assert.True(new ScratchPool<Box>(() => new Box()).Capacity >= 4);
    }

    [Fact]
    public void ConcurrentRenters_NeverShareAnObject()
    {
        var pool = new ScratchPool<Box>(() => new Box(), capacity: 4);
        int shared = 0;
        var seen = new ConcurrentDictionary<Box, bool>();
        Parallel.For(0, 20_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ =>
        {
            var b = pool.Rent();
            seen.TryAdd(b, true);
            if (Interlocked.Increment(ref b.Owners) != 1) Interlocked.Increment(ref shared);
            Interlocked.Decrement(ref b.Owners);
            pool.Return(b);
        });
        Assert.Equal(0, shared);
        Assert.InRange(pool.Pooled, 1, 4);
    }
}
