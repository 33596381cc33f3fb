namespace Engine.Collections;

/// <summary>
/// Records of one schema as self-checking byte blobs (the payload format of the collection's store and log, CRC-32C
/// included), for moving records between processes: the distributed collections send records to their shards and hits
/// back this way.
/// </summary>
public sealed class RecordSerializer
{
    private readonly RecordCodec _codec;

    /// <summary>A serializer for records of <paramref name="schema"/>.</summary>
    public RecordSerializer(CollectionSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        Schema = schema;
        _codec = new RecordCodec(schema);
    }

    /// <summary>The schema records are checked against.</summary>
    public CollectionSchema Schema { get; }

    /// <summary>Checks <paramref name="record"/> against the schema and encodes it.</summary>
    /// <param name="record">The record.</param>
    /// <param name="includeVectors">True (the default): every vector field must be present and is encoded; false: vectors
    /// are neither required nor encoded (a record read without them).</param>
    /// <exception cref="ArgumentException">A record that does not fit the schema (the message names the field).</exception>
    public byte[] Serialize<TKey>(Record<TKey> record, bool includeVectors = true) where TKey : notnull
    {
        CheckKeyType<TKey>();
        return _codec.Encode(_codec.Normalize(record, includeVectors), includeVectors);
    }

    /// <summary>Decodes a blob written by <see cref="Serialize{TKey}"/> (or read from a collection's store).</summary>
    /// <param name="blob">The blob.</param>
    /// <param name="includeVectors">Return the vectors when the blob has them.</param>
    /// <exception cref="CorruptIndexException">A damaged blob or one of another schema.</exception>
    public Record<TKey> Deserialize<TKey>(ReadOnlySpan<byte> blob, bool includeVectors = true) where TKey : notnull
    {
        CheckKeyType<TKey>();
        return _codec.ToRecord<TKey>(_codec.Decode(blob, "a serialized record", includeVectors, wire: true), includeVectors);
    }

    /// <summary>The encoded key of a blob (as <see cref="SerializeKey{TKey}"/> writes it), checked but not decoded further.</summary>
    /// <exception cref="CorruptIndexException">A damaged blob.</exception>
    public byte[] KeyOf(ReadOnlySpan<byte> blob) => _codec.Decode(blob, "a serialized record", withVectors: false, wire: true).Key;

    /// <summary>A key's bytes: UTF-8 for strings, 16 bytes for a Guid, little-endian integers.</summary>
    /// <exception cref="ArgumentException">A key type other than string, Guid, int or long.</exception>
    public static byte[] SerializeKey<TKey>(TKey key) where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(key);
        return KeyCodec.Encode(key);
    }

    /// <summary>The key <see cref="SerializeKey{TKey}"/> wrote.</summary>
    public static TKey DeserializeKey<TKey>(ReadOnlySpan<byte> bytes) where TKey : notnull => KeyCodec.Decode<TKey>(bytes);

    private void CheckKeyType<TKey>()
    {
        if (KeyCodec.TypeOf(Schema.KeyType) != typeof(TKey))
            throw new ArgumentException($"The schema's keys are {Schema.KeyType}, not {typeof(TKey).Name}.", "TKey");
    }
}
