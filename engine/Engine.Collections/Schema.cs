using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Collections;

/// <summary>The type of a data field of a record.</summary>
public enum FieldType
{
    /// <summary><see cref="string"/>.</summary>
    String,
    /// <summary><see cref="bool"/>.</summary>
    Bool,
    /// <summary><see cref="int"/>.</summary>
    Int32,
    /// <summary><see cref="long"/>.</summary>
    Int64,
    /// <summary><see cref="float"/>.</summary>
    Single,
    /// <summary><see cref="double"/>.</summary>
    Double,
    /// <summary><see cref="System.DateTime"/> (compared by its UTC instant in filters).</summary>
    DateTime,
    /// <summary><see cref="System.DateTimeOffset"/> (compared by its UTC instant in filters).</summary>
    DateTimeOffset,
    /// <summary>A list of strings (tags): given as any <c>IEnumerable&lt;string&gt;</c>, returned as <c>string[]</c>.</summary>
    Tags,
}

/// <summary>A data field: its name, type and whether filters may use it.</summary>
/// <param name="Name">Field name (unique among the collection's fields and vectors).</param>
/// <param name="Type">Value type.</param>
/// <param name="Indexed">True when filters may name the field: its values are kept in memory, column-wise.</param>
public sealed record DataField(string Name, FieldType Type, bool Indexed = false);

/// <summary>A named vector of every record and the index that serves it.</summary>
/// <param name="Name">Vector name (unique among the collection's fields and vectors).</param>
/// <param name="Dimension">Vector dimension (1..65536).</param>
/// <param name="Metric">The metric searches rank by.</param>
/// <param name="IndexSpec">Any composition string <c>IndexFactory.Create</c> knows: <c>Flat</c>, <c>IVF…</c>, <c>HNSW…</c>, <c>SPANN…</c>.</param>
/// <param name="TrainingSize">Specs that need training (IVF, SPANN): the record count at which the index is trained on
/// every stored vector; until then searches are exact (a Flat staging index). 0 = the default (39 × lists for IVF, at
/// least 1 000; 1 000 for SPANN). Ignored by Flat and HNSW.</param>
public sealed record VectorField(string Name, int Dimension, Metric Metric = Metric.L2, string IndexSpec = "Flat", int TrainingSize = 0);

/// <summary>The shape of a collection's records: key type, data fields and named vectors. Saved with the collection.</summary>
public sealed record CollectionSchema
{
    /// <summary>Creates a schema.</summary>
    /// <param name="keyType">string, Guid, int or long.</param>
    /// <param name="dataFields">Data fields (may be empty).</param>
    /// <param name="vectors">At least one vector field.</param>
    /// <exception cref="ArgumentException">An unsupported key type, duplicate or empty names, no vectors, a bad dimension or spec.</exception>
    public CollectionSchema(Type keyType, IReadOnlyList<DataField> dataFields, IReadOnlyList<VectorField> vectors)
    {
        ArgumentNullException.ThrowIfNull(keyType);
        ArgumentNullException.ThrowIfNull(dataFields);
        ArgumentNullException.ThrowIfNull(vectors);
        KeyType = KeyCodec.NameOf(keyType);
        DataFields = dataFields.ToArray();
        Vectors = vectors.ToArray();
        Validate();
    }

    [JsonConstructor]
    private CollectionSchema(string keyType, IReadOnlyList<DataField> dataFields, IReadOnlyList<VectorField> vectors)
    {
        KeyType = keyType;
        DataFields = dataFields?.ToArray() ?? [];
        Vectors = vectors?.ToArray() ?? [];
    }

    /// <summary>The key type's short name: string, guid, int32 or int64.</summary>
    public string KeyType { get; }

    /// <summary>The key type as a .NET type: string, Guid, int or long.</summary>
    [JsonIgnore]
    public Type KeyClrType => KeyCodec.TypeOf(KeyType);

    /// <summary>Data fields in storage order.</summary>
    public IReadOnlyList<DataField> DataFields { get; }

    /// <summary>Vector fields in storage order.</summary>
    public IReadOnlyList<VectorField> Vectors { get; }

    private void Validate()
    {
        KeyCodec.TypeOf(KeyType);
        if (Vectors.Count == 0) throw new ArgumentException("A collection needs at least one vector field.", "vectors");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in DataFields)
        {
            ArgumentNullException.ThrowIfNull(f, "dataFields");
            if (string.IsNullOrWhiteSpace(f.Name)) throw new ArgumentException("A data field has an empty name.", "dataFields");
            if (!Enum.IsDefined(f.Type)) throw new ArgumentException($"Data field '{f.Name}' has an unknown type {(int)f.Type}.", "dataFields");
            if (!names.Add(f.Name)) throw new ArgumentException($"The name '{f.Name}' is used twice.", "dataFields");
        }
        foreach (var v in Vectors)
        {
            ArgumentNullException.ThrowIfNull(v, "vectors");
            if (string.IsNullOrWhiteSpace(v.Name)) throw new ArgumentException("A vector field has an empty name.", "vectors");
            if (!names.Add(v.Name)) throw new ArgumentException($"The name '{v.Name}' is used twice.", "vectors");
            if (v.Dimension is < 1 or > 65536) throw new ArgumentException($"Vector '{v.Name}': dimension {v.Dimension} is outside 1..65536.", "vectors");
            if (!Enum.IsDefined(v.Metric)) throw new ArgumentException($"Vector '{v.Name}': unknown metric {(int)v.Metric}.", "vectors");
            if (v.TrainingSize < 0) throw new ArgumentException($"Vector '{v.Name}': TrainingSize {v.TrainingSize} is negative.", "vectors");
            if (string.IsNullOrWhiteSpace(v.IndexSpec)) throw new ArgumentException($"Vector '{v.Name}': empty index spec.", "vectors");
            // The factory names what is wrong with a spec; the probe index is discarded.
            try { using var _ = Engine.Index.IndexFactory.Create(v.IndexSpec, v.Dimension, v.Metric); }
            catch (ArgumentException e) { throw new ArgumentException($"Vector '{v.Name}': {Guard.MessageWithoutParameter(e)}", "vectors", e); }
        }
    }

    /// <summary>The vector field a search names (null: the schema's only one).</summary>
    /// <exception cref="ArgumentException">No name with several vector fields, or a name that is not a vector field (both list the fields).</exception>
    public VectorField VectorFieldFor(string? name)
    {
        if (name is null)
        {
            if (Vectors.Count == 1) return Vectors[0];
            throw new ArgumentException($"The collection has {Vectors.Count} vector fields; name one ({string.Join(", ", Vectors.Select(v => v.Name))}).", "vectorName");
        }
        return Vectors.FirstOrDefault(v => v.Name == name)
            ?? throw new ArgumentException($"'{name}' is not a vector field of the collection ({string.Join(", ", Vectors.Select(v => v.Name))}).", "vectorName");
    }

    /// <summary>The data field named <paramref name="name"/>, or null.</summary>
    public DataField? FindField(string name) => DataFields.FirstOrDefault(f => f.Name == name);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    /// <summary>The schema as JSON (the form <c>collection.json</c> stores and <see cref="Parse"/> reads).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a schema written by <see cref="ToJson"/> and checks it.</summary>
    /// <exception cref="ArgumentException">Not a schema, or an invalid one (the message says why).</exception>
    public static CollectionSchema Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var s = JsonSerializer.Deserialize<CollectionSchema>(json, Json) ?? throw new JsonException("null schema");
            s.Validate();
            return s;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            throw new ArgumentException($"Not a collection schema: {e.Message}", nameof(json), e);
        }
    }

    internal static CollectionSchema FromJson(string json, string path)
    {
        try
        {
            var s = JsonSerializer.Deserialize<CollectionSchema>(json, Json) ?? throw new JsonException("null schema");
            s.Validate();
            return s;
        }
        catch (Exception e) when (e is JsonException or ArgumentException or NotSupportedException)
        {
            throw new CorruptIndexException(path, 0, $"the collection schema cannot be read: {e.Message}", e);
        }
    }

    /// <summary>True when both schemas describe the same records and indexes.</summary>
    public bool SameAs(CollectionSchema other) =>
        other is not null && KeyType == other.KeyType && DataFields.SequenceEqual(other.DataFields) && Vectors.SequenceEqual(other.Vectors);
}
