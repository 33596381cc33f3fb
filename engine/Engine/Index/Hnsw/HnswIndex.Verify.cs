namespace Engine.Index.Hnsw;

public sealed partial class HnswIndex : IVerifiableIndex
{
    private string? _source; // the file the index was loaded from, for problem reports

    private string SourceName => _source ?? "(in-memory HNSW index)";

    /// <inheritdoc />
    /// <remarks>Under the writer lock: every live or deleted node's stored vector decodes to finite values with a finite
    /// squared norm; every link on every level points at another node of that level (not itself, not a free slot, no
    /// duplicates); the id map and the node states agree; the entry point is a node of the top level. Load already
    /// checks the structure; this adds the vectors and the duplicate/self links. Offsets are unknown (-1): the file's
    /// sections are named in the message.</remarks>
    public VerifyReport Verify()
    {
        var report = new VerifyReport(SourceName);
        lock (_writer)
        {
            _resize.EnterRead();
            try { VerifyLocked(report); }
            finally { _resize.ExitRead(); }
        }
        return report;
    }

    private void VerifyLocked(VerifyReport report)
    {
        int d = Dimension;
        var row = new float[d];
        var seen = new HashSet<int>();
        int live = 0, top = -1;
        for (int node = 0; node < _slots; node++)
        {
            if (_state[node] == Free) continue;
            if (_state[node] == Live)
            {
                live++;
                if (!_nodeOf.TryGetValue(_ids[node], out int mapped) || mapped != node)
                    report.Add(SourceName, -1, $"live node {node} (id {_ids[node]}) is missing from the id map");
            }
            _vectors.Get(node, row);
            if (!float.IsFinite(Distance.Distances.SquaredNorm(row)))
                report.Add(SourceName, -1, $"stored vector of node {node} (id {_ids[node]}) is not finite or its squared norm overflows (section VECS)");
            report.VectorsChecked++;
            top = Math.Max(top, _levels[node]);
            for (int level = 0; level <= _levels[node]; level++)
            {
                var list = Links(node, level);
                if (list.IsEmpty) { report.Add(SourceName, -1, $"node {node} has no link list on its level {level}"); continue; }
                seen.Clear();
                int n = list[0];
                for (int j = 1; j <= n && j < list.Length; j++)
                {
                    int nb = list[j];
                    if (nb == node || !seen.Add(nb) || (uint)nb >= (uint)_slots || _state[nb] == Free || _levels[nb] < level)
                        report.Add(SourceName, -1, $"node {node} level {level} links to {nb}: itself, twice, a free slot or a node without that level");
                }
            }
            report.PartsChecked++;
        }
        if (live != _count || _nodeOf.Count != _count)
            report.Add(SourceName, -1, $"{live} live nodes and {_nodeOf.Count} ids in the id map, count says {_count}");
        long entry = Volatile.Read(ref _entry);
        if (entry == EmptyEntry ? top >= 0 && live > 0 : (uint)EntryNode(entry) >= (uint)_slots || _state[EntryNode(entry)] == Free || EntryLevel(entry) != _levels[EntryNode(entry)] || EntryLevel(entry) < top)
            report.Add(SourceName, -1, $"entry point {(entry == EmptyEntry ? "none" : $"{EntryNode(entry)} at level {EntryLevel(entry)}")} is not a node of the top level {top}");
    }
}
