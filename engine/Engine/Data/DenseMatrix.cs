namespace Engine.Data;

/// <summary>
/// A row-major block of <see cref="Rows"/> × <see cref="Columns"/> values in one array: row <c>i</c>, column
/// <c>j</c> is <c>Data[i * Columns + j]</c>, the layout every index call takes.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public sealed class DenseMatrix<T> where T : unmanaged
{
    /// <summary>Wraps <paramref name="data"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The array does not hold exactly rows × columns values.</exception>
    public DenseMatrix(T[] data, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        if ((long)rows * columns != data.Length)
            throw new ArgumentException($"data holds {data.Length} values but {rows} rows × {columns} columns need {(long)rows * columns}.", nameof(data));
        Data = data;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>The values, row-major.</summary>
    public T[] Data { get; }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Values per row (the vector dimension).</summary>
    public int Columns { get; }

    /// <summary>Row <paramref name="index"/> as a span over <see cref="Data"/>.</summary>
    public Span<T> Row(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Rows);
        return Data.AsSpan(index * Columns, Columns);
    }
}
