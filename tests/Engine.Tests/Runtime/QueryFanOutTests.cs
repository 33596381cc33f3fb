using System.Collections.Concurrent;
using Engine.Runtime;

namespace Engine.Tests.Runtime;

/// <summary>The shared query fan-out: chunking independent of the thread count, one scratch per worker, errors as themselves.</summary>
public class QueryFanOutTests
{
    private sealed class Scratch
    {
        public int InUse;
    }

    private sealed class Log
    {
        public readonly ConcurrentBag<(int Chunk, int First, int Count)> Chunks = new();
        public readonly ConcurrentDictionary<Scratch, bool> Scratches = new();
        public int Overlaps;
        public int FailAt = -1;
    }

    private readonly struct Record(Log log) : IQueryChunk<Scratch>
    {
        public void Run(int chunk, int first, int count, Scratch s)
        {
            if (Interlocked.Exchange(ref s.InUse, 1) != 0) Interlocked.Increment(ref log.Overlaps);
            log.Scratches.TryAdd(s, true);
            log.Chunks.Add((chunk, first, count));
            Thread.SpinWait(200);
            Volatile.Write(ref s.InUse, 0);
            if (chunk == log.FailAt) throw new InvalidDataException($"chunk {chunk} failed");
        }
    }

    private readonly struct RecordPlain(Log log) : IQueryChunk
    {
        public void Run(int first, int count) => log.Chunks.Add((-1, first, count));
    }

    [Theory]
    [InlineData(1000, 64)]
    [InlineData(1000, 1)]
    [InlineData(7, 16)]
    [InlineData(64, 64)]
    public void Chunks_CoverEveryQueryOnce_TheSameForEveryThreadCount(int nq, int chunk)
    {
        List<(int, int, int)>? first = null;
        foreach (int threads in new[] { 1, 2, 3, 8, 0 })
        {
            var log = new Log();
            var pool = new ScratchPool<Scratch>(() => new Scratch(), capacity: 64);
            QueryFanOut.Run(nq, chunk, threads, pool, new Record(log));
            var got = log.Chunks.OrderBy(c => c.First).ToList();
            Assert.Equal(QueryFanOut.Chunks(nq, chunk), got.Count);
            int next = 0;
            foreach (var (c, f, n) in got)
            {
                Assert.Equal(next, f);
                Assert.Equal(f / chunk, c);
                Assert.Equal(Math.Min(chunk, nq - f), n);
                next = f + n;
            }
            Assert.Equal(nq, next);
            Assert.Equal(0, log.Overlaps); // a scratch is never used by two chunks at once
            if (threads == 1) Assert.Single(log.Scratches); // one worker: one scratch for the batch
            Assert.InRange(log.Scratches.Count, 1, Math.Max(1, threads == 0 ? Environment.ProcessorCount : threads));
            Assert.Equal(log.Scratches.Count, pool.Pooled); // every scratch went back
            first ??= got;
            Assert.Equal(first, got);

            var plain = new Log();
            QueryFanOut.Run(nq, chunk, threads, new RecordPlain(plain));
            Assert.Equal(got.Select(c => (c.Item2, c.Item3)), plain.Chunks.OrderBy(c => c.First).Select(c => (c.First, c.Count)));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void AFailingChunk_SurfacesAsItself_AndTheScratchGoesBack(int threads)
    {
        var log = new Log { FailAt = 3 };
        int created = 0;
        var pool = new ScratchPool<Scratch>(() => { Interlocked.Increment(ref created); return new Scratch(); }, capacity: 16);
        var e = Assert.Throws<InvalidDataException>(() => QueryFanOut.Run(100, 10, threads, pool, new Record(log)));
        Assert.Equal("chunk 3 failed", e.Message);
        Assert.Equal(created, pool.Pooled);
    }

    [Fact]
    public void BadArguments_AreRejected_AndAnEmptyBatchRunsNothing()
    {
        var log = new Log();
        var pool = new ScratchPool<Scratch>(() => new Scratch());
        Assert.Throws<ArgumentOutOfRangeException>(() => QueryFanOut.Run(10, 0, 1, pool, new Record(log)));
        Assert.Throws<ArgumentOutOfRangeException>(() => QueryFanOut.Run(10, 2, -1, pool, new Record(log)));
        Assert.Throws<ArgumentOutOfRangeException>(() => QueryFanOut.Run(-1, 2, 1, pool, new Record(log)));
        Assert.Throws<ArgumentOutOfRangeException>(() => QueryFanOut.Run(10, 0, 1, new RecordPlain(log)));
        QueryFanOut.Run(0, 4, 4, pool, new Record(log));
        QueryFanOut.Run(0, 4, 4, new RecordPlain(log));
        Assert.Empty(log.Chunks);
        Assert.Equal(0, pool.Pooled);
    }
}
