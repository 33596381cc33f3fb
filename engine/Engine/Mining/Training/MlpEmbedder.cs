using System.Numerics.Tensors;

namespace Engine.Mining.Training;

/// <summary>
/// A one-hidden-layer MLP embedding model, <c>e = normalize(W2 · relu(W1 · x + b1) + b2)</c>, with hand-written
/// gradients (no autodiff): small enough to train inside the engine's process, between two mining passes.
/// </summary>
/// <remarks>
/// <para>All weights live in one array, <see cref="Parameters"/>, in the order <c>W1</c> (H × D, row-major),
/// <c>b1</c> (H), <c>W2</c> (O × H, row-major), <c>b2</c> (O), so an optimizer sees a single flat vector and a
/// gradient buffer has the same layout (<see cref="ParameterCount"/> floats).</para>
/// <para>Outputs are unit length, so inner product and cosine coincide on embeddings. An output whose
/// pre-normalisation norm is zero stays zero (its gradient is zero).</para>
/// <para>Thread safety: <c>Embed</c> and <see cref="Forward"/> only read the parameters and may run
/// concurrently; changing <see cref="Parameters"/> (an optimizer step) must not overlap them.</para>
/// </remarks>
public sealed class MlpEmbedder
{
    /// <summary>Creates a model with He-initialised weights (normal, variance 2 / fan-in) and zero biases.</summary>
    /// <param name="inputDimension">D ≥ 1.</param>
    /// <param name="hiddenDimension">H ≥ 1.</param>
    /// <param name="outputDimension">O ≥ 1 (the embedding dimension).</param>
    /// <param name="seed">Seed of the initial weights; the same seed gives the same model.</param>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is below 1.</exception>
    public MlpEmbedder(int inputDimension, int hiddenDimension, int outputDimension, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputDimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hiddenDimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputDimension, 1);
        InputDimension = inputDimension;
        HiddenDimension = hiddenDimension;
        OutputDimension = outputDimension;
        Parameters = new float[checked(hiddenDimension * inputDimension + hiddenDimension + outputDimension * hiddenDimension + outputDimension)];
        Init(Parameters.AsSpan(0, hiddenDimension * inputDimension), inputDimension, seed, 0);
        Init(Parameters.AsSpan(W2Offset, outputDimension * hiddenDimension), hiddenDimension, seed, 1);
    }

    /// <summary>Input dimension D.</summary>
    public int InputDimension { get; }

    /// <summary>Hidden width H.</summary>
    public int HiddenDimension { get; }

    /// <summary>Embedding dimension O.</summary>
    public int OutputDimension { get; }

    /// <summary>All weights: W1 (H × D), b1 (H), W2 (O × H), b2 (O). Writable (optimizers update it in place).</summary>
    public float[] Parameters { get; }

    /// <summary>Length of <see cref="Parameters"/> and of a gradient buffer.</summary>
    public int ParameterCount => Parameters.Length;

    private int B1Offset => HiddenDimension * InputDimension;
    private int W2Offset => B1Offset + HiddenDimension;
    private int B2Offset => W2Offset + OutputDimension * HiddenDimension;

    /// <summary>
    /// Embeds <paramref name="x"/> (n × D, row-major) into <paramref name="output"/> (n × O, unit rows).
    /// The result does not depend on <paramref name="threads"/>.
    /// </summary>
    /// <param name="x">Input rows; finite values.</param>
    /// <param name="output">n × O output buffer.</param>
    /// <param name="threads">Worker threads (0 = all cores).</param>
    /// <exception cref="ArgumentException">x is not whole rows, holds a non-finite value, or output has the wrong length.</exception>
    public void Embed(float[] x, float[] output, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(output);
        int n = Guard.Rows(x, InputDimension, nameof(x));
        Guard.Finite(x, InputDimension, nameof(x));
        if (output.Length != checked(n * OutputDimension))
            throw new ArgumentException($"output holds {output.Length} floats but {n} rows × {OutputDimension} need {n * OutputDimension}.", nameof(output));
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        const int Block = 64;
        int blocks = (n + Block - 1) / Block;
        ParallelWork.For(0, blocks, threads,
            () => new Activations(this),
            (b, _, act) =>
            {
                for (int r = b * Block, end = Math.Min(n, r + Block); r < end; r++)
                {
                    Forward(x.AsSpan(r * InputDimension, InputDimension), act);
                    act.Embedding.CopyTo(output.AsSpan(r * OutputDimension, OutputDimension));
                }
                return act;
            },
            _ => { });
    }

    /// <summary>Embeds an n × D batch into a new n × O array (see <see cref="Embed(float[], float[], int)"/>).</summary>
    public float[] Embed(float[] x, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        var output = new float[checked(Guard.Rows(x, InputDimension, nameof(x)) * OutputDimension)];
        Embed(x, output, threads);
        return output;
    }

    /// <summary>Runs one input through the model, keeping what <see cref="Backward"/> needs in <paramref name="act"/>.</summary>
    /// <param name="x">One input row of D floats.</param>
    /// <param name="act">Scratch created for this model; receives the embedding in <see cref="Activations.Embedding"/>.</param>
    public void Forward(ReadOnlySpan<float> x, Activations act)
    {
        ArgumentNullException.ThrowIfNull(act);
        if (x.Length != InputDimension) throw new ArgumentException($"x has {x.Length} values but the model input dimension is {InputDimension}.", nameof(x));
        act.CheckOwner(this);
        x.CopyTo(act.Input);
        int d = InputDimension, h = HiddenDimension;
        var p = Parameters.AsSpan();
        for (int i = 0; i < h; i++)
            act.PreActivation[i] = TensorPrimitives.Dot(p.Slice(i * d, d), x) + p[B1Offset + i];
        TensorPrimitives.Max(act.PreActivation, 0f, act.Hidden);
        for (int o = 0; o < OutputDimension; o++)
            act.Output[o] = TensorPrimitives.Dot(p.Slice(W2Offset + o * h, h), act.Hidden) + p[B2Offset + o];
        float norm = TensorPrimitives.Norm(act.Output);
        act.Norm = norm;
        if (norm > 0) TensorPrimitives.Multiply(act.Output, 1f / norm, act.Embedding);
        else act.Embedding.AsSpan().Clear();
    }

    /// <summary>
    /// Adds the gradient of the loss with respect to every parameter to <paramref name="gradient"/>, given the
    /// gradient <paramref name="embeddingGradient"/> of the loss with respect to the embedding of the last
    /// <see cref="Forward"/> call on <paramref name="act"/>.
    /// </summary>
    /// <param name="act">Activations of the forward pass.</param>
    /// <param name="embeddingGradient">dL/de, O floats.</param>
    /// <param name="gradient">Accumulator of <see cref="ParameterCount"/> floats (same layout as <see cref="Parameters"/>).</param>
    public void Backward(Activations act, ReadOnlySpan<float> embeddingGradient, Span<float> gradient)
    {
        ArgumentNullException.ThrowIfNull(act);
        act.CheckOwner(this);
        if (embeddingGradient.Length != OutputDimension) throw new ArgumentException($"embeddingGradient has {embeddingGradient.Length} values, expected {OutputDimension}.", nameof(embeddingGradient));
        if (gradient.Length != ParameterCount) throw new ArgumentException($"gradient has {gradient.Length} values, expected {ParameterCount}.", nameof(gradient));
        if (!(act.Norm > 0)) return;
        int d = InputDimension, h = HiddenDimension;
        var p = Parameters.AsSpan();
        // Through e = z / |z|: dz = (de − e (e·de)) / |z|.
        var gz = act.OutputGradient.AsSpan();
        float along = TensorPrimitives.Dot(act.Embedding, embeddingGradient);
        TensorPrimitives.MultiplyAdd(act.Embedding, -along, embeddingGradient, gz);
        TensorPrimitives.Multiply(gz, 1f / act.Norm, gz);
        // Output layer: dW2[o,:] += dz[o]·hidden, db2 += dz, dhidden = W2ᵀ dz.
        var gHidden = act.HiddenGradient.AsSpan();
        gHidden.Clear();
        for (int o = 0; o < OutputDimension; o++)
        {
            float g = gz[o];
            if (g == 0) continue;
            var row = gradient.Slice(W2Offset + o * h, h);
            TensorPrimitives.MultiplyAdd(act.Hidden, g, row, row);
            TensorPrimitives.MultiplyAdd(p.Slice(W2Offset + o * h, h), g, gHidden, gHidden);
        }
        TensorPrimitives.Add(gradient.Slice(B2Offset, OutputDimension), gz, gradient.Slice(B2Offset, OutputDimension));
        // ReLU, then the hidden layer: dW1[i,:] += dpre[i]·x, db1 += dpre.
        for (int i = 0; i < h; i++)
        {
            float g = act.PreActivation[i] > 0 ? gHidden[i] : 0f;
            if (g == 0) continue;
            var row = gradient.Slice(i * d, d);
            TensorPrimitives.MultiplyAdd(act.Input, g, row, row);
            gradient[B1Offset + i] += g;
        }
    }

    private static void Init(Span<float> weights, int fanIn, ulong seed, ulong stream)
    {
        double scale = Math.Sqrt(2.0 / fanIn);
        for (int i = 0; i < weights.Length; i += 2)
        {
            // Box–Muller on two counter-based uniforms: weight i depends only on (seed, layer, i).
            double u1 = CounterRng.Uniform(seed, 0xE3B0_0000UL + stream, (ulong)i);
            double u2 = CounterRng.Uniform(seed, 0xE3B0_0000UL + stream, (ulong)i + 1);
            double r = Math.Sqrt(-2 * Math.Log(u1)) * scale;
            weights[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < weights.Length) weights[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
    }

    /// <summary>Per-thread scratch of one forward/backward pass through a given model.</summary>
    public sealed class Activations
    {
        private readonly MlpEmbedder _owner;

        /// <summary>Scratch for <paramref name="model"/>.</summary>
        public Activations(MlpEmbedder model)
        {
            ArgumentNullException.ThrowIfNull(model);
            _owner = model;
            Input = new float[model.InputDimension];
            PreActivation = new float[model.HiddenDimension];
            Hidden = new float[model.HiddenDimension];
            HiddenGradient = new float[model.HiddenDimension];
            Output = new float[model.OutputDimension];
            OutputGradient = new float[model.OutputDimension];
            Embedding = new float[model.OutputDimension];
        }

        /// <summary>The unit-length embedding of the last forward pass (O floats).</summary>
        public float[] Embedding { get; }

        internal float[] Input { get; }
        internal float[] PreActivation { get; }
        internal float[] Hidden { get; }
        internal float[] HiddenGradient { get; }
        internal float[] Output { get; }
        internal float[] OutputGradient { get; }
        internal float Norm { get; set; }

        internal void CheckOwner(MlpEmbedder model)
        {
            if (!ReferenceEquals(model, _owner)) throw new ArgumentException("These activations were created for another model.", "act");
        }
    }
}
