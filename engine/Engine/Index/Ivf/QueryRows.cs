namespace Engine.Index.Ivf;

/// <summary>
/// The queries of one search call as its workers read them (nq × d floats): the caller's rows in place, pinned for the
/// call, when the index needs them as they are (L2 and inner product without OPQ), otherwise a prepared copy
/// (normalised for cosine, rotated by OPQ). The copy of a large batch was a serial step before the parallel part (MNIST:
/// 6 MB per 2 000 queries, about 2 % of a two-thread search). Valid only inside the call that made it.
/// </summary>
internal readonly unsafe struct QueryRows
{
    private readonly float* _rows;
    private readonly int _length;

    /// <param name="rows">The first float of the pinned rows.</param>
    /// <param name="length">Floats there (nq × d).</param>
    public QueryRows(float* rows, int length)
    {
        _rows = rows;
        _length = length;
    }

    /// <summary>Floats <paramref name="start"/> .. <paramref name="start"/> + <paramref name="length"/> − 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the rows.</exception>
    public ReadOnlySpan<float> AsSpan(int start, int length)
    {
        if ((uint)start > (uint)_length || (uint)length > (uint)(_length - start))
            throw new ArgumentOutOfRangeException(nameof(start), $"Floats {start}..{(long)start + length} are outside the {_length} query floats.");
        return new ReadOnlySpan<float>(_rows + start, length);
    }
}
