using System.Diagnostics;
using Engine.Clustering;
using Engine.Index.Flat;
using Engine.Index.Ivf;
using Engine.Mining;

namespace Engine.Gpu;

/// <summary>Sizes for <see cref="GpuBench.Run"/>.</summary>
public sealed class GpuBenchOptions
{
    /// <summary>Corpus rows for the flat scan.</summary>
    public int Corpus { get; init; } = 100_000;
    /// <summary>Queries for the flat scan.</summary>
    public int Queries { get; init; } = 64;
    /// <summary>Dimension.</summary>
    public int Dimension { get; init; } = 64;
    /// <summary>k for searches.</summary>
    public int K { get; init; } = 10;
    /// <summary>Clusters for k-means.</summary>
    public int Clusters { get; init; } = 256;
    /// <summary>Lloyd iterations for the end-to-end k-means timing.</summary>
    public int Iterations { get; init; } = 5;
    /// <summary>Sub-quantizers for the ADC scan.</summary>
    public int SubQuantizers { get; init; } = 16;
    /// <summary>Timed repetitions per kernel (after one warm-up run that also compiles the kernels).</summary>
    public int Repeats { get; init; } = 3;
    /// <summary>Seed of the synthetic data.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>
/// Throughput of each kernel on a context's accelerator (GFLOP/s and GB/s) and end-to-end timings of flat search,
/// k-means (alone and inside an IVF build) and mining, each next to the CPU path, on synthetic Gaussian data. Prints which accelerator ran; numbers from ILGPU's CPU accelerator say nothing
/// about a GPU.
/// </summary>
public static class GpuBench
{
    /// <summary>Runs every measurement and writes one line per result to <paramref name="output"/>.</summary>
    public static void Run(GpuContext context, GpuBenchOptions options, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        int n = options.Corpus, nq = options.Queries, d = options.Dimension, k = options.K;
        output.WriteLine($"accelerator: {context.Describe()}");
        output.WriteLine($"data: corpus {n} × d={d}, {nq} queries, k={k}, seed {options.Seed}; best of {options.Repeats} after a warm-up");
        var rng = new Random(options.Seed);
        var corpus = Gaussian(rng, n * d);
        var queries = Gaussian(rng, nq * d);

        // Flat scan, corpus already resident: kernel throughput.
        using (var searcher = new GpuFlatSearcher(context, d, Metric.L2))
        {
            searcher.SetCorpus(corpus);
            var dist = new float[nq * k]; var labels = new long[nq * k];
            double s = Best(options.Repeats, () => searcher.Search(queries, k, dist, labels));
            double pairs = (double)nq * n;
            output.WriteLine($"flat L2 scan + top-{k}: {s * 1e3:F1} ms, {pairs * 3 * d / s / 1e9:F2} GFLOP/s, {pairs * d * 4 / s / 1e9:F2} GB/s of rows streamed, {nq / s:F0} queries/s");
        }

        // End to end: upload + search through the one-call entry, next to the CPU FlatIndex.
        {
            var dist = new float[nq * k]; var labels = new long[nq * k];
            double gpu = Best(options.Repeats, () => GpuFlatSearch.Search(context, corpus, d, Metric.L2, queries, k, dist, labels));
            using var flat = new FlatIndex(d, Metric.L2);
            var ids = new long[n];
            for (int i = 0; i < n; i++) ids[i] = i;
            flat.Add(corpus, ids);
            double cpu = Best(options.Repeats, () => flat.Search(queries, k, dist, labels));
            output.WriteLine($"flat search end to end (upload + scan): {gpu * 1e3:F1} ms on the accelerator; CPU FlatIndex (SIMD, all cores): {cpu * 1e3:F1} ms");
        }

        // k-means: one step (assign + deterministic update) and a full train.
        {
            int c = options.Clusters;
            var km = new GpuKMeans(context);
            var cent = corpus.AsSpan(0, c * d).ToArray();
            var next = new float[c * d]; var assign = new int[n]; var counts = new int[c];
            double s = Best(options.Repeats, () => km.Step(corpus, d, cent, next, assign, counts));
            double flops = 3.0 * n * c * d;
            output.WriteLine($"k-means step (n={n}, c={c}): {s * 1e3:F1} ms, {flops / s / 1e9:F2} GFLOP/s assignment, {(double)n * d * 4 * 2 / s / 1e9:F2} GB/s points read");
            var sw = Stopwatch.StartNew();
            var r = km.Train(corpus, d, c, options.Iterations, options.Seed);
            output.WriteLine($"k-means train end to end ({options.Iterations} iterations): {sw.Elapsed.TotalMilliseconds:F1} ms, inertia {r.Inertia:E3}");
        }

        // k-means as an IVF build uses it: IVF{c},Flat training (sample ≤ 256 rows per list, k-means++ on the CPU,
        // 10 Lloyd steps on the backend), GpuKMeansBackend against in-process training. One run each.
        {
            string spec = $"IVF{options.Clusters},Flat";
            double Build(IKMeansBackend? backend)
            {
                using var ivf = new IvfIndex(spec, d, Metric.L2) { TrainingSeed = options.Seed, ClusteringBackend = backend };
                var sw = Stopwatch.StartNew();
                ivf.Train(corpus);
                return sw.Elapsed.TotalSeconds;
            }
            double gpu = Build(new GpuKMeansBackend(context)), cpu = Build(null);
            int sample = (int)Math.Min(n, 256L * options.Clusters);
            output.WriteLine($"IVF build k-means ({spec} train, {sample} sampled rows, 10 iterations): {gpu * 1e3:F1} ms with GpuKMeansBackend; in-process CPU: {cpu * 1e3:F1} ms");
        }

        // Mining end to end: hard negatives for `queries` anchors (one random positive each) over GpuFlatIndex and FlatIndex.
        {
            var ids = new long[n];
            for (int i = 0; i < n; i++) ids[i] = i;
            var positives = new long[nq][];
            for (int q = 0; q < nq; q++) positives[q] = [rng.Next(n)];
            var input = MiningInput.FromVectors(queries, d, positives);
            var mining = new MiningOptions { NumNegatives = 5, RangeMax = 50, Seed = (ulong)options.Seed };
            using var gpuIndex = new GpuFlatIndex(context, d, Metric.L2);
            using var cpuIndex = new FlatIndex(d, Metric.L2);
            gpuIndex.Add(corpus, ids);
            cpuIndex.Add(corpus, ids);
            double gpu = Best(options.Repeats, () => new HardNegativeMiner(gpuIndex, mining).MineAll(input, out _));
            double cpu = Best(options.Repeats, () => new HardNegativeMiner(cpuIndex, mining).MineAll(input, out _));
            output.WriteLine($"mining end to end ({nq} anchors, 5 negatives from the top 50): {gpu * 1e3:F1} ms over GpuFlatIndex ({nq / gpu:F0} anchors/s); CPU FlatIndex: {cpu * 1e3:F1} ms ({nq / cpu:F0} anchors/s)");
        }

        // IVF-PQ ADC scan over synthetic lists: every query probes 8 of 64 lists.
        {
            int m = options.SubQuantizers, nlist = 64, np = 8;
            var offsets = new int[nlist + 1];
            for (int l = 0; l < nlist; l++) offsets[l + 1] = (int)((long)n * (l + 1) / nlist);
            var codes = new byte[n * m];
            rng.NextBytes(codes);
            var ids = new long[n];
            for (int i = 0; i < n; i++) ids[i] = i;
            var probes = new int[nq * np];
            for (int i = 0; i < probes.Length; i++) probes[i] = (i * 7 + i / np) % nlist;
            var luts = Gaussian(rng, nq * np * m * 256);
            using var scanner = new GpuIvfPqScanner(context, new IvfPqLists(codes, offsets, ids, m));
            var dist = new float[nq * k]; var labels = new long[nq * k];
            double s = Best(options.Repeats, () => scanner.Search(new IvfPqQueries(probes, np, luts, true), k, dist, labels));
            double scanned = (double)nq * np * n / nlist;
            output.WriteLine($"IVF-PQ ADC scan (m={m}, {np}/{nlist} lists): {s * 1e3:F1} ms, {scanned / s / 1e6:F1} M codes/s, {scanned * m / s / 1e9:F2} GB/s of codes, {scanned * m / s / 1e9:F2} GFLOP/s (one LUT add per code byte)");
        }
    }

    private static double Best(int repeats, Action action)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static float[] Gaussian(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }
}
