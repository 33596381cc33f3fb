using Engine.Mining.Training;

namespace Engine.Tests.Training;

/// <summary>Hand-written gradients against central finite differences of an independent double-precision reference.</summary>
public class GradientTests
{
    private const int D = 6, H = 5, O = 4, M = 3;
    private const float Tau = 0.2f;

    private static float[] Random(int n, int seed, double scale = 1)
    {
        var rng = new System.Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return x;
    }

    /// <summary>Double reference: normalize(W2 relu(W1 x + b1) + b2).</summary>
    private static double[] EmbedReference(double[] p, ReadOnlySpan<float> x)
    {
        var hidden = new double[H];
        for (int i = 0; i < H; i++)
        {
            double s = p[H * D + i];
            for (int j = 0; j < D; j++) s += p[i * D + j] * x[j];
            hidden[i] = Math.Max(0, s);
        }
        int w2 = H * D + H, b2 = w2 + O * H;
        var z = new double[O];
        double norm = 0;
        for (int o = 0; o < O; o++)
        {
            double s = p[b2 + o];
            for (int i = 0; i < H; i++) s += p[w2 + o * H + i] * hidden[i];
            z[o] = s;
            norm += s * s;
        }
        norm = Math.Sqrt(norm);
        for (int o = 0; o < O; o++) z[o] /= norm;
        return z;
    }

    private static double LossReference(double[] a, double[] p, double[][] negatives, double tau)
    {
        static double Dot(double[] u, double[] v) { double s = 0; for (int i = 0; i < u.Length; i++) s += u[i] * v[i]; return s; }
        var logits = new double[negatives.Length + 1];
        logits[0] = Dot(a, p) / tau;
        for (int j = 0; j < negatives.Length; j++) logits[j + 1] = Dot(a, negatives[j]) / tau;
        double max = logits.Max();
        return max + Math.Log(logits.Sum(l => Math.Exp(l - max))) - logits[0];
    }

    private static double TupleLossReference(double[] p, float[] inputs)
    {
        var e = new double[M + 2][];
        for (int t = 0; t < M + 2; t++) e[t] = EmbedReference(p, inputs.AsSpan(t * D, D));
        return LossReference(e[0], e[1], e[2..], Tau);
    }

    private static void AssertClose(double expected, double actual, string what)
    {
        double tol = 2e-3 * Math.Max(1, Math.Abs(expected)) + 2e-4;
        Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: finite difference {expected:G6}, analytic {actual:G6}");
    }

    [Fact]
    public void InfoNce_gradients_match_finite_differences()
    {
        var emb = Random((M + 2) * O, 11);
        var ga = new float[O];
        var gp = new float[O];
        var gn = new float[M * O];
        float loss = InfoNce.LossAndGradients(emb.AsSpan(0, O), emb.AsSpan(O, O), emb.AsSpan(2 * O), Tau, 1f, ga, gp, gn);
        double[][] Rows(float[] v) => Enumerable.Range(0, M + 2).Select(t => v.Skip(t * O).Take(O).Select(f => (double)f).ToArray()).ToArray();
        double Loss(double[][] r) => LossReference(r[0], r[1], r[2..], Tau);
        var rows = Rows(emb);
        Assert.Equal(Loss(rows), loss, 4);
        const double h = 1e-6;
        float[][] grads = [ga, gp, .. Enumerable.Range(0, M).Select(j => gn.AsSpan(j * O, O).ToArray())];
        for (int t = 0; t < M + 2; t++)
            for (int i = 0; i < O; i++)
            {
                double keep = rows[t][i];
                rows[t][i] = keep + h; double up = Loss(rows);
                rows[t][i] = keep - h; double down = Loss(rows);
                rows[t][i] = keep;
                AssertClose((up - down) / (2 * h), grads[t][i], $"row {t} component {i}");
            }
    }

    [Fact]
    public void Mlp_gradients_through_InfoNce_match_finite_differences_of_a_double_reference()
    {
        var model = new MlpEmbedder(D, H, O, seed: 3);
        // Non-zero biases so every parameter block is exercised.
        for (int i = H * D; i < H * D + H; i++) model.Parameters[i] = 0.05f * (i % 3);
        var inputs = Random((M + 2) * D, 12, scale: 2);
        var acts = Enumerable.Range(0, M + 2).Select(_ => new MlpEmbedder.Activations(model)).ToArray();
        for (int t = 0; t < M + 2; t++) model.Forward(inputs.AsSpan(t * D, D), acts[t]);
        var neg = new float[M * O];
        for (int j = 0; j < M; j++) acts[j + 2].Embedding.CopyTo(neg, j * O);
        var ga = new float[O];
        var gp = new float[O];
        var gn = new float[M * O];
        float loss = InfoNce.LossAndGradients(acts[0].Embedding, acts[1].Embedding, neg, Tau, 1f, ga, gp, gn);
        var gradient = new float[model.ParameterCount];
        model.Backward(acts[0], ga, gradient);
        model.Backward(acts[1], gp, gradient);
        for (int j = 0; j < M; j++) model.Backward(acts[j + 2], gn.AsSpan(j * O, O), gradient);

        var p = model.Parameters.Select(f => (double)f).ToArray();
        Assert.Equal(TupleLossReference(p, inputs), loss, 4);
        const double h = 1e-6;
        int nonZero = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double keep = p[i];
            p[i] = keep + h; double up = TupleLossReference(p, inputs);
            p[i] = keep - h; double down = TupleLossReference(p, inputs);
            p[i] = keep;
            double fd = (up - down) / (2 * h);
            AssertClose(fd, gradient[i], $"parameter {i}");
            if (Math.Abs(fd) > 1e-4) nonZero++;
        }
        Assert.True(nonZero > p.Length / 2, $"only {nonZero} of {p.Length} parameters have a gradient: the check would be vacuous");
    }

    [Fact]
    public void Embeddings_are_unit_length_and_independent_of_threads()
    {
        var model = new MlpEmbedder(D, H, O, seed: 4);
        var x = Random(300 * D, 13);
        var one = model.Embed(x, threads: 1);
        var two = model.Embed(x, threads: 2);
        Assert.Equal(one, two);
        // A row whose hidden units are all inactive (and b2 = 0) has a zero output; every other row is unit length.
        int unit = 0;
        for (int r = 0; r < 300; r++)
        {
            double norm = Math.Sqrt(one.AsSpan(r * O, O).ToArray().Sum(v => (double)v * v));
            Assert.True(norm == 0 || Math.Abs(norm - 1) < 1e-5, $"row {r} has norm {norm}");
            if (norm > 0) unit++;
        }
        Assert.True(unit >= 250, $"only {unit} of 300 rows are non-zero");
        Assert.Equal(model.Parameters, new MlpEmbedder(D, H, O, seed: 4).Parameters);
        Assert.NotEqual(model.Parameters, new MlpEmbedder(D, H, O, seed: 5).Parameters);
    }

    [Fact]
    public void Adam_first_step_moves_each_parameter_by_the_learning_rate_against_its_gradient()
    {
        var adam = new AdamOptimizer(4, learningRate: 0.01f);
        float[] p = [1f, 2f, 3f, 4f];
        float[] g = [0.5f, -2f, 1e-3f, 0f];
        adam.Step(p, g);
        // Bias-corrected m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε).
        Assert.Equal(1f - 0.01f, p[0], 5);
        Assert.Equal(2f + 0.01f, p[1], 5);
        Assert.Equal(3f - 0.01f, p[2], 4);
        Assert.Equal(4f, p[3]);
        Assert.Equal(1, adam.Steps);
    }

    [Fact]
    public void Bad_arguments_name_the_problem()
    {
        var model = new MlpEmbedder(D, H, O, seed: 1);
        var ex = Assert.Throws<ArgumentException>(() => model.Embed(new float[D + 1]));
        Assert.Contains("x", ex.ParamName);
        var nan = new float[D];
        nan[2] = float.NaN;
        ex = Assert.Throws<ArgumentException>(() => model.Embed(nan));
        Assert.Contains("non-finite", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => InfoNce.LossAndGradients(new float[O], new float[O], new float[O], 0f, 1f, new float[O], new float[O], new float[O]));
        Assert.Contains("temperature", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => model.Forward(new float[D], new MlpEmbedder.Activations(new MlpEmbedder(D, H, O, 2))));
        Assert.Contains("another model", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamOptimizer(3, learningRate: -1f));
        Assert.Throws<ArgumentException>(() => new AdamOptimizer(3, 0.1f).Step(new float[3], new float[2]));
    }
}
