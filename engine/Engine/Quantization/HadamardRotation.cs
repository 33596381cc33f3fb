namespace Engine.Quantization;

/// <summary>
/// A seeded random orthogonal rotation of R^d built from fast Walsh–Hadamard transforms (the structured rotation of
/// RaBitQ implementations and of "Kac walk"-style mixers): each of <see cref="Rounds"/> rounds flips the sign of every
/// coordinate at random and applies the normalised Hadamard transform to the first L coordinates, then flips signs
/// again and transforms the last L coordinates, where L is the largest power of two ≤ d. Every step is orthogonal,
/// so the whole map is; it costs O(d log d) per vector, needs no d × d matrix and keeps the dimension (no padding).
/// </summary>
/// <remarks>The signs come from a SplitMix64 stream of the seed, so a seed names the same rotation in every process
/// and .NET version (an index file stores only the seed). Thread safety: immutable; apply and revert from any thread.</remarks>
public sealed class HadamardRotation : IVectorTransform
{
    /// <summary>Rounds used unless the caller says otherwise (4: the coordinates of a rotated sparse vector are close to Gaussian).</summary>
    public const int DefaultRounds = 4;

    private readonly float[] _signs; // rounds × 2 × d of ±1
    private readonly int _block;

    /// <summary>Creates the rotation of dimension <paramref name="dimension"/> for <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Non-positive dimension, or rounds outside 1..16.</exception>
    public HadamardRotation(int dimension, int seed, int rounds = DefaultRounds)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (rounds < 1 || rounds > 16) throw new ArgumentOutOfRangeException(nameof(rounds), rounds, "Rounds must be in 1..16.");
        Dimension = dimension;
        Seed = seed;
        Rounds = rounds;
        _block = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)dimension));
        _signs = new float[rounds * 2 * dimension];
        ulong state = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;
        for (int i = 0; i < _signs.Length; i += 64)
        {
            ulong bits = SplitMix64(ref state);
            for (int j = 0; j < 64 && i + j < _signs.Length; j++) _signs[i + j] = ((bits >> j) & 1) == 0 ? 1f : -1f;
        }
    }

    /// <summary>The seed the rotation was made from.</summary>
    public int Seed { get; }

    /// <summary>Rounds of (signs, Hadamard on the head, signs, Hadamard on the tail).</summary>
    public int Rounds { get; }

    /// <inheritdoc />
    public int Dimension { get; }

    /// <inheritdoc />
    public bool IsTrained => true;

    /// <inheritdoc />
    public void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        int n = Guard.Rows(x, Dimension, nameof(x));
        if (y.Length < x.Length) throw new ArgumentException($"y must hold {x.Length} floats.", nameof(y));
        int d = Dimension;
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * d, d);
            x.Slice(i * d, d).CopyTo(row);
            Forward(row);
        }
    }

    /// <inheritdoc />
    public void Revert(ReadOnlySpan<float> y, Span<float> x)
    {
        int n = Guard.Rows(y, Dimension, nameof(y));
        if (x.Length < y.Length) throw new ArgumentException($"x must hold {y.Length} floats.", nameof(x));
        int d = Dimension;
        for (int i = 0; i < n; i++)
        {
            var row = x.Slice(i * d, d);
            y.Slice(i * d, d).CopyTo(row);
            Backward(row);
        }
    }

    /// <summary>Rotates one row of d floats in place.</summary>
    public void Forward(Span<float> v)
    {
        int d = Dimension;
        for (int r = 0; r < Rounds; r++)
        {
            Flip(v, r * 2);
            Hadamard(v[.._block]);
            Flip(v, r * 2 + 1);
            Hadamard(v[(d - _block)..d]);
        }
    }

    /// <summary>Rotates one row back in place (the transpose: every step is its own inverse, applied in reverse).</summary>
    public void Backward(Span<float> v)
    {
        int d = Dimension;
        for (int r = Rounds - 1; r >= 0; r--)
        {
            Hadamard(v[(d - _block)..d]);
            Flip(v, r * 2 + 1);
            Hadamard(v[.._block]);
            Flip(v, r * 2);
        }
    }

    private void Flip(Span<float> v, int which) =>
        System.Numerics.Tensors.TensorPrimitives.Multiply(v[..Dimension], _signs.AsSpan(which * Dimension, Dimension), v[..Dimension]);

    // The normalised Walsh–Hadamard transform (orthogonal and symmetric, so its own inverse) of a power-of-two span.
    private static void Hadamard(Span<float> v)
    {
        int n = v.Length;
        for (int h = 1; h < n; h <<= 1)
            for (int i = 0; i < n; i += h << 1)
            {
                var a = v.Slice(i, h);
                var b = v.Slice(i + h, h);
                int j = 0;
                if (System.Numerics.Vector.IsHardwareAccelerated)
                    for (; j <= h - System.Numerics.Vector<float>.Count; j += System.Numerics.Vector<float>.Count)
                    {
                        var x = new System.Numerics.Vector<float>(a.Slice(j));
                        var y = new System.Numerics.Vector<float>(b.Slice(j));
                        (x + y).CopyTo(a.Slice(j));
                        (x - y).CopyTo(b.Slice(j));
                    }
                for (; j < h; j++)
                {
                    float x = a[j], y = b[j];
                    a[j] = x + y;
                    b[j] = x - y;
                }
            }
        if (n > 1) System.Numerics.Tensors.TensorPrimitives.Multiply(v, 1f / MathF.Sqrt(n), v);
    }

    private static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
