using System.Diagnostics;
using Engine.Distance;

namespace Engine.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/Engine.Benchmarks -- scan [repeats]</c>: a quick, non-BenchmarkDotNet
/// report of single-thread stream-read GB/s, single-query Flat scan GB/s (60k × 784, seeded random data), their
/// ratio, DotManyToMany GFLOP/s and the bytes allocated per search. Every figure is a median of repeats.
/// </summary>
public static class ScanReport
{
    public static int Run(string[] args)
    {
        int repeats = args.Length > 0 && int.TryParse(args[0], out int r) && r > 0 ? r : 15;
        Console.WriteLine($"Simd level: {Simd.Best}, repeats: {repeats}");

        var stream = Workloads.RandomFloats(8, Workloads.StreamBytes / sizeof(float));
        using var index = Workloads.BuildFlat();
        var one = new SearchParameters { Threads = 1 };
        int d = Workloads.FlatDim;
        var queries = Workloads.RandomFloats(7, 32L * d);
        var dist = new float[32 * 10];
        var labels = new long[32 * 10];
        var corpus = index.Vectors.ToArray();
        var kernelOut = new float[Workloads.FlatRows];
        double scanBytes = (double)corpus.Length * sizeof(float);

        // The machine may be shared: stream, scan and kernel are timed back to back in each repeat and the
        // ratio is taken per repeat, so a neighbour's burst hits both sides of a ratio alike.
        var t = Interleaved(repeats,
            () => Workloads.StreamSum(stream),
            () => index.Search(queries.AsSpan(0, d), 10, dist.AsSpan(0, 10), labels.AsSpan(0, 10), one),
            () => Distances.SquaredL2OneToMany(queries.AsSpan(0, d), corpus, kernelOut));
        double streamGBs = Workloads.StreamBytes / Median(t[0]) / 1e9;
        double scanGBs = scanBytes / Median(t[1]) / 1e9;
        double kernelGBs = scanBytes / Median(t[2]) / 1e9;
        double ratio = Median(t[0].Zip(t[1], (s, f) => Workloads.StreamBytes / s / (scanBytes / f)).ToArray());
        double kernelRatio = Median(t[0].Zip(t[2], (s, f) => Workloads.StreamBytes / s / (scanBytes / f)).ToArray());
        stream = [];
        long allocated = AllocatedPerCall(() => index.Search(queries.AsSpan(0, d), 10, dist.AsSpan(0, 10), labels.AsSpan(0, 10), one));
        double batchSeconds = Median(Interleaved(Math.Max(3, repeats / 3), () => index.Search(queries, 10, dist, labels, one))[0]);
        long batchAllocated = AllocatedPerCall(() => index.Search(queries, 10, dist, labels, one));

        Console.WriteLine($"stream read (1 thread, 256 MB)        : {streamGBs,8:F2} GB/s");
        Console.WriteLine($"flat scan, 1 query (60k x 784, 1 t)   : {scanGBs,8:F2} GB/s  ({scanBytes / 1e6 / scanGBs:F2} ms)");
        Console.WriteLine($"ratio scan / stream (median of pairs) : {1 / ratio,8:P1}");
        Console.WriteLine($"SquaredL2OneToMany kernel alone       : {kernelGBs,8:F2} GB/s  ({1 / kernelRatio:P1} of stream)");
        Console.WriteLine($"allocated per single-query search     : {allocated,8} B");
        Console.WriteLine($"flat batch of 32 queries (1 thread)   : {batchSeconds * 1e3,8:F2} ms, {2.0 * 32 * scanBytes / 4 / batchSeconds / 1e9:F1} GFLOP/s, {batchAllocated} B allocated");

        foreach (int dim in new[] { 128, 784, 1000 })
        {
            const int nx = 32, ny = 1024;
            var x = Workloads.RandomFloats(4, (long)nx * dim);
            var y = Workloads.RandomFloats(5, (long)ny * dim);
            var res = new float[nx * ny];
            // Many calls per sample so the timer resolution does not matter.
            const int calls = 20;
            double s = Median(Interleaved(repeats, () => { for (int i = 0; i < calls; i++) Distances.DotManyToMany(x, y, dim, res); })[0]) / calls;
            Console.WriteLine($"DotManyToMany 32 x 1024 x {dim,-4} (1 t)   : {2.0 * nx * ny * dim / s / 1e9,8:F1} GFLOP/s");
        }
        return 0;
    }

    /// <summary>Seconds per run of each action; the actions are run back to back in every repeat.</summary>
    private static double[][] Interleaved(int repeats, params Action[] actions)
    {
        foreach (var a in actions) { a(); a(); } // warm-up: JIT tiers, scratch buffers, page faults
        var times = actions.Select(_ => new double[repeats]).ToArray();
        for (int i = 0; i < repeats; i++)
            for (int j = 0; j < actions.Length; j++)
            {
                long t0 = Stopwatch.GetTimestamp();
                actions[j]();
                times[j][i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
        return times;
    }

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        return sorted[sorted.Length / 2];
    }

    private static long AllocatedPerCall(Action action)
    {
        action();
        long before = GC.GetAllocatedBytesForCurrentThread();
        const int calls = 10;
        for (int i = 0; i < calls; i++) action();
        return (GC.GetAllocatedBytesForCurrentThread() - before) / calls;
    }
}
