namespace Engine.Collections;

/// <summary>One record of a collection: its key, data fields and named vectors.</summary>
/// <typeparam name="TKey">string, Guid, int or long.</typeparam>
public sealed class Record<TKey> where TKey : notnull
{
    /// <summary>Creates a record.</summary>
    public Record(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Key = key;
    }

    /// <summary>The record's key.</summary>
    public TKey Key { get; }

    /// <summary>Data field values by name (absent or null = no value). Types as <see cref="FieldType"/> documents.</summary>
    public Dictionary<string, object?> Data { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Vectors by name; every vector field of the schema must have one.</summary>
    public Dictionary<string, float[]> Vectors { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>A search hit: the record and how close it is.</summary>
/// <param name="Record">The record (vectors included only when asked for).</param>
/// <param name="Distance">The index's value: squared L2 distance (smaller closer) or inner product / cosine similarity (larger closer).</param>
/// <param name="Score">The same, larger always closer (<c>-Distance</c> for L2).</param>
public sealed record SearchResult<TKey>(Record<TKey> Record, float Distance, float Score) where TKey : notnull;

/// <summary>Options of one search.</summary>
public sealed record CollectionSearchOptions
{
    /// <summary>The vector field to search (null: the schema's only vector field).</summary>
    public string? VectorName { get; init; }

    /// <summary>Only records that match it are returned (null: all).</summary>
    public Filter? Filter { get; init; }

    /// <summary>Return the records' vectors too.</summary>
    public bool IncludeVectors { get; init; }

    /// <summary>Index knobs for this call (probes, ef, ...); its own <c>Filter</c> must be null (use <see cref="Filter"/>).</summary>
    public SearchParameters? Parameters { get; init; }

    /// <summary>
    /// Index knobs by name instead of <see cref="Parameters"/> (not both), as <c>engine bench --sweep</c> takes them
    /// (<c>probes</c>, <c>ef</c>, <c>refine</c>, ...; null for none). A knob the field's spec does not understand is
    /// rejected; while a spec that needs training is staged on exact search the knobs are checked but have nothing to set.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Settings { get; init; }

    /// <summary>
    /// Filters that allow at most this fraction of the records are answered by exact search over the allowed records
    /// (0..1, default 0.01). IVF and HNSW indexes do it themselves from the allowed id list; for SPANN the collection
    /// reads the allowed records' vectors from the store.
    /// </summary>
    public double ExactFallbackSelectivity { get; init; } = 0.01;
}

/// <summary>A page of <see cref="RecordCollection{TKey}.ScanAsync"/>: records in internal-id order and where to continue.</summary>
/// <param name="Records">The records of the page.</param>
/// <param name="Next">The cursor of the next page (−1: the scan is complete).</param>
public sealed record RecordPage<TKey>(IReadOnlyList<Record<TKey>> Records, long Next) where TKey : notnull;
