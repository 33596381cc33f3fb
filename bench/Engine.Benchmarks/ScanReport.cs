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
        double streamGBs = Workloads.StreamBytes / Median(repeats, () => Workloads.StreamSum(stream)) / 1e9;
        stream = [];
        GC.Collect();

        using var index = Workloads.BuildFlat();
        var one = new SearchParameters { Threads = 1 };
        int d = Workloads.FlatDim;
        var queries = Workloads.RandomFloats(7, 32L * d);
        var dist = new float[32 * 10];
        var labels = new long[32 * 10];
        void Single() => index.Search(queries.AsSpan(0, d), 10, dist.AsSpan(0, 10), labels.AsSpan(0, 10), one);
        double scanBytes = (double)Workloads.FlatRows * d * sizeof(float);
        double scanGBs = scanBytes / Median(repeats, Single) / 1e9;
        long allocated = AllocatedPerCall(Single);
        var corpus = index.Vectors;
        var kernelOut = new float[Workloads.FlatRows];
        var corpusArr = corpus.ToArray();
        double l2GBs = scanBytes / Median(repeats, () => Distances.SquaredL2OneToMany(queries.AsSpan(0, d), corpusArr, kernelOut)) / 1e9;
        double dotGBs = scanBytes / Median(repeats, () => Distances.DotOneToMany(queries.AsSpan(0, d), corpusArr, kernelOut)) / 1e9;
        double rowGBs = scanBytes / Median(repeats, () => { for (int i = 0; i < Workloads.FlatRows; i++) kernelOut[i] = Distances.SquaredL2(queries.AsSpan(0, d), corpusArr.AsSpan(i * d, d)); }) / 1e9;
        Console.WriteLine($"kernel only: L2 one-to-many {l2GBs:F2} GB/s, dot one-to-many {dotGBs:F2} GB/s, row-by-row L2 {rowGBs:F2} GB/s");
        double batchSeconds = Median(Math.Max(3, repeats / 3), () => index.Search(queries, 10, dist, labels, one));
        long batchAllocated = AllocatedPerCall(() => index.Search(queries, 10, dist, labels, one));

        Console.WriteLine($"stream read (1 thread, 256 MB)      : {streamGBs,8:F2} GB/s");
        Console.WriteLine($"flat scan, 1 query (60k x 784, 1 t) : {scanGBs,8:F2} GB/s  ({scanBytes / 1e6 / scanGBs:F2} ms)");
        Console.WriteLine($"ratio scan / stream                 : {scanGBs / streamGBs,8:P1}");
        Console.WriteLine($"allocated per single-query search   : {allocated,8} B");
        Console.WriteLine($"flat batch of 32 queries (1 thread) : {batchSeconds * 1e3,8:F2} ms, {2.0 * 32 * scanBytes / 4 / batchSeconds / 1e9:F1} GFLOP/s, {batchAllocated} B allocated");

        foreach (int dim in new[] { 128, 784, 1000 })
        {
            const int nx = 32, ny = 1024;
            var x = Workloads.RandomFloats(4, (long)nx * dim);
            var y = Workloads.RandomFloats(5, (long)ny * dim);
            var res = new float[nx * ny];
            // Many calls per sample so the timer resolution does not matter.
            const int calls = 20;
            double s = Median(repeats, () => { for (int i = 0; i < calls; i++) Distances.DotManyToMany(x, y, dim, res); }) / calls;
            Console.WriteLine($"DotManyToMany 32 x 1024 x {dim,-4} (1 t) : {2.0 * nx * ny * dim / s / 1e9,8:F1} GFLOP/s");
        }
        return 0;
    }

    private static double Median(int repeats, Action action)
    {
        action(); // warm-up (JIT tiers, scratch buffers)
        action();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
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
