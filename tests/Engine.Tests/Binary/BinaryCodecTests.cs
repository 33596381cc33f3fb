using Engine.Quantization;

namespace Engine.Tests.Binary;

public class BinaryCodecTests
{
    private static float[] Clustered(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var centres = new float[8 * d];
        for (int i = 0; i < centres.Length; i++) centres[i] = (float)(rng.NextDouble() * 4 - 2);
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(8);
            for (int j = 0; j < d; j++) x[i * d + j] = centres[c * d + j] + 0.5f + (float)(rng.NextDouble() - 0.5);
        }
        return x;
    }

    /// <summary>A codec trained on clustered rows, the rows' codes and their reconstructions.</summary>
    private static (BinaryCodec Codec, float[] X, byte[] Codes, float[] Decoded) Encoded(int bits, int d, int n, int seed)
    {
        var x = Clustered(n, d, seed);
        var codec = new BinaryCodec(d, bits);
        codec.Train(x, 2, 1);
        var codes = new byte[n * codec.CodeSize];
        codec.Encode(x, codes);
        var dec = new float[n * d];
        codec.Decode(codes, dec);
        return (codec, x, codes, dec);
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) { double s = 0; for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i]; return s; }

    private static double L2(ReadOnlySpan<float> a, ReadOnlySpan<float> b) { double s = 0; for (int i = 0; i < a.Length; i++) { double t = (double)a[i] - b[i]; s += t * t; } return s; }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Binary_more_bits_reconstruct_better_and_code_size_is_packed(int bits)
    {
        const int d = 70, n = 400;
        var x = Clustered(n, d, 3);
        var codec = new BinaryCodec(d, bits);
        codec.Train(x, seed: 1, threads: 1);
        Assert.Equal(bits * 2 * 8 + 8, codec.CodeSize); // ⌈70/64⌉ = 2 words per plane, two floats
        var codes = new byte[n * codec.CodeSize];
        codec.Encode(x, codes);
        var y = new float[n * d];
        codec.Decode(codes, y);
        double err = 0, energy = 0;
        var mean = codec.Parameters.Mean;
        for (int i = 0; i < n; i++)
        {
            err += L2(x.AsSpan(i * d, d), y.AsSpan(i * d, d));
            energy += L2(x.AsSpan(i * d, d), mean);
        }
        double relative = err / energy;
        double[] ceilings = [0, 0.40, 0.16, 0.07, 0.035]; // each stage must cut the residual energy substantially
        Assert.True(relative < ceilings[bits], $"b={bits}: relative reconstruction error {relative:F4} >= {ceilings[bits]}");
        // Batch encoding equals one-row encoding.
        var one = new byte[codec.CodeSize];
        codec.Encode(x.AsSpan(5 * d, d), one);
        Assert.Equal(codes.AsSpan(5 * codec.CodeSize, codec.CodeSize).ToArray(), one);
    }

    [Theory]
    [InlineData(1, Metric.L2)]
    [InlineData(3, Metric.L2)]
    [InlineData(2, Metric.InnerProduct)]
    [InlineData(4, Metric.InnerProduct)]
    public void Binary_symmetric_estimator_is_exact_on_decoded_vectors(int bits, Metric metric)
    {
        const int d = 130, n = 60;
        var (codec, x, codes, dec) = Encoded(bits, d, n, 7);
        var est = codec.CreateSymmetricEstimator(metric);
        est.SetQuery(x.AsSpan(0, d)); // the query is encoded: its reconstruction is row 0's
        for (int i = 0; i < n; i++)
        {
            double expected = metric == Metric.L2 ? L2(dec.AsSpan(0, d), dec.AsSpan(i * d, d)) : -Dot(dec.AsSpan(0, d), dec.AsSpan(i * d, d));
            float got = est.Distance(codes.AsSpan(i * codec.CodeSize, codec.CodeSize));
            Assert.True(Math.Abs(got - expected) <= 1e-3 * (1 + Math.Abs(expected)) + 1e-2, $"row {i}: {got} vs {expected}");
        }
    }

    [Theory]
    [InlineData(1, Metric.L2)]
    [InlineData(2, Metric.InnerProduct)]
    [InlineData(4, Metric.L2)]
    public void Binary_asymmetric_estimator_is_within_the_query_quantisation_bound(int bits, Metric metric)
    {
        const int d = 100, n = 80;
        var (codec, _, codes, dec) = Encoded(bits, d, n, 9);
        var est = codec.CreateEstimator(metric);
        var q = Clustered(1, d, 123);
        est.SetQuery(q);
        // The query is rounded to 15 levels: each coordinate moves at most step/2, so <q, x̂> moves at most
        // (step/2)·Σ_s α_s·d (and the L2 key twice that).
        float step = (q.Max() - q.Min()) / 15;
        double bound = step / 2 * codec.Parameters.Scales.Sum() * d * (metric == Metric.L2 ? 2 : 1) + 1e-2;
        int ranked = 0;
        for (int i = 0; i < n; i++)
        {
            double expected = metric == Metric.L2 ? L2(q, dec.AsSpan(i * d, d)) : -Dot(q, dec.AsSpan(i * d, d));
            float got = est.Distance(codes.AsSpan(i * codec.CodeSize, codec.CodeSize));
            Assert.True(Math.Abs(got - expected) <= bound, $"row {i}: {got} vs {expected} (bound {bound})");
            if (Math.Abs(got - expected) < bound / 4) ranked++;
        }
        Assert.True(ranked > n / 2, "the estimate is far looser than its bound on most rows");
    }

    [Fact]
    public void Binary_bad_inputs_get_clear_errors()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BinaryCodec(8, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BinaryCodec(8, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BinaryCodec(0, 1));
        var codec = new BinaryCodec(8, 2);
        Assert.Throws<InvalidOperationException>(() => codec.Encode(new float[8], new byte[codec.CodeSize]));
        Assert.Throws<InvalidOperationException>(() => codec.CreateEstimator(Metric.L2));
        Assert.Throws<ArgumentException>(() => codec.Train([], 1, 1));
        Assert.Throws<ArgumentException>(() => codec.Train(new float[7], 1, 1));
        codec.Train(new float[16], 1, 1);
        Assert.Throws<ArgumentException>(() => codec.Encode(new float[8], new byte[3]));
    }
}
