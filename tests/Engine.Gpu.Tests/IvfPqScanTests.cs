using Engine.Distance;
using Engine.Index.Ivf;

namespace Engine.Gpu.Tests;

[Collection("gpu")]
public sealed class IvfPqScanTests(GpuFixture fixture)
{
    private readonly GpuContext _ctx = fixture.Context;

    private sealed record Setup(byte[] Codes, int[] Offsets, long[] Ids, int M, int[] Probes, int Np, float[] Luts, bool PerProbe, float[] Bias);

    private static Setup Make(int nlist, int m, int nq, int np, bool perProbe, bool bias, int seed)
    {
        var rng = new Random(seed);
        var offsets = new int[nlist + 1];
        for (int l = 0; l < nlist; l++) offsets[l + 1] = offsets[l] + (l % 5 == 3 ? 0 : rng.Next(1, 400)); // some empty lists
        int total = offsets[^1];
        var codes = new byte[total * m]; rng.NextBytes(codes);
        var ids = Enumerable.Range(0, total).Select(i => 10_000L + 3L * i).ToArray();
        var probes = new int[nq * np];
        for (int q = 0; q < nq; q++)
        {
            var pick = Enumerable.Range(0, nlist).OrderBy(_ => rng.Next()).Take(np).ToArray();
            for (int p = 0; p < np; p++) probes[q * np + p] = p == np - 1 && q % 2 == 1 ? -1 : pick[p];
        }
        var luts = new float[(perProbe ? nq * np : nq) * m * 256];
        for (int i = 0; i < luts.Length; i++) luts[i] = (float)rng.NextDouble() * 4 - 1;
        var b = bias ? Enumerable.Range(0, nq * np).Select(_ => (float)rng.NextDouble()).ToArray() : [];
        return new Setup(codes, offsets, ids, m, probes, np, luts, perProbe, b);
    }

    private static void Reference(Setup s, int k, bool larger, float[] dist, long[] labels)
    {
        int nq = s.Probes.Length / s.Np;
        for (int q = 0; q < nq; q++)
        {
            var heap = new TopKHeap(dist.AsSpan(q * k, k), labels.AsSpan(q * k, k));
            for (int p = 0; p < s.Np; p++)
            {
                int list = s.Probes[q * s.Np + p];
                if (list < 0) continue;
                int lut = (s.PerProbe ? q * s.Np + p : q) * s.M * 256;
                for (int c = s.Offsets[list]; c < s.Offsets[list + 1]; c++)
                {
                    float acc = s.Bias.Length > 0 ? s.Bias[q * s.Np + p] : 0;
                    for (int j = 0; j < s.M; j++) acc += s.Luts[lut + j * 256 + s.Codes[c * s.M + j]];
                    heap.Push(larger ? -acc : acc, s.Ids[c]);
                }
            }
            heap.SortAndPad(float.PositiveInfinity);
            for (int j = 0; j < k; j++)
            {
                int i = q * k + j;
                if (labels[i] < 0) dist[i] = larger ? float.NegativeInfinity : float.PositiveInfinity;
                else if (larger) dist[i] = -dist[i];
            }
        }
    }

    [Theory]
    [InlineData(20, 8, 4, 3, true, true, 10, false)]
    [InlineData(16, 1, 3, 4, false, false, 1, true)]
    [InlineData(30, 16, 3, 8, true, false, 100, false)]
    [InlineData(12, 4, 2, 5, false, true, 1000, true)]
    [InlineData(8, 3, 2, 2, true, true, 1000, false)]
    public void MatchesCpuAdc(int nlist, int m, int nq, int np, bool perProbe, bool bias, int k, bool larger)
    {
        var s = Make(nlist, m, nq, np, perProbe, bias, seed: nlist * 7 + m);
        var cpuD = new float[nq * k]; var cpuL = new long[nq * k];
        Reference(s, k, larger, cpuD, cpuL);
        using var scanner = new GpuIvfPqScanner(_ctx, new IvfPqLists(s.Codes, s.Offsets, s.Ids, m));
        var gpuD = new float[nq * k]; var gpuL = new long[nq * k];
        scanner.Search(new IvfPqQueries(s.Probes, np, s.Luts, perProbe, s.Bias), k, gpuD, gpuL, larger);
        Compare.Results(cpuD, cpuL, gpuD, gpuL, nq, k);
    }

    [Fact]
    public void RejectsBadShapes()
    {
        var s = Make(4, 2, 1, 2, false, false, seed: 1);
        using var scanner = new GpuIvfPqScanner(_ctx, new IvfPqLists(s.Codes, s.Offsets, s.Ids, 2));
        var d = new float[5]; var l = new long[5];
        Assert.Throws<ArgumentException>(() => scanner.Search(new IvfPqQueries([0, 9], 2, s.Luts, false), 5, d, l));
        Assert.Throws<ArgumentException>(() => scanner.Search(new IvfPqQueries([0, 1], 2, new float[7], false), 5, d, l));
        Assert.Throws<ArgumentOutOfRangeException>(() => scanner.Search(new IvfPqQueries([0, 1], 2, s.Luts, false), 0, d, l));
        Assert.Throws<ArgumentException>(() => new GpuIvfPqScanner(_ctx, new IvfPqLists(s.Codes, [0, 5], s.Ids, 2)));
    }

    // Rows with factors (RaBitQ's device rows): key = Bias + add + rescale × (TableBias + S × TableScale)
    // − ErrorScale × err − AbsScale × |rescale|, against a double reference.
    [Theory]
    [InlineData(12, 6, 3, 4, false, 10)]
    [InlineData(9, 16, 2, 3, true, 200)]
    public void RowsWithFactorsMatchADoubleReference(int nlist, int m, int nq, int np, bool perProbe, int k)
    {
        var s = Make(nlist, m, nq, np, perProbe, bias: false, seed: 40 + m);
        var rng = new Random(m);
        int total = s.Ids.Length;
        var factors = new float[3 * total];
        for (int i = 0; i < total; i++)
        {
            factors[3 * i] = (float)rng.NextDouble() * 10;
            factors[3 * i + 1] = (float)(rng.NextDouble() * 4 - 2);
            factors[3 * i + 2] = (float)rng.NextDouble();
        }
        var terms = Enumerable.Range(0, nq * np).Select(_ => new IvfProbeTerms((float)rng.NextDouble() * 5, (float)rng.NextDouble() - 0.5f,
            (float)rng.NextDouble() + 0.5f, (float)rng.NextDouble(), (float)rng.NextDouble() * 0.1f)).ToArray();
        var refD = new float[nq * k]; var refL = new long[nq * k];
        for (int q = 0; q < nq; q++)
        {
            var all = new List<(double Key, long Id)>();
            for (int p = 0; p < np; p++)
            {
                int list = s.Probes[q * np + p];
                if (list < 0) continue;
                var t = terms[q * np + p];
                int lut = (perProbe ? q * np + p : q) * m * 256;
                for (int c = s.Offsets[list]; c < s.Offsets[list + 1]; c++)
                {
                    double sum = 0;
                    for (int j = 0; j < m; j++) sum += s.Luts[lut + j * 256 + s.Codes[c * m + j]];
                    double add = factors[3 * c], rescale = factors[3 * c + 1], err = factors[3 * c + 2];
                    all.Add((t.Bias + add + rescale * (t.TableBias + sum * t.TableScale) - t.ErrorScale * err - t.AbsScale * Math.Abs(rescale), s.Ids[c]));
                }
            }
            var best = all.OrderBy(x => x.Key).ThenBy(x => x.Id).ToList();
            for (int j = 0; j < k; j++)
            {
                refD[q * k + j] = j < best.Count ? (float)best[j].Key : float.PositiveInfinity;
                refL[q * k + j] = j < best.Count ? best[j].Id : -1;
            }
        }
        using var scanner = new GpuIvfPqScanner(_ctx, new IvfPqLists(s.Codes, s.Offsets, s.Ids, m, factors));
        Assert.True(scanner.HasFactors);
        var gpuD = new float[nq * k]; var gpuL = new long[nq * k];
        scanner.Search(new IvfPqQueries(s.Probes, np, s.Luts, perProbe, probeTerms: terms), k, gpuD, gpuL);
        Compare.Results(refD, refL, gpuD, gpuL, nq, k);
        // Factors need terms, and terms are one per (query, probe); factors are three per code.
        Assert.Throws<ArgumentException>(() => scanner.Search(new IvfPqQueries(s.Probes, np, s.Luts, perProbe), k, gpuD, gpuL));
        Assert.Throws<ArgumentException>(() => scanner.Search(new IvfPqQueries(s.Probes, np, s.Luts, perProbe, probeTerms: terms.AsSpan(1)), k, gpuD, gpuL));
        Assert.Throws<ArgumentException>(() => new GpuIvfPqScanner(_ctx, new IvfPqLists(s.Codes, s.Offsets, s.Ids, m, factors.AsSpan(3))));
        factors[4] = float.NaN;
        Assert.Throws<ArgumentException>(() => new GpuIvfPqScanner(_ctx, new IvfPqLists(s.Codes, s.Offsets, s.Ids, m, factors)));
    }
}
