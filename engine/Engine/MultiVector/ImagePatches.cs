namespace Engine.MultiVector;

/// <summary>
/// Turns square grey-scale images (e.g. MNIST 28 × 28) into multi-vector items: each image becomes the set of its
/// non-overlapping p × p patches, one token per patch: the patch's pixels scaled to 0..1 (by the largest pixel of the
/// batch), followed by two position features (patch row and column mapped to −1..1, times
/// <see cref="PositionWeight"/>), the whole token normalised to unit length, so Chamfer similarity is a sum of cosines.
/// </summary>
public static class ImagePatches
{
    /// <summary>Weight of the two position features relative to the unit-scaled pixels.</summary>
    public const float PositionWeight = 1f;

    /// <summary>Token dimension for patch side <paramref name="patch"/>: p² pixels + 2 position features.</summary>
    public static int TokenDimension(int patch) => patch * patch + 2;

    /// <summary>
    /// Patches of every image in <paramref name="images"/> (n × side², row-major pixels).
    /// </summary>
    /// <param name="images">Pixels, n × side × side.</param>
    /// <param name="side">Image side (28 for MNIST).</param>
    /// <param name="patch">Patch side; must divide <paramref name="side"/> (7 gives 16 patches for MNIST).</param>
    /// <param name="pixelScale">Largest pixel value (pixels are divided by it); 0 = the largest pixel of <paramref name="images"/>.</param>
    /// <exception cref="ArgumentException">Shapes that do not fit, or negative / non-finite pixels.</exception>
    public static MultiVectorSet FromImages(ReadOnlySpan<float> images, int side, int patch, float pixelScale = 0)
    {
        if (side <= 0) throw new ArgumentOutOfRangeException(nameof(side), side, "Image side must be positive.");
        if (patch <= 0 || side % patch != 0)
            throw new ArgumentOutOfRangeException(nameof(patch), patch, $"Patch side must be positive and divide the image side {side}.");
        int pixels = side * side;
        if (images.Length % pixels != 0)
            throw new ArgumentException($"Images hold {images.Length} values, not a whole number of {side} × {side} images (the data set's d must be {pixels}).", nameof(images));
        int n = images.Length / pixels, grid = side / patch, perImage = grid * grid, d = TokenDimension(patch);
        float max = pixelScale;
        if (max == 0)
            foreach (float v in images)
            {
                if (!float.IsFinite(v) || v < 0) throw new ArgumentException($"Pixel value {v} is negative or not finite.", nameof(images));
                max = Math.Max(max, v);
            }
        if (!(max > 0) || !float.IsFinite(max)) max = 1;
        var tokens = new float[(long)n * perImage * d];
        var counts = new int[n];
        Array.Fill(counts, perImage);
        for (int img = 0; img < n; img++)
        {
            var image = images.Slice(img * pixels, pixels);
            for (int pr = 0; pr < grid; pr++)
                for (int pc = 0; pc < grid; pc++)
                {
                    var t = tokens.AsSpan((int)(((long)img * perImage + pr * grid + pc) * d), d);
                    for (int y = 0; y < patch; y++)
                        for (int x = 0; x < patch; x++)
                            t[y * patch + x] = image[(pr * patch + y) * side + pc * patch + x] / max;
                    float centre = (grid - 1) / 2f;
                    t[d - 2] = grid == 1 ? 0 : PositionWeight * (pr - centre) / centre;
                    t[d - 1] = grid == 1 ? 0 : PositionWeight * (pc - centre) / centre;
                    float norm = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(t, t));
                    if (norm > 0) System.Numerics.Tensors.TensorPrimitives.Multiply(t, 1 / norm, t);
                }
        }
        return new MultiVectorSet(d, tokens, counts);
    }
}
