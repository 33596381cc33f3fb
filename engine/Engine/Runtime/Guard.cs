using System.Numerics.Tensors;

namespace Engine;

/// <summary>Argument validation shared by public entry points. Messages name the parameter and the problem.</summary>
public static class Guard
{
    /// <summary>Checks that <paramref name="vectors"/> holds whole rows of <paramref name="dimension"/> floats and
    /// returns the row count.</summary>
    public static int Rows(ReadOnlySpan<float> vectors, int dimension, string paramName)
    {
        if (dimension <= 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        if (vectors.Length % dimension != 0)
            throw new ArgumentException(
                $"Dimension mismatch: {paramName} has {vectors.Length} floats, which is not a multiple of the index dimension {dimension}.",
                paramName);
        return vectors.Length / dimension;
    }

    /// <summary>Rejects NaN and infinities, naming the first bad row and column.</summary>
    public static void Finite(ReadOnlySpan<float> vectors, int dimension, string paramName)
    {
        // Fast path: the sum of x*0 is 0 for finite data and NaN if any element is NaN or infinite.
        if (vectors.IsEmpty) return;
        float probe = 0f;
        const int Chunk = 4096;
        for (int start = 0; start < vectors.Length; start += Chunk)
        {
            var part = vectors.Slice(start, Math.Min(Chunk, vectors.Length - start));
            probe = TensorPrimitives.Dot(part, part);
            if (!float.IsFinite(probe))
            {
                for (int i = 0; i < part.Length; i++)
                {
                    if (!float.IsFinite(part[i]))
                    {
                        long flat = (long)start + i;
                        throw new ArgumentException(
                            $"{paramName} contains a non-finite value ({part[i]}) at row {flat / dimension}, column {flat % dimension}.",
                            paramName);
                    }
                }
            }
        }
    }

    /// <summary>Checks k and the sizes of caller-owned result buffers.</summary>
    public static void SearchBuffers(int queryCount, int k, int distancesLength, int labelsLength)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        long need = (long)queryCount * k;
        if (distancesLength < need)
            throw new ArgumentException($"distances holds {distancesLength} floats but {queryCount} queries × k={k} need {need}.", "distances");
        if (labelsLength < need)
            throw new ArgumentException($"labels holds {labelsLength} ids but {queryCount} queries × k={k} need {need}.", "labels");
    }

    /// <summary>Checks that ids are non-negative and one per vector.</summary>
    public static void Ids(ReadOnlySpan<long> ids, int rows)
    {
        if (ids.Length != rows)
            throw new ArgumentException($"Got {rows} vectors but {ids.Length} ids: there must be exactly one id per vector.", nameof(ids));
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] < 0)
                throw new ArgumentException($"ids[{i}] = {ids[i]} is negative; ids must be >= 0 (-1 marks a missing result).", nameof(ids));
    }
}
