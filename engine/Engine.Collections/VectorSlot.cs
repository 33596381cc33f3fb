using System.Text.RegularExpressions;
using Engine.Index;
using Engine.Index.Flat;

namespace Engine.Collections;

/// <summary>
/// The index of one vector field. Specs that need training (IVF, SPANN) start on an exact Flat staging index and are
/// trained on every stored vector when the field's training size is reached; Flat and HNSW are used from the start.
/// Not thread-safe: the collection serialises writers against readers.
/// </summary>
internal sealed partial class VectorSlot : IDisposable
{
    private readonly VectorField _field;
    private readonly HashSet<long> _stagedIds = new();
    private FlatIndex? _staging;

    public VectorSlot(VectorField field)
    {
        _field = field;
        var probe = IndexFactory.Create(field.IndexSpec, field.Dimension, field.Metric);
        SpecDescription = probe.Description;
        if (probe.IsTrained) Index = probe;
        else
        {
            probe.Dispose();
            _staging = new FlatIndex(field.Dimension, field.Metric);
        }
        TrainingSize = field.TrainingSize > 0 ? field.TrainingSize : DefaultTrainingSize(field.IndexSpec);
    }

    /// <summary>The trained index, or null while records are staged.</summary>
    public IVectorIndex? Index { get; private set; }

    /// <summary>The index searches use now (the staging index until training).</summary>
    public IVectorIndex Active => Index ?? _staging!;

    public int TrainingSize { get; }

    /// <summary>The description an index built from the field's spec reports (a snapshot's index must match it).</summary>
    public string SpecDescription { get; }

    /// <summary>True while records are staged on the exact Flat index (the spec needs training).</summary>
    public bool IsStaging => Index is null;

    /// <summary>The staged ids (empty once trained).</summary>
    public IReadOnlyCollection<long> StagedIds => _stagedIds;

    /// <summary>Whether the field's index can be snapshotted to one file (every kind but SPANN, a directory with its own log).</summary>
    public bool CanSnapshot => Index is not Engine.Index.Spann.SpannIndex;

    /// <summary>Replaces the slot's state with an index loaded from a snapshot: the trained index, or the staging
    /// index with its staged ids. Takes ownership of <paramref name="loaded"/>.</summary>
    /// <exception cref="InvalidDataException">The loaded index does not fit the field (named).</exception>
    public void Restore(IVectorIndex loaded, bool staging, IReadOnlyList<long> stagedIds)
    {
        if (loaded.Dimension != _field.Dimension || loaded.Metric != _field.Metric)
            throw new InvalidDataException($"vector '{_field.Name}': the snapshot's index is {loaded.Metric} d = {loaded.Dimension}, the field {_field.Metric} d = {_field.Dimension}.");
        if (staging)
        {
            if (loaded is not FlatIndex flat) throw new InvalidDataException($"vector '{_field.Name}': the snapshot's staging index is '{loaded.Description}', not Flat.");
            if (flat.Count != stagedIds.Count) throw new InvalidDataException($"vector '{_field.Name}': the snapshot stages {stagedIds.Count} ids but its Flat index holds {flat.Count}.");
            if (stagedIds.Count >= TrainingSize) throw new InvalidDataException($"vector '{_field.Name}': the snapshot stages {stagedIds.Count} ids, at or above the training size {TrainingSize}.");
            Index?.Dispose();
            _staging?.Dispose();
            Index = null;
            _staging = flat;
            _stagedIds.Clear();
            foreach (var id in stagedIds) _stagedIds.Add(id);
            return;
        }
        if (loaded.Description != SpecDescription || !loaded.IsTrained)
            throw new InvalidDataException($"vector '{_field.Name}': the snapshot's index is '{loaded.Description}' but the field's spec '{_field.IndexSpec}' builds '{SpecDescription}'.");
        Index?.Dispose();
        _staging?.Dispose();
        _staging = null;
        _stagedIds.Clear();
        Index = loaded;
    }

    public VectorField Field => _field;

    [GeneratedRegex(@"IVF(\d+)")]
    private static partial Regex IvfLists();

    private static int DefaultTrainingSize(string spec)
    {
        var m = IvfLists().Match(spec);
        return m.Success ? (int)Math.Clamp(39L * long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 1000, int.MaxValue) : 1000;
    }

    /// <summary>Adds vectors (n × d) with ids; trains the real index when the staged count reaches the training size.</summary>
    public void Add(ReadOnlySpan<float> vectors, ReadOnlySpan<long> ids)
    {
        if (ids.IsEmpty) return;
        if (Index is not null) { Index.Add(vectors, ids); return; }
        _staging!.Add(vectors, ids);
        foreach (var id in ids) _stagedIds.Add(id);
        if (_stagedIds.Count >= TrainingSize) Train();
    }

    public void Remove(long id)
    {
        if (Index is not null) { Index.Remove([id]); return; }
        if (_stagedIds.Remove(id)) _staging!.Remove([id]);
    }

    private void Train()
    {
        int d = _field.Dimension;
        var ids = _stagedIds.OrderBy(i => i).ToArray();
        var data = new float[ids.Length * d];
        for (int i = 0; i < ids.Length; i++)
            if (!_staging!.TryReconstruct(ids[i], data.AsSpan(i * d, d)))
                throw new InvalidOperationException($"Vector '{_field.Name}': staged id {ids[i]} is missing from the staging index.");
        var index = IndexFactory.Create(_field.IndexSpec, d, _field.Metric);
        try
        {
            index.Train(data);
            index.Add(data, ids);
        }
        catch
        {
            index.Dispose();
            throw;
        }
        Index = index;
        _staging!.Dispose();
        _staging = null;
        _stagedIds.Clear();
    }

    public long MemoryBytes => Active.MemoryBytes;

    public void Dispose()
    {
        Index?.Dispose();
        _staging?.Dispose();
    }
}
