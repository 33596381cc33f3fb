using System.Numerics.Tensors;

namespace Engine.Mining.Training;

/// <summary>
/// InfoNCE on one (anchor, positive, negatives) tuple of unit embeddings: logits <c>l₀ = a·p / τ</c>,
/// <c>lⱼ = a·nⱼ / τ</c>, loss <c>logsumexp(l) − l₀</c> (cross-entropy with the positive as the target).
/// </summary>
/// <remarks>
/// With <c>g = softmax(l) − onehot(0)</c> the gradients are <c>dL/da = Σⱼ gⱼ cⱼ / τ</c> (c₀ = p, cⱼ = nⱼ),
/// <c>dL/dp = g₀ a / τ</c> and <c>dL/dnⱼ = gⱼ a / τ</c>. Stateless; thread safe.
/// </remarks>
public static class InfoNce
{
    /// <summary>
    /// Loss of one tuple and its gradients with respect to the anchor, the positive and each negative, scaled by
    /// <paramref name="scale"/> (e.g. 1 / batch size) and <em>written</em> (not added) to the gradient spans.
    /// </summary>
    /// <param name="anchor">Anchor embedding, d floats.</param>
    /// <param name="positive">Positive embedding, d floats.</param>
    /// <param name="negatives">m × d negative embeddings, row-major (m may be 0: loss and gradients are 0).</param>
    /// <param name="temperature">τ &gt; 0.</param>
    /// <param name="scale">Factor applied to the gradients (not to the returned loss).</param>
    /// <param name="anchorGradient">d floats.</param>
    /// <param name="positiveGradient">d floats.</param>
    /// <param name="negativeGradients">m × d floats.</param>
    /// <returns>The unscaled loss.</returns>
    /// <exception cref="ArgumentException">Lengths disagree or τ is not positive and finite.</exception>
    public static float LossAndGradients(ReadOnlySpan<float> anchor, ReadOnlySpan<float> positive, ReadOnlySpan<float> negatives,
        float temperature, float scale, Span<float> anchorGradient, Span<float> positiveGradient, Span<float> negativeGradients)
    {
        int d = anchor.Length;
        if (d == 0) throw new ArgumentException("anchor is empty.", nameof(anchor));
        if (positive.Length != d) throw new ArgumentException($"positive has {positive.Length} values, the anchor {d}.", nameof(positive));
        if (negatives.Length % d != 0) throw new ArgumentException($"negatives holds {negatives.Length} values, not whole rows of {d}.", nameof(negatives));
        if (anchorGradient.Length != d || positiveGradient.Length != d || negativeGradients.Length != negatives.Length)
            throw new ArgumentException("A gradient span does not have the length of its embedding.", nameof(anchorGradient));
        if (!(temperature > 0) || !float.IsFinite(temperature)) throw new ArgumentException($"temperature must be positive and finite (got {temperature}).", nameof(temperature));
        int m = negatives.Length / d;
        anchorGradient.Clear();
        positiveGradient.Clear();
        negativeGradients.Clear();
        if (m == 0) return 0f;
        Span<float> logits = m + 1 <= 256 ? stackalloc float[m + 1] : new float[m + 1];
        logits[0] = TensorPrimitives.Dot(anchor, positive) / temperature;
        for (int j = 0; j < m; j++) logits[j + 1] = TensorPrimitives.Dot(anchor, negatives.Slice(j * d, d)) / temperature;
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        for (int j = 0; j <= m; j++) sum += Math.Exp(logits[j] - max);
        float loss = (float)(max + Math.Log(sum) - logits[0]);
        TensorPrimitives.SoftMax(logits, logits);
        float k = scale / temperature;
        float g0 = (logits[0] - 1f) * k;
        TensorPrimitives.MultiplyAdd(positive, g0, anchorGradient, anchorGradient);
        TensorPrimitives.Multiply(anchor, g0, positiveGradient);
        for (int j = 0; j < m; j++)
        {
            float g = logits[j + 1] * k;
            TensorPrimitives.MultiplyAdd(negatives.Slice(j * d, d), g, anchorGradient, anchorGradient);
            TensorPrimitives.Multiply(anchor, g, negativeGradients.Slice(j * d, d));
        }
        return loss;
    }
}

/// <summary>
/// Adam (Kingma &amp; Ba 2015) over one flat parameter vector, with bias correction. Not thread safe: one step at a time.
/// </summary>
public sealed class AdamOptimizer
{
    private readonly float[] _m;
    private readonly float[] _v;
    private readonly float[] _scratch;
    private long _step;

    /// <summary>Creates the optimizer for <paramref name="parameterCount"/> parameters.</summary>
    /// <param name="parameterCount">Length of the parameter and gradient vectors.</param>
    /// <param name="learningRate">Step size &gt; 0.</param>
    /// <param name="beta1">First-moment decay in [0, 1).</param>
    /// <param name="beta2">Second-moment decay in [0, 1).</param>
    /// <param name="epsilon">Denominator guard &gt; 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyper-parameter is out of range.</exception>
    public AdamOptimizer(int parameterCount, float learningRate, float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-8f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parameterCount, 1);
        if (!(learningRate > 0) || !float.IsFinite(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be positive and finite.");
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1).");
        if (!(epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be positive.");
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        _m = new float[parameterCount];
        _v = new float[parameterCount];
        _scratch = new float[parameterCount];
    }

    /// <summary>Step size.</summary>
    public float LearningRate { get; }

    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; }

    /// <summary>Denominator guard.</summary>
    public float Epsilon { get; }

    /// <summary>Steps taken.</summary>
    public long Steps => _step;

    /// <summary>One update of <paramref name="parameters"/> in place from <paramref name="gradient"/>.</summary>
    /// <exception cref="ArgumentException">A length differs from the parameter count.</exception>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradient)
    {
        if (parameters.Length != _m.Length || gradient.Length != _m.Length)
            throw new ArgumentException($"Adam was created for {_m.Length} parameters; got {parameters.Length} parameters and {gradient.Length} gradients.", nameof(parameters));
        _step++;
        // m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²
        TensorPrimitives.Multiply(_m, Beta1, _m);
        TensorPrimitives.MultiplyAdd(gradient, 1 - Beta1, _m, _m);
        TensorPrimitives.Multiply(gradient, gradient, _scratch);
        TensorPrimitives.Multiply(_scratch, 1 - Beta2, _scratch);
        TensorPrimitives.MultiplyAdd(_v, Beta2, _scratch, _v);
        float c1 = 1f / (1f - MathF.Pow(Beta1, _step));
        float c2 = 1f / (1f - MathF.Pow(Beta2, _step));
        // p −= lr · (m·c1) / (√(v·c2) + ε)
        TensorPrimitives.Multiply(_v, c2, _scratch);
        TensorPrimitives.Sqrt(_scratch, _scratch);
        TensorPrimitives.Add(_scratch, Epsilon, _scratch);
        TensorPrimitives.Divide(_m, _scratch, _scratch);
        TensorPrimitives.MultiplyAdd(_scratch, -LearningRate * c1, parameters, parameters);
    }
}
