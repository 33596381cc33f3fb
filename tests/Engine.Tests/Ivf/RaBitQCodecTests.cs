using Engine.Quantization;

namespace Engine.Tests.Ivf;

/// <summary>The RaBitQ codec on its own: rotation, packing, the estimator against a double reference, and its error bound.</summary>
public class RaBitQCodecTests
{
    private const int D = 48, N = 600;
    private static readonly float[] Random_ = Gaussian(N, D, seed: 5);
    private static readonly float[] Clustered = IvfTestData.Clustered(N, D, 12, seed: 6, spread: 0.2f);

    private static float[] Gaussian(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++) x[i] = IvfTestData.Gaussian(rng);
        return x;
    }

    private static RaBitQCodec Make(int bits, Metric metric, int d = D)
    {
        var codec = new RaBitQCodec(d, bits, metric);
        codec.Train([], seed: 9, threads: 1);
        return codec;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(48)]
    [InlineData(100)]
    [InlineData(784)]
    public void TheRotationIsOrthogonalAndRevertsExactly(int d)
    {
        var rot = new HadamardRotation(d, seed: 3);
        var x = Gaussian(4, d, seed: d);
        var y = new float[x.Length];
        var back = new float[x.Length];
        rot.Apply(x, y);
        rot.Revert(y, back);
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], back[i], 3e-4f);
        for (int r = 0; r < 4; r++)
        {
            double nx = 0, ny = 0, dot = 0, dotY = 0;
            for (int j = 0; j < d; j++)
            {
                nx += x[r * d + j] * (double)x[r * d + j];
                ny += y[r * d + j] * (double)y[r * d + j];
                dot += x[r * d + j] * (double)x[((r + 1) % 4) * d + j];
                dotY += y[r * d + j] * (double)y[((r + 1) % 4) * d + j];
            }
            Assert.Equal(nx, ny, nx * 1e-5);
            Assert.Equal(dot, dotY, Math.Sqrt(nx) * 1e-3 * d);
        }
        // Same seed, same rotation; another seed, another one.
        var y2 = new float[x.Length];
        new HadamardRotation(d, seed: 3).Apply(x, y2);
        Assert.Equal(y, y2);
        if (d > 1)
        {
            new HadamardRotation(d, seed: 4).Apply(x, y2);
            Assert.NotEqual(y, y2);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(8)]
    public void PackingRoundTripsEveryValue(int bits)
    {
        var rng = new Random(bits);
        foreach (int d in new[] { 1, 7, 8, 9, 48, 101 })
        {
            var values = new byte[d];
            for (int i = 0; i < d; i++) values[i] = (byte)rng.Next(1 << bits);
            var planes = new byte[bits * RaBitQKernels.PlaneBytes(d)];
            RaBitQKernels.Pack(values, bits, planes);
            var back = new byte[d];
            RaBitQKernels.Unpack(planes, bits, back);
            Assert.Equal(values, back);
            // The byte table's plane sums equal the float dot product of the query with the values.
            var q = Gaussian(1, d, seed: d + bits);
            var lut = new float[RaBitQKernels.LutFloats(d)];
            RaBitQKernels.BuildLut(q, lut);
            double reference = 0;
            for (int i = 0; i < d; i++) reference += q[i] * (double)values[i];
            unsafe
            {
                fixed (byte* p = planes)
                fixed (float* t = lut)
                    Assert.Equal(reference, RaBitQKernels.PlaneDot(p, RaBitQKernels.PlaneBytes(d), bits, t), Math.Max(1, Math.Abs(reference)) * 1e-4);
            }
        }
    }

    // Every table entry is the sum of the query coordinates of its byte's set bits (double reference), for lengths
    // around the 8-coordinate chunks; CI runs this at every SIMD level (the vector and scalar builds add alike).
    [Fact]
    public void QueryTable_EveryEntry_IsTheSumOverItsSetBits()
    {
        foreach (int d in new[] { 1, 3, 8, 15, 16, 17, 63, 64, 100, 257 })
        {
            var q = Gaussian(1, d, seed: 300 + d);
            var lut = new float[RaBitQKernels.LutFloats(d)];
            RaBitQKernels.BuildLut(q, lut);
            for (int j = 0; j < RaBitQKernels.PlaneBytes(d); j++)
                for (int m = 0; m < 256; m++)
                {
                    double want = 0;
                    for (int s = 0; s < 8; s++)
                        if ((m >> s & 1) != 0 && 8 * j + s < d) want += q[8 * j + s];
                    Assert.Equal(want, lut[j * 256 + m], 1e-5);
                }
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void TheScaleSearchFindsAGridPointAtLeastAsCloseAsTheBestOfADenseScan(int bits)
    {
        // Brute force over 4000 scales in (0, tEnd]: the 48-candidate search must be within 1e-3 of its cosine.
        var u = Gaussian(1, D, seed: bits);
        float n = MathF.Sqrt(u.Sum(v => v * v));
        for (int i = 0; i < D; i++) u[i] /= n;
        var values = new byte[D];
        var (dot, norm2) = RaBitQKernels.Quantize(u, bits, values);
        double got = dot / Math.Sqrt(norm2);
        int cap = (1 << (bits - 1)) - 1;
        double tEnd = (cap + 1) / u.Max(Math.Abs), best = 0;
        for (int s = 1; s <= 4000; s++)
        {
            double t = tEnd * s / 4000, num = 0, den = 0;
            foreach (float v in u)
            {
                double y = Math.Min(Math.Floor(Math.Abs(v) * t), cap) + 0.5;
                num += y * Math.Abs(v);
                den += y * y;
            }
            best = Math.Max(best, num / Math.Sqrt(den));
        }
        Assert.True(got >= best - 1e-3, $"B={bits}: cosine {got} vs dense scan {best}");
        double previous = bits == 2 ? 0.8 : bits == 4 ? 0.97 : 0.999;
        Assert.True(got >= previous, $"B={bits}: cosine {got} below {previous}");
    }

    public static TheoryData<int, Metric> BitsAndMetrics()
    {
        var data = new TheoryData<int, Metric>();
        for (int b = 1; b <= 8; b++)
            foreach (var m in new[] { Metric.L2, Metric.InnerProduct })
                data.Add(b, m);
        return data;
    }

    [Theory]
    [MemberData(nameof(BitsAndMetrics))]
    public void EstimatorMatchesADoubleReference(int bits, Metric metric)
    {
        // Reference: f · ⟨q, Pᵀ y⟩ in double from the unpacked code (the decoded estimate), plus ‖q‖² + ‖x‖² for L2.
        var codec = Make(bits, metric);
        var codes = new byte[N * codec.CodeSize];
        codec.Encode(Random_, codes);
        var est = codec.CreateEstimator(metric);
        var queries = Gaussian(4, D, seed: 77);
        var values = new byte[D];
        var y = new float[D];
        for (int qi = 0; qi < 4; qi++)
        {
            var q = queries.AsSpan(qi * D, D);
            est.SetQuery(q);
            for (int i = 0; i < N; i += 13)
            {
                var code = codes.AsSpan(i * codec.CodeSize, codec.CodeSize);
                var (add, f, _) = RaBitQCodec.Factors(code);
                RaBitQKernels.Unpack(code[RaBitQCodec.FactorBytes..], bits, values);
                for (int j = 0; j < D; j++) y[j] = values[j] - ((1 << bits) - 1) / 2f;
                codec.Rotation!.Backward(y);
                double ip = 0, qn = 0, xn = 0;
                for (int j = 0; j < D; j++)
                {
                    ip += q[j] * (double)y[j];
                    qn += q[j] * (double)q[j];
                    xn += Random_[i * D + j] * (double)Random_[i * D + j];
                }
                ip *= f;
                double reference = metric == Metric.L2 ? qn + xn - 2 * ip : -ip;
                if (metric == Metric.L2) Assert.Equal(xn, add, xn * 1e-5);
                float got = est.Distance(code);
                Assert.True(Math.Abs(got - reference) <= 1e-4 * Math.Max(1, Math.Abs(reference)), $"B={bits} {metric}: {got} vs {reference} (row {i})");
            }
        }
    }

    [Theory]
    [InlineData(1, false, 3.3f, 48)]
    [InlineData(1, true, 3.3f, 48)]
    [InlineData(2, true, 3.3f, 48)]
    [InlineData(4, false, 3.3f, 48)]
    [InlineData(8, true, 3.3f, 48)]
    [InlineData(1, true, 3.3f, 100)]
    [InlineData(1, false, 3.3f, 256)]
    [InlineData(4, true, 3.3f, 256)]
    [InlineData(3, true, 3.3f, 784)]
    [InlineData(1, true, RaBitQCodec.DefaultEpsilon, 48)]
    [InlineData(4, false, RaBitQCodec.DefaultEpsilon, 100)]
    [InlineData(1, false, RaBitQCodec.DefaultEpsilon, 256)]
    public void TheErrorBoundHoldsAtItsStatedConfidence(int bits, bool clustered, float epsilon, int d)
    {
        // Residuals of (clustered or random) data from a center, queries from elsewhere: the estimate of ⟨q − c, r⟩
        // lies within ε₀ · e · ‖q − c‖ of the exact value on at least the stated share of pairs (RaBitQCodec.Confidence:
        // 99.9 % for ε₀ = 3.3, 94 % for the paper's ε₀ = 1.9). 60 000 pairs per case: at ε₀ = 3.3 the 99.9 % is
        // asserted as it stands (at most 60 misses); at 1.9 the stated share less three binomial standard deviations.
        const int n = 1500, nq = 40;
        var data = clustered ? IvfTestData.Clustered(n, d, 12, seed: 6 + d, spread: 0.2f) : Gaussian(n, d, seed: 5 + d);
        var codec = Make(bits, Metric.InnerProduct, d);
        var center = new float[n * d];
        var residual = new float[n * d];
        var rng = new Random(21 + d);
        var c0 = new float[d];
        for (int j = 0; j < d; j++) c0[j] = (float)(rng.NextDouble() - 0.5);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
            {
                center[i * d + j] = c0[j];
                residual[i * d + j] = data[i * d + j] - c0[j];
            }
        var codes = new byte[n * codec.CodeSize];
        codec.EncodeResiduals(residual, center, codes);
        var queries = clustered ? IvfTestData.Clustered(nq, d, 12, seed: 31 + d, spread: 0.2f) : Gaussian(nq, d, seed: 31 + d);
        var pq = new float[d];
        var qc = new double[d];
        long pairs = 0, held = 0;
        double worst = 0;
        for (int qi = 0; qi < nq; qi++)
        {
            double qcNorm = 0;
            for (int j = 0; j < d; j++)
            {
                qc[j] = queries[qi * d + j] - (double)c0[j];
                pq[j] = (float)qc[j];
                qcNorm += qc[j] * qc[j];
            }
            qcNorm = Math.Sqrt(qcNorm);
            codec.Rotation!.Forward(pq);
            for (int i = 0; i < n; i++)
            {
                var code = codes.AsSpan(i * codec.CodeSize, codec.CodeSize);
                double exact = 0;
                for (int j = 0; j < d; j++) exact += qc[j] * residual[i * d + j];
                double estimate = codec.EstimateInnerProduct(pq, code);
                double bound = epsilon * RaBitQCodec.Factors(code).Err * qcNorm;
                pairs++;
                if (Math.Abs(estimate - exact) <= bound + 1e-4 * Math.Max(1, Math.Abs(exact))) held++;
                worst = Math.Max(worst, Math.Abs(estimate - exact) / Math.Max(bound, 1e-12));
            }
        }
        double rate = held / (double)pairs, stated = RaBitQCodec.Confidence(epsilon);
        Assert.True(stated >= (epsilon > 3 ? 0.999 : 0.94), $"stated confidence {stated} of ε₀ = {epsilon}");
        double floor = epsilon > 3 ? 0.999 : stated - 3 * Math.Sqrt(stated * (1 - stated) / pairs);
        Assert.True(rate >= floor, $"B={bits} d={d} clustered={clustered} ε₀={epsilon}: bound held on {rate:P3} of {pairs} pairs, floor {floor:P3}, stated {stated:P3} (worst error / bound {worst:F2})");
    }

    [Fact]
    public void MoreBitsMeanSmallerErrors()
    {
        double previous = double.MaxValue;
        foreach (int bits in new[] { 1, 2, 4, 8 })
        {
            var codec = Make(bits, Metric.L2);
            var codes = new byte[N * codec.CodeSize];
            codec.Encode(Random_, codes);
            var decoded = new float[N * D];
            codec.Decode(codes, decoded);
            double err = 0, energy = 0;
            for (int i = 0; i < decoded.Length; i++)
            {
                err += (decoded[i] - Random_[i]) * (double)(decoded[i] - Random_[i]);
                energy += Random_[i] * (double)Random_[i];
            }
            Assert.True(err < previous * 0.9, $"B={bits}: squared error {err} not below {previous}");
            previous = err;
            if (bits == 8) Assert.True(err < 1e-3 * energy, $"8 bits: relative error {err / energy}");
            // One row at a time gives the batch's code.
            var one = new byte[codec.CodeSize];
            codec.Encode(Random_.AsSpan(7 * D, D), one);
            Assert.Equal(codes.AsSpan(7 * codec.CodeSize, codec.CodeSize).ToArray(), one);
        }
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RaBitQCodec(D, 0, Metric.L2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RaBitQCodec(D, 9, Metric.L2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RaBitQCodec(0, 1, Metric.L2));
        var untrained = new RaBitQCodec(D, 1, Metric.L2);
        Assert.Throws<InvalidOperationException>(() => untrained.Encode(Random_.AsSpan(0, D), new byte[untrained.CodeSize]));
        var codec = Make(1, Metric.L2);
        Assert.Throws<ArgumentException>(() => codec.CreateEstimator(Metric.InnerProduct));
        Assert.Throws<ArgumentException>(() => codec.EncodeResiduals(Random_.AsSpan(0, D), Random_.AsSpan(0, 2 * D), new byte[codec.CodeSize]));
        // The zero vector encodes to an exact zero estimate.
        var zero = new byte[codec.CodeSize];
        codec.Encode(new float[D], zero);
        var est = codec.CreateEstimator(Metric.L2);
        est.SetQuery(Random_.AsSpan(0, D));
        double qn = Random_.Take(D).Sum(v => v * (double)v);
        Assert.Equal(qn, est.Distance(zero), qn * 1e-5);
    }
}
