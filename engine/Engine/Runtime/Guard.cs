using System.Numerics.Tensors;

namespace Engine;

/// <summary>Argument validation shared by public entry points. Messages name the parameter and the problem.</summary>
public static class Guard
{
    /// <summary>
    /// The message of <paramref name="e"/> without the " (Parameter 'name')" that .NET appends to an
    /// <see cref="ArgumentException"/>'s message: for wrapping it into another <see cref="ArgumentException"/>, which
    /// appends its own parameter name (else the text would name two parameters, one after the other). Other exceptions'
    /// messages are returned as they are.
    /// </summary>
    /// <param name="e">The exception being wrapped.</param>
    /// <returns>Its message, less the parameter-name suffix.</returns>
    public static string MessageWithoutParameter(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        string message = e.Message;
        if (e is not ArgumentException { ParamName: { Length: > 0 } name }) return message;
        // The suffix as this runtime writes it (localised); ArgumentOutOfRangeException puts its actual value after it.
        string suffix = new ArgumentException("", name).Message;
        int at = message.LastIndexOf(suffix, StringComparison.Ordinal);
        return at < 0 ? message : message.Remove(at, suffix.Length);
    }

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

    /// <summary>
    /// Largest squared L2 norm a vector may have: a quarter of <see cref="float.MaxValue"/> (≈ 8.5e37, a norm of
    /// ≈ 9.2e18). Below it every float32 distance between two accepted vectors is finite: ‖q − x‖² ≤ (‖q‖ + ‖x‖)² ≤
    /// 4·max‖·‖², |q·x| ≤ ‖q‖·‖x‖, and the GEMM form ‖q‖² + ‖x‖² − 2q·x stays below float.MaxValue. Above it a
    /// distance can overflow to +∞, the value that pads missing results.
    /// </summary>
    public const float MaxSquaredNorm = float.MaxValue / 4;

    /// <summary>
    /// Rejects NaN, infinities and rows whose squared norm is above <see cref="MaxSquaredNorm"/> (finite values whose
    /// distances would overflow float32), naming the first bad row (and column for a non-finite value).
    /// </summary>
    /// <remarks>One pass: the sum of squares of blocks of whole rows is finite and at most
    /// <see cref="MaxSquaredNorm"/> for valid data (it bounds every row's squared norm); only a block that fails it
    /// is scanned row by row.</remarks>
    /// <exception cref="ArgumentException">A non-finite value or a row with too large a norm.</exception>
    public static void Finite(ReadOnlySpan<float> vectors, int dimension, string paramName)
    {
        if (vectors.IsEmpty) return;
        if (dimension <= 0)
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Dimension must be positive.");
        // Blocks of whole rows (about 4096 floats), so a block's sum of squares bounds each of its rows' norms.
        int rowsPerBlock = Math.Max(1, 4096 / dimension);
        int block = rowsPerBlock * dimension;
        for (int start = 0; start < vectors.Length; start += block)
        {
            var part = vectors.Slice(start, Math.Min(block, vectors.Length - start));
            float probe = TensorPrimitives.Dot(part, part);
            if (probe <= MaxSquaredNorm) continue; // false for NaN and +inf too
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
            for (int r = 0; r + dimension <= part.Length; r += dimension)
            {
                var row = part.Slice(r, dimension);
                float norm = TensorPrimitives.Dot(row, row);
                if (!(norm <= MaxSquaredNorm))
                {
                    long rowIndex = ((long)start + r) / dimension;
                    var c = System.Globalization.CultureInfo.InvariantCulture;
                    string normText = float.IsFinite(norm) ? norm.ToString("G4", c) : "beyond float32";
                    throw new ArgumentException(
                        $"{paramName} row {rowIndex} is too large: its squared norm ({normText}) exceeds {MaxSquaredNorm.ToString("G4", c)}, "
                        + $"so its distances would overflow float32 (largest |value| {TensorPrimitives.MaxMagnitude(row).ToString("G4", c)}). Scale the vectors down.",
                        paramName);
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
