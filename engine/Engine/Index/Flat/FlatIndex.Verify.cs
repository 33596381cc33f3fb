namespace Engine.Index.Flat;

public sealed partial class FlatIndex : IVerifiableIndex
{
    // Where the index was loaded from (for problem reports) and where its sections' payloads start in that file.
    private string? _source;
    private long _idsAt = -1, _vectorsAt = -1;

    private string SourceName => _source ?? "(in-memory Flat index)";

    /// <inheritdoc />
    /// <remarks>Checks every id (non-negative, unique, matching the id → row map) and every stored vector (finite, with a
    /// finite squared norm equal to the cached one). Offsets refer to the file the index was loaded from.</remarks>
    public VerifyReport Verify()
    {
        var report = new VerifyReport(SourceName);
        _lock.EnterRead();
        try
        {
            int d = Dimension;
            var seen = new HashSet<long>();
            for (int row = 0; row < _count; row++)
            {
                long id = _ids[row];
                if (id < 0 || !seen.Add(id) || !_rowOf.TryGetValue(id, out int mapped) || mapped != row)
                    report.Add(SourceName, Offset(_idsAt, row, sizeof(long)), $"id {id} of row {row} is negative, duplicated or missing from the id map");
                var v = Row(row);
                float norm = Distance.Distances.SquaredNorm(v);
                if (!float.IsFinite(norm))
                    report.Add(SourceName, Offset(_vectorsAt, row, d * sizeof(float)), $"stored vector of row {row} (id {id}) is not finite or its squared norm overflows");
                else if (MathF.Abs(norm - _norms[row]) > 1e-4f * MathF.Max(1f, norm))
                    report.Add(SourceName, Offset(_vectorsAt, row, d * sizeof(float)), $"cached squared norm of row {row} (id {id}) is {_norms[row]}, the vector's is {norm}");
                report.VectorsChecked++;
            }
            if (_rowOf.Count != _count)
                report.Add(SourceName, -1, $"the id map holds {_rowOf.Count} ids for {_count} rows");
            report.PartsChecked = 1;
        }
        finally { _lock.ExitRead(); }
        return report;
    }

    private static long Offset(long sectionAt, long row, long rowBytes) => sectionAt < 0 ? -1 : sectionAt + row * rowBytes;

    // Load's cheap check: every stored vector is finite and so is its squared norm (an overflow would rank it at the
    // distance used for padding).
    private static void CheckFinite(string path, long vectorsAt, float[] norms, long[] ids, int dimension)
    {
        for (int i = 0; i < norms.Length; i++)
            if (!float.IsFinite(norms[i]))
                throw new CorruptIndexException(path, vectorsAt + (long)i * dimension * sizeof(float), $"stored vector of row {i} (id {ids[i]}) is not finite or its squared norm overflows");
    }
}
